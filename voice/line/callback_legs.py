"""The phone side of a callback: the specialist's whisper, their key, the Dial to the caller, and the results."""

from __future__ import annotations

from zoneinfo import ZoneInfo

import redis
from flask import current_app
from sqlalchemy.orm import Session
from twilio.twiml.voice_response import VoiceResponse

from voice import phones
from voice.db import flush_with_events
from voice.line import callbacks, calls, offers, routing
from voice.models import CallbackRequest
from voice.tasks import after_commit, dispatch_after_commit, dispatch_at, text_caller_after_commit
from voice.twilio_rest import TERMINAL_STATUSES
from voice.twiml import hangup, say, webhook_url


def whisper(db: Session, r: redis.Redis, request: CallbackRequest | None, specialist_id: int, call_sid: str,
            repeat: int = 1) -> str:
    """The specialist picked up: who they are calling back and why, then press 1 to call now."""
    if not callbacks.is_attempt(request, specialist_id):
        return hangup("This callback has already been handled. Thank you.")
    if not request.attempt_call_sid and call_sid:
        # The worker may have died before saving the Call SID; Twilio's own request tells us.
        request.attempt_call_sid = call_sid[:64]
    # They are listening now: keep them held for this callback while they decide.
    routing.extend_lease(r, specialist_id, routing.callback_holder(request.id),
                         current_app.config["RING_LEASE_SECONDS"])
    summary = offers.case_summary(request.call, waited=callbacks.minutes_ago(request))
    answer_url = webhook_url("/voice/callback/answer", request=request.id, specialist=specialist_id, repeat=repeat)
    return offers.whisper_twiml(
        f"Callback request. {summary} Press 1 to call them now. Press 2 to pass.", answer_url
    )


def answer(db: Session, r: redis.Redis, request: CallbackRequest | None, specialist_id: int, digits: str,
           call_sid: str, repeat: int = 1) -> str:
    """Press 1: dial the caller with the line as caller ID. Anything else: offer it to someone else."""
    if not callbacks.is_attempt(request, specialist_id):
        return hangup("This callback has already been handled. Thank you.")
    config = current_app.config
    if (digits or "")[:1] != "1":
        if not digits and repeat < 2:
            return whisper(db, r, request, specialist_id, call_sid, repeat=repeat + 1)
        callbacks.back_in_line(db, r, request, "declined" if digits else "no key pressed")
        dispatch_after_commit(db, r)
        return hangup("Okay. We will offer the callback to someone else.")
    if phones.callable_number(request.callback_number, config["DEFAULT_REGION"], config["CALLBACK_COUNTRIES"]) is None:
        # The toll-fraud policy again, at the moment of dialing: nothing stored earlier slips through.
        callbacks.release_attempt(r, request)
        callbacks.give_up(db, request, "the callback number is outside the numbers this line may call")
        return hangup("Sorry, this caller's number cannot be dialed from the line. The coordinator will see it.")
    if request.attempt_accepted_at is None:
        callbacks.specialist_accepted(db, r, request, config["CALL_LEASE_SECONDS"], config["COMPLEX_CATEGORIES"])
    response = VoiceResponse()
    name = request.call.caller_name or "the caller"
    say(response, f"Calling {name} now. Please hold.", "en")
    params = {"request": request.id, "specialist": specialist_id}
    dial = response.dial(
        caller_id=config["TWILIO_PHONE_NUMBER"],
        action=webhook_url("/voice/callback/dial-result", **params),
        method="POST",
        timeout=30,
    )
    # The caller's leg reports its own end too: whichever of that and the Dial action arrives first settles.
    dial.number(
        request.callback_number,
        status_callback=webhook_url("/voice/callback/caller-status", **params),
        status_callback_event="completed",
        status_callback_method="POST",
    )
    return str(response)


