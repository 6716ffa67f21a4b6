"""Outcomes back to the 911 center: when a call or a case that came from 911 closes, the center is told how it
ended, so it can close its incident (or keep police on it).

Each close is one `OutcomeReport` row (unique by call or case and outcome), written in the transaction that
closes it, whether or not OUTCOME_WEBHOOK_URL is set: the daily CSV (`daily_rows`) lists them all for centers that
take files. With the URL set, the row is POSTed as JSON by an RQ job queued after that commit, signed with
OUTCOME_WEBHOOK_SECRET (`signature_headers`; docs/reports.md documents it for the receiver). The states, and the
one function that makes each move:

    (a call or case from 911 closes) --note_*_closed-->  kept (no URL set), or pending
    pending, failed --claim-->            sending     (a conditional UPDATE: one sender at a time)
    sending --(the receiver said 2xx)-->  delivered   (never sent again)
    sending --(an error)-->               failed      (RQ's Retry tries again; then the sweep, hourly, for a week)
    sending (its worker died) --requeue-->  failed, and queued again

The receiver may see a report twice (a worker can die after the POST and before it writes "delivered"): each
carries its own `id`, the same on every try, to drop repeats by.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import time
from collections.abc import Iterator, Mapping
from datetime import date, datetime, timedelta

import redis
import requests
from flask import current_app, has_app_context
from sqlalchemy import and_, exists, func, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from voice import tasks
from voice.casework import cases
from voice.clock import utcnow
from voice.line import calls
from voice.models import Call, CaseEvent, OutcomeReport
from voice.models import Case as CaseRow
from voice.redisdb import get_redis
from voice.reporting.figures import SAFETY_DISPATCH_EVENT
from voice.reporting.periods import Period

log = logging.getLogger("voice.reporting.outcomes")

KEPT = "kept"
PENDING = "pending"
SENDING = "sending"
DELIVERED = "delivered"
FAILED = "failed"
FROM_911 = (calls.FROM_911, calls.HANDOFF)
TIMEOUT_SECONDS = 10
# A POST that has not finished in this long lost its worker.
SENDING_STALE = timedelta(minutes=10)
# After RQ's own retries, the sweep tries again this often, for this long.
SWEEP_EVERY = timedelta(hours=1)
GIVE_UP_AFTER = timedelta(days=7)
# Headers of each POST (docs/reports.md): Stripe's scheme (t=, v1=) and GitHub's (sha256=).
SIGNATURE_HEADER = "X-Outcome-Signature"
BODY_SIGNATURE_HEADER = "X-Outcome-Signature-256"
DELIVERY_HEADER = "X-Outcome-Delivery"
EVENT_HEADER = "X-Outcome-Event"
DAILY_COLUMNS = ("event", "id", "incident_number", "outcome", "reason", "police_needed", "closed_at", "sent")


class NotDelivered(Exception):
    """The receiver did not take the report; `permanent` when trying again cannot help (a 4xx)."""

    def __init__(self, message: str, permanent: bool):
        super().__init__(message)
        self.permanent = permanent


# --- a close becomes a report ------------------------------------------------------------------------------


def on_call_closed(call: Call, db: Session, **_extra) -> None:
    """Signal receiver (calls.call_closed): a call from 911 that closed is reported."""
    if has_app_context() and call.source in FROM_911:
        reason = call.escalation_reason if call.outcome == calls.ESCALATED else None
        note_closed(db, "call", call.id, call.outcome, call.incident_number, call.outcome == calls.ESCALATED,
                    reason, current_app.config)


def on_case_closed(case: CaseRow, db: Session, **_extra) -> None:
    """Signal receiver (cases.case_closed): a case with a call from 911 that closed is reported."""
    if not has_app_context():
        return
    with db.no_autoflush:
        from_911 = db.scalar(select(exists().where(Call.case_id == case.id, Call.source.in_(FROM_911))))
        if not from_911:
            return
        incident = case.incident_number or db.scalar(
            select(Call.incident_number).where(Call.case_id == case.id, Call.incident_number.is_not(None))
            .order_by(Call.started_at).limit(1))
        police = db.scalar(select(
            exists().where(Call.case_id == case.id, Call.outcome == calls.ESCALATED)
            | exists().where(CaseEvent.case_id == case.id, CaseEvent.kind == SAFETY_DISPATCH_EVENT)))
    note_closed(db, "case", case.id, case.outcome, incident, bool(police), None, current_app.config)


def payload(subject: str, subject_id: int, outcome: str, incident: str | None, police: bool, reason: str | None,
            closed_at: datetime) -> dict:
    """What the 911 center is told: no names, numbers or words of the caller's."""
    return {"id": report_id(subject, subject_id, outcome), "event": f"{subject}.closed",
            "incident_number": incident, "outcome": outcome, "reason": reason, "police_needed": police,
            "closed_at": closed_at.isoformat(timespec="seconds") + "Z"}


