"""Routing by level: the preferred specialists (the open case's, then level 2) first for complex callers, alone for
PREFER_SECONDS when a program asks, then everyone free; on real Redis and SQL, whole calls on the simulated phone."""

from __future__ import annotations

import json
import time
from contextlib import ExitStack
from datetime import datetime

import pytest
from sqlalchemy import select

from tests.support import CALLER, load_call, whole_line
from voice import tasks
from voice.line import preferences, routing, specialists
from voice.models import Call, Case, Specialist
from voice.redisdb import Keys
from voice.simulator import ScriptedCaller

ALICE = "+19375550201"
BRUNO = "+19375550202"
CORA = "+19375550203"
FAMILY = ["2", "5"]  # safe, family
NOISE = ["2", "1"]  # safe, noise


@pytest.fixture
def line_with(redis_url, database_url):
    """The whole line with settings changed: line_with(PREFER_SECONDS=2, ...)."""
    with ExitStack() as stack:
        yield lambda with_scheduler=False, **settings: stack.enter_context(
            whole_line(redis_url, database_url, with_scheduler=with_scheduler, **settings))


def on_roster(app, *people: tuple[str, list[str], int]) -> list[int]:
    """Switch people on in this order (the first has been idle longest): (name, languages, level)."""
    ids = []
    with app.app_context():
        db = app.extensions["db"].session()
        first = len(db.scalars(select(Specialist)).all())
        for n, (name, languages, level) in enumerate(people, start=first):
            specialist = specialists.add_specialist(db, name, f"+1937555{1100 + n:04d}", languages, level=level)
            db.commit()
            specialists.set_available(db, app.extensions["redis"], specialist, True)
            ids.append(specialist.id)
            time.sleep(0.002)  # distinct idle-since times
    return ids


def brief(inputs: list[str]) -> ScriptedCaller:
    """A caller who talks for 10 s once bridged (the phone's clock may run in scaled real time)."""
    caller = ScriptedCaller(inputs)
    caller.talk_seconds = 10
    return caller


def offered_at(line, sid: str) -> dict[str, datetime]:
    """When each specialist was first offered the caller, by name (from the call's timeline)."""
    at: dict[str, datetime] = {}
    for event in load_call(line.app, sid).events:
        if event.kind == "specialist_offered":
            at.setdefault(json.loads(event.detail)["specialist"], event.at)
    return at


# --- the one claim, on real Redis ------------------------------------------------------------------------------


def test_the_claim_takes_the_preferred_tier_by_tier_then_everyone_longest_idle_first(app, r):
    a, b, c, d = on_roster(app, ("A", ["en"], 1), ("B", ["en"], 2), ("C", ["en"], 1), ("D", ["en"], 2))
    assert routing.claim_specialists(r, "en", "offer:1", 60, limit=4, preferred=[[c], [d, b]]) == [c, b, d, a]


def test_only_the_preferred_are_taken_when_asked_and_the_rest_stay_free(app, r):
    a, b, c = on_roster(app, ("A", ["en"], 1), ("B", ["en"], 2), ("C", ["en"], 2))
    assert routing.claim_specialists(r, "en", "offer:1", 60, limit=5, preferred=[[c, b]], preferred_only=True) == [b, c]
    assert routing.lease_holder(r, a) is None
    # A preferred specialist who does not speak the language is not taken: the claim only sees its idle queue.
    (es,) = on_roster(app, ("E", ["es"], 2))
    assert routing.claim_specialists(r, "en", "offer:2", 60, limit=5, preferred=[[es]], preferred_only=True) == []
    assert routing.claim_next_specialist(r, "en", "offer:3", 60, preferred=[[es]]) == a


