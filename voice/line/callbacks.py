"""Callback requests: callers nobody could take live, saved in SQL so none is ever lost.

SQL is the truth; RQ jobs only point at it. The states, and the one function that makes each move:

    (a caller nobody took) --queue_callback--> pending, or scheduled (a chosen window or the next opening)
    scheduled   --promote_due-->             pending      (its time came; the sweep and dispatch do this)
    pending     --claim_request-->           in_progress  (one specialist is being rung; conditional UPDATE)
    in_progress --back_in_line-->            pending      (the specialist missed or passed, or was cut off
                                                          from the caller; place kept)
    in_progress --caller_answered-->         in_progress  (a person pressed 1 at the screen: they are talking)
    in_progress --caller_reached-->          completed    (that conversation is over)
    in_progress --caller_missed-->           scheduled (the next retry), or unreachable when tries run out
    in_progress --give_up-->                 unreachable  (Twilio refused the number)
    pending, scheduled, unreachable --retry_now--> pending;  --cancel--> cancelled   (the coordinator)

A case's follow-up ("call back in 7 days") is a request like any other (`queue_follow_up`): a call row of its
own in the case, scheduled for the due time, so it is promoted, dispatched and retried by the same path.
"""

from __future__ import annotations

import secrets
from collections.abc import Collection
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import redis
from sqlalchemy import bindparam, func, select, update
from sqlalchemy.orm import Session

from voice import durations, languages, twilio_rest
from voice.casework import cases
from voice.clock import utcnow
from voice.line import calls, preferences, routing, specialists
from voice.models import Call, CallbackRequest, Case, Specialist
from voice.redisdb import Keys

PENDING = "pending"
SCHEDULED = "scheduled"
IN_PROGRESS = "in_progress"
COMPLETED = "completed"
UNREACHABLE = "unreachable"
CANCELLED = "cancelled"
OPEN_STATUSES = (PENDING, SCHEDULED, IN_PROGRESS)
STATUSES = (PENDING, SCHEDULED, IN_PROGRESS, COMPLETED, UNREACHABLE, CANCELLED)

# The windows a caller may choose (local time, start and end hour); "asap" is any time.
WINDOW_HOURS = {"morning": (9, 12), "afternoon": (12, 17), "evening": (17, 20)}
# How long a specialist who passed on a callback is not offered it again.
TRIED_SECONDS = 10 * 60
# A rough minutes-per-callback for the wait estimate until there is history to go on.
DEFAULT_MINUTES_PER_CALLBACK = 15


# Built once (see calls.CALL_BY_SID).
REQUEST_OF_CALL = select(CallbackRequest).where(CallbackRequest.call_id == bindparam("call_id"))
CALLBACKS_AHEAD = select(func.count(CallbackRequest.id)).where(
    CallbackRequest.status.in_((PENDING, IN_PROGRESS)), CallbackRequest.language == bindparam("language"),
    CallbackRequest.arrived_at < bindparam("arrived"))
RECENT_CALLBACKS = (
    select(CallbackRequest.created_at, CallbackRequest.completed_at)
    .where(CallbackRequest.status == COMPLETED, CallbackRequest.completed_at >= bindparam("since"))
    .order_by(CallbackRequest.completed_at.desc()).limit(20))


def queue_callback(db: Session, call: Call, reason: str, timezone: str,
                   not_before: datetime | None = None) -> CallbackRequest:
    """Save the caller's request to be called back (once per call) and settle the call as queued.

    `not_before` is the line's next opening when it is closed now; the caller keeps their arrival time.
    """
    request = request_of(db, call)
    if request is None:
        due = window_start(call.callback_window, max(utcnow(), not_before or utcnow()), timezone)
        request = CallbackRequest(
            call_id=call.id,
            arrived_at=call.started_at,
            callback_number=call.callback_number,
            language=call.language,
            window=call.callback_window,
            status=SCHEDULED if due > utcnow() else PENDING,
            due_at=due,
            reason=reason,
        )
        db.add(request)
        db.flush()
        calls.record_event(db, call, "callback_queued", request_id=request.id, reason=reason,
                           window=call.callback_window, due_at=due)
    calls.set_outcome(db, call, calls.CALLBACK_QUEUED, reason=reason)
    return request


def request_of(db: Session, call: Call) -> CallbackRequest | None:
    # No autoflush: the request's changes so far go in once, with what follows (see holds.hold_of).
    with db.no_autoflush:
        return db.scalar(REQUEST_OF_CALL, {"call_id": call.id})


