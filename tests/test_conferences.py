"""Every bridge a conference (issue 21): whole calls through the simulated phone, the fake REST API and a real
RQ worker, on real Redis and SQL. Who is in each call's conference, what each hears, and what the timeline says."""

from __future__ import annotations

import json
import threading
from urllib.parse import urlsplit

import pytest
from sqlalchemy import func, select

from tests.support import ALICE, BRUNO, CALLER, SHORT, hold_row, kinds, leases, load_call, wait_for
from voice.line import routing, specialists
from voice.models import Call, CallbackRequest, ConferenceParticipant, Hold, Specialist
from voice.simulator import ScriptedCaller, SpecialistPhone

# Long enough that nobody hangs up on their own while a test acts mid-call; the test ends the call itself.
FOREVER = 100_000


def details(call: Call, kind: str) -> list[dict]:
    return [json.loads(e.detail) for e in call.events if e.kind == kind]


def participants(app, call: Call) -> list[ConferenceParticipant]:
    with app.app_context():
        session = app.extensions["db"].session()
        rows = session.scalars(select(ConferenceParticipant).where(ConferenceParticipant.call_id == call.id)
                               .order_by(ConferenceParticipant.id)).all()
        session.expunge_all()
        return list(rows)


class SimultaneousAnswers:
    """Delivers the phone's requests to the app, holding each specialist's key press until `count` of them have
    arrived, then letting them through together: two accepts at the same instant."""

    def __init__(self, inner, count: int = 2):
        self.inner = inner
        self.barrier = threading.Barrier(count, timeout=20)

    def post(self, url: str, data: dict, headers: dict) -> tuple[int, str, str]:
        if urlsplit(url).path == "/voice/offer/answer" and data.get("Digits") == "1":
            self.barrier.wait()
        return self.inner.post(url, data, headers)


class CallerWaitsForTheAccept:
    """Delivers the phone's requests to the app, holding the caller's answer to the kind of problem until a
    specialist has pressed 1: the caller is still at that question when the specialist takes them."""

    def __init__(self, inner):
        self.inner = inner
        self.accepted = threading.Event()

    def post(self, url: str, data: dict, headers: dict) -> tuple[int, str, str]:
        path = urlsplit(url).path
        if path == "/voice/intake/category":
            assert self.accepted.wait(20), "no specialist accepted"
        answer = self.inner.post(url, data, headers)
        if path == "/voice/offer/answer" and data.get("Digits") == "1":
            self.accepted.set()
        return answer


def test_the_specialist_and_the_caller_meet_in_the_calls_conference_and_its_events_are_on_the_timeline(line):
    line.add_specialist("Alice Mediator", ALICE, lines=["Hello, this is Alice from the mediation line."])

    record = line.phone.call_line(CALLER, ScriptedCaller(SHORT, lines=["Hi, it is about the music next door."]))
    line.settle()

    assert record.problems == []
    assert record.bridged_with == [ALICE]
    conference = line.phone.conference(f"ml-{record.call_sid}")
    assert conference is not None and conference.reason_ended == "participant-with-end-conference-on-exit-left"
    assert "Alice Mediator: Hello, this is Alice from the mediation line." in record.heard()
    # Who joined how: the caller ends it by leaving, the specialist starts it and may press * to end it.
    joins = {e["ParticipantLabel"]: e for e in conference.events_posted("participant-join")}
    assert (joins["caller"]["StartConferenceOnEnter"], joins["caller"]["EndConferenceOnExit"]) == ("false", "true")
    assert (joins["specialist"]["StartConferenceOnEnter"], joins["specialist"]["EndConferenceOnExit"]) == (
        "true", "false")
    call = load_call(line.app, record.call_sid)
    assert call.outcome == "bridged" and call.specialist.phone == ALICE
    assert {"participant_joined", "conference_started", "specialist_connected", "participant_left",
            "conference_ended"} <= set(kinds(call))
    assert {d["label"] for d in details(call, "participant_joined")} == {"caller", "specialist"}
    [ended] = details(call, "conference_ended")
    assert ended["reason"] == "participant-with-end-conference-on-exit-left" and ended["ended_by"] == "caller"
    rows = participants(line.app, call)
    assert {(p.label, p.specialist_id is not None) for p in rows} == {("caller", False), ("specialist", True)}
    assert all(p.joined_at is not None and p.left_at is not None for p in rows)
    assert hold_row(line.app, call).status == "done"
    assert leases(line.app) == {"Alice Mediator": None}


