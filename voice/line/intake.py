"""The intake, the caller's first conversation: greeting and safety, the kind of problem, then on hold
for a specialist (`waiting`) or, when nobody is on or the line is closed, the callback questions
(`endings`). The key 0 reaches dispatch from any prompt, and danger is the first question after the
language. Plain functions: a call's state and the caller's input in, the next TwiML out.
"""

from __future__ import annotations

import redis
from flask import current_app
from sqlalchemy.orm import Session
from twilio.twiml.voice_response import VoiceResponse

from voice import hours, script
from voice.line import calls, endings, handoff, holds, offers, questions, routing, third_parties, waiting
from voice.models import Call
from voice.script import STEPS
from voice.tasks import dispatch_after_commit
from voice.twiml import say


def begin(db: Session, r: redis.Redis, call_sid: str, from_number: str, to_number: str,
          forwarded_from: str | None = None) -> str:
    """The first answer to a new call: log it and greet (or, for a specialist just cut off, take them back)."""
    rejoined = offers.rejoin_by_calling(db, r, call_sid, from_number)
    if rejoined is not None:
        return rejoined
    call = calls.start_call(db, call_sid, from_number, to_number, forwarded_from)
    if call.step is None:
        return questions.finished(call)
    if call.source == calls.HANDOFF and call.step in ("greeting", script.INCIDENT_STEP):
        return handoff.begin(db, r, call)
    return str(questions.ask(call, call.step, attempt=1))


def answer(db: Session, r: redis.Redis, call: Call, step_name: str, attempt: int, digits: str, speech: str) -> str:
    """Take the caller's answer to `step_name`, store it, and return what they hear next."""
    if call.step is None:
        return questions.finished(call)
    if step_name not in STEPS:
        step_name = call.step
    step = STEPS[step_name]
    digits, speech = questions.clean_input(digits, speech)
    value = questions.interpret(step, call, digits, speech)
    calls.record_event(db, call, "intake_answer", step=step_name, attempt=attempt, digits=digits or None,
                       speech=speech or None, understood=value is not None)
    if value == "dispatch":
        return endings.escalate(db, call, reason="caller asked for dispatch", code=calls.CALLER_ASKED)
    if value is None:
        # A specialist already took them while they answer the short path: no second try, go on.
        if attempt < step.tries and not (step_name in script.SHORT_PATH and holds.specialist_waiting(db, call)):
            return str(questions.ask(call, step_name, attempt + 1, retry=questions.refusal_words(step_name, digits)))
        value = questions.default_for(call, step_name)
        calls.record_event(db, call, "intake_default", step=step_name, value=value)
    return apply(db, r, call, step_name, value)


def apply(db: Session, r: redis.Redis, call: Call, step_name: str, value: str | None) -> str:
    """Store one answer and move the call on."""
    if step_name in ("greeting", "safety"):
        if value and value.startswith(questions.LANGUAGE_CHOICE):
            call.language = value.removeprefix(questions.LANGUAGE_CHOICE)
            return str(questions.ask(call, "safety", attempt=1))
        if value == "another_language":
            return another_language(db, r, call)
        if value in {"danger", "no_answer"}:
            if value == "danger":
                return endings.escalate(db, call, reason="danger reported", code=calls.DANGER)
            return endings.escalate(db, call, reason="no answer to the safety question", code=calls.NO_SAFETY_ANSWER)
        return after_safety(db, r, call)
    if step_name in script.SHORT_PATH:
        if step_name == "category":
            call.category = value
            category_chosen(db, r, call)
        else:
            questions.store_answer(call, step_name, value)
        return next_short_step(db, r, call, after=step_name)
    questions.store_answer(call, step_name, value)
    return endings.next_callback_question(db, r, call, after=step_name)


def category_chosen(db: Session, r: redis.Redis, call: Call) -> None:
    """A kind of problem that is not complex ends the wait on the preferred (PREFER_SECONDS): ring the others now."""
    config = current_app.config
    if config["PREFER_SECONDS"] and config["COMPLEX_CATEGORIES"] and call.category not in config["COMPLEX_CATEGORIES"]:
        hold = holds.hold_of(db, call)
        if hold is not None and hold.status == holds.WAITING:
            dispatch_after_commit(db, r)


def next_short_step(db: Session, r: redis.Redis, call: Call, after: str) -> str:
    """The next question of the short path (SHORT_PATH in voice/script.py); after the last, hold or call back."""
    following = script.SHORT_PATH[script.SHORT_PATH.index(after) + 1:]
    if following:
        return str(questions.ask(call, following[0], attempt=1))
    return after_short_path(db, r, call)


def after_safety(db: Session, r: redis.Redis, call: Call) -> str:
    """Everyone is safe. Open: start ringing free specialists now, while we ask the kind of problem."""
    if not hours.line_open(current_app.config):
        call.step = "closed"
        calls.record_event(db, call, "line_closed")
        response = VoiceResponse()
        say(response, questions.fill(questions.words("closed", call), call), call.language)
        return endings.next_callback_question(db, r, call, response=response)
    if routing.on_count(r, call.language) > 0:
        holds.join(db, r, call)
    return next_short_step(db, r, call, after="greeting")


def another_language(db: Session, r: redis.Redis, call: Call) -> str:
    """A caller who speaks neither English nor Spanish: straight into the call's conference with an interpreter
    dialed in at once, and an English-speaking specialist rung. The interpreter asks about danger with the
    specialist; with nobody on (or the line closed) dispatch, which has its own interpreters, takes the call."""
    call.language = "en"
    call.step = None
    calls.record_event(db, call, "another_language")
    if not hours.line_open(current_app.config) or routing.on_count(r, "en") == 0:
        return endings.escalate(db, call, reason="another language, and no specialist on")
    hold = holds.join(db, r, call)
    holds.in_conference_waiting(db, hold)
    third_parties.interpreter_at_once(db, r, call)
    return waiting.to_conference(db, call, hold, words=False)


def after_short_path(db: Session, r: redis.Redis, call: Call) -> str:
    """The caller holds for a specialist, or (nobody on for their language) answers the callback questions."""
    hold = holds.hold_of(db, call)
    if hold is not None and hold.status in holds.WAITING_STATUSES:
        call.step = None
        return waiting.into_line(db, call, hold)
    response = VoiceResponse()
    say(response, questions.words("nobody_on", call), call.language)
    calls.record_event(db, call, "no_specialist_on", language=call.language)
    return endings.next_callback_question(db, r, call, response=response)


