"""Background work the app asks for: the one RQ queue, retry policies, and enqueueing after a commit.

Jobs are named by their dotted path and imported by RQ in the worker, so nothing under `voice/` imports
`workers/` (the worker imports the app, never the other way round).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta

import redis
from flask import current_app, has_app_context
from rq import Callback, Queue, Retry
from rq.exceptions import NoSuchJobError
from rq.job import Job, JobStatus
from rq.registry import ScheduledJobRegistry
from sqlalchemy import event
from sqlalchemy.orm import Session

from voice import db as database
from voice import twilio_rest
from voice.redisdb import get_redis

log = logging.getLogger("voice.tasks")

QUEUE_NAME = "callbacks"

# The jobs, by the dotted path RQ imports them from.
DISPATCH = "workers.jobs.dispatch"
PLACE_CALLBACK = "workers.jobs.place_callback"
PLACING_FAILED = "workers.jobs.placing_failed"
TEXT_CALLER = "workers.jobs.send_callback_sms"
END_CALLS = "workers.jobs.end_calls"
SWEEP = "workers.jobs.sweep"
CALLER_LEG_FAILED = "workers.jobs.caller_leg_failed"
REST_REQUEST = "workers.jobs.rest_request"
TEXT_VISIT_REMINDER = "workers.visit_texts.send_reminder"
TEXT_VISIT_CHANGE = "workers.visit_texts.send_change"
SAFETY_DUE = "workers.field_safety.team_due"
SAFETY_RUNG = "workers.field_safety.next_rung"
SAFETY_CONTACT = "workers.field_safety.deliver"
SAFETY_CONTACT_FAILED = "workers.field_safety.delivery_failed"
DELIVER_OUTCOME = "workers.outcomes.deliver_outcome"

# Job arguments are ids, but results and tracebacks can quote numbers: keep them days, not RQ's year.
RESULT_TTL_SECONDS = 3600
FAILURE_TTL_SECONDS = 7 * 24 * 3600


def queue(connection: redis.Redis) -> Queue:
    return Queue(QUEUE_NAME, connection=connection)


def enqueue(connection: redis.Redis, func: str, *args, at: datetime | None = None, retry: Retry | None = None,
            **kwargs) -> None:
    """Queue a job now (or at `at`, naive UTC); a Redis failure is logged, since the sweep rebuilds from SQL."""
    kwargs.setdefault("result_ttl", RESULT_TTL_SECONDS)
    kwargs.setdefault("failure_ttl", FAILURE_TTL_SECONDS)
    try:
        if at is not None:
            # We store naive UTC; RQ reads a naive datetime as the server's local time, so say it is UTC.
            queue(connection).enqueue_at(_aware(at), func, *args, retry=retry, **kwargs)
        else:
            queue(connection).enqueue(func, *args, retry=retry, **kwargs)
    except redis.RedisError:
        log.exception("could not queue %s; the periodic sweep will pick it up", func)


def _aware(at: datetime) -> datetime:
    return at.replace(tzinfo=UTC) if at.tzinfo is None else at


# A job RQ still holds to run: waiting in the queue, waiting for its time or another job, or running.
_HELD = {JobStatus.QUEUED, JobStatus.SCHEDULED, JobStatus.DEFERRED, JobStatus.STARTED}


def job_held(connection: redis.Redis, job_id: str) -> bool:
    """True while RQ holds the job to run: queued, scheduled, deferred or running."""
    try:
        return Job.fetch(job_id, connection=connection).get_status() in _HELD
    except NoSuchJobError:
        return False


def on_failure(func: str) -> Callback:
    """An RQ failure callback by its dotted name (it runs in the worker, after each failed try)."""
    return Callback(func)


def ensure_job(connection: redis.Redis, func: str, *args, job_id: str, at: datetime | None = None,
               **kwargs) -> bool:
    """Queue `func` as `job_id` (at `at`, naive UTC, or now) unless RQ holds it already, due no later.

    The sweep's way of rebuilding timers from SQL: a job lost with a flushed Redis, one that finished or failed,
    or one scheduled later than SQL says it is due, is queued again. Returns True when it queued.
    """
    try:
        job = Job.fetch(job_id, connection=connection)
        status = job.get_status()
    except NoSuchJobError:
        status = None
    if status in _HELD - {JobStatus.SCHEDULED}:
        return False
    if status == JobStatus.SCHEDULED:
        registry = ScheduledJobRegistry(queue=queue(connection))
        try:
            when = registry.get_scheduled_time(job_id)
        except NoSuchJobError:
            when = None
        if when is not None and at is not None and when <= _aware(at) + timedelta(seconds=1):
            return False
        registry.remove(job_id)  # queued again below, for its time
    enqueue(connection, func, *args, at=at, job_id=job_id, **kwargs)
    return True


def after_commit(db: Session, action: Callable, *args, on_rollback: Callable[[], None] | None = None,
                 **kwargs) -> None:
    """Run `action` once the current transaction commits, so a job it queues never reads SQL from before it.

    A rollback drops it (and calls `on_rollback`) with the transaction it belonged to.
    """

    # Both listeners fire once; whichever comes first settles it (listeners cannot be removed mid-event).
    settled = []

    def run(_session: Session) -> None:
        if not settled:
            settled.append(True)
            action(*args, **kwargs)

    def forget(_session: Session) -> None:
        if not settled:
            settled.append(True)
            if on_rollback is not None:
                on_rollback()

    event.listen(db, "after_commit", run, once=True)
    event.listen(db, "after_rollback", forget, once=True)


def enqueue_after_commit(db: Session, connection: redis.Redis, func: str, *args, **kwargs) -> None:
    after_commit(db, enqueue, connection, func, *args, **kwargs)


def dispatch_soon(connection: redis.Redis) -> None:
    """Ask a worker to offer waiting callers to whoever is free (cheap to ask for twice)."""
    enqueue(connection, DISPATCH)


def dispatch_after_commit(db: Session, connection: redis.Redis) -> None:
    """One dispatch once this transaction commits, however many things in it asked for one.

    Outside a transaction (it was just committed) the dispatch is queued at once.
    """
    if not db.in_transaction():
        dispatch_soon(connection)
        return
    if db.info.get("dispatch_after_commit"):
        return
    db.info["dispatch_after_commit"] = True
    after_commit(db, _dispatch_once, db, connection,
                 on_rollback=lambda: db.info.pop("dispatch_after_commit", None))


def _dispatch_once(db: Session, connection: redis.Redis) -> None:
    db.info.pop("dispatch_after_commit", None)
    dispatch_soon(connection)


def dispatch_at(connection: redis.Redis, at: datetime) -> None:
    """Ask for a dispatch when scheduled requests fall due; asking twice for one moment keeps one job."""
    at = at + timedelta(seconds=1)
    enqueue(connection, DISPATCH, at=at, job_id=f"dispatch-at-{at:%Y%m%d%H%M%S}")


def retry_policy(seconds: list[int]) -> Retry:
    return Retry(max=len(seconds), interval=list(seconds))


def rest_retry(config: Mapping) -> Retry:
    """How often a job retries Twilio's REST API after a transient failure (REST_RETRY_SECONDS)."""
    return retry_policy(config["REST_RETRY_SECONDS"])