class FollowUpError(ValueError):
    """A follow-up that cannot be set; the message says why."""


def queue_follow_up(db: Session, case: Case, due: datetime, note: str | None, timezone: str) -> CallbackRequest:
    """Schedule a follow-up call for a case at `due`: a new call row in the case, queued as a callback."""
    latest = db.scalar(select(Call).where(Call.case_id == case.id).order_by(Call.started_at.desc()).limit(1))
    if latest is None:
        raise FollowUpError("This case has no call to follow up.")
    number = latest.callback_number or calls.caller_id(latest)
    if not number:
        raise FollowUpError("There is no number to call back for this case.")
    if case.follow_up_request_id is not None:
        current = db.get(CallbackRequest, case.follow_up_request_id)
        if current is not None and current.status in OPEN_STATUSES:
            raise FollowUpError("This case already has a follow-up waiting; cancel it on the Callbacks page first.")
    call = Call(call_sid=f"followup-{case.id}-{secrets.token_hex(6)}", from_number=latest.from_number,
                to_number=latest.to_number, started_at=utcnow(), ended_at=utcnow(), language=latest.language,
                category=latest.category, caller_name=latest.caller_name, location=latest.location,
                location_key=latest.location_key, callback_number=number, description=note,
                wants_callback=True, case_id=case.id, step=None, source=calls.FOLLOW_UP)
    db.add(call)
    db.flush()
    calls.record_event(db, call, "follow_up_set", case_id=case.id, due_at=due, note=note)
    request = queue_callback(db, call, f"follow-up: {note}" if note else "follow-up", timezone, not_before=due)
    case.follow_up_due_at, case.follow_up_note, case.follow_up_request_id = due, note, request.id
    cases.record(db, case, "follow_up_set", due_at=due, note=note, request_id=request.id)
    return request


def follow_ups_due(db: Session, now: datetime | None = None) -> list[CallbackRequest]:
    """Follow-up calls that have come due and are not yet done, oldest first (for the board)."""
    return list(db.scalars(
        select(CallbackRequest).join(Case, Case.follow_up_request_id == CallbackRequest.id)
        .where(CallbackRequest.status.in_(OPEN_STATUSES), CallbackRequest.due_at <= (now or utcnow()))
        .order_by(CallbackRequest.due_at)))


def window_start(window: str | None, now: datetime, timezone: str) -> datetime:
    """The first moment (naive UTC) at or after `now` inside the caller's chosen window."""
    hours = WINDOW_HOURS.get(window or "")
    if hours is None:
        return now
    zone = ZoneInfo(timezone)
    local = now.replace(tzinfo=ZoneInfo("UTC")).astimezone(zone)
    start, end = hours
    if start <= local.hour < end:
        return now
    day = local.date() if local.hour < start else local.date() + timedelta(days=1)
    begins = datetime(day.year, day.month, day.day, start, tzinfo=zone)
    return begins.astimezone(ZoneInfo("UTC")).replace(tzinfo=None)


def due_requests(db: Session, limit: int = 50) -> list[CallbackRequest]:
    """Requests that can be dialed now, oldest first (a retry keeps the caller's original place)."""
    return list(db.scalars(
        select(CallbackRequest)
        .where(CallbackRequest.status == PENDING, CallbackRequest.due_at <= utcnow(),
               CallbackRequest.callback_number.is_not(None))
        .order_by(CallbackRequest.arrived_at, CallbackRequest.id)
        .limit(limit)
    ))


def claim_request(db: Session, request: CallbackRequest, specialist_id: int) -> bool:
    """Mark a pending request in progress for one specialist; False if another worker got there first."""
    now = utcnow()
    # A conditional UPDATE is atomic in SQLite and PostgreSQL alike: only one worker sees rowcount 1.
    result = db.execute(
        update(CallbackRequest)
        .where(CallbackRequest.id == request.id, CallbackRequest.status == PENDING)
        .values(status=IN_PROGRESS, attempt_specialist_id=specialist_id, attempt_started_at=now,
                attempt_call_sid=None, attempt_accepted_at=None, updated_at=now)
        .execution_options(synchronize_session=False)
    )
    db.commit()
    db.refresh(request)
    return result.rowcount == 1