def report_id(subject: str, subject_id: int, outcome: str) -> str:
    return f"{subject}-{subject_id}-{outcome}"


def note_closed(db: Session, subject: str, subject_id: int, outcome: str | None, incident: str | None,
                police: bool, reason: str | None, config: Mapping) -> None:
    """Write the report of one close (once: a repeat of the same close writes nothing) and, with a webhook set,
    queue its POST for after the commit."""
    if not outcome:
        return
    closed_at = utcnow()
    body = json.dumps(payload(subject, subject_id, outcome, incident, police, reason, closed_at),
                      separators=(",", ":"))
    values = {"subject": subject, "subject_id": subject_id, "outcome": outcome, "closed_at": closed_at,
              "incident_number": incident, "police_needed": police, "body": body, "attempts": 0,
              "status": PENDING if config["OUTCOME_WEBHOOK_URL"] else KEPT, "created_at": closed_at}
    dialect = postgresql if db.get_bind().dialect.name == "postgresql" else sqlite
    # Two requests can close the same call at once (the Dial's result and the status callback): the second
    # insert does nothing, rather than failing the request that carries it.
    statement = (dialect.insert(OutcomeReport).values(**values)
                 .on_conflict_do_nothing(index_elements=["subject", "subject_id", "outcome"])
                 .returning(OutcomeReport.id))
    with db.no_autoflush:
        new_id = db.execute(statement).scalar()
    if new_id is not None and config["OUTCOME_WEBHOOK_URL"]:
        queue_delivery(db, get_redis(), new_id, config, after_commit=True)


def queue_delivery(db: Session, r: redis.Redis, report: int, config: Mapping, after_commit: bool = False) -> None:
    """Ask a worker to POST one report (after the current transaction commits, when asked)."""
    retry = tasks.retry_policy(config["OUTCOME_RETRY_SECONDS"])
    if after_commit:
        tasks.enqueue_after_commit(db, r, tasks.DELIVER_OUTCOME, report, retry=retry)
    else:
        tasks.enqueue(r, tasks.DELIVER_OUTCOME, report, retry=retry)


# --- sending -------------------------------------------------------------------------------------------------


