"""Callers waiting on the line: the hold queue, what they hear while they wait, and how they leave it.

Each held caller is a row in SQL (so a restart of the web processes loses nobody) and a Twilio queue of
their own, named for their call (`<Enqueue>`: its wait URL can ask questions and take keys, which a
conference's cannot). Our own order, by arrival time shared with callback requests, decides who is served
first; Twilio's QueuePosition (always 1 in a queue of one) is not used. A specialist and the caller meet in
the call's conference (`conferences`). The states, and the one function that makes each move:

    (a caller safe, on an open line, someone on) --join-->  waiting   (free specialists are rung at once)
    waiting     --claim-->            connecting  (one specialist pressed 1; conditional UPDATE, one winner)
    waiting     --in_conference_waiting--> waiting (a caller with an interpreter waits in the conference itself)
    connecting  --send_caller-->      connecting  (the caller is sent into the conference: out of the queue by
                                                   a REST redirect or the wait URL's <Leave>, or straight from
                                                   the intake; conditional UPDATE, one sender)
    connecting  --connect-->          connected   (the caller and the specialist are both in the conference)
    connecting  --release_claim-->    waiting     (the specialist left before the caller came: place kept)
    connected   --back_in_line-->     waiting     (the specialist was cut off: the front of the line, place kept;
                                                   the same specialist may rejoin for a minute)
    connected   --finish-->           done
    waiting, connecting --leave-->    left        (dispatch, a callback, closing time, or the caller hung up)

A hold that ends (done, left) has its Twilio queue deleted (Twilio: inactive queues should be deleted).
"""

from __future__ import annotations

import math
from datetime import timedelta
from statistics import median

import redis
from sqlalchemy import bindparam, func, select, update
from sqlalchemy.orm import Session, joinedload, lazyload
from sqlalchemy.orm.attributes import set_committed_value

from voice import tasks
from voice.clock import utcnow
from voice.line import calls, routing
from voice.models import Call, CallbackRequest, Hold
from voice.redisdb import get_redis

WAITING = "waiting"
CONNECTING = "connecting"
CONNECTED = "connected"
DONE = "done"
LEFT = "left"
WAITING_STATUSES = (WAITING, CONNECTING)

# A caller sent into the conference this long ago and still asking for hold music was never moved (Twilio
# refused the redirect): the wait URL takes them out of the queue itself.
SENDING_SECONDS = 10
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


def of_queue(db: Session, name: str) -> Hold | None:
    """The hold whose Twilio queue has this name (`queue_name`), if any."""
    sid = name[len("ml-"):] if name.startswith("ml-") else None
    return db.scalar(select(Hold).join(Call, Call.id == Hold.call_id).where(Call.call_sid == sid)) if sid else None


def queue_name(call: Call) -> str:
    """One Twilio queue per held caller, so a specialist dequeues exactly the caller they accepted."""
    return f"ml-{call.call_sid}"[:64]


def waiting_holds(db: Session) -> list[Hold]:
    """Callers in line that no specialist has taken yet, longest waiting first."""
    return list(db.scalars(select(Hold).where(Hold.status == WAITING).order_by(Hold.arrived_at, Hold.id)))


def holding_now(db: Session) -> list[Hold]:
    """Everyone on hold or being connected, longest waiting first (the board and `queue list`)."""
    return list(db.scalars(select(Hold).where(Hold.status.in_(WAITING_STATUSES)).order_by(Hold.arrived_at, Hold.id)))


def _move(db: Session, hold: Hold, states: tuple[str, ...], *conditions, **values) -> bool:
    """One move of the state machine, made only from `states` (and `conditions`): a conditional UPDATE, atomic in
    SQLite and PostgreSQL alike, so of two requests racing (a status callback and a conference event) one moves
    the hold and the other sees it had moved. The hold in hand takes the values written, keeping what else this
    request has changed on it."""
    values["updated_at"] = utcnow()
    result = db.execute(
        update(Hold).where(Hold.id == hold.id, Hold.status.in_(states), *conditions).values(**values)
        .execution_options(synchronize_session=False)
    )
    if result.rowcount != 1:
        db.refresh(hold, ["status", "specialist_id", "conference_at"])
        return False
    for name, value in values.items():
        set_committed_value(hold, name, value)
    return True


