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
import re
from datetime import timedelta
from statistics import median

import redis
from flask import current_app
from sqlalchemy import bindparam, func, select, update
from sqlalchemy.orm import Session, joinedload, lazyload
from twilio.twiml.voice_response import VoiceResponse

from voice import hours, tasks
from voice.line import calls, routing
from voice.models import Call, CallbackRequest, Hold, utcnow
from voice.redisdb import Keys
from voice.script import CALLBACK_KEY, DISPATCH_KEY, MESSAGES, STEPS, WAITING_QUESTIONS
from voice.twiml import hangup, say, webhook_url

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


def enqueue(db: Session, call: Call, hold: Hold) -> str:
    """TwiML that puts the caller in their queue; the wait URL does the talking while they hold."""
    # https://www.twilio.com/docs/voice/twiml/enqueue
    response = VoiceResponse()
    response.enqueue(queue_name(call), action=webhook_url("/voice/hold/left", hold=hold.id), method="POST",
                     wait_url=webhook_url("/voice/hold/wait", hold=hold.id), wait_url_method="POST")
    calls.record_event(db, call, "hold_enqueued", hold_id=hold.id)
    return str(response)


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


def caller_connected(db: Session, hold: Hold) -> str:
    """Twilio dequeued the caller into the specialist's call (the <Queue url>): they are talking now."""
    call = hold.call
    if hold.status == CONNECTING:
        now = utcnow()
        hold.status = CONNECTED
        hold.connected_at = now
        call.specialist_id = hold.specialist_id
        call.connected_at = call.connected_at or now
        calls.set_outcome(db, call, calls.BRIDGED)
        calls.record_event(db, call, "specialist_connected", specialist_id=hold.specialist_id, hold_id=hold.id)
    # Nothing to say: the caller heard "Connecting you with a specialist"; every word here delays the bridge.
    return str(VoiceResponse())


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


# --- what the caller hears while holding --------------------------------------------------------------


def not_waiting(hold: Hold | None) -> str | None:
    """For a caller no longer simply waiting: out of the queue, or a breath of silence while a specialist
    who took them is being connected (no words to cut off). None while they wait."""
    response = VoiceResponse()
    if hold is None or hold.status not in WAITING_STATUSES:
        response.leave()
        return str(response)
    if hold.status == CONNECTING:
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
    from voice.line import intake

    call = hold.call
    language = call.language
    # Ringing, or about to be: a free specialist is being offered this caller as we speak (asked only when
    # it decides the first words; later documents go by the questions left).
    ringing = first and (bool(r.hlen(Keys.offers(hold.id))) or routing.free_count(r, hold.language) > 0)
    asked = set(filter(None, (hold.asked or "").split(",")))
    # Not what they already answered (a program may ask the name on the short path, before the bridge).
    following = next((name for name in WAITING_QUESTIONS
                      if name not in asked and not intake.already_answered(call, name)), None)
    if ringing:
        say(response, MESSAGES["connecting"][language], language)
    elif first or following is None or hold.last_announced_at is None:
        # Their place when they join (or once the phones rung for them stop), then once per piece of music
        # (30-60 s) once the questions are done.
        place = position(db, hold)
        say(response, MESSAGES["busy" if hold.last_announced_at is None else "position"][language].format(
            position=place, minutes=wait_minutes(db, r, hold, place)), language)
        hold.last_announced_at = utcnow()
        if queue_seconds >= current_app.config["HOLD_MAX_MINUTES"] * 60:
            say(response, MESSAGES["long_wait"][language], language)
    if following is not None and not ringing:
        hold.asked = ",".join([*asked, following])
        step_name = intake.step_for(call, following)
        action = webhook_url("/voice/hold/answer", hold=hold.id, step=step_name)
        intake.question(call, step_name, 1, action, response)
        return str(response)
    # Music, with the keys live: 2 for a call back, 0 for dispatch. Silence falls through to the next document.
    gather = response.gather(input="dtmf", num_digits=1, timeout=1, action=webhook_url("/voice/hold/key", hold=hold.id),
                             method="POST")
    gather.play(current_app.config["HOLD_MUSIC_URL"])
    return str(response)


def answer(db: Session, r: redis.Redis, hold: Hold | None, step_name: str, digits: str, speech: str) -> str:
    """A held caller answered a question (or pressed 2 or 0 instead)."""
    from voice.line import intake

    if (early := not_waiting(hold)) is not None:
        return early
    response = VoiceResponse()
    call = hold.call
    digits, speech = intake.clean_input(digits, speech)
    key = digits.rstrip("#")
    if key in (DISPATCH_KEY, CALLBACK_KEY):
        return leave_for(db, hold, "dispatch" if key == DISPATCH_KEY else "callback", response)
    step = STEPS.get(step_name)
    value = intake.interpret(step, call, digits, speech) if step is not None and step_name in WAITING_STEP_NAMES else None
    calls.record_event(db, call, "hold_answer", step=step_name, digits=digits or None, speech=speech or None,
                       understood=value is not None)
    if value is not None:
        intake.store_answer(call, step_name, value)
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
    from voice.line import intake
    from voice.line import offers as bridge

    result = form.get("QueueResult", "")
    response = VoiceResponse()
    if hold is None:
        return hangup()
    call = hold.call
    calls.record_event(db, call, "hold_result", hold_id=hold.id, result=result, seconds=form.get("QueueTime"))
    if result == "bridged":
        finish(db, hold)
        return intake.finished(call)
    if result in ("hangup", "redirected", "redirected-from-bridged"):
        # Twilio runs the redirect's own TwiML (a transfer), and a caller who hung up hears nothing.
        if result == "hangup":
            leave(db, hold, "hangup")
            bridge.cancel_offers(db, r, hold)
        return str(response)
    reason = hold.leave_reason if result == "leave" else None
    if reason in ("callback", "closing"):
        leave(db, hold, reason)
        call.wants_callback = reason == "callback"
        bridge.cancel_offers(db, r, hold)
        if reason == "closing":
            say(response, MESSAGES["closing"][call.language], call.language)
        return intake.next_callback_question(db, r, call, response=response)
    # Dispatch asked for, or the queue failed (queue-full, error, a fault in the wait URL): a person decides.
    bridge.cancel_offers(db, r, hold)
    return intake.escalate(db, call, reason="caller asked for dispatch" if reason == "dispatch"
                           else f"hold ended: {result or 'unknown'}")


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
