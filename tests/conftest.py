"""Fixtures that build the real thing: a real Redis (db 15, or an embedded one), a real SQLite or
PostgreSQL database migrated by Alembic, and the simulated phone acting as Twilio."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from flask import Flask
from sqlalchemy import text

from voice import create_app
from voice.embedded_redis import ensure_redis
from voice.models import Base
from voice.simulator import Dispatcher, FlaskTransport, SimulatedPhone, SpecialistPhone

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