def test_a_caller_silent_once_at_the_kind_of_problem_reaches_the_specialist_who_answered_at_once(line):
    # Issue 19: the specialist takes the caller while they are still at the kind-of-problem question. Before
    # conferences they heard "Connecting" and then "could not connect", and nobody was rung for that caller again.
    line.phone.transport = CallerWaitsForTheAccept(line.phone.transport)
    line.add_specialist("Alice Mediator", ALICE, lines=["Hello, this is Alice."])

    record = line.phone.call_line(CALLER, ScriptedCaller(["2", None, "1"], lines=["Hello?"]))
    line.settle()

    assert record.problems == []
    assert record.bridged_with == [ALICE]
    leg = line.fake.calls[0].record
    heard = leg.heard("Alice Mediator")
    assert "Kind of problem not given. Press 1." in heard  # the whisper gave up waiting for the caller's answer
    assert "Connecting." in heard and "caller: Hello?" in heard
    assert heard.index("Connecting.") < heard.index("caller: Hello?")
    assert "could not connect" not in heard and leg.problems == []
    call = load_call(line.app, record.call_sid)
    assert call.outcome == "bridged" and call.category == "other"
    assert "hold_enqueued" not in kinds(call)  # straight from the intake into the conference
    assert "hold_claim_released" not in kinds(call)


def test_two_specialists_pressing_1_at_the_same_instant_one_takes_the_caller_the_other_is_told(line):
    line.phone.transport = SimultaneousAnswers(line.phone.transport)
    line.add_specialist("Alice Mediator", ALICE)
    line.add_specialist("Bruno Mediator", BRUNO)

    record = line.phone.call_line(CALLER, ScriptedCaller(SHORT))
    line.settle()

    assert record.problems == []
    assert len(record.bridged_with) == 1
    winner = record.bridged_with[0]
    loser = BRUNO if winner == ALICE else ALICE
    losing_leg = next(c.record for c in line.fake.calls if c.to == loser)
    assert "Another specialist took this caller" in losing_leg.text()
    assert losing_leg.bridged_with == []
    call = load_call(line.app, record.call_sid)
    assert call.specialist.phone == winner
    assert len(details(call, "specialist_accepted")) == 1 and len(details(call, "specialist_too_late")) == 1
    assert [p.label for p in participants(line.app, call)] == ["specialist", "caller"] or \
        [p.label for p in participants(line.app, call)] == ["caller", "specialist"]
    assert set(leases(line.app).values()) == {None}


# --- a dropped specialist never drops the caller -------------------------------------------------------------



def talking(line, caller_leg, number: str):
    """True once the caller is in a started conference with the phone `number`, as the line knows it too."""
    def check() -> bool:
        if number not in caller_leg.record.bridged_with:
            return False
        with line.app.app_context():
            session = line.app.extensions["db"].session()
            hold = session.scalar(select(Hold).join(Call).where(Call.call_sid == caller_leg.sid))
            connected = hold is not None and hold.status == "connected" and hold.specialist.phone == number
            session.rollback()
            return connected
    return check


def switch_on(line, name: str) -> None:
    with line.app.app_context():
        session = line.app.extensions["db"].session()
        specialist = session.scalar(select(Specialist).where(Specialist.name == name))
        specialists.set_available(session, line.app.extensions["redis"], specialist, True)
        session.commit()


def alice_leg_sid(line) -> str:
    return next(c.sid for c in line.fake.calls if c.to == ALICE)


@pytest.mark.parametrize("how", ["drop", "hang_up"])
def test_a_specialist_whose_line_drops_mid_call_leaves_the_caller_at_the_front_for_the_next_specialist(line, how):
    alice = line.add_specialist("Alice Mediator", ALICE, talk_seconds=FOREVER)
    line.add_specialist("Bruno Mediator", BRUNO, on=False, talk_seconds=FOREVER,
                        lines=["Hi, this is Bruno, I am picking up from Alice."])
    caller = line.phone.start_call_line(CALLER, ScriptedCaller(SHORT, talk_seconds=FOREVER))
    wait_for(talking(line, caller, ALICE))
    switch_on(line, "Bruno Mediator")  # free now, and nobody is waiting for him yet
    alice.answers = False  # her phone has no signal: the line rings her first to rejoin, in vain

    getattr(line.phone, how)(alice_leg_sid(line))  # signal lost, or a hangup by mistake
    wait_for(talking(line, caller, BRUNO))
    line.phone.hang_up(caller.sid)
    line.settle()

    record = caller.record
    assert record.problems == []
    heard = record.heard()
    assert "Sorry, your specialist was cut off. Please stay on the line: you are next." in heard
    assert heard.index("cut off") < heard.index("Hi, this is Bruno")
    assert record.bridged_with == [ALICE, BRUNO]
    call = load_call(line.app, record.call_sid)
    assert call.outcome == "bridged" and call.specialist.phone == BRUNO
    [cut] = details(call, "specialist_cut_off")
    assert "participant_hung_up" in cut["why"]
    assert "hold_back_in_line" in kinds(call)
    offered = [d["specialist"] for d in details(call, "specialist_offered")]
    assert offered[0] == "Alice Mediator" and offered[1:3] in (["Alice Mediator", "Bruno Mediator"],
                                                               ["Bruno Mediator", "Alice Mediator"])
    assert hold_row(line.app, call).status == "done"
    assert set(leases(line.app).values()) == {None}