def test_a_language_from_skills_has_its_own_idle_queue_that_release_and_off_keep_right(app, r, db):
    (amira,) = on_roster(app, ("Amira", ["ar", "en"], 1))
    assert routing.claim_next_specialist(r, "ar", "call:A", 60) == amira
    before = r.zscore(Keys.available("ar"), amira)
    time.sleep(0.01)
    assert routing.release_specialist(r, amira, "call:A")
    assert r.zscore(Keys.available("ar"), amira) > before  # back of the Arabic queue after a conversation
    r.flushdb()
    assert specialists.sync_idle_queues(db, r) == 1
    assert routing.claim_next_specialist(r, "ar", "call:B", 60) == amira
    specialists.set_available(db, r, db.get(Specialist, amira), False)
    routing.release_specialist(r, amira, "call:B")
    assert r.zscore(Keys.available("ar"), amira) is None and r.zscore(Keys.available("en"), amira) is None


# --- who is preferred, and why ---------------------------------------------------------------------------------


def test_the_open_cases_specialist_comes_before_level_2_and_a_closed_case_prefers_nobody(app, db):
    bruno = specialists.add_specialist(db, "Bruno", BRUNO, ["en"], level=1)
    cora = specialists.add_specialist(db, "Cora", CORA, ["en"], level=2)
    case = Case(opened_at=datetime(2026, 11, 2, 14), status="open")
    db.add(case)
    db.flush()
    db.add(Call(call_sid="CA1", from_number=CALLER, case_id=case.id, started_at=datetime(2026, 11, 2, 14),
                outcome="bridged", specialist_id=bruno.id, connected_at=datetime(2026, 11, 2, 14, 1)))
    again = Call(call_sid="CA2", from_number=CALLER, case_id=case.id, started_at=datetime(2026, 11, 9, 9),
                 category="noise", step=None)
    db.add(again)
    db.commit()
    preference = preferences.for_call(db, again, frozenset())
    assert preference.why == (preferences.OPEN_CASE,)
    assert preference.tiers() == [(bruno.id,), (cora.id,)]
    assert preference.reason_for(bruno.id) == preferences.CASE_SPECIALIST
    assert preference.reason_for(cora.id) == preferences.LEVEL_TWO
    assert preferences.for_call(db, again, frozenset({"household"})).why == (preferences.OPEN_CASE,)
    case.status = "closed"
    db.commit()
    assert preferences.for_call(db, again, frozenset()) is None
    # Complex by its kind of problem: level 2 alone is preferred.
    again.category = "household"
    assert preferences.for_call(db, again, frozenset({"household"})).tiers() == [(cora.id,)]


# --- whole calls -----------------------------------------------------------------------------------------------


def test_everyone_free_rings_at_once_and_level_2_is_placed_first_for_a_complex_caller(line_with):
    line = line_with(COMPLEX_CATEGORIES="family,landlord")
    # Alice and Bruno have been idle longest, so without levels they would be rung first.
    line.add_specialist("Alice Mediator", ALICE, accept="2")
    line.add_specialist("Bruno Mediator", BRUNO, accept="2")
    line.add_specialist("Cora Mediator", CORA, level=2)

    record = line.phone.call_line(CALLER, ScriptedCaller(FAMILY))
    line.settle()

    assert record.problems == []
    assert record.bridged_with == [CORA]
    # One dispatch rang all three, and Cora's call was created before anyone else's.
    assert line.fake.calls[0].to == CORA and {c.to for c in line.fake.calls} == {ALICE, BRUNO, CORA}
    (preference,) = line.events(record.call_sid, "routing_preference")
    # The phones start ringing while the caller chooses the kind of problem (the simulated caller may be quicker).
    assert preference["why"] in ([preferences.NOT_CHOSEN], ["kind of problem: family"])
    assert preference["alone_until"] is None
    assert [p["specialist"] for p in preference["preferred"]] == ["Cora Mediator"]
    offered = line.events(record.call_sid, "specialist_offered")
    assert [o["specialist"] for o in offered][0] == "Cora Mediator" and offered[0]["preferred"] == "level 2"
    accepted = line.events(record.call_sid, "specialist_accepted")[-1]
    assert accepted["level"] == 2 and accepted["preferred"] == "level 2"
    assert accepted["preferred_for"] == ["kind of problem: family"]
    call = load_call(line.app, record.call_sid)
    assert (call.specialist_level, call.to_preferred) == (2, True)


