"""Whole calls driven the way Twilio drives them: the simulated phone, the fake REST API and a real RQ worker."""

from __future__ import annotations

import json
import threading

from sqlalchemy import select

from tests.support import DISPATCH, hold_row, kinds, leases, load_call
from voice.line import routing
from voice.models import Call, CallbackRequest, Specialist
from voice.simulator import HANGUP, ScriptedCaller

CALLER = "+19375550123"
ALICE = "+19375550201"
BRUNO = "+19375550202"
ANA = "+19375550203"

# The short path: safe (2), noise (1). Then they hold, or a specialist takes them.
SHORT = ["2", "1"]
# The questions a held or called-back caller answers: name, place, the caller ID (1), a few words.
WAITING_ANSWERS = ["Dana Whitfield", "400 West Third Street", "1", "Loud music every night"]






def details(call: Call, kind: str) -> list[dict]:
    return [json.loads(e.detail) for e in call.events if e.kind == kind]






def busy(app, name: str) -> None:
    """Hold a switched-on specialist on another call, as if they were talking to someone."""
    with app.app_context():
        session = app.extensions["db"].session()
        specialist = session.scalar(select(Specialist).where(Specialist.name == name))
        assert routing.claim_next_specialist(app.extensions["redis"], "en", "call:CAother", 600,
                                             only=specialist.id) == specialist.id


def test_a_caller_with_a_specialist_free_talks_to_them_after_the_short_path(line):
    alice = line.add_specialist("Alice Mediator", ALICE)

    record = line.phone.call_line(CALLER, ScriptedCaller(SHORT))
    line.settle()

    assert record.problems == []
    assert record.bridged_with == [ALICE]
    whisper = " ".join(what for who, what in line.fake.calls[0].record.transcript if who == f"to {alice.label}")
    # "Noise call, in English. Press 1 to take it.", or, answered before the caller chose: "Mediation call, in
    # English." then "Noise. Press 1."
    assert "noise" in whisper.lower() and "English" in whisper and "Press 1" in whisper
    call = load_call(line.app, record.call_sid)
    assert call.outcome == "bridged" and call.category == "noise" and call.language == "en"
    assert call.specialist.phone == ALICE and call.connected_at is not None and call.ended_at is not None
    # Only what routing needs was asked before the bridge.
    assert call.caller_name is None and call.location is None
    assert {"hold_joined", "specialist_offered", "specialist_accepted", "specialist_connected",
            "call_ended"} <= set(kinds(call))
    assert hold_row(line.app, call).status == "done"
    assert leases(line.app) == {"Alice Mediator": None}


def test_free_specialists_ring_at_once_the_first_to_accept_wins_and_the_rest_stop_ringing(line):
    # Phones ring in (scaled) real time, and Ana's would ring a long minute: the cancel must stop it.
    line.phone.time_scale = 0.02
    line.app.config["RING_TIMEOUT_SECONDS"] = 120
    line.add_specialist("Alice Mediator", ALICE, accept="2")
    line.add_specialist("Bruno Mediator", BRUNO)
    line.add_specialist("Ana Mediadora", ANA, languages=("en", "es"), answers=False)

    record = line.phone.call_line(CALLER, ScriptedCaller(SHORT))
    line.settle()

    assert record.problems == []
    assert record.bridged_with == [BRUNO]
    call = load_call(line.app, record.call_sid)
    offered = {d["specialist"] for d in details(call, "specialist_offered")}
    assert offered == {"Alice Mediator", "Bruno Mediator", "Ana Mediadora"}  # all three, at once
    assert call.specialist.phone == BRUNO
    assert len(details(call, "specialist_declined")) == 1
    # Ana's phone, still ringing when Bruno accepted, was stopped through the REST API.
    ana = next(c for c in line.fake.calls if c.to == ANA)
    assert ana.status == "canceled"
    assert set(leases(line.app).values()) == {None}  # everyone is free again


def test_danger_goes_straight_back_to_dispatch(line):
    line.add_specialist("Alice Mediator", ALICE)

    record = line.phone.call_line(CALLER, ScriptedCaller(["1"]))

    assert record.problems == []
    assert record.bridged_with == [DISPATCH]
    call = load_call(line.app, record.call_sid)
    assert (call.outcome, call.outcome_reason) == ("escalated", "danger reported")
    assert call.specialist_id is None
    assert line.fake.calls == []  # nobody was rung for a caller in danger


def test_spanish_on_9_then_si_goes_to_dispatch_in_spanish(line):
    record = line.phone.call_line(CALLER, ScriptedCaller(["9", "Sí, hay un arma"]))

    assert record.problems == []
    assert record.bridged_with == [DISPATCH]
    assert "Le comunico con la central" in record.heard()
    assert load_call(line.app, record.call_sid).language == "es"


def test_a_caller_can_reach_dispatch_with_0_from_any_prompt(line):
    busy_line = line
    busy_line.add_specialist("Alice Mediator", ALICE)
    busy(line.app, "Alice Mediator")

    at_category = line.phone.call_line(CALLER, ScriptedCaller(["2", "0"]))
    on_hold = line.phone.call_line("+19375550124", ScriptedCaller([*SHORT, "Dana", "0"]))

    for record in (at_category, on_hold):
        assert record.problems == []
        assert record.bridged_with == [DISPATCH]
        call = load_call(line.app, record.call_sid)
        assert (call.outcome, call.outcome_reason) == ("escalated", "caller asked for dispatch")


