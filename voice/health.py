"""Is the line able to work? `GET /healthz` for load balancers, and the dashboard's banner for people.

`/healthz` asks the database (SELECT 1) and Redis (PING) through their own short-timeout connections,
both at once, and answers within a second: 200 `{"status": "ok"}` or 503 naming what failed. It needs no
login and shows no data.

The banner warns the coordinator when callbacks would silently stop: RQ's own worker registry holds no
live worker and the last one's time is up (`worker_life`), or the once-a-minute sweep that `rq cron`
queues has not run for `HEALTH_CRON_SECONDS`; or Twilio's REST API is not answering the worker
(`twilio_rest.down_since`), so nobody is being rung.
"""

from __future__ import annotations

import os
import socket
import sys
import time
from concurrent.futures import ThreadPoolExecutor, wait
from datetime import UTC, datetime
from typing import NamedTuple
from zoneinfo import ZoneInfo

import redis
from flask import Blueprint, Flask, current_app, jsonify
from rq import Worker
from rq.cron import CronScheduler
from sqlalchemy import create_engine, text
from sqlalchemy.engine import Engine

from voice import twilio_rest
from voice.config import BY_NAME
from voice.redisdb import Keys, get_redis

bp = Blueprint("health", __name__)

# The whole check answers within this; a probe still running then counts as failed. It leaves a quarter of
# the promised second for the request itself on a loaded machine (CI once took 1.004 s with 0.9).
CHECK_SECONDS = 0.75
PROBE_TIMEOUT = 0.5

WORKER_LIFE_KEY = f"{Keys.prefix}health:worker-life"
CRON_RAN_KEY = f"{Keys.prefix}health:sweep-ran"


class Probes:
    """Connections used only for health checks, with timeouts short enough to answer a load balancer."""

    def __init__(self, redis_url: str, database_url: str):
        self.redis = redis.Redis.from_url(redis_url, socket_timeout=PROBE_TIMEOUT,
                                          socket_connect_timeout=PROBE_TIMEOUT)
        self.engine = probe_engine(database_url)
        # The probes run side by side; one that hangs never holds the request past CHECK_SECONDS.
        self.pool = ThreadPoolExecutor(max_workers=4, thread_name_prefix="healthz")

    def database(self) -> None:
        with self.engine.connect() as conn:
            conn.execute(text("SELECT 1"))

    def redis_ping(self) -> None:
        self.redis.ping()

    def failed(self) -> list[str]:
        """Names of the services that did not answer in time, in a fixed order."""
        futures = {"database": self.pool.submit(self.database), "redis": self.pool.submit(self.redis_ping)}
        wait(futures.values(), timeout=CHECK_SECONDS)
        return [name for name, future in futures.items() if not future.done() or future.exception() is not None]


def probe_engine(url: str) -> Engine:
    if url.startswith("sqlite"):
        return create_engine(url, connect_args={"timeout": PROBE_TIMEOUT}, pool_pre_ping=True)
    if url.startswith("postgresql"):
        # libpq waits at least 2 s to connect whatever we ask; the executor's deadline bounds the answer.
        return create_engine(url, pool_size=1, max_overflow=1, pool_pre_ping=True,
                             connect_args={"connect_timeout": 1, "options": "-c statement_timeout=800"})
    return create_engine(url, pool_pre_ping=True)


@bp.get("/healthz")
def healthz():
    failed = current_app.extensions["health"].failed()
    response = jsonify({"status": "fail", "failed": failed} if failed else {"status": "ok"})
    response.status_code = 503 if failed else 200
    response.headers["Cache-Control"] = "no-store"
    return response


def note_cron_run(r: redis.Redis, at: float | None = None) -> None:
    """Record that the periodic sweep just ran (called by the job `rq cron` queues)."""
    r.set(CRON_RAN_KEY, at if at is not None else time.time())


def last_cron_run(r: redis.Redis) -> float | None:
    value = r.get(CRON_RAN_KEY)
    return float(value) if value is not None else None


class WorkerLife(NamedTuple):
    """The newest heartbeat of any RQ worker, and the moment RQ itself counts the last of them dead."""

    beat: float
    until: float