def attempt_token(request: CallbackRequest) -> str:
    """Names one attempt (its claim time): a job or webhook for an older attempt of the request is a no-op."""
    return request.attempt_started_at.isoformat() if request.attempt_started_at else ""


def is_attempt(request: CallbackRequest | None, specialist_id: int, token: str | None = None) -> bool:
    """True while this specialist's attempt (this one, when `token` is given) is the one in progress."""
    return (request is not None and request.status == IN_PROGRESS and request.attempt_specialist_id == specialist_id
            and (token is None or attempt_token(request) == token))


def attempt_placed(db: Session, request: CallbackRequest, call_sid: str, specialist: Specialist) -> None:
    request.attempt_call_sid = call_sid
    calls.record_event(db, request.call, "callback_attempt", request_id=request.id, specialist_id=specialist.id,
                       specialist=specialist.name, specialist_call_sid=call_sid, caller_attempt=request.attempts + 1)


def back_in_line(db: Session, r: redis.Redis, request: CallbackRequest, why: str, passed: bool = True) -> None:
    """The specialist did not take it (no answer, declined, failed): free them; the caller keeps their place.

    `passed` is False when the attempt was lost on our side, so the same specialist may be asked again at once
    and keeps their place in the idle queue.
    """
    specialist_id = request.attempt_specialist_id
    if specialist_id and passed:
        # Offer it to others first; after a while whoever passed may be asked again.
        routing.mark_tried(r, routing.callback_holder(request.id), specialist_id, seconds=TRIED_SECONDS)
    if specialist_id:
        routing.release_specialist(r, specialist_id, routing.callback_holder(request.id), keep_place=not passed)
    if request.status == IN_PROGRESS:
        request.status = PENDING
    end_attempt(request)
    calls.record_event(db, request.call, "callback_specialist_missed", request_id=request.id,
                       specialist_id=specialist_id, why=why)


def end_attempt(request: CallbackRequest) -> None:
    """Forget the attempt in progress (the request's status says what comes next)."""
    request.attempt_call_sid = None
    request.attempt_started_at = None
    request.attempt_specialist_id = None
    request.attempt_accepted_at = None


def specialist_accepted(db: Session, r: redis.Redis, request: CallbackRequest, lease_seconds: int,
                        complex_categories: Collection[str] = ()) -> None:
    """The specialist pressed 1: hold them for the conversation; the Dial to the caller settles the attempt."""
    routing.extend_lease(r, request.attempt_specialist_id, routing.callback_holder(request.id), lease_seconds)
    request.attempt_accepted_at = utcnow()
    request.call.specialist_id = request.attempt_specialist_id
    taker = preferences.note_taker(db, request.call, request.attempt_specialist_id, complex_categories)
    calls.record_event(db, request.call, "callback_specialist_accepted", request_id=request.id,
                       specialist_id=request.attempt_specialist_id, **taker)


def caller_answered(db: Session, request: CallbackRequest) -> None:
    """A person answered the callback (pressed 1 at the screen; a voicemail presses nothing): they are talking."""
    now = utcnow()
    call = request.call
    call.specialist_id = request.attempt_specialist_id
    call.connected_at = now
    calls.record_event(db, call, "callback_caller_answered", request_id=request.id,
                       specialist_id=request.attempt_specialist_id)


def answered_this_attempt(request: CallbackRequest) -> bool:
    """The caller pressed 1 during the attempt in progress."""
    call = request.call
    return (request.attempt_started_at is not None and call.connected_at is not None
            and call.connected_at >= request.attempt_started_at)


def caller_reached(db: Session, r: redis.Redis, request: CallbackRequest, duration: object = None) -> None:
    """The specialist and the caller talked: the request is done."""
    now = utcnow()
    request.status = COMPLETED
    request.completed_at = now
    request.attempts += 1
    request.last_attempt_at = now
    call = request.call
    call.specialist_id = request.attempt_specialist_id
    call.connected_at = call.connected_at or now
    if call.outcome != calls.ESCALATED:  # a specialist who sent the caller to dispatch said where they went
        calls.set_outcome(db, call, calls.CALLBACK_COMPLETED)
    calls.record_event(db, call, "callback_connected", request_id=request.id,
                       specialist_id=request.attempt_specialist_id, duration=duration)
    release_attempt(r, request)
    end_attempt(request)


