"""The hold, as the caller hears it: the wait URL's place in line, its questions one at a time between the
music, the keys 2 (a call back) and 0 (dispatch), and where the caller goes when they leave the queue: into
the call's conference once a specialist has taken them, back to the queue if that specialist is gone.

The hold's states live in `holds`; this module is the conversation on top of them.
"""

from __future__ import annotations

import re

import redis
from flask import current_app
from sqlalchemy.orm import Session
from twilio.twiml.voice_response import VoiceResponse

from voice import hours
from voice.clock import utcnow
from voice.line import calls, conferences, endings, holds, offers, questions, routing
from voice.models import Call, Hold
from voice.redisdb import Keys
from voice.script import CALLBACK_KEY, DISPATCH_KEY, HANDOFF_WORDS, STEPS, WAITING_QUESTIONS
from voice.twiml import hangup, say, webhook_url


def enqueue(db: Session, call: Call, hold: Hold, response: VoiceResponse | None = None) -> str:
    """TwiML that puts the caller in their queue; the wait URL does the talking while they hold."""
    # https://www.twilio.com/docs/voice/twiml/enqueue
    response = response or VoiceResponse()
    response.enqueue(holds.queue_name(call), action=webhook_url("/voice/hold/left", hold=hold.id), method="POST",
                     wait_url=webhook_url("/voice/hold/wait", hold=hold.id), wait_url_method="POST")
    calls.record_event(db, call, "hold_enqueued", hold_id=hold.id)
    return str(response)


def to_conference(db: Session, call: Call, hold: Hold, response: VoiceResponse | None = None,
                  words: bool = True) -> str:
    """The caller into the call's conference, where the specialist who took them is (or is about to be)."""
    response = response or VoiceResponse()
    if words and (hold.enqueued_at is None or hold.last_announced_at is not None):
        # Straight from the intake, or after hearing their place in line: a few words say their turn has come
        # (a caller whose first hold words were already "Connecting you" hears them once).
        say(response, questions.words("connecting", call), call.language)
    conferences.join(response, call, conferences.CALLER, webhook_url("/voice/hold/after", hold=hold.id),
                     start=False, end=True)
    calls.record_event(db, call, "caller_to_conference", hold_id=hold.id)
    return str(response)


def into_line(db: Session, call: Call, hold: Hold) -> str:
    """A caller done with their questions: into the conference if a specialist already took them (no queue: the
    job that brings callers out of their queue leaves a caller still answering alone), else into their queue."""
    if hold.status == holds.CONNECTING:
        holds.send_caller(db, hold)
        return to_conference(db, call, hold)
    return enqueue(db, call, hold)


def where_now(db: Session, hold: Hold | None, response: VoiceResponse | None = None) -> str:
    """TwiML that puts the caller where their hold says they belong: the conference, their queue, or goodbye.

    The target of every REST redirect of a held caller, so a late or repeated one still lands them right.
    """
    if hold is None:
        return hangup()
    if hold.status in (holds.CONNECTING, holds.CONNECTED):
        return to_conference(db, hold.call, hold, response)
    if hold.status == holds.WAITING:
        return enqueue(db, hold.call, hold, response)
    return questions.finished(hold.call)


def back(db: Session, hold: Hold | None, why: str) -> str:
    """The caller's specialist is gone (cut off, or never came): a word of why, then back in their queue."""
    if hold is None:
        return hangup()
    response = VoiceResponse()
    # A caller who was saying goodbye anyway has a moment to hang up before they hear anything.
    response.pause(length=2)
    language = hold.call.language
    say(response, questions.words("cut_off" if why == "cut_off" else "not_connected", hold.call), language)
    return where_now(db, hold, response)


def after_conference(db: Session, hold: Hold | None, form: dict) -> str:
    """The caller's Dial action: out of the conference. The call ended around them, or we moved them."""
    if hold is None:
        return hangup()
    calls.record_event(db, hold.call, "caller_out_of_conference", hold_id=hold.id,
                       dial_status=form.get("DialCallStatus"), call_status=form.get("CallStatus"))
    if hold.status == holds.CONNECTED:
        holds.finish(db, hold)
    return where_now(db, hold)


def not_waiting(db: Session, hold: Hold | None) -> str | None:
    """For a caller no longer simply waiting: out of the queue (into the conference, when a specialist took
    them and nobody else is moving them), or a breath of silence while a redirect brings them there. None
    while they wait."""
    response = VoiceResponse()
    if hold is None or hold.status not in holds.WAITING_STATUSES:
        response.leave()
        return str(response)
    if hold.status == holds.CONNECTING:
        if holds.send_caller(db, hold) or holds.sending_stuck(hold):
            response.leave()  # the Enqueue action (`left`) sends them into the conference
        else:
            response.pause(length=2)  # a REST redirect is bringing them
        return str(response)
    return None


