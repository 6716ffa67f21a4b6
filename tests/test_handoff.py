"""A dispatcher's warm handoff (issue 21): calls to HANDOFF_NUMBER skip the caller's questions; the dispatcher keys
the incident number (or waits), a specialist joins the dispatcher and the caller in the call's conference, and the
dispatcher hangs up their side. Whole calls through the simulated phone, the fake REST API and a real RQ worker."""

from __future__ import annotations

import csv
import io
import json

import pytest
from sqlalchemy import select

from tests.support import ALICE, DISPATCH, PASSWORD, kinds, load_call, login, whole_line
from voice.dashboard.auth import create_user
from voice.line import routing
from voice.models import Call, Case, Specialist
from voice.simulator import HANGUP, ScriptedCaller

HANDOFF = "+19375550111"
# The 911 center's trunk: the dispatcher's call (the caller conferenced in on their side) comes from it.
TRUNK = "+19375550999"
BRIEFING = "Caller is a tenant at 12 Main Street, the landlord shut off the heat, no one is in danger."
FOREVER = 100_000


@pytest.fixture
def line(redis_url, database_url):
    with whole_line(redis_url, database_url, HANDOFF_NUMBER=HANDOFF) as whole:
        whole.phone.line_number = HANDOFF  # the dispatcher dials the handoff number, not the public line
        yield whole


def details(call: Call, kind: str) -> list[dict]:
    return [json.loads(e.detail) for e in call.events if e.kind == kind]


def dispatcher(keys: list | None = None, **more) -> ScriptedCaller:
    """The dispatcher's line: what they key, then their briefing in the conference (the caller is on it too)."""
    return ScriptedCaller(keys or [], label="dispatch", lines=[BRIEFING], **more)


def whisper_of(line) -> str:
    return next(c.record for c in line.fake.calls if c.to == ALICE).heard("Alice Mediator")


@pytest.mark.parametrize("keyed", ["24015#", None], ids=["incident_number", "no_number"])
def test_a_warm_handoff_skips_the_callers_questions_and_the_dispatcher_briefs_the_specialist(line, keyed):
    line.add_specialist("Alice Mediator", ALICE, lines=["Thanks, I have it from here."])

    record = line.phone.call_line(TRUNK, dispatcher([keyed]))
    line.settle()

    assert record.problems == []
    heard = record.heard("dispatch")
    assert heard.startswith("Mediation line. Key the incident number and pound, or just wait.")
    assert "Is anyone hurt" not in heard and "What is it about" not in heard  # no caller's questions
    assert record.bridged_with == [ALICE]
    assert "Alice Mediator: Thanks, I have it from here." in heard
    whisper = whisper_of(line)
    assert "Handoff from dispatch." in whisper and "In English." in whisper
    assert ("Incident 2 4 0 1 5." in whisper) is (keyed is not None)
    assert f"dispatch: {BRIEFING}" in whisper  # the specialist heard the briefing in the conference
    call = load_call(line.app, record.call_sid)
    assert call.source == "handoff" and call.outcome == "bridged" and call.specialist.phone == ALICE
    assert call.incident_number == ("24015" if keyed else None)
    if keyed:
        with line.app.app_context():
            assert line.app.extensions["db"].session().get(Case, call.case_id).incident_number == "24015"


def test_the_incident_number_is_searchable_in_the_call_log_and_in_the_csv(line):
    line.add_specialist("Alice Mediator", ALICE)
    record = line.phone.call_line(TRUNK, dispatcher(["2024007#"]))
    line.settle()
    with line.app.app_context():
        create_user(line.app.extensions["db"].session(), "coord@city.gov", PASSWORD, "coordinator")
        line.app.extensions["db"].session().commit()
    client = line.app.test_client()
    assert login(client, "coord@city.gov").status_code == 302
    found = client.get("/dashboard/calls?q=2024007").get_data(as_text=True)
    assert f'href="/dashboard/calls/{load_call(line.app, record.call_sid).id}"' in found
    assert "No calls" not in found
    exported = list(csv.DictReader(io.StringIO(client.get("/dashboard/calls.csv").get_data(as_text=True))))
    assert [(row["source"], row["incident_number"]) for row in exported] == [("handoff", "2024007")]
    cli = list(csv.DictReader(io.StringIO(line.app.test_cli_runner().invoke(args=["calls", "export"]).output)))
    assert cli[0]["incident_number"] == "2024007"


