"""Callers waiting on the line: the hold queue, what they hear while they wait, and how they leave it.

Each held caller is a row in SQL (so a restart of the web processes loses nobody) and a Twilio queue of
their own, named for their call, that a specialist dequeues with <Dial><Queue>. Our own order, by arrival
time shared with callback requests, decides who is served first; Twilio's QueuePosition (always 1 in a
queue of one) is not used. The states, and the one function that makes each move:

    (a caller safe, on an open line, someone on) --join-->  waiting   (free specialists are rung at once)
    waiting     --claim-->            connecting  (one specialist pressed 1; conditional UPDATE, one winner)
    connecting  --caller_connected--> connected   (Twilio ran the <Queue url>: the two are talking)
    connecting  --release_claim-->    waiting     (the specialist hung up before the bridge)
    connected   --left(bridged)-->    done
    waiting, connecting --leave-->    left        (dispatch, a callback, closing time, or the caller hung up)
"""

from __future__ import annotations

import math
from datetime import timedelta
from statistics import median

import redis
from sqlalchemy import bindparam, func, select, update
from sqlalchemy.orm import Session, joinedload, lazyload

from voice import tasks
from voice.clock import utcnow
from voice.line import calls, routing
from voice.models import Call, CallbackRequest, Hold

WAITING = "waiting"
CONNECTING = "connecting"
CONNECTED = "connected"
DONE = "done"
LEFT = "left"
WAITING_STATUSES = (WAITING, CONNECTING)

# Until there is history, a conversation is taken to last this long for the wait estimate.
DEFAULT_HANDLE_MINUTES = 8


# Built once (see calls.CALL_BY_SID).
# The call is already in the session when a hold is looked up by its call; specialists load only if asked for.
HOLD_OF_CALL = select(Hold).where(Hold.call_id == bindparam("call_id")).options(
    lazyload(Hold.call), lazyload(Hold.specialist))
HOLD_BY_ID = select(Hold).where(Hold.id == bindparam("id")).options(
    joinedload(Hold.call).lazyload(Call.specialist), lazyload(Hold.specialist))
PLACE_IN_LINE = select(
    select(func.count(Hold.id)).where(
        Hold.status == WAITING, Hold.language == bindparam("language"), Hold.arrived_at < bindparam("arrived"))
    .scalar_subquery()
    + select(func.count(CallbackRequest.id)).where(
        CallbackRequest.status.in_(("pending", "in_progress")), CallbackRequest.language == bindparam("language"),
        CallbackRequest.due_at <= bindparam("now"), CallbackRequest.arrived_at < bindparam("arrived"))
    .scalar_subquery())
RECENT_CONVERSATIONS = (
    select(Call.connected_at, Call.ended_at)
    .where(Call.outcome.in_((calls.BRIDGED, calls.CALLBACK_COMPLETED)), Call.started_at >= bindparam("since"),
           Call.connected_at.is_not(None), Call.ended_at.is_not(None))
    .order_by(Call.started_at.desc()).limit(50))


def by_id(db: Session, hold_id: int) -> Hold | None:
    """A hold and its call, in one statement."""
    return db.scalar(HOLD_BY_ID, {"id": hold_id})


def hold_of(db: Session, call: Call) -> Hold | None:
    # No autoflush: a read must not take SQLite's write lock before the request's one commit.
    with db.no_autoflush:
        return db.scalar(HOLD_OF_CALL, {"call_id": call.id})


def join(db: Session, r: redis.Redis, call: Call) -> Hold:
    """Put a caller in line (once per call) and ask for free specialists to be rung after the commit."""
    hold = hold_of(db, call)
    if hold is None:
        hold = Hold(call_id=call.id, language=call.language, arrived_at=call.started_at, status=WAITING)
        db.add(hold)
        db.flush()
        calls.record_event(db, call, "hold_joined", hold_id=hold.id)
        tasks.dispatch_after_commit(db, r)
    return hold


def specialist_waiting(db: Session, call: Call) -> bool:
    """A specialist already took this caller while the caller was still answering the short path."""
    hold = hold_of(db, call)
    return hold is not None and hold.status == CONNECTING


