"""Whole calls driven the way Twilio drives them, through the simulated phone."""

from __future__ import annotations

import json

from sqlalchemy import select

from tests.conftest import DISPATCH
from voice.models import Call, CallbackRequest
from voice.simulator import HANGUP, ScriptedCaller

CALLER = "+19375550123"
ALICE = "+19375550201"
BRUNO = "+19375550202"

# language, safety, category, name, location, callback number, description, preference
FULL_INTAKE_EN = ["1", "2", "1", "Dana Whitfield", "400 West Third Street", "1", "Loud music every night", "1"]


def load_call(app, sid: str) -> Call:
    with app.app_context():
        session = app.extensions["db"].session()
        call = session.scalar(select(Call).where(Call.call_sid == sid))
        call.events  # noqa: B018 (load the timeline while the session is open)
        return call


def test_call_is_screened_collected_and_bridged(app, phone, add_specialist):
    alice = add_specialist("Alice Mediator", ALICE)

    record = phone.call_line(CALLER, ScriptedCaller(FULL_INTAKE_EN))

    assert record.problems == []
    assert record.bridged_with == [ALICE]
    whisper = " ".join(what for who, what in record.transcript if who == f"to {alice.label}")
    assert "noise" in whisper and "Dana Whitfield" in whisper and "400 West Third Street" in whisper
    call = load_call(app, record.call_sid)
    assert call.outcome == "bridged"
    assert (call.language, call.category, call.caller_name) == ("en", "noise", "Dana Whitfield")
    assert call.location == "400 West Third Street"
    assert call.callback_number == CALLER
    assert call.description == "Loud music every night"
    assert call.specialist.phone == ALICE
    assert call.connected_at is not None and call.ended_at is not None
    kinds = [event.kind for event in call.events]
    assert "specialist_accepted" in kinds and "dial_result" in kinds and "call_ended" in kinds


def test_danger_goes_straight_back_to_dispatch(app, phone, add_specialist):
    add_specialist("Alice Mediator", ALICE)

    record = phone.call_line(CALLER, ScriptedCaller(["1", "1"]))

    assert record.problems == []
    assert record.bridged_with == [DISPATCH]
    assert "911" in record.heard()
    call = load_call(app, record.call_sid)
    assert call.outcome == "escalated"
    assert call.outcome_reason == "danger reported"
    assert call.specialist_id is None


def test_spanish_speaker_says_si_and_is_escalated(app, phone):
    record = phone.call_line(CALLER, ScriptedCaller(["2", "Sí, hay un arma"]))

    assert record.bridged_with == [DISPATCH]
    assert "emergencias" in record.heard()
    assert load_call(app, record.call_sid).language == "es"


def test_nobody_available_queues_a_callback(app, phone):
    record = phone.call_line(CALLER, ScriptedCaller(FULL_INTAKE_EN))

    assert record.problems == []
    assert record.bridged_with == []
    assert "call you back" in record.heard()
    call = load_call(app, record.call_sid)
    assert call.outcome == "callback_queued"
    with app.app_context():
        request = app.extensions["db"].session().scalar(select(CallbackRequest))
        assert request.callback_number == CALLER
        assert request.status in {"pending", "scheduled", "in_progress"}


def test_silent_caller_is_never_trapped(app, phone, add_specialist):
    add_specialist("Alice Mediator", ALICE)

    record = phone.call_line(CALLER, ScriptedCaller([]))

    # Silence on the safety question means we could not confirm safety: a dispatcher takes over.
    assert record.problems == []
    assert record.bridged_with == [DISPATCH]
    assert len(record.exchanges) < 15
    call = load_call(app, record.call_sid)
    assert call.outcome == "escalated"
    assert call.outcome_reason == "no answer to the safety question"


def test_caller_silent_after_safety_still_reaches_a_specialist(app, phone, add_specialist):
    add_specialist("Alice Mediator", ALICE)

    record = phone.call_line(CALLER, ScriptedCaller([None, None, "2"]))

    assert record.problems == []
    assert record.bridged_with == [ALICE]
    call = load_call(app, record.call_sid)
    assert call.language == "en" and call.category == "other"
    assert call.callback_number == CALLER


def test_specialist_who_declines_is_skipped_for_the_next(app, phone, add_specialist):
    add_specialist("Alice Mediator", ALICE, accept="2")
    add_specialist("Bruno Mediator", BRUNO)

    record = phone.call_line(CALLER, ScriptedCaller(FULL_INTAKE_EN))

    assert record.problems == []
    assert record.bridged_with == [BRUNO]
    call = load_call(app, record.call_sid)
    assert call.specialist.phone == BRUNO
    declined = [json.loads(e.detail) for e in call.events if e.kind == "specialist_declined"]
    assert len(declined) == 1


def test_nobody_answers_then_callback(app, phone, add_specialist):
    add_specialist("Alice Mediator", ALICE, answers=False)
    add_specialist("Bruno Mediator", BRUNO, accept=None)

    record = phone.call_line(CALLER, ScriptedCaller(FULL_INTAKE_EN))

    assert record.problems == []
    assert record.bridged_with == []
    assert "still trying" in record.heard()
    call = load_call(app, record.call_sid)
    assert call.outcome == "callback_queued"
    assert call.outcome_reason == "no specialist answered"


def test_caller_hangs_up_mid_intake_is_abandoned(app, phone):
    record = phone.call_line(CALLER, ScriptedCaller(["1", "2", HANGUP]))

    call = load_call(app, record.call_sid)
    assert call.outcome == "abandoned"
    assert "category" in call.outcome_reason
    assert call.ended_at is not None


def test_caller_who_says_espanol_gets_the_spanish_intake(app, phone, add_specialist):
    add_specialist("Ana Mediadora", "+19375550203", languages=("es",))
    record = phone.call_line(CALLER, ScriptedCaller(["español", "no", "1", "Ana", "Calle Main", "1", "ruido", "1"]))
    assert record.problems == []
    assert "Primero, su seguridad" in record.heard()
    assert record.bridged_with == ["+19375550203"]


def test_after_dispatch_the_caller_is_told_to_dial_911_if_they_did_not_get_through(app, phone):
    phone.network.pop(DISPATCH)  # dispatch does not pick up
    record = phone.call_line(CALLER, ScriptedCaller(["1", "1"]))
    assert record.problems == []
    assert "hang up and dial 9 1 1" in record.heard()
