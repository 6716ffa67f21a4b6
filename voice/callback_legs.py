"""The phone side of a callback: the specialist's whisper, their key, the Dial to the caller, and the results."""

from __future__ import annotations

from zoneinfo import ZoneInfo

import redis
from flask import current_app
from rq import Retry
from sqlalchemy.orm import Session
from twilio.twiml.voice_response import VoiceResponse

from voice import bridge, callbacks, calls, routing
from voice.models import CallbackRequest
from voice.twiml import say, webhook_url
from workers.jobs import dispatch_callbacks, send_callback_sms
from workers.queues import enqueue_after_commit

TERMINAL = {"completed", "busy", "no-answer", "failed", "canceled"}


def _goodbye(text: str) -> str:
    response = VoiceResponse()
    say(response, text, "en")
    response.hangup()
    return str(response)


def is_current(request: CallbackRequest | None, specialist_id: int) -> bool:
    """True when this request's attempt in progress belongs to this specialist (a late request is not)."""
    return (request is not None and request.status == callbacks.IN_PROGRESS
            and request.attempt_specialist_id == specialist_id)


def whisper(db: Session, request: CallbackRequest | None, specialist_id: int, call_sid: str, repeat: int = 1) -> str:
    """The specialist picked up: who they are calling back and why, then press 1 to call now."""
    if not is_current(request, specialist_id):
        return _goodbye("This callback has already been handled. Thank you.")
    if not request.attempt_call_sid and call_sid:
        # The worker may have died before saving the Call SID; Twilio's own request tells us.
        request.attempt_call_sid = call_sid[:64]
    summary = bridge.case_summary(request.call, waited=callbacks.minutes_ago(request))
    answer_url = webhook_url("/voice/callback/answer", request=request.id, specialist=specialist_id, repeat=repeat)
    return bridge.whisper_twiml(
        f"Callback request. {summary} Press 1 to call them now. Press 2 to pass.", answer_url
    )


def answer(db: Session, r: redis.Redis, request: CallbackRequest | None, specialist_id: int, digits: str,
           call_sid: str, repeat: int = 1) -> str:
    """Press 1: dial the caller with the line as caller ID. Anything else: offer it to someone else."""
    if not is_current(request, specialist_id):
        return _goodbye("This callback has already been handled. Thank you.")
    config = current_app.config
    if (digits or "")[:1] != "1":
        if not digits and repeat < 2:
            return whisper(db, request, specialist_id, call_sid, repeat=repeat + 1)
        callbacks.back_in_line(db, r, request, "declined" if digits else "no key pressed")
        enqueue_after_commit(db, r, dispatch_callbacks)
        return _goodbye("Okay. We will offer the callback to someone else.")
    callbacks.specialist_accepted(db, r, request, config["CALL_LEASE_SECONDS"])
    response = VoiceResponse()
    name = request.call.caller_name or "the caller"
    say(response, f"Calling {name} now. Please hold.", "en")
    dial = response.dial(
        caller_id=config["TWILIO_PHONE_NUMBER"],
        action=webhook_url("/voice/callback/dial-result", request=request.id, specialist=specialist_id),
        method="POST",
        timeout=30,
    )
    dial.number(request.callback_number)
    return str(response)


def dial_result(db: Session, r: redis.Redis, request: CallbackRequest | None, specialist_id: int, form: dict) -> str:
    """How the Dial to the caller ended: reached, or the next try on the schedule (or unreachable)."""
    if not is_current(request, specialist_id):
        return _goodbye("Thank you.")
    status = form.get("DialCallStatus", "")
    duration = form.get("DialCallDuration")
    calls.record_event(db, request.call, "callback_dial_result", request_id=request.id, status=status,
                       duration=duration)
    if status == "completed":
        callbacks.caller_reached(db, r, request, duration=duration)
        return _goodbye("The call has ended. Thank you for taking it.")
    config = current_app.config
    due = callbacks.caller_missed(db, r, request, status, config["CALLBACK_RETRY_MINUTES"])
    if due is not None:
        enqueue_after_commit(db, r, dispatch_callbacks, at=due)
        local = due.replace(tzinfo=ZoneInfo("UTC")).astimezone(ZoneInfo(config["TIMEZONE"]))
        return _goodbye(f"The caller did not answer. We will try again at {local.strftime('%-I:%M %p')}. Thank you.")
    enqueue_after_commit(db, r, send_callback_sms, request.id, "unreachable", retry=Retry(max=2, interval=[30, 120]))
    enqueue_after_commit(db, r, dispatch_callbacks)
    return _goodbye("The caller did not answer. That was the last try; the coordinator will see it. Thank you.")


def leg_status(db: Session, r: redis.Redis, request: CallbackRequest | None, specialist_id: int, form: dict) -> None:
    """The specialist's leg ended: if the attempt never got anywhere, the caller goes back in line."""
    status = form.get("CallStatus", "")
    if request is None or status not in TERMINAL:
        return
    calls.record_event(db, request.call, "callback_leg_status", request_id=request.id, specialist_id=specialist_id,
                       status=status, duration=form.get("CallDuration"))
    if is_current(request, specialist_id):
        callbacks.back_in_line(db, r, request, f"specialist leg ended: {status}")
        enqueue_after_commit(db, r, dispatch_callbacks)
    else:
        routing.release_specialist(r, specialist_id, routing.callback_holder(request.id))