def queue_name(call: Call) -> str:
    """One Twilio queue per held caller, so a specialist dequeues exactly the caller they accepted."""
    return f"ml-{call.call_sid}"[:64]


def waiting_holds(db: Session) -> list[Hold]:
    """Callers in line that no specialist has taken yet, longest waiting first."""
    return list(db.scalars(select(Hold).where(Hold.status == WAITING).order_by(Hold.arrived_at, Hold.id)))


def holding_now(db: Session) -> list[Hold]:
    """Everyone on hold or being connected, longest waiting first (the board and `queue list`)."""
    return list(db.scalars(select(Hold).where(Hold.status.in_(WAITING_STATUSES)).order_by(Hold.arrived_at, Hold.id)))


def claim(db: Session, hold: Hold, specialist_id: int) -> bool:
    """The specialist who pressed 1 first gets the caller; False for everyone after them."""
    # A conditional UPDATE is atomic in SQLite and PostgreSQL alike: only one request sees rowcount 1.
    result = db.execute(
        update(Hold).where(Hold.id == hold.id, Hold.status == WAITING)
        .values(status=CONNECTING, specialist_id=specialist_id, updated_at=utcnow())
        .execution_options(synchronize_session=False)
    )
    db.refresh(hold)
    return result.rowcount == 1


def release_claim(db: Session, hold: Hold, why: str) -> None:
    """The specialist who took the caller left before the bridge: the caller is back in line, in place."""
    if hold.status == CONNECTING:
        calls.record_event(db, hold.call, "hold_claim_released", specialist_id=hold.specialist_id, why=why)
        hold.status = WAITING
        hold.specialist_id = None


def connect(db: Session, hold: Hold) -> None:
    """Twilio put the caller through to the specialist who took them: they are talking now."""
    call = hold.call
    if hold.status == CONNECTING:
        now = utcnow()
        hold.status = CONNECTED
        hold.connected_at = now
        call.specialist_id = hold.specialist_id
        call.connected_at = call.connected_at or now
        calls.set_outcome(db, call, calls.BRIDGED)
        calls.record_event(db, call, "specialist_connected", specialist_id=hold.specialist_id, hold_id=hold.id)


def leave(db: Session, hold: Hold, reason: str) -> None:
    """The caller leaves the line without a specialist: dispatch, a callback, closing time, or hung up."""
    if hold.status in WAITING_STATUSES:
        hold.status = LEFT
        hold.leave_reason = reason
        hold.ended_at = utcnow()
        calls.record_event(db, hold.call, "hold_left", hold_id=hold.id, reason=reason)


def finish(db: Session, hold: Hold) -> None:
    if hold.status == CONNECTED:
        hold.status = DONE
        hold.ended_at = utcnow()


# --- place in line and the wait ---------------------------------------------------------------------------


def position(db: Session, hold: Hold) -> int:
    """1 for the next caller served: held callers and callbacks of the same language who arrived earlier."""
    # One statement for both counts: each is a round trip and a pass through the ORM.
    with db.no_autoflush:
        ahead = db.scalar(PLACE_IN_LINE, {"language": hold.language, "arrived": hold.arrived_at, "now": utcnow()})
    return 1 + (ahead or 0)


def handle_minutes(db: Session) -> float:
    """How long a conversation lasts lately: the median of the last 50 answered calls of the past week."""
    with db.no_autoflush:  # finished conversations only: nothing this request changes
        rows = db.execute(RECENT_CONVERSATIONS, {"since": utcnow() - timedelta(days=7)}).all()
    spans = [(ended - connected).total_seconds() / 60 for connected, ended in rows if ended > connected]
    return median(spans) if spans else DEFAULT_HANDLE_MINUTES


def wait_minutes(db: Session, r: redis.Redis, hold: Hold, place: int) -> int:
    """The caller's wait, from recent handle times and the specialists on for their language."""
    on = max(routing.on_count(r, hold.language), 1)
    minutes = max(1, math.ceil(place * handle_minutes(db) / on))
    return minutes if minutes < 10 else int(math.ceil(minutes / 5) * 5)