def alice_after_cora(line, inputs: list[str]):
    """Cora (level 2) rings 12 s of real time unanswered, Alice (level 1) answers; a caller calls and reaches Alice.

    Returns the caller's record and when each of the two was offered the caller.
    """
    line.phone.time_scale = 0.1
    line.add_specialist("Alice Mediator", ALICE, talk_seconds=10)
    line.add_specialist("Cora Mediator", CORA, level=2, answers=False)
    record = line.phone.call_line(CALLER, brief(inputs))
    line.settle(timeout=40)
    assert record.problems == []
    assert record.bridged_with == [ALICE]
    return record, offered_at(line, record.call_sid)


def test_with_prefer_seconds_the_preferred_ring_alone_then_everyone_free(line_with):
    line = line_with(with_scheduler=True, COMPLEX_CATEGORIES="family", PREFER_SECONDS=2, RING_TIMEOUT_SECONDS=120)

    record, at = alice_after_cora(line, FAMILY)

    (preference,) = line.events(record.call_sid, "routing_preference")[:1]
    alone_until = datetime.fromisoformat(preference["alone_until"])
    # Alice was rung only once Cora had rung alone for PREFER_SECONDS (RQ's scheduler: to the next second or two).
    assert alone_until <= at["Alice Mediator"]
    assert 2 <= (at["Alice Mediator"] - at["Cora Mediator"]).total_seconds() < 10
    cora = next(c for c in line.fake.calls if c.to == CORA)
    assert cora.status == "canceled"  # still ringing when Alice took the caller
    call = load_call(line.app, record.call_sid)
    assert (call.specialist_level, call.to_preferred) == (1, False)


def test_a_kind_of_problem_that_is_not_complex_rings_everyone_without_waiting(line_with):
    line = line_with(COMPLEX_CATEGORIES="family", PREFER_SECONDS=60, RING_TIMEOUT_SECONDS=120)

    record, at = alice_after_cora(line, NOISE)

    # Cora alone while the caller chose; Alice as soon as they pressed "noise", not 60 s later.
    assert at["Cora Mediator"] < at["Alice Mediator"]
    assert (at["Alice Mediator"] - at["Cora Mediator"]).total_seconds() < 8  # Cora alone would ring 12 s
    call = load_call(line.app, record.call_sid)
    assert (call.specialist_level, call.to_preferred) == (1, None)  # noise: nobody was preferred in the end


def test_nobody_preferred_free_rings_everyone_at_once_even_with_prefer_seconds(line_with):
    line = line_with(COMPLEX_CATEGORIES="family", PREFER_SECONDS=60)
    line.add_specialist("Alice Mediator", ALICE)
    line.add_specialist("Cora Mediator", CORA, level=2, on=False)

    record = line.phone.call_line(CALLER, ScriptedCaller(FAMILY))
    line.settle()

    assert record.problems == []
    assert record.bridged_with == [ALICE]
    call = load_call(line.app, record.call_sid)
    assert (call.specialist_level, call.to_preferred) == (1, False)


def bruno_has_the_case(line) -> None:
    """Bruno (level 1) takes a first call from the caller: it opens a case, and Bruno is its specialist."""
    line.add_specialist("Bruno Mediator", BRUNO)
    first = line.phone.call_line(CALLER, ScriptedCaller(NOISE))
    line.settle()
    assert first.bridged_with == [BRUNO]


def test_a_repeat_caller_with_an_open_case_reaches_their_cases_specialist_first(line_with):
    line = line_with()
    bruno_has_the_case(line)
    # Then Alice (level 1) and Cora (level 2) come on, and the caller calls again about the same situation.
    line.add_specialist("Alice Mediator", ALICE, accept="2")
    line.add_specialist("Cora Mediator", CORA, level=2, accept="2")
    placed_before = len(line.fake.calls)

    again = line.phone.call_line(CALLER, ScriptedCaller(NOISE))
    line.settle()

    assert again.problems == []
    assert again.bridged_with == [BRUNO]
    # Bruno, who has the case, was placed first though he was idle the shortest; then level 2; then the others.
    assert [c.to for c in line.fake.calls[placed_before:]] == [BRUNO, CORA, ALICE]
    (preference,) = line.events(again.call_sid, "routing_preference")
    assert preference["why"] == [preferences.OPEN_CASE]
    assert [(p["specialist"], p["as"]) for p in preference["preferred"]] == [
        ("Bruno Mediator", preferences.CASE_SPECIALIST), ("Cora Mediator", preferences.LEVEL_TWO)]
    call = load_call(line.app, again.call_sid)
    assert (call.specialist_level, call.to_preferred) == (1, True)


