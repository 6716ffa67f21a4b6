"""`/healthz` against a real Redis and database (and dead ones), and the dashboard's banner when a real
`rq worker` process stops or the sweep `rq cron` queues stops running."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest
from rq import Worker
from rq.cron import CronScheduler
from rq.defaults import DEFAULT_WORKER_TTL
from sqlalchemy.orm import Session

from tests.support import fresh_app, kill_session, login, settings, work
from voice import create_app, health
from voice.dashboard.auth import create_user
from voice.simulator.embedded_redis import free_port

ZONE = "Asia/Kolkata"  # half an hour off UTC, so a clock shown in UTC could never pass for it
NO_WORKER = "Callbacks are not being placed"
NO_SWEEP = "The once-a-minute sweep (rq cron) has not run"


@pytest.fixture
def silent_port():
    """A port that takes TCP connections and never says a word, like a server that has hung."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)
    yield listener.getsockname()[1]
    listener.close()


def test_healthz_answers_ok_without_a_login_and_shows_nothing_else(client):
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.get_json() == {"status": "ok"}
    assert response.headers["Cache-Control"] == "no-store"
    assert client.post("/healthz").status_code == 405  # nothing to post, so no CSRF question either


@pytest.mark.parametrize("broken", ["redis", "database", "both"])
def test_healthz_names_what_is_down(redis_url, database_url, tmp_path, broken):
    closed = f"redis://127.0.0.1:{free_port()}/0"
    bad_database = f"sqlite:///{tmp_path}/no-such-folder/line.db"
    app = create_app(settings(closed if broken in ("redis", "both") else redis_url,
                              bad_database if broken in ("database", "both") else database_url))
    response = app.test_client().get("/healthz")
    assert response.status_code == 503
    expected = {"redis": ["redis"], "database": ["database"], "both": ["database", "redis"]}[broken]
    assert response.get_json() == {"status": "fail", "failed": expected}


def test_healthz_answers_within_a_second_when_both_servers_hang(silent_port):
    app = create_app(settings(f"redis://127.0.0.1:{silent_port}/0",
                              f"postgresql+psycopg2://nobody@127.0.0.1:{silent_port}/line"))
    client = app.test_client()
    started = time.monotonic()
    response = client.get("/healthz")
    # Without the deadline libpq alone holds the answer 2 s or more, so 1.5 s tells the two apart and leaves
    # a loaded machine room; the deadline itself (health.CHECK_SECONDS) is what keeps /healthz under 1 s.
    assert time.monotonic() - started < 1.5
    assert response.status_code == 503
    assert response.get_json() == {"status": "fail", "failed": ["database", "redis"]}


@pytest.fixture
def watched(redis_url, database_url):
    """An app whose banner speaks after 2 s without a sweep, and a signed-in coordinator."""
    config = settings(redis_url, database_url, TIMEZONE=ZONE, HEALTH_CRON_SECONDS=2)
    with fresh_app(config) as app:
        with Session(app.extensions["db"].engine) as db:
            create_user(db, "coord@city.gov", "correct horse battery", "coordinator")
            db.commit()
        client = app.test_client()
        assert login(client, "coord@city.gov").status_code == 302
        yield app, config, client


def banner(client, about: str) -> list[str]:
    """The banner's lines about the worker (NO_WORKER) or the sweep (NO_SWEEP) on the live board."""
    page = client.get("/dashboard/").get_data(as_text=True)
    return [line.strip() for line in page.splitlines() if 'class="banner health"' in line and about in line]


def worker_banner_at(app, config: dict, moment: float) -> list[str]:
    """The banner's worker line as it will read at `moment` if nothing changes: RQ's registry and keys as now."""
    return [line for line in health.warnings(app.extensions["redis"], config, now=moment) if NO_WORKER in line]


def clock(moment: float, seen_at: float | None = None) -> str:
    """How the banner writes `moment` when read at `seen_at` (now): the time, and the date too on a later day."""
    local = datetime.fromtimestamp(moment, ZoneInfo(ZONE))
    same_day = local.date() == datetime.fromtimestamp(time.time() if seen_at is None else seen_at, ZoneInfo(ZONE)).date()
    return local.strftime("%H:%M" if same_day else "%b %d %H:%M")


def start_worker(config: dict, ttl: int | None) -> subprocess.Popen:
    """The Procfile's worker line with this --worker-ttl (None: RQ's default), its own session."""
    env = {**os.environ, **{k: str(v) for k, v in config.items() if k.isupper() and k != "TESTING"}}
    return subprocess.Popen(
        [sys.executable, "-m", "rq.cli", "worker", "-c", "workers.settings", "--with-scheduler",
         *(["--worker-ttl", str(ttl)] if ttl else []), "callbacks"],
        env=env, start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )


def registered(r, worker: subprocess.Popen) -> Worker:
    deadline = time.monotonic() + 20
    while not Worker.all(connection=r):
        assert time.monotonic() < deadline, "the worker never registered"
        assert worker.poll() is None, "the worker exited"
        time.sleep(0.2)
    (found,) = Worker.all(connection=r)
    return found


def beat_of(worker: Worker) -> float:
    return worker.last_heartbeat.replace(tzinfo=UTC).timestamp()


@pytest.mark.parametrize("ttl", [None, 45, 900], ids=["rq-default-420", "procfile-45", "900"])
def test_an_idle_worker_raises_no_alarm_whatever_its_worker_ttl(watched, ttl):
    app, config, client = watched
    worker = start_worker(config, ttl)
    try:
        beat = beat_of(registered(app.extensions["redis"], worker))
        assert banner(client, NO_WORKER) == []
        # Idle, RQ blocks in its dequeue for the TTL minus 15 s between beats (rq/worker/base.py,
        # Worker.dequeue_timeout): the moment before the next beat is the longest it ever stays silent.
        silent = (ttl or DEFAULT_WORKER_TTL) - 15
        assert worker_banner_at(app, config, beat + silent - 1) == []
        # Were that beat never to come, RQ counts it dead at TTL + 60 s, and so does the banner.
        later = beat + (ttl or DEFAULT_WORKER_TTL) + 62
        assert worker_banner_at(app, config, later) == [f"{NO_WORKER}: no worker since {clock(beat, later)}."]
    finally:
        worker.terminate()
        worker.wait(20)


@pytest.mark.parametrize("stop", ["SIGTERM", "SIGKILL"])
def test_banner_says_since_when_no_worker_has_been_alive(watched, stop):
    app, config, client = watched
    r = app.extensions["redis"]
    assert any("no worker is running" in line for line in banner(client, NO_WORKER))

    worker = start_worker(config, ttl=16)  # a beat every second, and RQ counts it dead 76 s after one
    try:
        first = beat_of(registered(r, worker))
        assert banner(client, NO_WORKER) == []
        # Its next beat (about a second later) keeps the banner clear: waited for, not slept through.
        deadline = time.monotonic() + 20
        while beat_of(Worker.all(connection=r)[0]) <= first:
            assert time.monotonic() < deadline, "the worker never beat again"
            time.sleep(0.1)
        assert banner(client, NO_WORKER) == []
    finally:
        stopped_at = time.time()
        if stop == "SIGTERM":
            worker.terminate()  # a warm shutdown: RQ takes the worker out of its registry at once
            worker.wait(20)
        else:
            kill_session(worker.pid)  # no goodbye: RQ's registry keeps it until its key expires
            worker.wait(20)

    # At once the banner still trusts the worker's last beat: a restart shows no alarm.
    assert banner(client, NO_WORKER) == []
    beat = health.worker_life(r).beat
    assert stopped_at - 2 < beat <= stopped_at
    assert worker_banner_at(app, config, beat + 16 + 60 - 2) == []
    # Then its time is up: the banner names its last beat, in program time.
    later = beat + 16 + 60 + 2
    assert worker_banner_at(app, config, later) == [f"{NO_WORKER}: no worker since {clock(beat, later)}."]


def test_banner_says_when_the_sweep_rq_cron_queues_stopped_running(watched):
    app, config, client = watched
    r = app.extensions["redis"]
    assert banner(client, NO_SWEEP) == [
        f'<p class="banner health" role="alert">{NO_SWEEP}: scheduled callbacks are not being checked.</p>']

    # What `rq cron workers.cron` does each minute: queue the registered job; a worker then runs it.
    scheduler = CronScheduler(connection=r)
    scheduler.load_config_from_file("workers.cron")
    assert [job.func.__name__ for job in scheduler.enqueue_jobs()] == ["sweep_and_note_run"]
    before = time.time()
    work(app)
    after = time.time()
    assert banner(client, NO_SWEEP) == []

    # HEALTH_CRON_SECONDS (2) after the sweep, with no other: judged at that moment, not slept through.
    lines = [line for line in health.warnings(r, config, now=after + 2.5) if NO_SWEEP in line]
    assert len(lines) == 1
    assert any(f"{NO_SWEEP} since {clock(t, after + 2.5)}:" in lines[0] for t in (before, after))
