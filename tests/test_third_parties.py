"""People added to a live call (issue 21): an interpreter, a coordinator who listens, coaches or joins, a warm
transfer to dispatch, and a callback sent to dispatch. Whole calls through the simulated phone, the fake REST API
and a real RQ worker, driven from the dashboard as a specialist or the coordinator would."""

from __future__ import annotations

import json
import re

import pytest
from sqlalchemy import select

from tests.support import ALICE, CALLER, DISPATCH, SHORT, csrf, kinds, load_call, login, wait_for, whole_line
from voice.casework import services
from voice.dashboard.auth import create_user
from voice.models import AuditEntry, Call, CallbackRequest, ConferenceParticipant, Specialist
from voice.simulator import ScriptedCaller

INTERPRETER = "+19375550177"
COORDINATOR = "+19375550303"
HOUSING = "+19375550150"
FOREVER = 100_000


@pytest.fixture
def line(redis_url, database_url):
    with whole_line(redis_url, database_url, INTERPRETER_NUMBER=INTERPRETER, INTERPRETER_DIGITS="ww1234#") as whole:
        yield whole



def accounts(line) -> None:
    with line.app.app_context():
        session = line.app.extensions["db"].session()
        alice = session.scalar(select(Specialist).where(Specialist.phone == ALICE))
        create_user(session, "alice@city.gov", "correct horse battery", "specialist", alice.id)
        create_user(session, "coord@city.gov", "correct horse battery", "coordinator")
        session.commit()


def signed_in(line, email: str):
    client = line.app.test_client()
    assert login(client, email).status_code == 302
    return client


def post(client, path: str, **form) -> str:
    """Post a dashboard form; the flash messages of the page it leads to."""
    response = client.post(path, data={"csrf_token": csrf(client, "/dashboard/"), **form})
    assert response.status_code == 302, response.get_data(as_text=True)[:500]
    page = client.get(response.headers["Location"]).get_data(as_text=True)
    return " ".join(re.findall(r'<p class="flash [^"]*"[^>]*>([^<]*)</p>', page))


def live_call(line, **caller):
    """A caller talking with Alice in the call's conference, as the line sees it; (caller's leg, call id)."""
    line.add_specialist("Alice Mediator", ALICE, talk_seconds=FOREVER)
    accounts(line)
    leg = line.phone.start_call_line(CALLER, ScriptedCaller(SHORT, talk_seconds=FOREVER, **caller))

    def connected() -> bool:
        with line.app.app_context():
            session = line.app.extensions["db"].session()
            call = session.scalar(select(Call).where(Call.call_sid == leg.sid))
            found = call is not None and call.outcome == "bridged"
            session.rollback()
            return found
    wait_for(connected)
    return leg, load_call(line.app, leg.sid).id


def in_conference(line, call_sid: str, number: str):
    """True once the phone `number` is connected in the call's conference."""
    def check() -> bool:
        conference = line.phone.conference(f"ml-{call_sid}")
        return conference is not None and any(p.leg.number == number and p.status == "connected"
                                              for p in conference.participants)
    return check


def app_sees(line, call_id: int, label: str):
    """True once the line has heard (by the conference's events) that `label` joined the call."""
    def check() -> bool:
        with line.app.app_context():
            session = line.app.extensions["db"].session()
            found = session.scalar(select(ConferenceParticipant).where(
                ConferenceParticipant.call_id == call_id, ConferenceParticipant.label == label,
                ConferenceParticipant.joined_at.is_not(None), ConferenceParticipant.left_at.is_(None)))
            session.rollback()
            return found is not None
    return check


def participant_sid(line, call_sid: str, number: str) -> str:
    conference = line.phone.conference(f"ml-{call_sid}")
    return next(p.leg.sid for p in conference.participants if p.leg.number == number)


def participant_gone(line, call_sid: str, number: str) -> bool:
    conference = line.phone.conference(f"ml-{call_sid}")
    return all(p.leg.number != number or p.status != "connected" for p in conference.participants)


def audits(line) -> list[str]:
    with line.app.app_context():
        return [a.action for a in line.app.extensions["db"].session().scalars(select(AuditEntry))]


