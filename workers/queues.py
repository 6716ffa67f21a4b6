"""The RQ queue the web app and the worker share, and the one way jobs are put on it."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

import redis
from rq import Queue, Retry
from sqlalchemy import event
from sqlalchemy.orm import Session

log = logging.getLogger("workers")

QUEUE_NAME = "callbacks"


def callback_queue(connection: redis.Redis) -> Queue:
    return Queue(QUEUE_NAME, connection=connection)


def enqueue(connection: redis.Redis, func, *args, at: datetime | None = None, retry: Retry | None = None,
            **kwargs) -> None:
    """Queue a job now (or at `at`, naive UTC); a Redis failure is logged, since the sweep rebuilds from SQL."""
    try:
        queue = callback_queue(connection)
        if at is not None:
            # RQ's scheduler treats naive datetimes as UTC, which is how we store them.
            queue.enqueue_at(at, func, *args, retry=retry, **kwargs)
        else:
            queue.enqueue(func, *args, retry=retry, **kwargs)
    except redis.RedisError:
        log.exception("could not queue %s; the periodic sweep will pick it up", getattr(func, "__name__", func))


def after_commit(db: Session, action, *args, **kwargs) -> None:
    """Run `action` once the current transaction commits, so a job it queues never reads SQL from before it."""
    event.listen(db, "after_commit", lambda _session: action(*args, **kwargs), once=True)


def enqueue_after_commit(db: Session, connection: redis.Redis, func, *args, **kwargs) -> None:
    """Queue a job once the current transaction commits."""
    after_commit(db, enqueue, connection, func, *args, **kwargs)


def text_caller_after_commit(db: Session, connection: redis.Redis, request_id: int, kind: str) -> None:
    """Text a callback's caller ("confirm" or "unreachable") once the request's new state is committed."""
    from workers.jobs import send_callback_sms

    enqueue_after_commit(db, connection, send_callback_sms, request_id, kind, retry=Retry(max=2, interval=[30, 120]))


def dispatch_soon(connection: redis.Redis) -> None:
    """Ask a worker to offer waiting callbacks to whoever is free (cheap to ask for twice)."""
    from workers.jobs import dispatch_callbacks

    enqueue(connection, dispatch_callbacks)


def dispatch_at(connection: redis.Redis, at: datetime) -> None:
    """Ask for a dispatch when scheduled requests fall due; asking twice for one moment keeps one job."""
    from workers.jobs import dispatch_callbacks

    at = at + timedelta(seconds=1)
    enqueue(connection, dispatch_callbacks, at=at, job_id=f"dispatch-at-{at:%Y%m%d%H%M%S}")


def on_specialist_freed(_sender, specialist_id: int, **_extra) -> None:
    """Signal receiver: a specialist may be free, so offer them the oldest waiting callback now."""
    from flask import has_app_context

    from voice.redisdb import get_redis

    if has_app_context():
        dispatch_soon(get_redis())