# How many times a dispatcher is told "nobody is free" before the caller gets the callback questions.
NOBODY_TELLINGS = 3


def wait(db: Session, r: redis.Redis, hold: Hold | None, queue_seconds: int, queue_sid: str = "") -> str:
    """The wait URL: Twilio asks for it when the caller joins the queue and again after each document."""
    if hold is not None and queue_sid and hold.queue_sid != queue_sid[:34]:
        hold.queue_sid = queue_sid[:34]
    first = hold is not None and hold.enqueued_at is None
    if first:
        hold.enqueued_at = utcnow()
    if (early := not_waiting(db, hold)) is not None:
        return early
    response = VoiceResponse()
    if not hours.line_open(current_app.config):
        hold.leave_reason = "closing"
        calls.record_event(db, hold.call, "hold_closing", hold_id=hold.id)
        response.leave()
        return str(response)
    return next_wait_document(db, r, hold, response, first=first, queue_seconds=queue_seconds)


def handoff_wait_document(db: Session, hold: Hold, response: VoiceResponse, queue_seconds: int) -> str:
    """A dispatcher's handoff waiting for a specialist: quiet, then (past HANDOFF_RING_SECONDS) one sentence that
    nobody is free and 1 leaves the caller for a callback, asked a few times at most. The phones keep ringing."""
    told = (hold.asked or "").count("nobody")
    if queue_seconds >= current_app.config["HANDOFF_RING_SECONDS"] * (told + 1):
        if told >= NOBODY_TELLINGS:
            # Told that often and still silent: whoever is on the line (the caller alone, perhaps) gets the
            # callback questions rather than a wait with no end, as when nobody is on at all.
            return leave_for(db, hold, "callback", response)
        hold.asked = ",".join(filter(None, [hold.asked, "nobody"]))
        gather = response.gather(input="dtmf", num_digits=1, timeout=8, method="POST",
                                 action=webhook_url("/voice/hold/key", hold=hold.id))
        say(gather, HANDOFF_WORDS["handoff_nobody"]["en"], "en")
        return str(response)
    response.pause(length=5)
    return str(response)


def next_wait_document(db: Session, r: redis.Redis, hold: Hold, response: VoiceResponse, first: bool = False,
                       queue_seconds: int = 0) -> str:
    """The next thing a held caller hears: their place in line, one question, or music (each interruptible)."""
    call = hold.call
    language = call.language
    if call.source == calls.HANDOFF:
        return handoff_wait_document(db, hold, response, queue_seconds)
    # Ringing, or about to be: a free specialist is being offered this caller as we speak (asked only when
    # it decides the first words; later documents go by the questions left).
    ringing = first and (bool(r.hlen(Keys.offers(hold.id))) or routing.free_count(r, hold.language) > 0)
    asked = set(filter(None, (hold.asked or "").split(",")))
    # Not what they already answered (a program may ask the name on the short path, before the bridge).
    following = next((name for name in WAITING_QUESTIONS
                      if name not in asked and not questions.already_answered(call, name)), None)
    if ringing:
        say(response, questions.words("connecting", call), language)
    elif first or following is None or hold.last_announced_at is None:
        # Their place when they join (or once the phones rung for them stop), then once per piece of music
        # (30-60 s) once the questions are done.
        place = holds.position(db, hold)
        say(response, questions.words("busy" if hold.last_announced_at is None else "position", call).format(
            position=place, wait=questions.wait_words(holds.wait_minutes(db, r, hold, place), call)), language)
        hold.last_announced_at = utcnow()
        if queue_seconds >= current_app.config["HOLD_MAX_MINUTES"] * 60:
            say(response, questions.words("long_wait", call), language)
    if following is not None and not ringing:
        hold.asked = ",".join([*asked, following])
        step_name = questions.step_for(call, following)
        action = webhook_url("/voice/hold/answer", hold=hold.id, step=step_name)
        questions.question(call, step_name, 1, action, response)
        return str(response)
    # Music, with the keys live: 2 for a call back, 0 for dispatch. Silence falls through to the next document.
    gather = response.gather(input="dtmf", num_digits=1, timeout=1, action=webhook_url("/voice/hold/key", hold=hold.id),
                             method="POST")
    gather.play(current_app.config["HOLD_MUSIC_URL"])
    return str(response)


