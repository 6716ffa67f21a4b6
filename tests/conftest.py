"""Fixtures that build the real thing: a real Redis (db 15, or an embedded one), a real SQLite or
PostgreSQL database migrated by Alembic, and the simulated phone acting as Twilio (helpers: tests/support.py)."""

from __future__ import annotations

import os
from functools import partial

import pytest
from sqlalchemy import text

from tests.support import (
    ACCOUNT_SID,
    AUTH_TOKEN,
    DISPATCH,
    LINE,
    PUBLIC,
    add_to_roster,
    fresh_app,
    settings,
    whole_line,
)
from voice.db import Database
from voice.models import Base
from voice.simulator import Dispatcher, FlaskTransport, SimulatedPhone
from voice.simulator.embedded_redis import ensure_redis
from voice.simulator.fake_twilio import FakeTwilio
from voice.twilio_rest import rest_client


@pytest.fixture(scope="session")
def redis_url():
    url, server = ensure_redis(os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/15"))
    yield url
    if server is not None:
        server.stop()


@pytest.fixture(scope="session")
def database_url(tmp_path_factory):
    url = os.environ.get("TEST_DATABASE_URL") or f"sqlite:///{tmp_path_factory.mktemp('db')}/test.db"
    database = Database(url)
    with database.engine.begin() as conn:
        # Start from nothing so the migrations themselves are under test.
        Base.metadata.drop_all(conn)
        conn.execute(text("DROP TABLE IF EXISTS alembic_version"))
    database.upgrade()
    database.dispose()
    return url






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
    return partial(add_to_roster, app, phone)


def pytest_collection_modifyitems(items):
    # tests/browser/ drives Chromium and test_demo.py runs the demo; CI leaves both out of its PostgreSQL pass.
    for item in items:
        path = str(item.path).replace("\\", "/")
        if "/tests/browser/" in path:
            item.add_marker(pytest.mark.browser)
        if path.endswith("/tests/test_demo.py"):
            item.add_marker(pytest.mark.demo)








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
