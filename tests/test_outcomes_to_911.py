"""Outcomes back to 911: a call or case from 911 that closes is reported once, POSTed signed to the center's
receiver by a real RQ worker, retried with backoff while the receiver is down, and kept for the daily CSV."""

from __future__ import annotations

import csv
import hashlib
import hmac
import io
import itertools
import json
import socket
import threading
import time
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select
from werkzeug.wrappers import Request, Response

from tests.support import CALLER, DISPATCH, PASSWORD, fresh_app, login, serve_app, settings, whole_line, work
from voice import clock, tasks
from voice.casework import cases
from voice.dashboard.auth import create_user
from voice.line import calls
from voice.models import AuditEntry, Call, CaseEvent, OutcomeReport
from voice.models import Case as CaseRow
from voice.reporting import outcomes
from voice.simulator import ScriptedCaller
from workers.jobs import sweep

SECRET = "a-long-shared-secret-for-the-911-center"
SIDS = itertools.count(1)


class Receiver:
    """The 911 center's end: answers each POST with the next status in `answers` (then 200), and keeps it."""

    def __init__(self, answers=()):
        self.answers = list(answers)
        self.seen: list[tuple[dict, bytes]] = []
        self.lock = threading.Lock()

    def __call__(self, environ, start_response):
        request = Request(environ)
        with self.lock:
            self.seen.append((dict(request.headers), request.get_data()))
            status = self.answers.pop(0) if self.answers else 200
        return Response("ok", status=status)(environ, start_response)

    def bodies(self) -> list[dict]:
        return [json.loads(body) for _, body in self.seen]