def test_the_specialist_cut_off_is_rung_first_and_rejoins_with_a_key(line):
    line.add_specialist("Alice Mediator", ALICE, talk_seconds=FOREVER, lines=["Sorry, I lost you."])
    caller = line.phone.start_call_line(CALLER, ScriptedCaller(SHORT, talk_seconds=FOREVER))
    wait_for(talking(line, caller, ALICE))
    first_leg = alice_leg_sid(line)

    line.phone.drop(first_leg)
    wait_for(lambda: caller.record.heard().count("Alice Mediator: Sorry, I lost you.") == 2)
    line.phone.hang_up(caller.sid)
    line.settle()

    assert caller.record.problems == []
    second_leg = next(c.record for c in line.fake.calls if c.to == ALICE and c.sid != first_leg)
    assert "Your call was cut off. The caller is waiting. Press 1 to rejoin." in second_leg.heard("Alice Mediator")
    call = load_call(line.app, caller.record.call_sid)
    assert "specialist_rejoined" in kinds(call) and call.specialist.phone == ALICE


def test_the_specialist_cut_off_who_calls_the_line_within_a_minute_is_put_straight_back(line):
    alice = line.add_specialist("Alice Mediator", ALICE, talk_seconds=FOREVER, lines=["Sorry, I lost you."])
    caller = line.phone.start_call_line(CALLER, ScriptedCaller(SHORT, talk_seconds=FOREVER))
    wait_for(talking(line, caller, ALICE))
    alice.answers = False  # the line's own call to rejoin does not reach her; she calls in herself

    line.phone.drop(alice_leg_sid(line))
    wait_for(lambda: "you are next" in caller.record.heard())
    back = line.phone.start_call_line(ALICE, SpecialistPhone("Alice Mediator", talk_seconds=FOREVER,
                                                             lines=["It is Alice again."]))
    wait_for(lambda: "Alice Mediator: It is Alice again." in caller.record.heard())
    line.phone.hang_up(caller.sid)
    assert back.ended.wait(20)
    line.settle()

    assert caller.record.problems == [] and back.record.problems == []
    assert "Reconnecting you with your caller." in back.record.heard("Alice Mediator")
    call = load_call(line.app, caller.record.call_sid)
    assert [d.get("by") for d in details(call, "specialist_rejoined")] == ["calling the line"]
    with line.app.app_context():
        # Her own call to the line is not a caller's call.
        assert line.app.extensions["db"].session().scalar(
            select(func.count(Call.id)).where(Call.call_sid == back.sid)) == 0
    assert set(leases(line.app).values()) == {None}


def test_a_caller_who_hangs_up_as_the_specialist_does_is_not_called_back_or_requeued(line):
    line.add_specialist("Alice Mediator", ALICE, talk_seconds=FOREVER)
    caller = line.phone.start_call_line(CALLER, ScriptedCaller(SHORT, talk_seconds=FOREVER))
    wait_for(talking(line, caller, ALICE))
    line.phone.hang_up(caller.sid)
    line.settle()
    call = load_call(line.app, caller.record.call_sid)
    assert "specialist_cut_off" not in kinds(call)
    assert hold_row(line.app, call).status == "done"


# --- held callers' Twilio queues, and what QueueResult means -----------------------------------------------------


def hold_alice(line) -> None:
    with line.app.app_context():
        session = line.app.extensions["db"].session()
        alice = session.scalar(select(Specialist).where(Specialist.phone == ALICE))
        assert routing.claim_next_specialist(line.app.extensions["redis"], "en", "call:CAother", 600, only=alice.id)