def caller_missed(db: Session, r: redis.Redis, request: CallbackRequest, status: str,
                  retry_minutes: list[int]) -> datetime | None:
    """The caller did not answer (or was busy): schedule the next try, or mark them unreachable.

    Returns when the next try is due, or None when the schedule is used up.
    """
    now = utcnow()
    request.attempts += 1
    request.last_attempt_at = now
    release_attempt(r, request)
    end_attempt(request)
    calls.record_event(db, request.call, "callback_caller_missed", request_id=request.id, status=status,
                       caller_attempt=request.attempts)
    if request.attempts <= len(retry_minutes):
        request.status = SCHEDULED
        request.due_at = now + timedelta(minutes=retry_minutes[request.attempts - 1])
        calls.record_event(db, request.call, "callback_retry_scheduled", request_id=request.id,
                           due_at=request.due_at)
        return request.due_at
    give_up(db, request, f"caller did not answer {request.attempts} callback attempts")
    return None


def give_up(db: Session, request: CallbackRequest, reason: str) -> None:
    """No more tries: the coordinator sees the request as unreachable, with why."""
    request.status = UNREACHABLE
    request.reason = reason[:300]
    request.completed_at = utcnow()
    calls.set_outcome(db, request.call, calls.UNREACHABLE, reason=reason[:300])


def release_attempt(r: redis.Redis, request: CallbackRequest) -> None:
    if request.attempt_specialist_id:
        routing.release_specialist(r, request.attempt_specialist_id, routing.callback_holder(request.id))


def promote_due(db: Session) -> int:
    """Scheduled requests whose time has come become pending; returns how many."""
    result = db.execute(
        update(CallbackRequest)
        .where(CallbackRequest.status == SCHEDULED, CallbackRequest.due_at <= utcnow())
        .values(status=PENDING, updated_at=utcnow())
        .execution_options(synchronize_session=False)
    )
    return result.rowcount or 0


def recover_stale(db: Session, stale_seconds: int, call_seconds: int) -> list[CallbackRequest]:
    """In-progress requests a dead worker or a lost Twilio request left behind; returns those needing a look.

    Without a Call SID the worker died around the REST call (the caller decides whether Twilio placed it);
    with one, Twilio's end-of-call request never came.
    """
    now = utcnow()
    stuck = db.scalars(select(CallbackRequest).where(CallbackRequest.status == IN_PROGRESS)).all()
    found = []
    for request in stuck:
        started = request.attempt_started_at or request.updated_at
        limit = call_seconds if request.attempt_call_sid else stale_seconds
        if started <= now - timedelta(seconds=limit):
            found.append(request)
    return found


def reconcile(db: Session, r: redis.Redis) -> dict[str, int]:
    """Rebuild what Redis holds from SQL: the idle queues and the scheduled-due promotions."""
    on = specialists.sync_idle_queues(db, r)
    promoted = promote_due(db)
    db.commit()
    waiting = db.scalar(select(func.count(CallbackRequest.id)).where(CallbackRequest.status == PENDING)) or 0
    return {"specialists_on": on, "promoted": promoted, "pending": waiting}


def scheduled_times(db: Session) -> list[datetime]:
    """When scheduled requests fall due (one entry per distinct minute), to put back on RQ's scheduler."""
    rows = db.scalars(select(CallbackRequest.due_at).where(CallbackRequest.status == SCHEDULED)).all()
    return sorted({due.replace(second=0, microsecond=0) + timedelta(minutes=1) if due.second or due.microsecond
                   else due for due in rows})


def open_requests(db: Session, statuses: tuple[str, ...] = (*OPEN_STATUSES, UNREACHABLE)) -> list[CallbackRequest]:
    return list(db.scalars(
        select(CallbackRequest).where(CallbackRequest.status.in_(statuses))
        .order_by(CallbackRequest.arrived_at, CallbackRequest.id)
    ))


def retry_now(db: Session, request: CallbackRequest) -> None:
    """A coordinator asks for another try now (also for an unreachable request)."""
    if request.status in (SCHEDULED, UNREACHABLE, PENDING):
        request.status = PENDING
        request.due_at = utcnow()
        request.completed_at = None
        if request.call.outcome == calls.UNREACHABLE:
            calls.set_outcome(db, request.call, calls.CALLBACK_QUEUED, reason="coordinator asked to retry")
        calls.record_event(db, request.call, "callback_retry_now", request_id=request.id)