def hold_alice_elsewhere(line) -> None:
    with line.app.app_context():
        alice = line.app.extensions["db"].session().scalar(select(Specialist).where(Specialist.phone == ALICE))
        assert routing.claim_next_specialist(line.app.extensions["redis"], "en", "call:CAother", 600, only=alice.id)


def test_nobody_free_within_the_ring_time_the_dispatcher_is_told_and_1_leaves_the_caller_for_a_callback(line):
    line.add_specialist("Alice Mediator", ALICE)
    hold_alice_elsewhere(line)  # on, but on another call
    # The dispatcher keys the incident, waits, hears nobody is free, presses 1; the caller answers the questions.
    record = line.phone.call_line(TRUNK, dispatcher(["24015#", "1", "Dana Whitfield", "400 West Third Street",
                                                     "9375550123#", "The heat is off", "1"]))

    assert record.problems == []
    heard = record.heard("dispatch")
    told = heard.index("No specialist is free right now. Press 1 to leave the caller for a callback")
    assert told < heard.index("Please say your first and last name.")
    call = load_call(line.app, record.call_sid)
    waited = next(d for d in details(call, "hold_result"))
    assert int(waited["seconds"]) >= 30  # HANDOFF_RING_SECONDS of ringing first
    assert call.outcome == "callback_queued" and call.callback_number == "+19375550123"
    assert call.incident_number == "24015"


def test_a_dispatcher_who_says_nothing_however_often_told_leaves_the_caller_the_callback_questions(line):
    line.add_specialist("Alice Mediator", ALICE)
    hold_alice_elsewhere(line)
    # Silent at each of the three tellings (they walked away); the caller, still on, answers the questions.
    record = line.phone.call_line(TRUNK, dispatcher(["24015#", None, None, None, "Dana Whitfield",
                                                     "400 West Third Street", "9375550123#", "The heat is off", "1"]))

    assert record.problems == []  # no wait without end
    heard = record.heard("dispatch")
    assert heard.count("No specialist is free right now.") == 3
    assert heard.rindex("No specialist is free right now.") < heard.index("Please say your first and last name.")
    call = load_call(line.app, record.call_sid)
    assert call.outcome == "callback_queued" and call.callback_number == "+19375550123"


def test_with_nobody_on_the_dispatcher_is_told_at_once_and_hanging_up_keeps_the_call(line):
    line.add_specialist("Alice Mediator", ALICE, on=False)
    record = line.phone.call_line(TRUNK, dispatcher([HANGUP]))
    assert record.problems == []
    assert record.heard("dispatch").startswith("No specialist is free right now.")
    assert line.fake.calls == []  # nobody to ring
    call = load_call(line.app, record.call_sid)
    assert (call.outcome, call.outcome_reason) == ("escalated", "dispatch kept the call: no specialist took it")


def test_a_dispatcher_who_hangs_up_while_waiting_kept_the_call(line):
    line.add_specialist("Alice Mediator", ALICE)
    hold_alice_elsewhere(line)
    leg = line.phone.start_call_line(TRUNK, dispatcher(["24015#"]))
    line.wait_until_holding(1)
    line.phone.hang_up(leg.sid)
    line.settle()
    call = load_call(line.app, leg.record.call_sid)
    assert (call.outcome, call.outcome_reason) == ("escalated", "dispatch kept the call: no specialist took it")
    assert "hold_left" in kinds(call)
    assert DISPATCH not in leg.record.bridged_with