def settle_dial(db: Session, r: redis.Redis, request: CallbackRequest | None, specialist_id: int, status: str,
                duration: object) -> bool:
    """How the Dial to the caller ended: reached, missed (next try or unreachable), or the specialist hung up.

    Called for the Dial action and for the caller leg's status callback; only the first one counts.
    Returns False when the attempt was already settled.
    """
    if not callbacks.is_attempt(request, specialist_id) or request.attempt_accepted_at is None:
        return False
    calls.record_event(db, request.call, "callback_dial_result", request_id=request.id, status=status,
                       duration=duration)
    if status == "completed":
        callbacks.caller_reached(db, r, request, duration=duration)
        return True
    if status == "canceled":
        # The specialist hung up before the caller answered: not the caller's miss, so they keep their place.
        callbacks.back_in_line(db, r, request, "specialist hung up before the caller answered")
        dispatch_after_commit(db, r)
        return True
    due = callbacks.caller_missed(db, r, request, status, current_app.config["CALLBACK_RETRY_MINUTES"])
    if due is not None:
        after_commit(db, dispatch_at, r, due)
    else:
        text_caller_after_commit(db, r, request.id, "unreachable")
    return True


def dial_result(db: Session, r: redis.Redis, request: CallbackRequest | None, specialist_id: int, form: dict) -> str:
    """The Dial action: settle the attempt (unless the caller leg's status did), then tell the specialist."""
    settle_dial(db, r, request, specialist_id, form.get("DialCallStatus", ""), form.get("DialCallDuration"))
    return closing_words(request, specialist_id)


def closing_words(request: CallbackRequest | None, specialist_id: int) -> str:
    """What the specialist hears once the Dial to the caller is over, from how the request now stands."""
    if request is None or request.attempt_specialist_id not in (None, specialist_id):
        return hangup("Thank you.")
    if request.status == callbacks.COMPLETED and request.call.specialist_id == specialist_id:
        return hangup("The call has ended. Thank you for taking it.")
    if request.status == callbacks.SCHEDULED:
        config = current_app.config
        local = request.due_at.replace(tzinfo=ZoneInfo("UTC")).astimezone(ZoneInfo(config["TIMEZONE"]))
        return hangup(f"The caller did not answer. We will try again at {local.strftime('%-I:%M %p')}. Thank you.")
    if request.status == callbacks.UNREACHABLE:
        return hangup("The caller did not answer. That was the last try; the coordinator will see it. Thank you.")
    return hangup("Thank you.")


def caller_leg_status(db: Session, r: redis.Redis, request: CallbackRequest | None, specialist_id: int,
                      form: dict) -> None:
    """The caller's leg of the Dial ended (its status callback)."""
    status = form.get("CallStatus", "")
    if request is None or status not in TERMINAL_STATUSES:
        return
    calls.record_event(db, request.call, "callback_caller_leg_status", request_id=request.id, status=status,
                       duration=form.get("CallDuration"))
    settle_dial(db, r, request, specialist_id, status, form.get("CallDuration"))


def leg_status(db: Session, r: redis.Redis, request: CallbackRequest | None, specialist_id: int, form: dict) -> None:
    """The specialist's leg ended: if they never pressed 1, the caller goes back in line."""
    status = form.get("CallStatus", "")
    if request is None or status not in TERMINAL_STATUSES:
        return
    calls.record_event(db, request.call, "callback_leg_status", request_id=request.id, specialist_id=specialist_id,
                       status=status, duration=form.get("CallDuration"))
    # On the timeline before they are freed below, as for a held caller's offer (offers.offer_status).
    flush_with_events(db)
    if callbacks.is_attempt(request, specialist_id) and request.attempt_accepted_at is None:
        callbacks.back_in_line(db, r, request, f"specialist leg ended: {status}")
        dispatch_after_commit(db, r)
    else:
        # They are off the phone. An accepted attempt is settled by the Dial to the caller (its action or
        # the caller leg's status), never by this request, which may arrive first.
        routing.release_specialist(r, specialist_id, routing.callback_holder(request.id))
