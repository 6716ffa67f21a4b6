"""Callbacks against real `rq worker` processes: one SIGKILLed while Twilio places the call, two racing.

Twilio's REST API is the simulator's fake served over HTTP (TWILIO_API_BASE_URL points at it), so the worker
processes reach it exactly as they would reach Twilio.
"""

from __future__ import annotations

import threading
import time
from datetime import timedelta

import pytest
from rq.registry import StartedJobRegistry
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
    leases,
    queued_caller,
    request_row,
    settings,
    start_worker,
    text_on,
    work,
)
from voice import clock
from voice.models import CallbackRequest
from voice.simulator import ScriptedCaller
from voice.simulator.fake_twilio import FakeTwilio
from voice.tasks import queue as callback_queue
from workers import jobs


@pytest.fixture
def fake_twilio():
    """The fake Twilio REST API served on a local port; the calls it places ring when a test says."""
    fake = FakeTwilio(None, ACCOUNT_SID, AUTH_TOKEN, LINE, autoplay=False)
    fake.start()
    yield fake
    fake.stop()


@pytest.fixture
def phone(phone, fake_twilio):
    fake_twilio.phone = phone
    return phone


@pytest.fixture
def config(redis_url, database_url, fake_twilio):
    return settings(redis_url, database_url, TWILIO_API_BASE_URL=fake_twilio.url, REST_RETRY_SECONDS="0",
                    STALE_ATTEMPT_SECONDS="1")


@pytest.fixture
def app(config):
    with fresh_app(config) as app:
        yield app



@pytest.mark.parametrize("then", ["rq_retries_the_job", "redis_flushed"])
def test_worker_killed_while_twilio_places_the_call_rings_the_specialist_once(app, config, phone, fake_twilio,
                                                                               runner, then, monkeypatch):
    """SIGKILL a real worker and its work-horse mid-REST-call: the attempt is adopted, never placed twice."""
    r = app.extensions["redis"]
    queued_caller(app, phone)
    text_on(app, phone, ALICE, "Alice Mediator")
    fake_twilio.answer_gate = threading.Event()  # Twilio places the call and holds its answer
    worker = start_worker(config)
    deadline = time.monotonic() + 30
    while not fake_twilio.calls:
        assert time.monotonic() < deadline, "the worker never reached Twilio"
        time.sleep(0.01)
    assert kill_session(worker.pid) >= 2  # the worker and the work-horse inside Calls.create
    worker.wait(10)
    fake_twilio.answer_gate.set()
    time.sleep(0.3)  # a surviving work-horse would save the Call SID now; a killed one cannot
    assert len(fake_twilio.calls) == 1
    row = request_row(app)
    assert row.status == "in_progress" and row.attempt_call_sid is None
    later = clock.utcnow() + timedelta(seconds=2)
    monkeypatch.setattr(clock, "now", lambda: later)  # the attempt is now older than STALE_ATTEMPT_SECONDS (1)

    if then == "rq_retries_the_job":
        # RQ notices a dead worker's job once its heartbeat runs out; make that moment now.
        registry = StartedJobRegistry(queue=callback_queue(r))
        r.zadd(registry.key, {member: 0 for member in r.zrange(registry.key, 0, -1)})
        with app.app_context():
            summary = jobs.sweep()  # RQ re-queues the job (a retry is left); the sweep leaves it to RQ
        assert summary["recovered"] == 0
        work(app)  # the re-run asks Twilio first and finds the call the killed run placed
    else:
        r.flushdb()  # the job, the lease and the idle queues are gone with it
        assert runner.invoke(args=["callbacks", "reconcile"]).exit_code == 0
        with app.app_context():
            summary = jobs.sweep()
        assert summary["recovered"] == 0

    row = request_row(app)
    assert len(fake_twilio.calls) == 1
    assert row.status == "in_progress" and row.attempt_call_sid == fake_twilio.calls[0].sid
    assert leases(app)["Alice Mediator"] == f"callback:{row.id}"  # no live call can take her meanwhile

    # Twilio goes on with the call it placed: Alice hears the case, presses 1, the caller is reached.
    leg, _ = fake_twilio.ring_pending()
    assert leg.bridged_with == [CALLER]
    with app.app_context():
        jobs.sweep()
    work(app)
    assert [c.to for c in fake_twilio.calls] == [ALICE, CALLER], "the specialist must be rung once for this attempt"
    assert request_row(app).status == "completed"


def test_two_worker_processes_racing_never_dial_a_request_or_a_specialist_twice(app, config, phone, fake_twilio):
    callers = [f"+1937555{1000 + i:04d}" for i in range(6)]
    for number in callers:
        phone.network[number] = ScriptedCaller(label=number)
        record = phone.call_line(number, ScriptedCaller(["2", "6", "Dana", "Main Street", "1", "noise", "1"]))
        assert record.problems == []
    text_on(app, phone, ALICE, "Alice Mediator")
    text_on(app, phone, BRUNO, "Bruno Mediator")
    text_on(app, phone, "+19375550203", "Chen Mediator")
    queue = callback_queue(app.extensions["redis"])
    for _ in range(30):
        queue.enqueue(jobs.dispatch)  # plenty for both workers to dispatch at the same moments
    workers = [start_worker(config), start_worker(config)]
    for worker in workers:
        assert worker.wait(60) == 0, worker.stdout.read().decode()[-2000:]

    placed = fake_twilio.calls
    assert len(placed) == 3  # three specialists, each rung once, for three different requests
    assert sorted(p.to for p in placed) == sorted([ALICE, BRUNO, "+19375550203"])
    request_ids = [p.url.split("request=")[1].split("&")[0] for p in placed]
    assert len(set(request_ids)) == 3
    with app.app_context():
        rows = app.extensions["db"].session().scalars(select(CallbackRequest).order_by(CallbackRequest.id)).all()
        assert [row.status for row in rows] == ["in_progress"] * 3 + ["pending"] * 3  # oldest first
        assert {str(row.id) for row in rows[:3]} == set(request_ids)