# A worker is alive while RQ keeps its key. Each heartbeat sets `last_heartbeat` and renews the key's expiry to
# the worker's own `--worker-ttl` plus 60 s: "the next heartbeat should come before this time, or the worker
# will die (at least from the monitoring dashboards)" (rq/worker/base.py, `Worker.heartbeat`; the option is
# documented at https://python-rq.org/docs/workers/). An idle worker beats every TTL minus 15 s
# (`Worker.dequeue_timeout`), a busy one every `job_monitoring_interval` with that plus 60 s. So the deadline
# is read from the key, and the TTL is known in one place, the worker's command line: the Procfile's 45 s
# beats every 30 s and is counted dead 105 s after its last beat; any other TTL, RQ's default 420 s too, sits
# idle without a false alarm.
def worker_life(r: redis.Redis) -> WorkerLife | None:
    """When RQ's workers last beat and until when RQ counts them alive; remembered after they leave its registry."""
    workers = [w for w in Worker.all(connection=r) if w.last_heartbeat]
    with r.pipeline(transaction=False) as pipe:
        for worker in workers:
            pipe.pttl(worker.key)
        lives_ms = pipe.execute()
    now = time.time()
    lives = [WorkerLife(w.last_heartbeat.replace(tzinfo=UTC).timestamp(), now + ms / 1000)
             for w, ms in zip(workers, lives_ms, strict=True) if ms > 0]
    if lives:
        # A worker stopped with SIGTERM leaves the registry at once: keep when it beat and how long it had.
        life = WorkerLife(max(life.beat for life in lives), max(life.until for life in lives))
        r.hset(WORKER_LIFE_KEY, mapping=life._asdict())
        return life
    remembered = r.hgetall(WORKER_LIFE_KEY)
    return WorkerLife(float(remembered[b"beat"]), float(remembered[b"until"])) if remembered else None


def warnings(r: redis.Redis, config, now: float | None = None) -> list[str]:
    """What the coordinator must know is not working, as sentences; empty when all is well."""
    now = time.time() if now is None else now
    zone = ZoneInfo(config["TIMEZONE"])
    found = []
    worker = worker_life(r)
    if worker is None:
        found.append("Callbacks are not being placed: no worker is running.")
    elif now > worker.until:
        found.append(f"Callbacks are not being placed: no worker since {clock(worker.beat, now, zone)}.")
    swept = last_cron_run(r)
    if swept is None:
        found.append("The once-a-minute sweep (rq cron) has not run: scheduled callbacks are not being checked.")
    elif now - swept > config["HEALTH_CRON_SECONDS"]:
        found.append(f"The once-a-minute sweep (rq cron) has not run since {clock(swept, now, zone)}: "
                     "scheduled callbacks are not being checked.")
    down = twilio_rest.down_since(r)
    if down is not None:
        found.append(f"Twilio unreachable since {clock(down, now, zone)}: calls to specialists and callbacks "
                     "are waiting.")
    return found


def clock(moment: float, now: float, zone: ZoneInfo) -> str:
    """14:02 today, or Nov 28 14:02 on an earlier day, in the program's time zone."""
    local = datetime.fromtimestamp(moment, zone)
    if local.date() == datetime.fromtimestamp(now, zone).date():
        return local.strftime("%H:%M")
    return local.strftime("%b %d %H:%M")


@bp.app_context_processor
def health_banner():
    """Templates call `health_warnings()` only where they show the banner, so other pages pay nothing."""

    def health_warnings() -> list[str]:
        try:
            return warnings(get_redis(), current_app.config)
        except redis.RedisError:
            return ["Redis is not answering: calls go to dispatch and callbacks are not being placed."]

    return {"health_warnings": health_warnings}


def init_app(app: Flask) -> None:
    app.extensions["health"] = Probes(app.config["REDIS_URL"], app.config["DATABASE_URL"])
    app.register_blueprint(bp)


def running_here(kind: str, r: redis.Redis) -> bool:
    """Whether RQ's registry holds a live `worker` or `cron` of this host (a container's healthcheck)."""
    host = socket.gethostname()
    if kind == "worker":
        return any(w.hostname == host for w in Worker.all(connection=r))
    return any(s.hostname == host for s in CronScheduler.all(connection=r))


if __name__ == "__main__":
    # `python -m voice.health worker|cron`: exit 0 when this container's process is in RQ's registry.
    url = os.environ.get("REDIS_URL") or str(BY_NAME["REDIS_URL"].default)
    connection = redis.Redis.from_url(url, socket_timeout=2, socket_connect_timeout=2)
    sys.exit(0 if running_here(sys.argv[1], connection) else 1)
