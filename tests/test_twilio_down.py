"""Twilio's REST API unreachable: the worker backs off (one probe per interval), frees every specialist, keeps
every caller's place, and says so on the dashboard; when Twilio is back, the callback is placed."""

from __future__ import annotations

import socketserver
import threading
from datetime import datetime
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy.orm import Session

from tests.support import (
    ACCOUNT_SID,
    ALICE,
    AUTH_TOKEN,
    BRUNO,
    CALLER,
    LINE,
    PUBLIC,
    fresh_app,
    leases,
    login,
    queued_caller,
    request_row,
    settings,
    text_on,
    work,
)
from voice import health
from voice.dashboard.auth import create_user
from voice.redisdb import Keys
from voice.simulator import Dispatcher, FlaskTransport, SimulatedPhone
from voice.simulator.fake_twilio import FakeTwilio
from workers import jobs

UNREACHABLE = "Twilio unreachable since"


class RefusingServer(socketserver.ThreadingTCPServer):
    """Takes each connection and drops it at once, counting them: Twilio as a broken network shows it."""

    daemon_threads = True
    allow_reuse_address = True

    def __init__(self):
        self.connections = 0
        outer = self

        class Drop(socketserver.BaseRequestHandler):
            def handle(self):
                outer.connections += 1

        super().__init__(("127.0.0.1", 0), Drop)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


@pytest.fixture
def refusing():
    server = RefusingServer()
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server
    server.shutdown()
    server.server_close()


@pytest.fixture
def app(redis_url, database_url, refusing):
    config = settings(redis_url, database_url, TWILIO_API_BASE_URL=refusing.url, REST_RETRY_SECONDS="0,0,0",
                      SMS_RETRY_SECONDS="0,0", TIMEZONE="Asia/Kolkata")
    with fresh_app(config) as app:
        with Session(app.extensions["db"].engine) as db:
            create_user(db, "coord@city.gov", "correct horse battery", "coordinator")
            db.commit()
        yield app


@pytest.fixture
def phone(app):
    return SimulatedPhone(FlaskTransport(app), AUTH_TOKEN, ACCOUNT_SID, LINE, PUBLIC,
                          network={"+19375550911": Dispatcher()})


def interval_passes(app) -> None:
    """TWILIO_PROBE_SECONDS later (without waiting 30 s): the probe may go again."""
    app.extensions["redis"].delete(Keys.twilio_probe())


def test_with_twilio_unreachable_the_worker_probes_once_per_interval_and_frees_everyone(app, phone, refusing):
    r = app.extensions["redis"]
    queued_caller(app, phone)
    text_on(app, phone, ALICE, "Alice Mediator")
    text_on(app, phone, BRUNO, "Bruno Mediator")
    for _ in range(3):
        work(app)
        with app.app_context():
            jobs.dispatch()
            jobs.sweep()
        work(app)

    assert refusing.connections == 1  # the first request found Twilio down; nothing else asked since
    assert leases(app) == {"Alice Mediator": None, "Bruno Mediator": None}
    row = request_row(app)
    assert row.status == "pending" and row.attempts == 0 and row.call.outcome == "callback_queued"
    down = health.twilio_rest.down_since(r)
    assert down is not None

    client = app.test_client()
    assert login(client, "coord@city.gov").status_code == 302
    page = client.get("/dashboard/").get_data(as_text=True)
    since = datetime.fromtimestamp(down, ZoneInfo("Asia/Kolkata")).strftime("%H:%M")
    assert (f'<p class="banner health" role="alert">{UNREACHABLE} {since}: calls to specialists and callbacks '
            "are waiting.</p>") in page

    interval_passes(app)
    with app.app_context():
        assert jobs.dispatch() == 0
    work(app)
    assert refusing.connections == 2  # one probe for the interval, and still nobody claimed
    assert leases(app) == {"Alice Mediator": None, "Bruno Mediator": None}

    # Twilio is back.
    fake = FakeTwilio(phone, ACCOUNT_SID, AUTH_TOKEN, LINE)
    app.config["TWILIO_API_BASE_URL"] = fake.start()
    try:
        interval_passes(app)
        with app.app_context():
            assert jobs.sweep()["placed"] == 1
        work(app)
        assert fake.wait_for_calls(20)
        assert [call.to for call in fake.calls] == [ALICE, CALLER]
        assert fake.calls[0].record.bridged_with == [CALLER]
        assert request_row(app).status == "completed"
        assert health.twilio_rest.down_since(r) is None
        assert UNREACHABLE not in client.get("/dashboard/").get_data(as_text=True)
    finally:
        fake.stop()
    assert refusing.connections == 2