def text_caller_after_commit(db: Session, connection: redis.Redis, request_id: int, kind: str) -> None:
    """Text a callback's caller ("confirm" or "unreachable") once the request's new state is committed."""
    retry = retry_policy(current_app.config["SMS_RETRY_SECONDS"])
    enqueue_after_commit(db, connection, TEXT_CALLER, request_id, kind, retry=retry)


def on_specialist_freed(_sender, specialist_id: int, **_extra) -> None:
    """Signal receiver: a specialist may be free, so offer them the oldest waiting caller after the commit."""
    if not has_app_context():
        return
    dispatch_after_commit(database.session(), get_redis())


def rest_after_commit(db: Session, connection: redis.Redis, name: str, *args, retry: bool = True) -> None:
    """Make one REST request (`twilio_rest.RETRIABLE[name]`) in this process the moment the transaction commits.

    A webhook's own state is written first, so the request Twilio makes next (a redirected call's new URL)
    reads it. If Twilio fails for a moment, a job repeats the request on REST_RETRY_SECONDS (unless `retry` is
    False: something else covers it); a refusal (the call or conference is already over) is only logged: there
    is nothing left to change.
    """
    config = dict(current_app.config)
    request = twilio_rest.RETRIABLE[name]

    def make() -> None:
        try:
            twilio_rest.noting_health(connection, request, config, *args)
        except twilio_rest.TwilioError as error:
            if error.permanent or not retry:
                log.warning("%s%s failed: %s", name, args, error)
                return
            enqueue(connection, REST_REQUEST, name, *args, retry=rest_retry(config))

    after_commit(db, make)
