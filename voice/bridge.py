"""Connecting a caller to a specialist: the offer, the whisper, the Dial result, the release."""

from __future__ import annotations

import redis
from flask import current_app
from sqlalchemy.orm import Session
from twilio.twiml.voice_response import VoiceResponse

from voice import callbacks, calls, phones, routing
from voice.models import Call, Specialist, utcnow
from voice.redisdb import Keys
from voice.script import CATEGORY_LABELS, MESSAGES
from voice.tasks import after_commit, dispatch_after_commit, dispatch_at, text_caller_after_commit
from voice.twilio_rest import TERMINAL_STATUSES
from voice.twiml import say, webhook_url


def connect_caller(db: Session, r: redis.Redis, call: Call, attempt: int) -> str:
    """Offer the call to the longest-idle specialist who speaks the caller's language, or queue a callback."""
    config = current_app.config
    call.step = None
    holder = routing.call_holder(call.call_sid)
    specialist = None
    # A specialist removed from the roster after being queued is skipped, never rung.
    for _ in range(10):
        specialist_id = routing.claim_next_specialist(
            r, call.language, holder, config["RING_LEASE_SECONDS"], tried_key=Keys.tried(call.call_sid)
        )
        if specialist_id is None:
            break
        routing.mark_tried(r, call.call_sid, specialist_id)
        candidate = db.get(Specialist, specialist_id)
        if candidate is not None and candidate.active and candidate.available:
            specialist = candidate
            break
        routing.release_specialist(r, specialist_id, holder)
    if specialist is None:
        reason = "no specialist available" if attempt == 1 else "no specialist answered"
        calls.record_event(db, call, "no_specialist_free", attempt=attempt, language=call.language)
        return offer_callback(db, r, call, reason=reason)

    calls.set_outcome(db, call, calls.CONNECTING)
    calls.record_event(
        db, call, "specialist_offered", attempt=attempt, specialist_id=specialist.id, specialist=specialist.name
    )
    response = VoiceResponse()
    key = "connecting" if attempt == 1 else "still_trying"
    say(response, MESSAGES[key][call.language], call.language)
    params = {"call": call.call_sid, "specialist": specialist.id, "attempt": attempt}
    dial = response.dial(
        caller_id=config["TWILIO_PHONE_NUMBER"],
        action=webhook_url("/voice/bridge/dial-result", **params),
        method="POST",
        timeout=config["RING_TIMEOUT_SECONDS"],
        answer_on_bridge=True,
    )
    dial.number(
        specialist.phone,
        url=webhook_url("/voice/bridge/whisper", **params),
        method="POST",
        status_callback=webhook_url("/voice/status", leg="specialist", **params),
        status_callback_event="completed",
        status_callback_method="POST",
    )
    return str(response)


def case_summary(call: Call, waited: str | None = None) -> str:
    """The one sentence a specialist hears before accepting: what, who, where (and how long ago)."""
    category = CATEGORY_LABELS.get(call.category or "other", "something else")
    parts = [f"Mediation line call about {category}."]
    if call.language == "es":
        parts.append("The caller speaks Spanish.")
    parts.append(f"Caller: {call.caller_name or 'name not given'}.")
    parts.append(f"Location: {call.location or 'not given'}.")
    if waited:
        parts.append(f"They asked for help {waited}.")
    return " ".join(parts)


def whisper(call: Call, specialist_id: int, attempt: int, repeat: int = 1) -> str:
    """What the specialist hears on answering: the case, then press 1 to accept."""
    # repeat travels in the URL so a second silence declines instead of replaying forever.
    answer_url = webhook_url("/voice/bridge/answer", repeat=repeat, call=call.call_sid, specialist=specialist_id,
                             attempt=attempt)
    return whisper_twiml(case_summary(call) + " Press 1 to take this call. Press 2 to pass.", answer_url)


def whisper_twiml(summary: str, answer_url: str) -> str:
    """The specialist's offer, for live calls and callbacks alike: one key, then the action URL."""
    response = VoiceResponse()
    gather = response.gather(
        input="dtmf", num_digits=1, timeout=8, action=answer_url, method="POST", action_on_empty_result=True
    )
    say(gather, summary, "en")
    say(response, "No answer. We will offer the call to someone else.", "en")
    response.hangup()
    return str(response)


def specialist_answer(
    db: Session, r: redis.Redis, call: Call, specialist_id: int, attempt: int, digits: str, repeat: int = 1
) -> str:
    """The specialist pressed a key (or nothing) in the whisper."""
    response = VoiceResponse()
    holder = routing.call_holder(call.call_sid)
    if (digits or "")[:1] != "1":
        if not digits and repeat < 2:
            return whisper(call, specialist_id, attempt, repeat=repeat + 1)
        calls.record_event(db, call, "specialist_declined", specialist_id=specialist_id, digits=digits or None)
        say(response, "Okay. We will offer the call to someone else.", "en")
        response.hangup()
        return str(response)
    if call.ended_at is not None or call.outcome not in calls.OPEN_OUTCOMES:
        routing.release_specialist(r, specialist_id, holder)
        say(response, "Sorry, the caller has already hung up. Thank you.", "en")
        response.hangup()
        return str(response)
    routing.extend_lease(r, specialist_id, holder, current_app.config["CALL_LEASE_SECONDS"])
    call.specialist_id = specialist_id
    call.connected_at = call.connected_at or utcnow()
    calls.set_outcome(db, call, calls.BRIDGED)
    calls.record_event(db, call, "specialist_accepted", specialist_id=specialist_id)
    say(response, "Connecting you now.", "en")
    return str(response)