def closed_port() -> str:
    """A URL where nothing listens: the receiver is down."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return f"http://127.0.0.1:{port}/outcomes"


def wait_for(predicate, timeout: float = 15) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.05)
    raise AssertionError("timed out")


def reports(app) -> list[OutcomeReport]:
    with app.app_context():
        session = app.extensions["db"].session()
        rows = session.scalars(select(OutcomeReport).order_by(OutcomeReport.id)).all()
        session.expunge_all()
        session.rollback()
        return rows


@pytest.fixture
def receiver():
    center = Receiver()
    url, server = serve_app(center)
    center.url = url + "/outcomes"
    yield center
    server.shutdown()


def test_a_911_call_sent_back_for_danger_is_posted_signed_to_the_center(redis_url, database_url, receiver):
    with whole_line(redis_url, database_url, OUTCOME_WEBHOOK_URL=receiver.url, OUTCOME_WEBHOOK_SECRET=SECRET) as line:
        record = line.phone.call_line(CALLER, ScriptedCaller(["1"]))
        assert record.bridged_with == [DISPATCH]
        wait_for(lambda: receiver.seen)
        line.settle()
    assert len(receiver.seen) == 1
    headers, body = receiver.seen[0]
    sent = json.loads(body)
    assert sent == {"id": sent["id"], "event": "call.closed", "incident_number": None, "outcome": "escalated",
                    "reason": "danger", "police_needed": True, "closed_at": sent["closed_at"]}
    assert sent["id"].startswith("call-") and sent["id"].endswith("-escalated")
    assert headers["X-Outcome-Delivery"] == sent["id"] and headers["X-Outcome-Event"] == "call.closed"
    # Both schemes check out with the shared secret, computed here from their docs, not from our code.
    stamp, signature = (part.split("=", 1)[1] for part in headers["X-Outcome-Signature"].split(","))
    assert signature == hmac.new(SECRET.encode(), stamp.encode() + b"." + body, hashlib.sha256).hexdigest()
    assert abs(int(stamp) - time.time()) < 60
    assert headers["X-Outcome-Signature-256"] == "sha256=" + hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
    assert outcomes.verify(SECRET, body, headers["X-Outcome-Signature"])
    assert nothing_personal(body)
    [row] = reports(line.app)
    assert (row.status, row.attempts, row.police_needed) == ("delivered", 1, True)


def nothing_personal(body: bytes) -> bool:
    return CALLER[2:] not in body.decode() and "Dana" not in body.decode()


def test_the_signature_refuses_a_changed_body_another_secret_and_an_old_replay():
    body = b'{"id":"call-1-bridged"}'
    headers = outcomes.signature_headers(SECRET, body, "call-1-bridged", "call.closed", 1_800_000_000)
    header = headers["X-Outcome-Signature"]
    expected = hmac.new(SECRET.encode(), b"1800000000." + body, hashlib.sha256).hexdigest()
    assert header == f"t=1800000000,v1={expected}"
    assert outcomes.verify(SECRET, body, header, now=1_800_000_100)
    assert not outcomes.verify(SECRET, body + b" ", header, now=1_800_000_100)
    assert not outcomes.verify("another secret", body, header, now=1_800_000_100)
    assert not outcomes.verify(SECRET, body, header, now=1_800_000_000 + 301)  # five minutes: a replay
    assert not outcomes.verify(SECRET, body, "v1=" + expected, now=1_800_000_000)
    assert not outcomes.verify(SECRET, body, "t=soon,v1=" + expected, now=1_800_000_000)


@pytest.fixture
def app(redis_url, database_url, receiver):
    with fresh_app(settings(redis_url, database_url, OUTCOME_WEBHOOK_URL=receiver.url, OUTCOME_WEBHOOK_SECRET=SECRET,
                            OUTCOME_RETRY_SECONDS="0,0,0")) as app:
        yield app


def close_a_call(app, source="911", outcome=calls.BRIDGED, incident="CAD-2026-000123") -> int:
    """A call from `source` that a specialist took, ending now (in the app, as the status callback ends it)."""
    with app.app_context():
        db = app.extensions["db"].session()
        call = Call(call_sid=f"CA{next(SIDS):032d}", from_number=CALLER, source=source,
                    incident_number=incident, outcome=outcome, connected_at=clock.utcnow())
        db.add(call)
        db.flush()
        calls.end_call(db, call)
        db.commit()
        return call.id


def drain(app) -> None:
    """A real RQ worker runs what is queued (retries with a wait of 0 come straight back to the queue)."""
    work(app)


def test_retries_back_off_as_set_and_deliver_once(app, receiver):
    receiver.answers = [503, 502]
    call_id = close_a_call(app)
    r = app.extensions["redis"]
    [job] = tasks.queue(r).jobs
    assert (job.func_name, job.args, job.retries_left, job.retry_intervals) == (
        tasks.DELIVER_OUTCOME, (reports(app)[0].id,), 3, [0, 0, 0])
    drain(app)
    assert [json.loads(body)["id"] for _, body in receiver.seen] == [f"call-{call_id}-bridged"] * 3
    [row] = reports(app)
    assert (row.status, row.attempts, row.incident_number) == ("delivered", 3, "CAD-2026-000123")
    assert receiver.bodies()[0]["incident_number"] == "CAD-2026-000123"
    # The same report asked for again (a duplicate job, a sweep) is not POSTed again.
    with app.app_context():
        assert outcomes.deliver(app.extensions["db"].session(), row.id, app.config) == "nothing to send"
        assert outcomes.requeue(app.extensions["db"].session(), r, app.config) == 0
    assert len(receiver.seen) == 3


def test_the_default_backoff_is_the_settings(redis_url, database_url, receiver):
    with fresh_app(settings(redis_url, database_url, OUTCOME_WEBHOOK_URL=receiver.url,
                            OUTCOME_WEBHOOK_SECRET=SECRET)) as app:
        close_a_call(app)
        [job] = tasks.queue(app.extensions["redis"]).jobs
        assert job.retry_intervals == [30, 120, 600, 1800]


def test_a_receiver_that_is_down_loses_nothing_the_sweep_sends_it_when_it_is_back(app, receiver, monkeypatch,
                                                                                   client):
    app.config["OUTCOME_WEBHOOK_URL"] = closed_port()
    call_id = close_a_call(app)
    drain(app)
    [row] = reports(app)
    assert (row.status, row.attempts) == ("failed", 4)  # the first try and RQ's three retries
    assert row.last_error.startswith("ConnectionError")
    # The board says so.
    with app.app_context():
        create_user(app.extensions["db"].session(), "coord@city.gov", PASSWORD, "coordinator")
        app.extensions["db"].session().commit()
    login(client, "coord@city.gov")
    board = client.get("/dashboard/").get_data(as_text=True)
    assert "1 outcome report to the 911 center has not been delivered" in board
    # An hour later the receiver is back; the sweep sends it, once.
    app.config["OUTCOME_WEBHOOK_URL"] = receiver.url
    later = clock.utcnow() + timedelta(hours=1, minutes=1)
    monkeypatch.setattr(clock, "now", lambda: later)
    with app.app_context():
        assert outcomes.requeue(app.extensions["db"].session(), app.extensions["redis"], app.config) == 1
    drain(app)
    assert [body["id"] for body in receiver.bodies()] == [f"call-{call_id}-bridged"]
    assert reports(app)[0].status == "delivered"
    assert "has not been delivered" not in client.get("/dashboard/").get_data(as_text=True)
    with app.app_context():
        assert outcomes.requeue(app.extensions["db"].session(), app.extensions["redis"], app.config) == 0


def test_a_refusal_is_not_retried_by_rq_and_a_dead_senders_report_is_swept(app, receiver, monkeypatch):
    receiver.answers = [400]
    close_a_call(app)
    drain(app)
    [row] = reports(app)
    assert (row.status, row.attempts, row.last_error) == ("failed", 1, "HTTP 400")
    # A worker that died mid-POST leaves the report "sending"; ten minutes on, the sweep takes it back.
    with app.app_context():
        db = app.extensions["db"].session()
        db.get(OutcomeReport, row.id).status = "sending"
        db.commit()
    later = clock.utcnow() + timedelta(hours=2)
    monkeypatch.setattr(clock, "now", lambda: later)
    with app.app_context():
        summary = sweep()
    assert summary["outcomes"] == 1
    drain(app)
    assert reports(app)[0].status == "delivered"


def test_only_calls_from_911_are_reported_and_a_repeat_close_writes_one(app, receiver):
    close_a_call(app, source="public")
    handoff = close_a_call(app, source="handoff", incident=None)
    with app.app_context():
        db = app.extensions["db"].session()
        call = db.get(Call, handoff)
        calls.end_call(db, call)  # Twilio's status callback again
        calls.set_outcome(db, call, calls.BRIDGED)
        db.commit()
    assert [(row.subject_id, row.outcome) for row in reports(app)] == [(handoff, "bridged")]


def test_a_callback_that_reaches_the_caller_later_is_a_new_close(app, receiver):
    call_id = close_a_call(app, outcome=calls.CALLBACK_QUEUED)
    assert reports(app) == []  # a callback is still to come: not closed
    with app.app_context():
        db = app.extensions["db"].session()
        calls.set_outcome(db, db.get(Call, call_id), calls.CALLBACK_COMPLETED)
        db.commit()
    assert [row.outcome for row in reports(app)] == ["callback_completed"]


def test_a_case_from_911_reports_its_close_with_police_still_needed_after_a_visits_call(app, receiver):
    with app.app_context():
        db = app.extensions["db"].session()
        call = Call(call_sid="CA" + "7" * 32, from_number=CALLER, source="911", incident_number="CAD-77",
                    outcome=calls.BRIDGED, ended_at=clock.utcnow())
        db.add(call)
        db.flush()
        case = cases.open_or_join(db, call, 30)
        db.add(CaseEvent(case_id=case.id, kind="safety_dispatch_called"))
        quiet_case = CaseRow(opened_at=clock.utcnow(), status="open")
        db.add(quiet_case)
        db.flush()
        db.add(Call(call_sid="CA" + "8" * 32, from_number=CALLER, source="public", case_id=quiet_case.id))
        cases.close(db, case, "resolved", in_person=True)
        cases.close(db, quiet_case, "resolved_by_phone", in_person=False)  # from the public line: not reported
        db.commit()
        case_id = case.id
    [row] = [row for row in reports(app) if row.subject == "case"]
    body = json.loads(row.body)
    assert body == {"id": f"case-{case_id}-resolved", "event": "case.closed", "incident_number": "CAD-77",
                    "outcome": "resolved", "reason": None, "police_needed": True, "closed_at": body["closed_at"]}
    drain(app)
    assert {sent["event"] for sent in receiver.bodies()} == {"case.closed"}


def test_without_a_webhook_nothing_is_sent_and_the_daily_csv_still_has_it(redis_url, database_url, client_factory):
    with fresh_app(settings(redis_url, database_url)) as app:
        moment = datetime(2026, 11, 10, 15, 30)  # 10:30 in New York
        original = clock.now
        clock.now = lambda: moment
        try:
            close_a_call(app, incident="CAD-9")
            close_a_call(app, outcome=calls.ESCALATED, incident=None)
        finally:
            clock.now = original
        assert [row.status for row in reports(app)] == ["kept", "kept"]
        assert tasks.queue(app.extensions["redis"]).count == 0
        runner = app.test_cli_runner()
        result = runner.invoke(args=["report", "outcomes", "--day", "2026-11-10"])
        assert result.exit_code == 0, result.output
        lines = list(csv.DictReader(io.StringIO(result.output)))
        assert [(line["incident_number"], line["outcome"], line["police_needed"], line["sent"]) for line in lines] == [
            ("CAD-9", "bridged", "false", "kept"), ("", "escalated", "true", "kept")]
        assert lines[0]["closed_at"] == "2026-11-10T15:30:00Z"
        assert runner.invoke(args=["report", "outcomes", "--day", "2026-11-11"]).output.count("\n") == 1
        client = client_factory(app)
        with app.app_context():
            db = app.extensions["db"].session()
            create_user(db, "coord@city.gov", PASSWORD, "coordinator")
            create_user(db, "spec@city.gov", PASSWORD, "specialist")
            db.commit()
        login(client, "spec@city.gov")
        assert client.get("/dashboard/reports/outcomes.csv?day=2026-11-10").status_code == 403
        client.post("/dashboard/logout", data={})
        client = client_factory(app)
        login(client, "coord@city.gov")
        response = client.get("/dashboard/reports/outcomes.csv?day=2026-11-10")
        assert response.status_code == 200 and response.mimetype == "text/csv"
        assert list(csv.DictReader(io.StringIO(response.get_data(as_text=True)))) == lines
        with app.app_context():
            audited = app.extensions["db"].session().scalars(
                select(AuditEntry.action).where(AuditEntry.action == "export_outcomes")).all()
        assert len(audited) == 3  # the command twice and the coordinator's download, not the refused one


@pytest.fixture
def client_factory():
    return lambda app: app.test_client()


def test_the_signed_example_in_the_docs_checks_out():
    """docs/reports.md shows a POST signed with `example-secret`: a receiver following it must accept it."""
    doc = (Path(__file__).resolve().parent.parent / "docs" / "reports.md").read_text()
    block = doc[doc.index("```http"):]
    block = block[:block.index("\n```", 3)]
    headers = dict(line.split(": ", 1) for line in block.splitlines()[2:] if ": " in line)
    body = block.splitlines()[-1].encode()
    stamp = int(headers["X-Outcome-Signature"].split(",")[0][2:])
    assert outcomes.verify("example-secret", body, headers["X-Outcome-Signature"], now=stamp + 10)
    assert headers["X-Outcome-Signature-256"] == outcomes.signature_headers(
        "example-secret", body, "", "", stamp)["X-Outcome-Signature-256"]
    assert json.loads(body)["id"] == headers["X-Outcome-Delivery"]