def test_a_held_callers_queue_is_deleted_once_their_hold_is_over(line):
    line.add_specialist("Alice Mediator", ALICE)
    hold_alice(line)  # busy: the caller holds, then asks for a callback
    record = line.phone.call_line(CALLER, ScriptedCaller([*SHORT, None, None, None, None, "2", "1"]))
    line.settle()
    assert record.problems == [] and "You are number 1 in line" in record.heard()
    assert hold_row(line.app, load_call(line.app, record.call_sid)).queue_sid is not None
    assert f"ml-{record.call_sid}" not in line.phone.queues  # DELETE .../Queues/QU...


def test_the_sweep_deletes_queues_left_empty_and_keeps_a_waiting_callers(line, monkeypatch):
    from voice.simulator.queues import Queue
    from workers import jobs

    line.add_specialist("Alice Mediator", ALICE)
    hold_alice(line)
    waiting = line.phone.start_call_line(CALLER, ScriptedCaller(SHORT, talk_seconds=FOREVER))
    line.wait_until_holding(1)
    line.phone.queues["ml-CAlongover"] = Queue("ml-CAlongover", "QU" + "e" * 32)  # a hold's, deletion missed
    with line.app.app_context():
        summary = jobs.sweep()
        line.app.extensions["db"].session.remove()
    assert summary["queues_deleted"] == 1
    assert "ml-CAlongover" not in line.phone.queues and f"ml-{waiting.sid}" in line.phone.queues
    line.phone.hang_up(waiting.sid)
    line.settle()


@pytest.mark.parametrize(("result", "status", "hears"), [
    ("system-error", "waiting", "<Enqueue"),           # Twilio's own failure: back in line, place kept
    ("bridging-in-process", "waiting", "<Enqueue"),    # nobody dequeues with conferences: still in line
    ("bridging-in-process", "connecting", "<Conference"),
    ("leave", "connecting", "<Conference"),            # our <Leave>: a specialist took them
    ("error", "waiting", "Connecting you to dispatch."),  # an error of ours: a person at dispatch decides
    ("queue-full", "waiting", "Connecting you to dispatch."),
])
def test_queue_results_are_read_as_twilio_defines_them(app, client, result, status, hears):
    from tests.support import incoming, signed
    from voice.models import Hold

    assert signed(client, "/voice/incoming", incoming()).status_code == 200
    with app.app_context():
        session = app.extensions["db"].session()
        call = session.scalar(select(Call))
        call.step = None
        session.add(Hold(call_id=call.id, language="en", arrived_at=call.started_at, status=status,
                         specialist_id=None))
        session.commit()
        hold_id = session.scalar(select(Hold.id))
    params = incoming(CallStatus="in-progress", QueueResult=result, QueueSid="QU" + "1" * 32, QueueTime="30")
    body = signed(client, f"/voice/hold/left?hold={hold_id}", params).get_data(as_text=True)
    assert hears in body
    if result == "system-error":
        # A second failure of Twilio's queue: the callback questions, not dispatch.
        again = signed(client, f"/voice/hold/left?hold={hold_id}", {**params, "QueueTime": "31"}).get_data(as_text=True)
        assert "<Dial" not in again and "Please say your first and last name." in again


def test_a_callback_specialist_cut_off_mid_call_means_the_caller_is_called_right_back(line):
    from tests.support import INTAKE

    line.phone.network[CALLER] = ScriptedCaller(["1", "1"], label="caller", talk_seconds=FOREVER)
    line.phone.call_line(CALLER, ScriptedCaller(INTAKE))
    alice = line.add_specialist("Alice Mediator", ALICE, talk_seconds=FOREVER)

    def talking() -> bool:
        with line.app.app_context():
            session = line.app.extensions["db"].session()
            joined = session.scalar(select(func.count(ConferenceParticipant.id)).where(
                ConferenceParticipant.joined_at.is_not(None), ConferenceParticipant.left_at.is_(None)))
            session.rollback()
            return joined == 2
    wait_for(talking)
    first_leg = alice_leg_sid(line)
    alice.talk_seconds = 60  # on the second try she ends the call herself, with *
    line.phone.drop(first_leg)
    line.settle(60)

    caller_legs = [c.record for c in line.fake.calls if c.to == CALLER]
    assert "Sorry, your specialist was cut off. We will call you right back." in caller_legs[0].heard()
    assert len(caller_legs) == 2 and ALICE in caller_legs[1].bridged_with  # called right back, and reached
    with line.app.app_context():
        request = line.app.extensions["db"].session().scalar(select(CallbackRequest))
        assert request.status == "completed"
        call = line.app.extensions["db"].session().get(Call, request.call_id)
        kinds_seen = [e.kind for e in call.events]
    assert "specialist_cut_off" in kinds_seen
