"""The hold, as the caller hears it: the wait URL's place in line, its questions one at a time between the
music, the keys 2 (a call back) and 0 (dispatch), and where the caller goes when they leave the queue.

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
from voice.line import calls, endings, holds, offers, questions, routing
from voice.models import Call, Hold
from voice.redisdb import Keys
from voice.script import CALLBACK_KEY, DISPATCH_KEY, STEPS, WAITING_QUESTIONS
from voice.twiml import hangup, say, webhook_url


def enqueue(db: Session, call: Call, hold: Hold) -> str:
    """TwiML that puts the caller in their queue; the wait URL does the talking while they hold."""
    # https://www.twilio.com/docs/voice/twiml/enqueue
    response = VoiceResponse()
    response.enqueue(holds.queue_name(call), action=webhook_url("/voice/hold/left", hold=hold.id), method="POST",
                     wait_url=webhook_url("/voice/hold/wait", hold=hold.id), wait_url_method="POST")
    calls.record_event(db, call, "hold_enqueued", hold_id=hold.id)
    return str(response)


def caller_connected(db: Session, hold: Hold) -> str:
    """Twilio dequeued the caller into the specialist's call (the <Queue url>): they are talking now."""
    holds.connect(db, hold)
    # Nothing to say: the caller heard "Connecting you with a specialist"; every word here delays the bridge.
    return str(VoiceResponse())


def not_waiting(hold: Hold | None) -> str | None:
    """For a caller no longer simply waiting: out of the queue, or a breath of silence while a specialist
    who took them is being connected (no words to cut off). None while they wait."""
    response = VoiceResponse()
    if hold is None or hold.status not in holds.WAITING_STATUSES:
        response.leave()
        return str(response)
    if hold.status == holds.CONNECTING:
        response.pause(length=2)
        return str(response)
    return None


def wait(db: Session, r: redis.Redis, hold: Hold | None, queue_seconds: int) -> str:
    """The wait URL: Twilio asks for it when the caller joins the queue and again after each document."""
    if (early := not_waiting(hold)) is not None:
        return early
    response = VoiceResponse()
    first = hold.enqueued_at is None
    if first:
        hold.enqueued_at = utcnow()
    if not hours.line_open(current_app.config):
        hold.leave_reason = "closing"
        calls.record_event(db, hold.call, "hold_closing", hold_id=hold.id)
        response.leave()
        return str(response)
    return next_wait_document(db, r, hold, response, first=first, queue_seconds=queue_seconds)


def next_wait_document(db: Session, r: redis.Redis, hold: Hold, response: VoiceResponse, first: bool = False,
                       queue_seconds: int = 0) -> str:
    """The next thing a held caller hears: their place in line, one question, or music (each interruptible)."""
    call = hold.call
    language = call.language
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
    if (early := not_waiting(hold)) is not None:
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
    if (early := not_waiting(hold)) is not None:
        return early
    response = VoiceResponse()
    key = re.sub(r"[^0-9*#]", "", digits or "")[:1]
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
    """The Enqueue action: the caller is out of the queue. Say goodbye, or send them where they asked."""
    result = form.get("QueueResult", "")
    response = VoiceResponse()
    if hold is None:
        return hangup()
    call = hold.call
    calls.record_event(db, call, "hold_result", hold_id=hold.id, result=result, seconds=form.get("QueueTime"))
    if result == "bridged":
        holds.finish(db, hold)
        return questions.finished(call)
    if result in ("hangup", "redirected", "redirected-from-bridged"):
        # Twilio runs the redirect's own TwiML (a transfer), and a caller who hung up hears nothing.
        if result == "hangup":
            holds.leave(db, hold, "hangup")
            offers.cancel_offers(db, r, hold)
        return str(response)
    reason = hold.leave_reason if result == "leave" else None
    if reason in ("callback", "closing"):
        holds.leave(db, hold, reason)
        call.wants_callback = reason == "callback"
        offers.cancel_offers(db, r, hold)
        if reason == "closing":
            say(response, questions.words("closing", call), call.language)
        return endings.next_callback_question(db, r, call, response=response)
    # Dispatch asked for, or the queue failed (queue-full, error, a fault in the wait URL): a person decides.
    offers.cancel_offers(db, r, hold)
    if reason == "dispatch":
        return endings.escalate(db, call, reason="caller asked for dispatch", code=calls.CALLER_ASKED)
    return endings.escalate(db, call, reason=f"hold ended: {result or 'unknown'}", code=calls.HOLD_FAILED)
