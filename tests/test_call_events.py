"""The call timeline: events are written with their transaction, in order, and only if it commits."""

from __future__ import annotations

import json

from sqlalchemy import select

from voice.line import calls, offers
from voice.models import CallEvent


def timeline(db) -> list[tuple[str, int, dict]]:
    rows = db.scalars(select(CallEvent).order_by(CallEvent.id)).all()
    return [(event.kind, event.call_id, json.loads(event.detail)) for event in rows]


def timelines_at_release(db, monkeypatch) -> list[list[str]]:
    """The event kinds stored each time a specialist is freed (routing.release_specialist, made a no-op)."""
    from voice.line import routing

    seen: list[list[str]] = []

    def release(_r, specialist_id, holder, keep_place=False):
        with db.no_autoflush:  # what the database holds, not what the session would flush on a read
            seen.append([kind for kind, _, _ in timeline(db)])
        return True

    monkeypatch.setattr(routing, "release_specialist", release)
    return seen


def test_a_new_calls_events_are_written_with_it_in_order(db):
    call = calls.start_call(db, "CA" + "1" * 32, "+19375550123", "+19375550100")
    calls.record_event(db, call, "intake_answer", step="name", speech="Dana")
    call.caller_name = "Dana"
    db.commit()
    db.expire_all()
    assert timeline(db) == [
        ("call_started", call.id, {"from_number": "+19375550123", "to_number": "+19375550100"}),
        ("intake_answer", call.id, {"step": "name", "speech": "Dana"}),
    ]


def test_events_are_written_when_nothing_else_changed_and_seen_by_a_read(db):
    call = calls.start_call(db, "CA" + "2" * 32, "+19375550123", "+19375550100")
    db.commit()
    calls.record_event(db, call, "call_status", status="ringing")
    db.commit()  # the session had nothing else to write
    calls.record_event(db, call, "call_status", status="in-progress")
    # A read in the same transaction sees it, as autoflush shows ORM objects.
    assert [detail.get("status") for kind, _, detail in timeline(db) if kind == "call_status"] == [
        "ringing", "in-progress"]


def test_a_rolled_back_transaction_takes_its_events_with_it(db):
    call = calls.start_call(db, "CA" + "3" * 32, "+19375550123", "+19375550100")
    db.commit()
    calls.record_event(db, call, "intake_answer", step="name", speech="lost")
    db.rollback()
    calls.record_event(db, call, "intake_answer", step="name", speech="kept")
    db.commit()
    assert [detail["speech"] for kind, _, detail in timeline(db) if kind == "intake_answer"] == ["kept"]


def test_a_specialists_leg_end_is_on_the_timeline_before_they_are_freed_for_another_caller(app, db, r, monkeypatch):
    """Otherwise their next offer (written by a worker as soon as they are free) shows ahead of this call's end."""
    from voice.models import Hold, Specialist

    call = calls.start_call(db, "CA" + "4" * 32, "+19375550123", "+19375550100")
    specialist = Specialist(name="Bruno", phone="+19375550143", languages="en")
    db.add(specialist)
    db.flush()
    hold = Hold(call_id=call.id, language="en", status="done", specialist_id=specialist.id)
    db.add(hold)
    db.commit()
    seen_at_release = timelines_at_release(db, monkeypatch)
    offers.offer_status(db, r, hold, specialist.id, {"CallStatus": "completed", "CallDuration": "30"})
    assert seen_at_release and "offer_leg_status" in seen_at_release[0]


def test_a_callback_legs_end_is_on_the_timeline_before_the_specialist_is_freed(app, db, r, monkeypatch):
    from voice.clock import utcnow
    from voice.line import callback_legs, callbacks
    from voice.models import CallbackRequest, Specialist

    call = calls.start_call(db, "CA" + "5" * 32, "+19375550123", "+19375550100")
    specialist = Specialist(name="Ana", phone="+19375550142", languages="en")
    db.add(specialist)
    db.flush()
    request = CallbackRequest(call_id=call.id, callback_number="+19375550123", status=callbacks.IN_PROGRESS,
                              attempt_specialist_id=specialist.id, attempt_started_at=utcnow())
    db.add(request)
    db.commit()
    seen_at_release = timelines_at_release(db, monkeypatch)
    callback_legs.leg_status(db, r, request, specialist.id, {"CallStatus": "no-answer"})
    assert seen_at_release and "callback_leg_status" in seen_at_release[0]