def answer(db: Session, r: redis.Redis, hold: Hold | None, step_name: str, digits: str, speech: str) -> str:
    """A held caller answered a question (or pressed 2 or 0 instead)."""
    if (early := not_waiting(db, hold)) is not None:
        return early
    response = VoiceResponse()
    call = hold.call
    digits, speech = questions.clean_input(digits, speech)
    key = digits.rstrip("#")
    if key in (DISPATCH_KEY, CALLBACK_KEY):
        return leave_for(db, hold, "dispatch" if key == DISPATCH_KEY else "callback", response)
    step = STEPS.get(step_name)
    value = questions.interpret(step, call, digits, speech) if step is not None and step_name in WAITING_STEP_NAMES else None
    calls.record_event(db, call, "hold_answer", step=step_name, digits=digits or None, speech=speech or None,
                       understood=value is not None)
    if value is not None:
        questions.store_answer(call, step_name, value)
    return next_wait_document(db, r, hold, response)


WAITING_STEP_NAMES = {*WAITING_QUESTIONS, "callback_number_new"}


def key_pressed(db: Session, r: redis.Redis, hold: Hold | None, digits: str) -> str:
    """A key pressed over the hold music."""
    if (early := not_waiting(db, hold)) is not None:
        return early
    response = VoiceResponse()
    key = re.sub(r"[^0-9*#]", "", digits or "")[:1]
    if hold.call.source == calls.HANDOFF:
        # The dispatcher, told nobody is free: 1 leaves the caller for a callback.
        return leave_for(db, hold, "callback", response) if key == "1" else str(response)
    if key in (DISPATCH_KEY, CALLBACK_KEY):
        return leave_for(db, hold, "dispatch" if key == DISPATCH_KEY else "callback", response)
    return next_wait_document(db, r, hold, response)


def leave_for(db: Session, hold: Hold, reason: str, response: VoiceResponse) -> str:
    """Take the caller out of the queue; the Enqueue action then sends them on (see `left`)."""
    hold.leave_reason = reason
    calls.record_event(db, hold.call, "hold_key", hold_id=hold.id, reason=reason)
    response.leave()
    return str(response)


def left(db: Session, r: redis.Redis, hold: Hold | None, form: dict) -> str:
    """The Enqueue action: the caller is out of the queue. Into the conference, or where they asked to go.

    QueueResult, as https://www.twilio.com/docs/voice/twiml/enqueue#attributes-action defines it: `leave` (our
    <Leave>), `hangup`, `redirected` and `redirected-from-bridged` (a REST redirect: its own TwiML runs, this
    answer is ignored), `bridged` and `bridging-in-process` (dequeued to someone: with conferences nobody dequeues
    a caller, so it means a specialist is taking them, not a failure), `queue-full`, `error` and `system-error`
    (Twilio's own failure: the caller goes back in line once, then to the callback questions; only our own
    fault, or a queue that cannot take them, reaches dispatch).
    """
    result = form.get("QueueResult", "")
    response = VoiceResponse()
    if hold is None:
        return hangup()
    call = hold.call
    calls.record_event(db, call, "hold_result", hold_id=hold.id, result=result, seconds=form.get("QueueTime"))
    if result in ("redirected", "redirected-from-bridged"):
        return str(response)
    if result == "hangup":
        holds.leave(db, hold, "hangup")
        offers.cancel_offers(db, r, hold)
        return str(response)
    if result in ("bridged", "bridging-in-process") or (result == "leave" and hold.status == holds.CONNECTING):
        return where_now(db, hold)
    if result == "system-error" and hold.status == holds.WAITING:
        if hold.leave_reason != "system-error":
            hold.leave_reason = "system-error"  # once only: a second failure takes the callback questions
            return enqueue(db, call, hold)
        return leave_for_callback(db, r, hold, "callback", response)
    reason = hold.leave_reason if result == "leave" else None
    if reason in ("callback", "closing"):
        return leave_for_callback(db, r, hold, reason, response)
    # Dispatch asked for, or the queue failed (queue-full, error, a fault in the wait URL): a person decides.
    offers.cancel_offers(db, r, hold)
    if reason == "dispatch":
        return endings.escalate(db, call, reason="caller asked for dispatch", code=calls.CALLER_ASKED)
    return endings.escalate(db, call, reason=f"hold ended: {result or 'unknown'}", code=calls.HOLD_FAILED)


def leave_for_callback(db: Session, r: redis.Redis, hold: Hold, reason: str, response: VoiceResponse) -> str:
    """Out of line for a callback (asked for, the line closing, or Twilio's queue failing twice)."""
    call = hold.call
    holds.leave(db, hold, reason)
    call.wants_callback = reason == "callback"
    offers.cancel_offers(db, r, hold)
    if reason == "closing":
        say(response, questions.words("closing", call), call.language)
    return endings.next_callback_question(db, r, call, response=response)