def claim(db: Session, hold: Hold, specialist_id: int) -> bool:
    """The specialist who pressed 1 first gets the caller; False for everyone after them."""
    return _move(db, hold, (WAITING,), status=CONNECTING, specialist_id=specialist_id)


def send_caller(db: Session, hold: Hold) -> bool:
    """The caller is being sent into the conference: True for the one sender who may move them (a REST redirect,
    the wait URL's <Leave>, or the intake), so a caller is never moved twice (which would end the conference)."""
    return _move(db, hold, (CONNECTING,), Hold.conference_at.is_(None), conference_at=utcnow())


def in_conference_waiting(db: Session, hold: Hold) -> None:
    """A caller who waits in the conference itself, not a queue (with an interpreter): nobody moves them later."""
    _move(db, hold, (WAITING,), Hold.conference_at.is_(None), conference_at=utcnow())


def sending_stuck(hold: Hold) -> bool:
    """The caller was sent into the conference a while ago and is still in their queue: the move never landed."""
    return hold.conference_at is not None and utcnow() - hold.conference_at > timedelta(seconds=SENDING_SECONDS)


def release_claim(db: Session, hold: Hold, why: str) -> bool:
    """The specialist who took the caller left before they met: the caller is back in line, in place.

    True when the caller had already been sent into the conference (they must be brought back to the queue).
    """
    specialist_id, sent = hold.specialist_id, hold.conference_at is not None
    if not _move(db, hold, (CONNECTING,), Hold.specialist_id == specialist_id, status=WAITING, specialist_id=None,
                 conference_at=None):
        return False
    calls.record_event(db, hold.call, "hold_claim_released", specialist_id=specialist_id, why=why)
    return sent


def back_in_line(db: Session, hold: Hold, why: str) -> bool:
    """The specialist was cut off mid-call: the caller goes back to waiting, at the front (they keep their
    arrival time). False if they were not talking (nothing to do)."""
    specialist_id = hold.specialist_id
    if not _move(db, hold, (CONNECTED,), Hold.specialist_id == specialist_id, status=WAITING, specialist_id=None,
                 conference_at=None, connected_at=None):
        return False
    calls.record_event(db, hold.call, "hold_back_in_line", specialist_id=specialist_id, why=why)
    return True


def connect(db: Session, hold: Hold) -> None:
    """The caller and the specialist who took them are both in the conference: they are talking now."""
    call = hold.call
    now = utcnow()
    if _move(db, hold, (CONNECTING,), Hold.specialist_id == hold.specialist_id, status=CONNECTED, connected_at=now):
        call.specialist_id = hold.specialist_id
        call.connected_at = call.connected_at or now
        calls.set_outcome(db, call, calls.BRIDGED)
        calls.record_event(db, call, "specialist_connected", specialist_id=hold.specialist_id, hold_id=hold.id)


def leave(db: Session, hold: Hold, reason: str) -> None:
    """The caller leaves the line without a specialist: dispatch, a callback, closing time, or hung up."""
    if _move(db, hold, WAITING_STATUSES, status=LEFT, leave_reason=reason, ended_at=utcnow()):
        calls.record_event(db, hold.call, "hold_left", hold_id=hold.id, reason=reason)
        delete_queue(db, hold)


def finish(db: Session, hold: Hold) -> None:
    """The caller and the specialist talked, and the caller's part of it is over."""
    if _move(db, hold, (CONNECTED,), status=DONE, ended_at=utcnow()):
        delete_queue(db, hold)


def delete_queue(db: Session, hold: Hold) -> None:
    # https://www.twilio.com/docs/voice/api/queue-resource: "inactive Queues should be deleted". A worker does
    # it after the commit; the sweep deletes any it missed (a caller still leaving it, Twilio away).
    if hold.queue_sid:
        tasks.enqueue_after_commit(db, get_redis(), tasks.REST_REQUEST, "delete_queue", hold.queue_sid)


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