def test_a_specialist_adds_an_interpreter_from_the_case_page(line):
    line.phone.network[INTERPRETER] = ScriptedCaller(label="interpreter", talk_seconds=FOREVER,
                                                     lines=["Hello, I am your Vietnamese interpreter."])
    leg, call_id = live_call(line)
    alice = signed_in(line, "alice@city.gov")
    page = alice.get(f"/dashboard/calls/{call_id}").get_data(as_text=True)
    assert "Add an interpreter" in page

    post(alice, f"/dashboard/calls/{call_id}/interpreter", language="Vietnamese")
    wait_for(lambda: "interpreter: Hello, I am your Vietnamese interpreter." in leg.record.heard())
    page = alice.get(f"/dashboard/calls/{call_id}").get_data(as_text=True)
    assert "Interpreter (Vietnamese)" in page
    line.phone.hang_up(leg.sid)
    line.settle()

    interpreter = next(c for c in line.fake.calls if c.to == INTERPRETER).record
    assert interpreter.problems == [] and leg.record.problems == []
    # The service's PIN was keyed once it answered, before it joined the conference.
    heard = interpreter.heard("interpreter")
    assert heard.startswith("[keys ww1234#]")
    alice_leg = next(c for c in line.fake.calls if c.to == ALICE).record
    assert "interpreter: Hello, I am your Vietnamese interpreter." in alice_leg.heard("Alice Mediator")
    call = load_call(line.app, leg.sid)
    assert "interpreter_added" in kinds(call)
    joined = [json.loads(e.detail) for e in call.events if e.kind == "participant_joined"]
    assert "interpreter" in {d["label"] for d in joined}
    assert "add_interpreter" in audits(line)
    coordinator = signed_in(line, "coord@city.gov")
    reports = coordinator.get("/dashboard/reports").get_data(as_text=True)
    assert 'id="interpreter-minutes"' in reports and "<th scope=\"row\">Vietnamese</th>" in reports


def test_the_coordinator_listens_muted_coaches_the_specialist_then_joins_and_each_use_is_audited(line):
    line.phone.network[COORDINATOR] = ScriptedCaller(label="coordinator", talk_seconds=FOREVER)
    leg, call_id = live_call(line)
    coordinator = signed_in(line, "coord@city.gov")
    board = coordinator.get("/dashboard/").get_data(as_text=True)
    assert f'id="on-call-{call_id}"' in board and "Listen" in board

    post(coordinator, f"/dashboard/calls/{call_id}/supervise", mode="listen", phone=COORDINATOR, **{"from": "board"})
    wait_for(in_conference(line, leg.sid, COORDINATOR))
    coordinator_sid = participant_sid(line, leg.sid, COORDINATOR)
    alice_sid = participant_sid(line, leg.sid, ALICE)
    assert line.phone.speak(coordinator_sid, "Just listening.") == []  # muted: heard by nobody
    assert sorted(line.phone.speak(alice_sid, "How can I help?")) == sorted([leg.sid, coordinator_sid])
    board = coordinator.get("/dashboard/").get_data(as_text=True)
    assert "coord@city.gov (listening)" in board

    post(coordinator, f"/dashboard/calls/{call_id}/supervise", mode="coach", **{"from": "board"})
    wait_for(lambda: line.phone.conference(f"ml-{leg.sid}").find(coordinator_sid).coaching)
    assert line.phone.speak(coordinator_sid, "Ask where it is happening.") == [alice_sid]

    post(coordinator, f"/dashboard/calls/{call_id}/supervise", mode="join", **{"from": "board"})
    wait_for(lambda: not line.phone.conference(f"ml-{leg.sid}").find(coordinator_sid).coaching)
    assert sorted(line.phone.speak(coordinator_sid, "Hello, I am the coordinator.")) == sorted([leg.sid, alice_sid])
    line.phone.hang_up(leg.sid)
    line.settle()

    heard = leg.record.heard()
    assert "Just listening." not in heard and "Ask where it is happening." not in heard
    assert "coordinator: Hello, I am the coordinator." in heard
    assert "[beep]" not in heard  # nobody is told that someone joined
    assert [a for a in audits(line) if a.startswith("supervise")] == ["supervise_listen", "supervise_coach",
                                                                        "supervise_join"]
    call = load_call(line.app, leg.sid)
    assert [json.loads(e.detail)["mode"] for e in call.events if e.kind == "supervisor"] == ["listen", "coach", "join"]