def cancel(db: Session, request: CallbackRequest, reason: str) -> None:
    if request.status in (PENDING, SCHEDULED, UNREACHABLE):
        request.status = CANCELLED
        request.reason = (reason or "cancelled")[:300]
        request.completed_at = utcnow()
        calls.record_event(db, request.call, "callback_cancelled", request_id=request.id, reason=request.reason)


def reassign(db: Session, request: CallbackRequest, specialist_id: int | None) -> None:
    """Only this specialist will be offered the request (None: whoever is free first)."""
    request.specialist_id = specialist_id
    calls.record_event(db, request.call, "callback_reassigned", request_id=request.id, specialist_id=specialist_id)


def text_queued(db: Session, request: CallbackRequest, kind: str, message_sid: str) -> None:
    """Twilio took a text to the caller ("confirm" or "unreachable"); its status callback says what became of it."""
    request.text_status, request.text_error_code = "queued", None
    calls.record_event(db, request.call, "sms_status", request_id=request.id, text=kind, status="queued",
                       message_sid=message_sid)


def text_refused(db: Session, request: CallbackRequest, kind: str, code: int | None) -> None:
    """Twilio would not send the text: the caller opted out (21610), or the number takes no texts."""
    request.text_status = twilio_rest.refused_status(code)
    request.text_error_code = code
    calls.record_event(db, request.call, "sms_not_sent", request_id=request.id, text=kind, code=code)


def text_status(db: Session, request: CallbackRequest, kind: str, status: str, code: int | None,
                message_sid: str | None) -> None:
    """A status callback for a text to the caller: on the call's timeline, and on the request when it is news.

    Callbacks can arrive out of order; a later status never gives way to an earlier one.
    """
    calls.record_event(db, request.call, "sms_status", request_id=request.id, text=kind, status=status,
                       code=code, message_sid=message_sid)
    if twilio_rest.status_advances(request.text_status, status):
        request.text_status, request.text_error_code = status, code


def text_problem(request: CallbackRequest | None) -> str | None:
    """For the coordinator: why the caller did not get our text, or None when nothing went wrong (yet)."""
    if request is None or request.text_status not in (*twilio_rest.MESSAGE_FAILED, "opted_out", "not_sent"):
        return None
    why = twilio_rest.MESSAGE_ERRORS.get(request.text_error_code or 0, "")
    code = f"error {request.text_error_code}" if request.text_error_code else ""
    detail = "; ".join(filter(None, (why, code)))
    return f"The text to the caller was {request.text_status.replace('_', ' ')}" + (f" ({detail})" if detail else "")


def minutes_ago(request: CallbackRequest) -> str:
    """How long the caller has waited, as the whisper says it."""
    return durations.ago(request.arrived_at, spoken=True)


def estimated_wait_minutes(db: Session, r: redis.Redis, request: CallbackRequest, on: int | None = None) -> int:
    """Roughly how long until this caller is called: people ahead, specialists on, recent pace."""
    # Other callers' requests only: nothing this request changes needs writing first (see holds.hold_of).
    with db.no_autoflush:
        ahead = db.scalar(CALLBACKS_AHEAD, {"language": request.language, "arrived": request.arrived_at}) or 0
        recent = db.execute(RECENT_CALLBACKS, {"since": utcnow() - timedelta(days=7)}).all()
    if on is None:
        on = int(r.zcard(Keys.available(request.language or "en")))
    if recent:
        waits = sorted((done - made).total_seconds() / 60 for made, done in recent)
        pace = max(5, int(waits[len(waits) // 2]))
    else:
        pace = DEFAULT_MINUTES_PER_CALLBACK
    return pace * (ahead + 1) // max(on, 1)


def wait_phrase(db: Session, r: redis.Redis, request: CallbackRequest, language: str) -> str:
    """A sentence telling the caller roughly when to expect the call, from the current wait."""
    phrases = languages.of(language).prompts
    if request.status == SCHEDULED:
        return phrases["eta_at_time"]
    on = int(r.zcard(Keys.available(request.language or "en")))
    if not on:
        # Nobody is on (perhaps after hours): promise no time we cannot keep.
        return phrases["eta_when_free"]
    minutes = estimated_wait_minutes(db, r, request, on)
    if minutes <= 15:
        return phrases["eta_15"]
    if minutes < 90:
        return phrases["eta_minutes"].format(minutes=(minutes + 9) // 10 * 10)
    return phrases["eta_hours"].format(hours=(minutes + 59) // 60)