def signature_headers(secret: str, body: bytes, delivery: str, event: str, timestamp: int) -> dict[str, str]:
    """The POST's headers: its id and event, and two HMAC-SHA256 signatures with the shared secret.

    `X-Outcome-Signature: t=<unix time>,v1=<hex of HMAC(secret, "<t>.<body>")>` is Stripe's scheme
    (https://docs.stripe.com/webhooks#verify-manually): the time is signed, so a receiver can refuse an old
    replay. `X-Outcome-Signature-256: sha256=<hex of HMAC(secret, body)>` is GitHub's
    (https://docs.github.com/en/webhooks/using-webhooks/validating-webhook-deliveries), for receivers that
    already check GitHub's; it does not cover the time.
    """
    key = secret.encode()
    timed = hmac.new(key, f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    plain = hmac.new(key, body, hashlib.sha256).hexdigest()
    return {"Content-Type": "application/json", "User-Agent": "mediation-line outcomes",
            EVENT_HEADER: event, DELIVERY_HEADER: delivery,
            SIGNATURE_HEADER: f"t={timestamp},v1={timed}", BODY_SIGNATURE_HEADER: f"sha256={plain}"}


def verify(secret: str, body: bytes, header: str, now: float | None = None, tolerance: int = 300) -> bool:
    """A receiver's check of `X-Outcome-Signature` (as docs/reports.md shows it): signed by `secret`, and fresh."""
    parts = dict(piece.split("=", 1) for piece in header.split(",") if "=" in piece)
    try:
        stamp = int(parts["t"])
    except (KeyError, ValueError):
        return False
    expected = hmac.new(secret.encode(), f"{stamp}.".encode() + body, hashlib.sha256).hexdigest()
    fresh = abs((time.time() if now is None else now) - stamp) <= tolerance
    return fresh and hmac.compare_digest(expected, parts.get("v1", ""))


def claim(db: Session, report: int) -> bool:
    """Take one report to send; False when it is delivered, kept, or another worker is sending it."""
    now = utcnow()
    result = db.execute(update(OutcomeReport)
                        .where(OutcomeReport.id == report, OutcomeReport.status.in_((PENDING, FAILED)))
                        .values(status=SENDING, attempts=OutcomeReport.attempts + 1, last_attempt_at=now)
                        .execution_options(synchronize_session=False))
    db.commit()
    return result.rowcount == 1


def deliver(db: Session, report: int, config: Mapping) -> str:
    """POST one report; "delivered", or "nothing to send". Raises NotDelivered when the receiver did not take it."""
    if not config["OUTCOME_WEBHOOK_URL"] or not claim(db, report):
        return "nothing to send"
    row = db.get(OutcomeReport, report)
    db.refresh(row)
    body = row.body.encode()
    headers = signature_headers(config["OUTCOME_WEBHOOK_SECRET"], body, report_id(row.subject, row.subject_id,
                                                                                   row.outcome),
                                f"{row.subject}.closed", int(time.time()))
    try:
        answer = requests.post(config["OUTCOME_WEBHOOK_URL"], data=body, headers=headers, timeout=TIMEOUT_SECONDS,
                               allow_redirects=False)
    except requests.RequestException as error:
        _failed(db, row, f"{type(error).__name__}: {error}")
        raise NotDelivered(f"the receiver did not answer ({type(error).__name__})", permanent=False) from error
    if 200 <= answer.status_code < 300:
        row.status, row.delivered_at, row.last_error = DELIVERED, utcnow(), None
        db.commit()
        return "delivered"
    _failed(db, row, f"HTTP {answer.status_code}")
    # 408, 425 and 429 ask us to come back later; any other 4xx will say the same however often we ask.
    permanent = 400 <= answer.status_code < 500 and answer.status_code not in (408, 425, 429)
    raise NotDelivered(f"the receiver answered HTTP {answer.status_code}", permanent=permanent)


def _failed(db: Session, row: OutcomeReport, error: str) -> None:
    row.status, row.last_error = FAILED, error[:200]
    db.commit()


def requeue(db: Session, r: redis.Redis, config: Mapping) -> int:
    """The sweep's part: reports whose POST was lost or gave up are queued again; returns how many."""
    if not config["OUTCOME_WEBHOOK_URL"]:
        return 0
    now = utcnow()
    # RQ's own retries come within its longest wait of the last try; past that, the report is the sweep's.
    quiet = max(SWEEP_EVERY, timedelta(seconds=max(config["OUTCOME_RETRY_SECONDS"], default=0) + 60))
    db.execute(update(OutcomeReport)
               .where(OutcomeReport.status == SENDING, OutcomeReport.last_attempt_at < now - SENDING_STALE)
               .values(status=FAILED, last_error="the worker stopped while sending")
               .execution_options(synchronize_session=False))
    due = db.scalars(select(OutcomeReport.id).where(
        OutcomeReport.created_at >= now - GIVE_UP_AFTER,
        or_(and_(OutcomeReport.status == FAILED, OutcomeReport.last_attempt_at < now - quiet),
            and_(OutcomeReport.status == PENDING, OutcomeReport.attempts == 0,
                 OutcomeReport.created_at < now - SENDING_STALE))).order_by(OutcomeReport.id).limit(500)).all()
    db.commit()
    for report in due:
        queue_delivery(db, r, report, config)
    return len(due)


def undelivered(db: Session) -> tuple[int, str | None]:
    """How many reports the 911 center has not got (failed, or never sent), and the latest error."""
    now = utcnow()
    waiting = or_(OutcomeReport.status == FAILED,
                  and_(OutcomeReport.status.in_((PENDING, SENDING)), OutcomeReport.created_at < now - SENDING_STALE))
    count = db.scalar(select(func.count()).select_from(OutcomeReport).where(waiting)) or 0
    error = db.scalar(select(OutcomeReport.last_error).where(waiting, OutcomeReport.last_error.is_not(None))
                      .order_by(OutcomeReport.last_attempt_at.desc()).limit(1)) if count else None
    return count, error


def delivery_counts(db: Session, period: Period) -> dict[str, int]:
    """Reports of closes in the period, by where they stand (the reports page)."""
    return dict(db.execute(select(OutcomeReport.status, func.count()).where(*period.holds(OutcomeReport.closed_at))
                           .group_by(OutcomeReport.status)).all())


# --- the daily file ----------------------------------------------------------------------------------------


def daily_rows(db: Session, day: date, zone: str) -> Iterator[dict[str, object]]:
    """Every report of a close on `day` (program time zone), oldest first: the same as each POST's body."""
    for row in db.scalars(select(OutcomeReport).where(*Period(day, day, zone).holds(OutcomeReport.closed_at))
                          .order_by(OutcomeReport.closed_at, OutcomeReport.id).execution_options(yield_per=500)):
        body = json.loads(row.body)
        yield {"event": body["event"], "id": body["id"], "incident_number": body["incident_number"] or "",
               "outcome": body["outcome"], "reason": body["reason"] or "",
               "police_needed": "true" if body["police_needed"] else "false", "closed_at": body["closed_at"],
               "sent": row.status}


def init_app() -> None:
    """Listen for closes (from create_app)."""
    calls.call_closed.connect(on_call_closed)
    cases.case_closed.connect(on_case_closed)
