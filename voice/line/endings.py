"""How a call ends when it is not bridged: back to dispatch, the callback questions and the callback, a
recorded message, a specialist's transfer to dispatch, and the caller's call ending.
"""

from __future__ import annotations

import redis
from flask import current_app
from sqlalchemy.orm import Session
from twilio.twiml.voice_response import VoiceResponse

from voice import hours, phones, twilio_rest
from voice.clock import utcnow
from voice.line import callbacks, calls, conferences, holds, offers, questions
from voice.models import Call
from voice.script import CALLBACK_QUESTIONS
from voice.tasks import after_commit, dispatch_after_commit, dispatch_at, text_caller_after_commit
from voice.twilio_rest import TERMINAL_STATUSES
from voice.twiml import dial_dispatch, hangup, say, webhook_url


def next_callback_question(db: Session, r: redis.Redis, call: Call, after: str | None = None,
                           response: VoiceResponse | None = None) -> str:
    """Ask the next callback question the caller has not answered yet; after the last, queue the callback."""
    names = list(CALLBACK_QUESTIONS)
    start = 0
    if after is not None:
        after = "callback_number" if after == "callback_number_new" else after
        start = names.index(after) + 1 if after in names else len(names)
    for name in names[start:]:
        if not questions.already_answered(call, name):
            return str(questions.ask(call, name, attempt=1, response=response))
    return offer_callback(db, r, call, reason=callback_reason(db, call), response=response)


def callback_reason(db: Session, call: Call) -> str:
    hold = holds.hold_of(db, call)
    if hold is not None and hold.leave_reason == "closing":
        return "line closed while they held"
    if hold is not None and hold.leave_reason:
        return "caller asked to be called back"
    if call.step == "closed" or not hours.line_open(current_app.config):
        return "line closed"
    return "no specialist on"


def escalate(db: Session, call: Call, reason: str, code: str) -> str:
    """Straight back to 911 dispatch; `code` is why, one of calls.RETURN_REASONS (`reason` says it in words)."""
    call.step = None
    call.escalation_reason = code
    calls.set_outcome(db, call, calls.ESCALATED, reason=reason)
    hold = holds.hold_of(db, call)
    if hold is not None:
        holds.leave(db, hold, "dispatch")
    response = VoiceResponse()
    key = "escalate_no_answer" if reason == "no answer to the safety question" else "escalate"
    say(response, questions.words(key, call), call.language)
    dial_dispatch(response, call.language, caller_id=calls.caller_id(call))
    return str(response)


def offer_callback(db: Session, r: redis.Redis, call: Call, reason: str, response: VoiceResponse | None = None) -> str:
    """Nobody can take the call now: save the request and tell the caller who will call, from where, and when."""
    config = current_app.config
    call.step = None
    opening = hours.next_opening_after(config, utcnow())
    request = callbacks.queue_callback(db, call, reason=reason, timezone=config["TIMEZONE"], not_before=opening)
    # Only once the request is committed may a worker act on it; nothing here waits on Twilio's REST API.
    if request.status == callbacks.SCHEDULED:
        after_commit(db, dispatch_at, r, request.due_at)
    else:
        dispatch_after_commit(db, r)
    if request.callback_number:
        text_caller_after_commit(db, r, request.id, "confirm")
    response = response or VoiceResponse()
    if call.callback_number:
        text = questions.fill(
            questions.words("callback_queued", call), call,
            number=phones.spoken(call.callback_number, config["DEFAULT_REGION"]),
            eta=callbacks.wait_phrase(db, r, request, call.language),
        )
        say(response, text, call.language)
        response.hangup()
        return str(response)
    # No number to call back: take a message so a specialist can still follow up.
    say(response, questions.words("record_message", call), call.language)
    response.record(
        action=webhook_url("/voice/recorded", call=call.call_sid),
        method="POST",
        max_length=120,
        play_beep=True,
        timeout=5,
    )
    say(response, questions.words("message_saved", call), call.language)
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
    return hangup(questions.words("message_saved", call), call.language)


def call_status(db: Session, r: redis.Redis, call: Call, form: dict) -> None:
    """The caller's call ended: stamp it, settle an unfinished call as abandoned, stop offers still ringing."""
    status = form.get("CallStatus", "")
    if status not in TERMINAL_STATUSES:
        calls.record_event(db, call, "call_status", status=status)
        return
    hold = holds.hold_of(db, call)
    if call.source == calls.HANDOFF and call.outcome in calls.OPEN_OUTCOMES and (
            hold is None or hold.status == holds.WAITING or (hold.status == holds.LEFT and hold.leave_reason == "hangup")):
        # A dispatcher who hung up before anyone took the call kept it: it went back to dispatch.
        calls.set_outcome(db, call, calls.ESCALATED, reason="dispatch kept the call: no specialist took it")
    calls.end_call(db, call, duration=form.get("CallDuration"))
    if hold is not None:
        if hold.status in holds.WAITING_STATUSES:
            holds.leave(db, hold, "hangup")
            offers.cancel_offers(db, r, hold)
        else:
            holds.finish(db, hold)


def is_live(db: Session, call: Call) -> bool:
    """A specialist is talking with this caller now: a live call bridged, or a callback's caller in the conference."""
    if call.connected_at is not None and call.ended_at is None:
        return True
    return conferences.in_now(db, call, conferences.CALLER) is not None


def request_transfer(db: Session, call: Call, by: str) -> None:
    """A specialist sends the caller back to 911 dispatch, cold: a REST update of the caller's own leg (the live
    call's, or a callback's leg to them), which leaves the conference (ending it: endConferenceOnExit).

    Raises TwilioError when Twilio cannot be reached or refuses (the call is over); nothing is changed then.
    """
    config = current_app.config
    caller = conferences.in_now(db, call, conferences.CALLER)
    leg = caller.call_sid if caller is not None else call.call_sid
    callback = leg != call.call_sid
    # https://www.twilio.com/docs/voice/api/call-resource#update-a-call-resource: the caller's call leaves the
    # conference and runs /voice/transfer.
    twilio_rest.redirect_call(config, leg, webhook_url("/voice/transfer", call=call.call_sid,
                                                       leg="callback" if callback else None))
    calls.record_event(db, call, "transfer_requested", by=by, leg="callback" if callback else "live")


def transfer_twiml(db: Session, call: Call, callback: bool = False) -> str:
    """What the transferred caller hears: a few words, then dispatch, with their own number as caller ID (on a
    callback's leg, placed by the line, the line's own number: the caller's is not ours to show)."""
    call.escalation_reason = calls.SPECIALIST_TRANSFER
    calls.set_outcome(db, call, calls.ESCALATED, reason="transferred to dispatch by the specialist")
    calls.record_event(db, call, "transferred_to_dispatch")
    hold = holds.hold_of(db, call)
    if hold is not None and not callback:
        holds.finish(db, hold)
    response = VoiceResponse()
    say(response, questions.words("escalate", call), call.language)
    dial_dispatch(response, call.language, caller_id=None if callback else calls.caller_id(call))
    return str(response)
