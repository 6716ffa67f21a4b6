"""Call ends we never heard about: the sweep asks Twilio's REST API, and runs what the lost webhook would have.

Every call normally ends on a webhook (a status callback, a Dial action). When both are lost, a specialist would
stay held until their lease runs out (CALL_LEASE_SECONDS, hours). So every minute the sweep asks Twilio for the
status of each call we think is live and older than RECONCILE_AFTER_SECONDS, and for each that has ended:

- a caller's call (`calls.ended_at` unset): `endings.call_status`, as its status callback would;
- a specialist's offer leg, rung for a held caller (`Keys.offers`, where the winner's stays until its status
  arrives too): `offers.offer_status`, which frees them;
- a callback attempt's leg (`attempt_call_sid`) that nothing settled: if the specialist never pressed 1, they are
  freed and the caller goes back in line, place kept; if the caller pressed 1 at the screen, they talked
  (`callbacks.caller_reached`); if not, the caller counts as missed (`callbacks.caller_missed`, the retry
  schedule): calling once more is better than closing a request nobody may have answered.

A REST failure leaves a call as it is for the next sweep; once Twilio does not answer at all, the sweep stops
asking until it does.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import datetime, timedelta

import redis
from sqlalchemy import select
from sqlalchemy.orm import Session

from voice import twilio_rest
from voice.clock import utcnow
from voice.line import callbacks, calls, endings, offers
from voice.models import Call, CallbackRequest, Hold
from voice.redisdb import Keys
from voice.tasks import after_commit, dispatch_at, text_caller_after_commit
from voice.twilio_rest import TERMINAL_STATUSES, TwilioError

log = logging.getLogger("workers.call_ends")

# A call's status callback cannot be owed for longer than Twilio lets a call last (4 hours by default); a day
# bounds the look-back, and a batch bounds one sweep's requests (~0.3 s each, the sweep gets 120 s).
LOOK_BACK = timedelta(days=1)
BATCH = 100


class Unreachable(Exception):
    """Twilio did not answer: stop asking in this sweep."""


def reconcile_call_ends(db: Session, r: redis.Redis, config: Mapping) -> int:
    """Settle every overdue call Twilio says is over; returns how many were settled."""
    cutoff = utcnow() - timedelta(seconds=config["RECONCILE_AFTER_SECONDS"])
    settled = 0
    try:
        settled += callers(db, r, config, cutoff)
        settled += offer_legs(db, r, config, cutoff)
        settled += callback_legs(db, r, config, cutoff)
    except Unreachable:
        db.rollback()
    return settled


def ended_status(r: redis.Redis, config: Mapping, sid: str) -> str | None:
    """The call's final status if Twilio says it is over; None while it goes on or Twilio cannot say."""
    try:
        status = twilio_rest.noting_health(r, twilio_rest.call_status, config, sid)
    except TwilioError as error:
        log.warning("could not ask Twilio about call %s: %s", sid, error)
        if twilio_rest.unreachable(error):
            raise Unreachable() from error
        return None
    return status if status in TERMINAL_STATUSES else None


def callers(db: Session, r: redis.Redis, config: Mapping, cutoff: datetime) -> int:
    """Callers' calls whose own status callback never came."""
    overdue = db.scalars(
        select(Call).where(Call.ended_at.is_(None), Call.started_at <= cutoff, Call.started_at > cutoff - LOOK_BACK)
        .order_by(Call.started_at, Call.id).limit(BATCH)
    ).all()
    settled = 0
    for call in overdue:
        status = ended_status(r, config, call.call_sid)
        if status is None:
            continue
        db.refresh(call)
        if call.ended_at is not None:
            continue  # the status callback arrived while we asked
        calls.record_event(db, call, "call_end_reconciled", status=status)
        endings.call_status(db, r, call, {"CallStatus": status})
        db.commit()
        settled += 1
    return settled


def offer_legs(db: Session, r: redis.Redis, config: Mapping, cutoff: datetime) -> int:
    """Specialists' offer legs (losers', and a winner's after the conversation) whose status never came."""
    settled = 0
    for key in r.scan_iter(match=Keys.offers_pattern(), count=100):
        hold_id = int(key.decode().rsplit(":", 1)[1])
        rung_at = {k.decode(): v.decode() for k, v in r.hgetall(Keys.offer_times(hold_id)).items()}
        for specialist, sid in r.hgetall(key).items():
            specialist = specialist.decode()
            rung = rung_at.get(specialist)
            if rung is not None and datetime.fromisoformat(rung) > cutoff:
                continue  # still ringing, or its status callback is only a moment away
            status = ended_status(r, config, sid.decode())
            if status is None:
                continue
            hold = db.get(Hold, hold_id)
            if hold is None:
                r.hdel(key, specialist)
                continue
            db.refresh(hold)
            if r.hget(key, specialist) != sid:
                continue  # its status callback arrived while we asked
            calls.record_event(db, hold.call, "offer_leg_reconciled", specialist_id=int(specialist), status=status)
            offers.offer_status(db, r, hold, int(specialist), {"CallStatus": status})
            db.commit()
            settled += 1
    return settled


def callback_legs(db: Session, r: redis.Redis, config: Mapping, cutoff: datetime) -> int:
    """Callback attempts whose specialist's leg ended with nothing settling the attempt."""
    overdue = db.scalars(
        select(CallbackRequest).where(CallbackRequest.status == callbacks.IN_PROGRESS,
                                      CallbackRequest.attempt_call_sid.is_not(None),
                                      CallbackRequest.attempt_started_at <= cutoff)
        .order_by(CallbackRequest.attempt_started_at).limit(BATCH)
    ).all()
    settled = 0
    for request in overdue:
        specialist_id, token = request.attempt_specialist_id, callbacks.attempt_token(request)
        status = ended_status(r, config, request.attempt_call_sid)
        if status is None:
            continue
        db.refresh(request)
        if not callbacks.is_attempt(request, specialist_id, token):
            continue  # a webhook settled it while we asked
        calls.record_event(db, request.call, "callback_leg_reconciled", request_id=request.id,
                           specialist_id=specialist_id, status=status, accepted=request.attempt_accepted_at is not None)
        if request.attempt_accepted_at is None:
            callbacks.back_in_line(db, r, request, f"specialist leg ended: {status} (found by the sweep)", passed=False)
        elif callbacks.answered_this_attempt(request):
            callbacks.caller_reached(db, r, request)
        else:
            due = callbacks.caller_missed(db, r, request, "unknown (the Dial's result was lost)",
                                          config["CALLBACK_RETRY_MINUTES"])
            if due is not None:
                after_commit(db, dispatch_at, r, due)
            else:
                text_caller_after_commit(db, r, request.id, "unreachable")
        db.commit()
        settled += 1
    return settled
