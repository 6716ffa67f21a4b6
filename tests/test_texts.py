"""Texts that are really delivered: every text the line sends has a status callback, the call's (or the case's)
timeline records what became of it, a failed confirmation shows to the coordinator, STOP is Twilio's opt-out (not
OFF), and a stranger's text gets a reply meant for callers."""

from __future__ import annotations

import json
import time
from datetime import timedelta

import pytest
from defusedxml.ElementTree import fromstring
from sqlalchemy import select

from tests.support import (
    ALICE,
    CALLER,
    INTAKE,
    LINE,
    load_call,
    login,
    request_row,
    signed,
    whole_line,
)
from voice.casework import visits
from voice.clock import utcnow
from voice.dashboard.auth import create_user
from voice.line import specialists
from voice.models import Case, CaseEvent, Specialist, User, VisitMessage
from voice.simulator import Landline, ScriptedCaller
from voice.twilio_rest import MESSAGE_STATUSES

COORDINATOR = "coord@city.gov"
PASSWORD = "correct horse battery"


@pytest.fixture
def line(redis_url, database_url):
    with whole_line(redis_url, database_url) as whole:
        yield whole


def text_statuses(call) -> list[tuple[str, int | None]]:
    """The text's statuses on the timeline, in the order a text goes through them: Twilio's "sent" callback may
    reach the line before the job that sent the text has written "queued", as on a real network."""
    seen = [(d["status"], d.get("code")) for d in (json.loads(e.detail) for e in call.events if e.kind == "sms_status")]
    return sorted(seen, key=lambda pair: MESSAGE_STATUSES.index(pair[0]) if pair[0] in MESSAGE_STATUSES else 99)


def wait_for(condition, timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.02)
    raise AssertionError("timed out")


def call_for_a_callback(line, caller=None):
    """A caller nobody could take: their confirmation text goes out, and Twilio reports on it to the end."""
    record = line.phone.call_line(CALLER, caller or ScriptedCaller(INTAKE))
    line.settle()
    wait_for(lambda: line.fake.texts and line.fake.texts[-1]["status"] not in ("queued", "sent"))
    line.phone.settle()
    assert record.problems == [] and line.fake.problems == []
    return load_call(line.app, record.call_sid)


def page(line, path: str) -> str:
    with line.app.app_context():
        session = line.app.extensions["db"].session()
        if session.scalar(select(User).where(User.email == COORDINATOR)) is None:
            create_user(session, COORDINATOR, PASSWORD, "coordinator")
            session.commit()
    client = line.app.test_client()
    assert login(client, COORDINATOR, PASSWORD).status_code == 302
    return client.get(path).get_data(as_text=True)


def test_a_delivered_confirmation_is_on_the_timeline_and_worries_nobody(line):
    call = call_for_a_callback(line)
    assert text_statuses(call) == [("queued", None), ("sent", None), ("delivered", None)]
    row = request_row(line.app)
    assert (row.text_status, row.text_error_code) == ("delivered", None)
    assert "The text to the caller was" not in page(line, "/dashboard/callbacks")


def test_a_confirmation_to_a_landline_that_never_arrives_shows_to_the_coordinator(line):
    line.phone.network[CALLER] = Landline(label="caller at home")
    call = call_for_a_callback(line, Landline(INTAKE))
    assert text_statuses(call) == [("queued", None), ("sent", None), ("undelivered", 30006)]
    row = request_row(line.app)
    assert (row.text_status, row.text_error_code) == ("undelivered", 30006)
    warning = "The text to the caller was undelivered (a landline, or a carrier that takes no texts; error 30006)"
    assert warning in page(line, "/dashboard/callbacks")
    assert warning in page(line, f"/dashboard/calls/{call.id}")


def test_an_unregistered_10dlc_number_is_named_as_the_reason(line):
    line.phone.messaging.unregistered_sender(LINE)
    call_for_a_callback(line)
    assert request_row(line.app).text_error_code == 30034
    assert "not registered for texting (A2P 10DLC)" in page(line, "/dashboard/callbacks")


def test_a_caller_who_texted_stop_is_recorded_as_opted_out_and_not_retried(line):
    line.phone.send_sms(CALLER, "STOP")
    record = line.phone.call_line(CALLER, ScriptedCaller(INTAKE))
    line.settle()
    assert record.problems == []
    call = load_call(line.app, record.call_sid)
    assert [json.loads(e.detail)["code"] for e in call.events if e.kind == "sms_not_sent"] == [21610]
    assert line.fake.texts == [] and line.worker.failures == []
    assert request_row(line.app).text_status == "opted_out"
    assert "the number texted STOP to the line" in page(line, "/dashboard/callbacks")


def sms(line, sender: str, body: str, **extra) -> str:
    """The app's reply to a text (Twilio's keyword handling applied first), as the words it would send."""
    if extra:
        params = {"AccountSid": "AC" + "0" * 32, "MessageSid": "SM1", "From": sender, "To": LINE, "Body": body, **extra}
        response = signed(line.app.test_client(), "/sms/incoming", params)
        status, xml = response.status_code, response.get_data(as_text=True)
    else:
        status, xml = line.phone.send_sms(sender, body)
    assert status == 200
    return " ".join(m.text or "" for m in fromstring(xml.encode()).iter("Message"))