def dial_result(db: Session, r: redis.Redis, call: Call, specialist_id: int, attempt: int, form: dict) -> str:
    """The Dial ended: after a conversation say goodbye; otherwise try the next specialist or a callback."""
    status = form.get("DialCallStatus", "")
    holder = routing.call_holder(call.call_sid)
    routing.release_specialist(r, specialist_id, holder)
    accepted = call.specialist_id == specialist_id and call.connected_at is not None
    calls.record_event(
        db, call, "dial_result", specialist_id=specialist_id, attempt=attempt, status=status,
        duration=form.get("DialCallDuration"), accepted=accepted,
    )
    if accepted:
        response = VoiceResponse()
        say(response, fill_program(MESSAGES["after_bridge"][call.language]), call.language)
        response.hangup()
        return str(response)
    if call.outcome not in calls.OPEN_OUTCOMES:
        # The caller already hung up or was settled another way; nothing more to do.
        response = VoiceResponse()
        response.hangup()
        return str(response)
    if attempt < current_app.config["MAX_SPECIALIST_TRIES"]:
        return connect_caller(db, r, call, attempt=attempt + 1)
    return offer_callback(db, r, call, reason="no specialist answered")


def offer_callback(db: Session, r: redis.Redis, call: Call, reason: str) -> str:
    """Nobody can take the call now: save the request and tell the caller who will call, from where, and when."""
    config = current_app.config
    call.step = None
    request = callbacks.queue_callback(db, call, reason=reason, timezone=config["TIMEZONE"])
    # Only once the request is committed may a worker act on it; nothing here waits on Twilio's REST API.
    if request.status == callbacks.SCHEDULED:
        after_commit(db, dispatch_at, r, request.due_at)
    else:
        dispatch_after_commit(db, r)
    if request.callback_number:
        text_caller_after_commit(db, r, request.id, "confirm")
    response = VoiceResponse()
    if call.callback_number:
        text = MESSAGES["callback_queued"][call.language].format(
            number=phones.spoken(call.callback_number, config["DEFAULT_REGION"]),
            line=phones.spoken(config["TWILIO_PHONE_NUMBER"], config["DEFAULT_REGION"]),
            eta=callbacks.wait_phrase(db, r, request, call.language),
            program=config["PROGRAM_NAME"],
            program_es=config["PROGRAM_NAME_ES"],
        )
        say(response, text, call.language)
        response.hangup()
        return str(response)
    # No number to call back: take a message so a specialist can still follow up.
    say(response, MESSAGES["record_message"][call.language], call.language)
    response.record(
        action=webhook_url("/voice/recorded", call=call.call_sid),
        method="POST",
        max_length=120,
        play_beep=True,
        timeout=5,
    )
    say(response, MESSAGES["message_saved"][call.language], call.language)
    response.hangup()
    return str(response)


def message_recorded(db: Session, call: Call, form: dict) -> str:
    """Keep the caller's message with the call so the coordinator can play it and follow up."""
    recording_sid = (form.get("RecordingSid") or "")[:64] or None
    if recording_sid:
        call.recording_sid = recording_sid
        call.recording_url = (form.get("RecordingUrl") or "")[:500] or None
    calls.record_event(
        db, call, "message_recorded", recording_sid=recording_sid, duration=form.get("RecordingDuration")
    )
    response = VoiceResponse()
    say(response, MESSAGES["message_saved"][call.language], call.language)
    response.hangup()
    return str(response)


def leg_status(db: Session, r: redis.Redis, call: Call, specialist_id: int, form: dict) -> None:
    """The specialist's leg ended (status callback): free them even if the Dial action never comes."""
    status = form.get("CallStatus", "")
    calls.record_event(db, call, "specialist_leg_status", specialist_id=specialist_id, status=status,
                       duration=form.get("CallDuration"))
    if status in TERMINAL_STATUSES:
        routing.release_specialist(r, specialist_id, routing.call_holder(call.call_sid))


def call_status(db: Session, r: redis.Redis, call: Call, form: dict) -> None:
    """The caller's call ended: stamp it, settle an unfinished call as abandoned, free whoever it held."""
    status = form.get("CallStatus", "")
    if status not in TERMINAL_STATUSES:
        calls.record_event(db, call, "call_status", status=status)
        return
    calls.end_call(db, call, duration=form.get("CallDuration"))
    holder = routing.call_holder(call.call_sid)
    offered = {int(m) for m in r.smembers(Keys.tried(call.call_sid))}
    if call.specialist_id:
        offered.add(call.specialist_id)
    for specialist_id in offered:
        routing.release_specialist(r, specialist_id, holder)


def fill_program(text: str) -> str:
    config = current_app.config
    return text.format(program=config["PROGRAM_NAME"], program_es=config["PROGRAM_NAME_ES"])