def test_everyone_busy_the_caller_holds_hears_their_place_answers_questions_and_presses_2(line):
    line.add_specialist("Alice Mediator", ALICE)
    busy(line.app, "Alice Mediator")

    record = line.phone.call_line(CALLER, ScriptedCaller([*SHORT, *WAITING_ANSWERS, "2", "1"]))

    assert record.problems == []
    heard = record.heard()
    assert "All our specialists are busy. You are number 1 in line." in heard
    assert "will call you back at 9 3 7, 5 5 5, 0 1 2 3" in heard
    call = load_call(line.app, record.call_sid)
    assert (call.caller_name, call.location, call.callback_number, call.description) == (
        "Dana Whitfield", "400 West Third Street", CALLER, "Loud music every night")
    assert call.outcome == "callback_queued" and call.wants_callback
    with line.app.app_context():
        request = line.app.extensions["db"].session().scalar(select(CallbackRequest))
        assert request.arrived_at == call.started_at  # the callback keeps their place
    assert hold_row(line.app, call).status == "left"


def test_nobody_on_the_caller_answers_the_callback_questions(line):
    record = line.phone.call_line(CALLER, ScriptedCaller([*SHORT, *WAITING_ANSWERS, "1"]))

    assert record.problems == []
    assert "No specialist can answer right now" in record.heard()
    call = load_call(line.app, record.call_sid)
    assert call.outcome == "callback_queued" and call.outcome_reason == "no specialist on"
    assert call.caller_name == "Dana Whitfield"


def test_silent_caller_is_never_trapped(line):
    line.add_specialist("Alice Mediator", ALICE)

    record = line.phone.call_line(CALLER, ScriptedCaller([]))

    # Silence on the safety question means we could not confirm safety: a dispatcher takes over.
    assert record.problems == []
    assert record.bridged_with == [DISPATCH]
    assert len(record.exchanges) < 10
    call = load_call(line.app, record.call_sid)
    assert (call.outcome, call.outcome_reason) == ("escalated", "no answer to the safety question")


def test_caller_silent_at_the_category_still_reaches_a_specialist(line):
    line.add_specialist("Alice Mediator", ALICE)

    record = line.phone.call_line(CALLER, ScriptedCaller(["2", None, None]))
    line.settle()

    assert record.problems == []
    assert record.bridged_with == [ALICE]
    assert load_call(line.app, record.call_sid).category == "other"


def test_caller_who_hangs_up_while_specialists_ring_stops_their_phones(line):
    line.add_specialist("Alice Mediator", ALICE, answers=False)

    record = line.phone.call_line(CALLER, ScriptedCaller(["2", HANGUP]))
    line.settle()

    call = load_call(line.app, record.call_sid)
    assert call.outcome == "abandoned" and call.ended_at is not None
    assert hold_row(line.app, call).status == "left"
    assert leases(line.app) == {"Alice Mediator": None}


def test_held_callers_are_served_in_arrival_order_and_nobody_is_offered_two_at_once(line):
    line.add_specialist("Alice Mediator", ALICE)
    line.add_specialist("Bruno Mediator", BRUNO)
    busy(line.app, "Alice Mediator")
    busy(line.app, "Bruno Mediator")
    records: dict[int, object] = {}

    def caller(n: int) -> None:
        # Each holds through the questions (silence), then waits with the music until someone takes them.
        records[n] = line.phone.call_line(f"+1937555014{n}", ScriptedCaller(SHORT))

    threads = []
    for n in range(5):
        thread = threading.Thread(target=caller, args=(n,))
        thread.start()
        threads.append(thread)
        line.wait_until_holding(n + 1)
    # Both specialists come free: the five are served, longest waiting first, two at a time.
    with line.app.app_context():
        r = line.app.extensions["redis"]
        for specialist in line.app.extensions["db"].session().scalars(select(Specialist)):
            routing.release_specialist(r, specialist.id, "call:CAother")
        from voice import tasks
        tasks.dispatch_soon(r)
    for thread in threads:
        thread.join(60)
    line.settle()

    assert all(records[n].problems == [] for n in range(5))
    assert all(len(records[n].bridged_with) == 1 for n in range(5))
    # Served in arrival order: each caller was first offered to a specialist before anyone newer (with all the
    # free specialists rung at once, whoever answers first may still take a newer caller a moment earlier).
    def first(kind: str, n: int) -> int:
        return next(e.id for e in load_call(line.app, records[n].call_sid).events if e.kind == kind)

    assert sorted(range(5), key=lambda n: first("specialist_offered", n)) == [0, 1, 2, 3, 4]
    # Nobody skipped: no caller was taken before every older caller had been offered.
    for n in range(1, 5):
        assert all(first("specialist_offered", older) < first("specialist_accepted", n) for older in range(n))
    offers = [d for n in range(5) for d in details(load_call(line.app, records[n].call_sid), "specialist_offered")]
    assert len(offers) >= 5
    assert line.max_offers_at_once_per_specialist() == 1


def test_a_program_can_ask_more_before_the_bridge_and_the_hold_does_not_ask_it_again(line, monkeypatch):
    from voice import script

    monkeypatch.setattr(script, "SHORT_PATH", ("greeting", "name", "category"))
    line.add_specialist("Alice Mediator", ALICE)
    busy(line.app, "Alice Mediator")

    record = line.phone.call_line(CALLER, ScriptedCaller(["2", "Dana Whitfield", "1", "400 West Third Street", "1",
                                                          "Loud music", "2", "1"]))

    assert record.problems == []
    heard = record.heard()
    assert heard.count("Please say your first and last name.") == 1
    assert heard.index("Please say your first and last name.") < heard.index("What is it about?")
    assert heard.index("You are number 1 in line") < heard.index("Where is this happening?")
    call = load_call(line.app, record.call_sid)
    assert (call.caller_name, call.category, call.location) == ("Dana Whitfield", "noise", "400 West Third Street")
