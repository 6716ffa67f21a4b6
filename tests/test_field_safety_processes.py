"""An escalation against a real `rq worker` process that is killed and started again mid-ladder, and against a
Redis flushed mid-ladder: the sweep rebuilds the timers from SQL and the ladder still reaches dispatch.

Twilio's REST API is the fake served over HTTP (the worker reaches it as it would reach Twilio); the calls it
places ring on the simulated phone, whose webhooks reach the app in this process. The worker keeps real time,
so "minutes later" is made in SQL: the visit's and the alert's times move back, then the sweep runs as cron
would, and finds the step owed now.
"""

from __future__ import annotations

import time
from datetime import timedelta
from pathlib import Path

import pytest
from rq import Worker
from sqlalchemy import select

from tests.support import (
    ACCOUNT_SID,
    ALICE,
    AUTH_TOKEN,
    BRUNO,
    CALLER,
    LINE,
    fresh_app,
    kill_session,
    settings,
    start_worker,
)
from voice.casework import visits
from voice.clock import utcnow
from voice.line import calls, specialists
from voice.models import Case, SafetyAlert, Visit
from voice.simulator import Dispatcher, SpecialistPhone
from voice.simulator.fake_twilio import FakeTwilio
from workers import jobs

COORDINATOR = "+19375550300"
BACKUP_1, BACKUP_2 = "+19375550401", "+19375550402"
NON_EMERGENCY = "+19375550999"


@pytest.fixture
def fake_twilio():
    fake = FakeTwilio(None, ACCOUNT_SID, AUTH_TOKEN, LINE)
    fake.start()
    yield fake
    fake.stop()


@pytest.fixture
def config(redis_url, database_url, fake_twilio):
    return settings(redis_url, database_url, TWILIO_API_BASE_URL=fake_twilio.url, REST_RETRY_SECONDS="0",
                    SAFETY_COORDINATOR_NUMBERS=COORDINATOR, SAFETY_BACKUP_NUMBERS=f"{BACKUP_1},{BACKUP_2}",
                    SAFETY_DISPATCH_NUMBER=NON_EMERGENCY)


@pytest.fixture
def app(config):
    with fresh_app(config) as app:
        yield app


@pytest.fixture
def phone(phone, fake_twilio):
    fake_twilio.phone = phone
    phone.network.update({COORDINATOR: SpecialistPhone("coordinator", accept=None),
                          BACKUP_1: SpecialistPhone("backup one", answers=False),
                          BACKUP_2: SpecialistPhone("backup two", accept=None), NON_EMERGENCY: Dispatcher()})
    return phone


def visit_on_now(app) -> int:
    """Ana and Ben on a visit that began a few minutes ago."""
    with app.app_context():
        db = app.extensions["db"].session()
        team = [specialists.add_specialist(db, name, number, ["en"]).id
                for name, number in (("Ana Ruiz", ALICE), ("Ben Cole", BRUNO))]
        call = calls.start_call(db, "CA1", CALLER, LINE)
        visit = visits.schedule(db, app.extensions["redis"], app.config, db.get(Case, call.case_id),
                                visits.Plan(utcnow() + timedelta(minutes=5), team, "1200 Salem Ave"))
        visit.starts_at -= timedelta(minutes=10)
        visit.ends_at -= timedelta(minutes=10)
        db.commit()
        return visit.id


def minutes_pass(app, minutes: int) -> None:
    """As if `minutes` had passed for the visit and its alert (SQL), then the sweep cron runs once a minute."""
    back = timedelta(minutes=minutes)
    with app.app_context():
        db = app.extensions["db"].session()
        # In Python, not SQL: SQLite keeps datetimes as text, which it cannot subtract from.
        for visit in db.scalars(select(Visit).where(Visit.checked_in_at.is_not(None))):
            visit.checked_in_at -= back
            visit.expected_back_at -= back
        for alert in db.scalars(select(SafetyAlert)):
            alert.rung_at -= back
            alert.opened_at -= back
        db.commit()
        jobs.sweep()
        app.extensions["db"].session.remove()


