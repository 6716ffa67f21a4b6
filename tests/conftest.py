"""Fixtures that build the real thing: a real Redis (db 15, or an embedded one), a real SQLite or
PostgreSQL database migrated by Alembic, and the simulated phone acting as Twilio."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from flask import Flask
from rq import SimpleWorker
from rq.timeouts import TimerDeathPenalty
from sqlalchemy import text

from voice import create_app
from voice.embedded_redis import ensure_redis
from voice.models import Base
from voice.simulator import Dispatcher, FlaskTransport, SimulatedPhone, SpecialistPhone
from voice.simulator.fake_twilio import FakeTwilio
from voice.twilio_rest import rest_client

LINE = "+19375550100"
DISPATCH = "+19375550911"
AUTH_TOKEN = "test-auth-token"
ACCOUNT_SID = "AC" + "0" * 32
PUBLIC = "https://line.example.org"


@pytest.fixture(scope="session")
def redis_url():
    url, server = ensure_redis(os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/15"))
    yield url
    if server is not None:
        server.stop()


@pytest.fixture(scope="session")
def database_url(tmp_path_factory):
    url = os.environ.get("TEST_DATABASE_URL") or f"sqlite:///{tmp_path_factory.mktemp('db')}/test.db"
    from voice.db import Database

    database = Database(url)
    with database.engine.begin() as conn:
        # Start from nothing so the migrations themselves are under test.
        Base.metadata.drop_all(conn)
        conn.execute(text("DROP TABLE IF EXISTS alembic_version"))
    database.upgrade()
    database.dispose()
    return url


def settings(redis_url: str, database_url: str, **extra) -> dict:
    config = {
        "TESTING": True,
        "TWILIO_ACCOUNT_SID": ACCOUNT_SID,
        "TWILIO_AUTH_TOKEN": AUTH_TOKEN,
        "TWILIO_PHONE_NUMBER": LINE,
        "DISPATCH_TRANSFER_NUMBER": DISPATCH,
        "PUBLIC_BASE_URL": PUBLIC,
        "SECRET_KEY": "test-secret",
        "RETENTION_DAYS": 365,
        "REDIS_URL": redis_url,
        "DATABASE_URL": database_url,
        "WTF_CSRF_ENABLED": True,
    }
    config.update(extra)
    return config


@contextmanager
def fresh_app(config: dict) -> Iterator[Flask]:
    """An app on an empty Redis db and empty tables, cleaned up again afterwards."""
    app = create_app(config)
    r = app.extensions["redis"]
    r.flushdb()
    db = app.extensions["db"]
    with db.engine.begin() as conn:
        for table in reversed(Base.metadata.sorted_tables):
            conn.execute(table.delete())
    try:
        yield app
    finally:
        r.flushdb()
        db.dispose()


@pytest.fixture
def app(redis_url, database_url):
    with fresh_app(settings(redis_url, database_url)) as app:
        yield app


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def runner(app):
    return app.test_cli_runner()


@pytest.fixture
def r(app):
    return app.extensions["redis"]


@pytest.fixture
def db(app):
    with app.app_context():
        session = app.extensions["db"].session()
        yield session
        session.rollback()


@pytest.fixture
def phone(app):
    """The simulated phone network for this app: dispatch answers; add specialists with `network`."""
    return SimulatedPhone(FlaskTransport(app), AUTH_TOKEN, ACCOUNT_SID, LINE, PUBLIC,
                          network={DISPATCH: Dispatcher()})


@pytest.fixture
def add_specialist(app, phone):
    """Put a specialist on the roster (and on the phone network); switched on unless told otherwise."""
    from voice import specialists

    def add(name: str, number: str, languages=("en",), on: bool = True, **behaviour) -> SpecialistPhone:
        with app.app_context():
            session = app.extensions["db"].session()
            specialist = specialists.add_specialist(session, name, number, list(languages))
            session.commit()
            if on:
                specialists.set_available(session, app.extensions["redis"], specialist, True)
        party = SpecialistPhone(name, **behaviour)
        phone.network[number] = party
        return party

    return add


def pytest_collection_modifyitems(items):
    # tests/browser/ drives Chromium and test_demo.py runs the demo; CI leaves both out of its PostgreSQL pass.
    for item in items:
        path = str(item.path).replace("\\", "/")
        if "/tests/browser/" in path:
            item.add_marker(pytest.mark.browser)
        if path.endswith("/tests/test_demo.py"):
            item.add_marker(pytest.mark.demo)


class ThreadWorker(threading.Thread):
    """A real RQ SimpleWorker, draining the queue every few milliseconds in a background thread of this process.

    The same process as the app under test, so jobs run with its settings; RQ's signal handlers belong to the
    main thread, so this worker installs none.
    """

    class _Worker(SimpleWorker):
        # SIGALRM timeouts need the main thread; a timer thread enforces job timeouts instead.
        death_penalty_class = TimerDeathPenalty

        def _install_signal_handlers(self):
            pass

    def __init__(self, app):
        super().__init__(daemon=True)
        self.app = app
        self.stopping = threading.Event()
        self.failures: list[str] = []

    def run(self) -> None:
        from voice import tasks

        r = self.app.extensions["redis"]
        with self.app.app_context():
            while not self.stopping.is_set():
                worker = self._Worker([tasks.queue(r)], connection=r)
                worker.work(burst=True, logging_level="WARNING")
                self.app.extensions["db"].session.remove()
                failed = tasks.queue(r).failed_job_registry
                self.failures = list(failed.get_job_ids())
                self.stopping.wait(0.01)

    def stop(self) -> None:
        self.stopping.set()
        self.join(10)


class Line:
    """The whole line in one process: the app, the phone network, the fake Twilio REST API, an RQ worker."""

    def __init__(self, app, phone: SimulatedPhone, fake, worker: ThreadWorker):
        self.app = app
        self.phone = phone
        self.fake = fake
        self.worker = worker

    def add_specialist(self, name: str, number: str, languages=("en",), on: bool = True, **behaviour) -> SpecialistPhone:
        from voice import specialists

        with self.app.app_context():
            session = self.app.extensions["db"].session()
            specialist = specialists.add_specialist(session, name, number, list(languages))
            session.commit()
            if on:
                specialists.set_available(session, self.app.extensions["redis"], specialist, True)
        party = SpecialistPhone(name, **behaviour)
        self.phone.network[number] = party
        return party

    def wait_until_holding(self, count: int, timeout: float = 20) -> None:
        """Wait until `count` callers have reached their queue (Twilio asked for their hold music)."""
        from sqlalchemy import func, select

        from voice.models import Hold

        deadline = time.monotonic() + timeout
        with self.app.app_context():
            session = self.app.extensions["db"].session()
            while time.monotonic() < deadline:
                held = session.scalar(select(func.count(Hold.id)).where(Hold.enqueued_at.is_not(None)))
                session.rollback()
                if held >= count:
                    return
                time.sleep(0.02)
        raise AssertionError(f"fewer than {count} callers reached the queue")

    def max_offers_at_once_per_specialist(self) -> int:
        """The most offers any one specialist had open at one moment, from the app's own timeline.

        An offer is open from the moment the app rang the specialist for a caller until Twilio reported
        that call over (which is when the app frees them for the next caller).
        """
        import json

        from sqlalchemy import select

        from voice.models import CallEvent

        with self.app.app_context():
            events = self.app.extensions["db"].session().scalars(select(CallEvent).order_by(CallEvent.id)).all()
            spans: dict[int, list[list]] = {}
            for event in events:
                detail = json.loads(event.detail)
                who = detail.get("specialist_id")
                if event.kind == "specialist_offered":
                    spans.setdefault(who, []).append([event.id, None, event.call_id])
                elif event.kind == "offer_leg_status":
                    open_span = next((span for span in spans.get(who, []) if span[1] is None and span[2] == event.call_id),
                                     None)
                    if open_span is not None:
                        open_span[1] = event.id
        most = 0
        for offers in spans.values():
            for start, _, _ in offers:
                most = max(most, sum(1 for s, e, _ in offers if s <= start and (e is None or e > start)))
        return most

    def settle(self, timeout: float = 20) -> None:
        """Wait until every call the app placed has ended and the worker has nothing left to do."""
        from voice import tasks

        r = self.app.extensions["redis"]
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.fake.wait_for_calls(0.05) and tasks.queue(r).count == 0:
                time.sleep(0.1)
                if self.fake.wait_for_calls(0.05) and tasks.queue(r).count == 0:
                    failed = tasks.queue(r).failed_job_registry.get_job_ids()
                    assert failed == [], f"jobs failed in the worker: {failed}"
                    return
            time.sleep(0.05)
        raise AssertionError("the line did not settle")


@contextmanager
def whole_line(redis_url: str, database_url: str, **extra) -> Iterator[Line]:
    """The whole line (see Line) on fresh storage, with any settings changed."""
    from voice.simulator.fake_twilio import FakeTwilio

    fake = FakeTwilio(None, ACCOUNT_SID, AUTH_TOKEN, LINE)
    url = fake.start()
    with fresh_app(settings(redis_url, database_url, TWILIO_API_BASE_URL=url, **extra)) as app:
        phone = SimulatedPhone(FlaskTransport(app), AUTH_TOKEN, ACCOUNT_SID, LINE, PUBLIC,
                               network={DISPATCH: Dispatcher()})
        fake.phone = phone
        worker = ThreadWorker(app)
        worker.start()
        try:
            yield Line(app, phone, fake, worker)
        finally:
            worker.stop()
            fake.stop()


@pytest.fixture
def line(redis_url, database_url):
    with whole_line(redis_url, database_url) as whole:
        yield whole


@pytest.fixture
def serve():
    """Start a FakeTwilio for a phone (the simulator's own tests): (fake, REST client); stopped after the test."""
    started: list[FakeTwilio] = []

    def start(phone: SimulatedPhone, **options) -> tuple[FakeTwilio, object]:
        fake = FakeTwilio(phone, ACCOUNT_SID, AUTH_TOKEN, LINE, **options)
        fake.start()
        started.append(fake)
        return fake, rest_client({"TWILIO_ACCOUNT_SID": ACCOUNT_SID, "TWILIO_AUTH_TOKEN": AUTH_TOKEN,
                                  "TWILIO_API_BASE_URL": fake.url})

    yield start
    for fake in started:
        fake.stop()