def test_the_open_cases_specialist_busy_level_2_comes_first(line_with):
    line = line_with()
    bruno_has_the_case(line)
    line.add_specialist("Alice Mediator", ALICE, accept="2")
    line.add_specialist("Cora Mediator", CORA, level=2)
    with line.app.app_context():
        bruno = line.app.extensions["db"].session().scalar(select(Specialist).where(Specialist.phone == BRUNO))
        assert routing.claim_next_specialist(line.app.extensions["redis"], "en", "call:CAother", 600,
                                             only=bruno.id) == bruno.id
    placed_before = len(line.fake.calls)

    again = line.phone.call_line(CALLER, ScriptedCaller(NOISE))
    line.settle()

    assert again.bridged_with == [CORA]
    assert [c.to for c in line.fake.calls[placed_before:]] == [CORA, ALICE]


def test_a_callback_goes_to_the_open_cases_specialist_first(line_with):
    line = line_with()
    bruno_has_the_case(line)
    line.add_specialist("Alice Mediator", ALICE, on=False)
    line.add_specialist("Cora Mediator", CORA, level=2, on=False)
    with line.app.app_context():
        db = line.app.extensions["db"].session()
        specialists.set_available(db, line.app.extensions["redis"], db.scalar(
            select(Specialist).where(Specialist.phone == BRUNO)), False)
    # Nobody on: the caller calls again about the same situation and leaves their details for a callback.
    line.phone.network[CALLER] = ScriptedCaller(["1"], label="caller")  # presses 1 at "press 1 to talk"
    again = line.phone.call_line(CALLER, ScriptedCaller(["2", "1", "Dana Whitfield", "400 West Third", "1",
                                                         "Music again", "1"]))
    line.settle()
    assert again.problems == []
    placed_before = len(line.fake.calls)
    # All three come on together, Alice idle longest, Bruno shortest; one dispatch offers the callback.
    with line.app.app_context():
        db = line.app.extensions["db"].session()
        for n, phone in enumerate((ALICE, CORA, BRUNO)):
            specialist = db.scalar(select(Specialist).where(Specialist.phone == phone))
            specialist.available, specialist.available_since = True, datetime(2026, 1, 1, 8, n)
        db.commit()
        specialists.sync_idle_queues(db, line.app.extensions["redis"])
        tasks.dispatch_soon(line.app.extensions["redis"])
    line.settle()

    assert [c.to for c in line.fake.calls[placed_before:]][:1] == [BRUNO]
    call = load_call(line.app, again.call_sid)
    assert call.outcome == "callback_completed" and call.specialist.phone == BRUNO
    assert (call.specialist_level, call.to_preferred) == (1, True)
    accepted = line.events(again.call_sid, "callback_specialist_accepted")[-1]
    assert accepted["preferred"] == preferences.CASE_SPECIALIST


def test_calls_without_levels_route_as_before(line_with):
    """No level 2 on the roster and no complex kinds: nobody preferred, nothing on the timeline about it."""
    line = line_with()
    line.add_specialist("Alice Mediator", ALICE)
    record = line.phone.call_line(CALLER, ScriptedCaller(["2", "5"]))
    line.settle()
    assert record.bridged_with == [ALICE]
    assert line.events(record.call_sid, "routing_preference") == []
    call = load_call(line.app, record.call_sid)
    assert (call.specialist_level, call.to_preferred) == (1, None)
    with line.app.app_context():
        assert line.app.extensions["db"].session().scalar(select(Call.specialist_level)) == 1