def test_a_specialist_not_marked_supervisor_cannot_listen(line):
    leg, call_id = live_call(line)
    alice = signed_in(line, "alice@city.gov")
    response = alice.post(f"/dashboard/calls/{call_id}/supervise",
                          data={"csrf_token": csrf(alice, "/dashboard/"), "mode": "listen"})
    assert response.status_code == 403
    line.phone.hang_up(leg.sid)
    line.settle()


def test_a_warm_transfer_to_dispatch_the_caller_held_then_handed_over_never_alone(line):
    leg, call_id = live_call(line)
    alice = signed_in(line, "alice@city.gov")
    conference = line.phone.conference(f"ml-{leg.sid}")
    alice_sid = participant_sid(line, leg.sid, ALICE)

    post(alice, f"/dashboard/calls/{call_id}/hold", held="1")
    wait_for(lambda: conference.find(leg.sid).hold)
    refused = post(alice, f"/dashboard/calls/{call_id}/hand-over")
    assert "The caller would be alone" in refused  # nobody to hand over to yet
    post(alice, f"/dashboard/calls/{call_id}/warm-transfer", to="dispatch")
    wait_for(in_conference(line, leg.sid, DISPATCH))
    wait_for(app_sees(line, call_id, "transfer"))
    dispatch_sid = participant_sid(line, leg.sid, DISPATCH)
    # The caller, on hold, hears music and nothing of the briefing.
    assert line.phone.speak(alice_sid, "I have a caller who needs an officer.") == [dispatch_sid]
    handed = post(alice, f"/dashboard/calls/{call_id}/hand-over")
    assert "the caller is with the service you transferred them to" in handed
    assert leg.ended.wait(30)
    line.settle()

    record = leg.record
    assert record.problems == []
    assert "I have a caller who needs an officer." not in record.heard()
    assert DISPATCH in record.bridged_with
    alice_leg = next(c for c in line.fake.calls if c.to == ALICE).record
    assert "You have left the call. The caller is with the service you transferred them to." in alice_leg.heard(
        "Alice Mediator")
    call = load_call(line.app, leg.sid)
    assert (call.outcome, call.outcome_reason) == ("escalated", "warm transfer to dispatch by the specialist")
    assert {"caller_held", "transfer_dialed", "transfer_completed"} <= set(kinds(call))
    assert "specialist_cut_off" not in kinds(call)
    # Dispatch hung up at the end: the caller heard goodbye, not silence.
    assert record.heard().rstrip().endswith("Goodbye.")


def test_a_warm_transfer_to_a_service_of_the_coordinators_directory_is_a_referral_the_caller_took(line):
    with line.app.app_context():
        session = line.app.extensions["db"].session()
        housing = services.add(session, "Housing hotline", "housing", HOUSING)
        services.update(session, services.add(session, "Old legal aid", "legal_aid", "+19375550160"),
                        "Old legal aid", "legal_aid", "+19375550160", active=False)
        session.commit()
        choice = f"service-{housing.id}"
    line.phone.network[HOUSING] = ScriptedCaller(label="housing", talk_seconds=FOREVER)
    leg, call_id = live_call(line)
    alice = signed_in(line, "alice@city.gov")
    page = alice.get(f"/dashboard/calls/{call_id}").get_data(as_text=True)
    # Dispatch first, then the active services; an inactive one is not offered.
    assert re.findall(r'<option value="(dispatch|service-\d+)">([^<]*)</option>', page) == [
        ("dispatch", "911 dispatch"), (choice, "Housing hotline")]
    assert "Choose where to transfer the caller." in post(alice, f"/dashboard/calls/{call_id}/warm-transfer",
                                                           to="service-999")
    post(alice, f"/dashboard/calls/{call_id}/hold", held="1")
    post(alice, f"/dashboard/calls/{call_id}/warm-transfer", to=choice)
    wait_for(in_conference(line, leg.sid, HOUSING))
    wait_for(app_sees(line, call_id, "transfer"))
    post(alice, f"/dashboard/calls/{call_id}/hand-over")
    wait_for(lambda: participant_gone(line, leg.sid, ALICE))

    call = load_call(line.app, leg.sid)
    assert (call.outcome, call.outcome_reason) == ("bridged", "warm transfer to Housing hotline")
    with line.app.app_context():
        session = line.app.extensions["db"].session()
        assert [(r.service.name, r.accepted) for r in services.referrals_of(session, call_id)] == [
            ("Housing hotline", True)]
    assert HOUSING in leg.record.bridged_with and leg.record.problems == []