def alice(line) -> Specialist:
    with line.app.app_context():
        session = line.app.extensions["db"].session()
        found = session.scalar(select(Specialist).where(Specialist.phone == ALICE))
        session.expunge_all()
        return found


def test_stop_is_twilios_opt_out_not_off_and_start_brings_texts_back(line):
    line.add_specialist("Alice Mediator", ALICE)
    assert sms(line, ALICE, "STOP") == ""  # Twilio answered it, and would refuse ours (21610)
    assert line.phone.messaging.replies_to(ALICE)[0].startswith("You have successfully been unsubscribed")
    stopped = alice(line)
    assert stopped.available is True and stopped.texts_opted_out_at is not None  # still taking calls
    assert "until they text START to (937) 555-0100" in page(line, "/dashboard/roster")
    reply = sms(line, ALICE, "start")
    assert reply.startswith("Texts from this line are back on. You are ON for calls.")
    assert alice(line).texts_opted_out_at is None and alice(line).available is True
    assert "START undoes it" in sms(line, ALICE, "STATUS")
    assert "START undoes it" in sms(line, ALICE, "HELP")


def test_advanced_opt_out_types_are_honoured_whatever_the_word(line):
    line.add_specialist("Alice Mediator", ALICE)
    assert sms(line, ALICE, "ALTO", OptOutType="STOP") == ""
    assert alice(line).texts_opted_out_at is not None


def test_a_stranger_gets_a_reply_meant_for_callers_in_their_language(line):
    reply = sms(line, CALLER, "Thanks, what time will you call?")
    assert reply == ("Mediation Response Program: texts to this number are not read. To talk with a mediation "
                     "specialist, call (937) 555-0100. In an emergency, call 911.")
    assert "roster" not in reply
    line.phone.call_line(CALLER, ScriptedCaller(["9", "2", "1"]))  # a Spanish caller, nobody on, hangs up later
    assert "llame al (937) 555-0100. En una emergencia, llame al 911." in sms(line, CALLER, "¿Cuándo llaman?")


def test_visit_texts_report_their_status_on_the_case_and_a_stopped_specialist_is_marked(line):
    record = line.phone.call_line(CALLER, ScriptedCaller(["0"]))  # straight to dispatch: a call, a case
    line.phone.network[CALLER] = Landline(label="caller at home")
    line.add_specialist("Alice Mediator", ALICE, on=False)
    bruno = "+19375550202"
    line.add_specialist("Bruno Mediator", bruno, on=False)
    line.phone.send_sms(bruno, "STOP")
    call = load_call(line.app, record.call_sid)
    with line.app.app_context():
        db = line.app.extensions["db"].session()
        team = [s.id for s in db.scalars(select(Specialist).order_by(Specialist.id))]
        plan = visits.Plan(utcnow() + timedelta(days=2), team, "1200 Salem Ave", CALLER, "en")
        visits.schedule(db, line.app.extensions["redis"], line.app.config, db.get(Case, call.case_id), plan,
                        confirmed=True)
        db.commit()
    line.settle()
    wait_for(lambda: len(statuses_of(line)) == 3 and not {"queued", "sent"} & set(statuses_of(line).values()))
    assert statuses_of(line) == {"caller": "undelivered", f"specialist:{team[0]}": "delivered",
                                 f"specialist:{team[1]}": "opted_out"}
    with line.app.app_context():
        db = line.app.extensions["db"].session()
        events = [json.loads(e.detail) for e in db.scalars(select(CaseEvent).where(CaseEvent.kind == "visit_text_status"))]
        assert {(e["recipient"], e["status"], e["code"]) for e in events} >= {
            ("caller", "undelivered", 30006), (f"specialist:{team[0]}", "delivered", None),
            (f"specialist:{team[1]}", "opted_out", 21610)}
        assert db.get(Specialist, team[1]).texts_opted_out_at is not None


def statuses_of(line) -> dict[str, str | None]:
    with line.app.app_context():
        session = line.app.extensions["db"].session()
        rows = {m.recipient: m.status for m in session.scalars(select(VisitMessage).where(VisitMessage.kind == "confirm"))}
        session.rollback()
        return rows


def test_a_status_callback_for_an_unknown_text_changes_nothing(line):
    response = signed(line.app.test_client(), "/sms/status?request=999&text=confirm",
                      {"MessageSid": "SM1", "MessageStatus": "failed", "ErrorCode": "30003"})
    assert response.status_code == 200
    assert specialists.opt_out_keyword("Stop") == "STOP" and specialists.opt_out_keyword("stop calling") is None


def test_a_reply_to_a_text_asks_for_its_status_too(line):
    status, xml = line.phone.send_sms(CALLER, "hello?")
    message = fromstring(xml.encode()).find("Message")
    assert status == 200 and message.get("action") == "https://line.example.org/sms/status?reply=1"
    response = signed(line.app.test_client(), "/sms/status?reply=1",
                      {"MessageSid": "SM2", "MessageStatus": "undelivered", "ErrorCode": "30006", "To": CALLER})
    assert response.status_code == 200