def until(what: str, done, log: Path, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not done():
        assert time.monotonic() < deadline, f"gave up waiting for {what}; the worker's log:\n{log.read_text()[-3000:]}"
        time.sleep(0.05)


def asked(fake) -> list[tuple[str, str]]:
    return [("text", t["to"]) for t in fake.texts if "Visit booked" not in t["body"]] + [("call", c.to) for c in fake.calls]


def rung(app) -> str | None:
    with app.app_context():
        db = app.extensions["db"].session()
        found = db.scalar(select(SafetyAlert.rung))
        db.close()
        return found


@pytest.mark.parametrize("mid_ladder", ["worker_restarted", "redis_flushed"])
def test_an_escalation_survives_a_worker_restart_or_a_redis_flush_and_reaches_dispatch(app, config, phone,
                                                                                        fake_twilio, tmp_path,
                                                                                        mid_ladder):
    r = app.extensions["redis"]
    visit_on_now(app)
    status, reply = phone.send_sms(ALICE, "IN")
    assert status == 200 and "Checked in at 1200 Salem Ave" in reply
    log_path = tmp_path / "worker.log"
    log = open(log_path, "w")  # noqa: SIM115 (the worker writes to it until it is stopped)
    worker = start_worker(config, burst=False, output=log)
    try:
        minutes_pass(app, 56)  # due back 45 minutes after the check-in, plus 10 of grace
        until("the team's texts", lambda: len(asked(fake_twilio)) == 2, log_path)
        assert rung(app) == "team"

        if mid_ladder == "worker_restarted":
            assert kill_session(worker.pid) >= 1  # SIGKILL: its scheduler and the timer it held go with it
            worker.wait(10)
            worker = start_worker(config, burst=False, output=log)
        else:
            r.flushdb()  # every RQ job and timer is gone; SQL still knows the alert is on the team's rung
        minutes_pass(app, 6)
        until("the coordinator's call", lambda: len(asked(fake_twilio)) == 4 and fake_twilio.wait_for_calls(0), log_path)
        minutes_pass(app, 6)
        until("both backups' calls", lambda: len(asked(fake_twilio)) == 6 and fake_twilio.wait_for_calls(0), log_path)
        minutes_pass(app, 6)
        until("dispatch's call", lambda: len(asked(fake_twilio)) == 7 and fake_twilio.wait_for_calls(0), log_path)
    finally:
        kill_session(worker.pid)
        worker.wait(10)
        log.close()
    assert asked(fake_twilio) == [("text", ALICE), ("text", BRUNO), ("text", COORDINATOR), ("call", COORDINATOR),
                                  ("call", BACKUP_1), ("call", BACKUP_2), ("call", NON_EMERGENCY)], \
        (tmp_path / "worker.log").read_text()[-3000:]
    assert rung(app) == "dispatch"
    assert "Please send a welfare check to 1200 Salem Ave." in fake_twilio.calls[-1].record.heard("911 dispatch")


def test_an_sos_reaches_the_coordinator_and_dispatch_within_a_minute_through_a_real_worker(app, config, phone,
                                                                                          fake_twilio, tmp_path):
    visit_on_now(app)
    phone.send_sms(ALICE, "IN")
    log_path = tmp_path / "worker.log"
    log = open(log_path, "w")  # noqa: SIM115 (the worker writes to it until it is stopped)
    worker = start_worker(config, burst=False, output=log)
    try:
        until("the worker to start", lambda: Worker.count(connection=app.extensions["redis"]) > 0, log_path)
        sent = time.monotonic()
        status, reply = phone.send_sms(BRUNO, "SOS")
        assert status == 200 and "We are calling the coordinator and dispatch now" in reply
        until("the coordinator's and dispatch's calls", lambda: {COORDINATOR, NON_EMERGENCY} <= {c.to for c in fake_twilio.calls},
              log_path)
        took = time.monotonic() - sent
    finally:
        kill_session(worker.pid)
        worker.wait(10)
        log.close()
    print(f"SOS to both calls placed: {took:.2f} s")
    assert took < 60