def test_a_callback_call_can_be_sent_to_dispatch(line):
    line.phone.network[CALLER] = ScriptedCaller(["1"], label="caller", talk_seconds=FOREVER)
    line.phone.call_line(CALLER, ScriptedCaller(["2", "6", "Dana", "Main Street", "1", "Noise", "1"]))
    line.add_specialist("Alice Mediator", ALICE, talk_seconds=FOREVER)
    accounts(line)

    def talking() -> bool:
        with line.app.app_context():
            session = line.app.extensions["db"].session()
            joined = session.scalar(select(ConferenceParticipant).where(ConferenceParticipant.label == "caller",
                                                                        ConferenceParticipant.joined_at.is_not(None)))
            session.rollback()
            return joined is not None
    wait_for(talking)
    alice = signed_in(line, "alice@city.gov")
    with line.app.app_context():
        call_id = line.app.extensions["db"].session().scalar(select(CallbackRequest.call_id))
    page = alice.get(f"/dashboard/calls/{call_id}").get_data(as_text=True)
    assert "Transfer to 911 dispatch" in page
    post(alice, f"/dashboard/calls/{call_id}/transfer")
    line.settle()

    caller_leg = next(c for c in line.fake.calls if c.to == CALLER).record
    assert caller_leg.problems == []
    assert DISPATCH in caller_leg.bridged_with and "Connecting you to dispatch." in caller_leg.heard()
    with line.app.app_context():
        call = line.app.extensions["db"].session().get(Call, call_id)
        assert (call.outcome, call.outcome_reason) == ("escalated", "transferred to dispatch by the specialist")


def test_another_language_at_the_greeting_bridges_an_english_speaker_with_the_interpreter_dialed_at_once(
        redis_url, database_url):
    with whole_line(redis_url, database_url, INTERPRETER_NUMBER=INTERPRETER, INTERPRETER_DIGITS="ww1234#",
                    ANOTHER_LANGUAGE_KEY="8") as line:
        line.phone.network[INTERPRETER] = ScriptedCaller(label="interpreter", talk_seconds=FOREVER,
                                                         lines=["I will interpret for you both."])
        line.add_specialist("Alice Mediator", ALICE, talk_seconds=FOREVER, lines=["Hello, this is Alice."])
        leg = line.phone.start_call_line(CALLER, ScriptedCaller(["8"], talk_seconds=FOREVER))
        wait_for(lambda: {ALICE, INTERPRETER} <= set(leg.record.bridged_with))
        wait_for(lambda: load_call(line.app, leg.sid).outcome == "bridged")
        line.phone.hang_up(leg.sid)
        line.settle()

        heard = leg.record.heard()
        assert "Other languages, press 8." in heard
        pressed = next(n for n, (who, what) in enumerate(leg.record.transcript) if what == "presses '8'")
        after = " ".join(what for _, what in leg.record.transcript[pressed:])
        assert "Is anyone hurt" not in after and "What is it about" not in after  # no English questions after it
        assert "Alice Mediator: Hello, this is Alice." in heard and "interpreter: I will interpret" in heard
        interpreter = next(c for c in line.fake.calls if c.to == INTERPRETER).record
        assert interpreter.heard("interpreter").startswith("[keys ww1234#]")
        call = load_call(line.app, leg.sid)
        assert call.outcome == "bridged" and call.language == "en" and call.specialist.phone == ALICE
        assert {"another_language", "interpreter_added"} <= set(kinds(call))
        assert leg.record.problems == []


def test_the_greeting_offers_no_other_language_unless_the_program_sets_a_key(redis_url, database_url):
    with whole_line(redis_url, database_url, INTERPRETER_NUMBER=INTERPRETER) as line:
        record = line.phone.call_line(CALLER, ScriptedCaller(["1"]))
        assert "Other languages" not in record.heard() and record.bridged_with == [DISPATCH]
