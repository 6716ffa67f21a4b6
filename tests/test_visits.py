"""In-person visits: what is refused (and changes nothing), what needs a yes, the texts and reminders (sent
once, in the caller's language, never for a cancelled or moved visit), routing around a visit, the outcome,
the calendar feed, follow-ups, and the forms over HTTP."""

from __future__ import annotations

import re
from contextlib import contextmanager
from datetime import date, datetime, time, timedelta

import pytest
from flask.globals import app_ctx
from sqlalchemy import func, select

from tests.support import fresh_app, settings
from voice import clock, models, tasks
from voice.casework import visits
from voice.dashboard.auth import create_user
from voice.line import callbacks, calls, holds, offers, routing, specialists
from voice.models import AuditEntry, CallbackRequest, Case, Hold, Visit, VisitMessage
from workers import visit_texts as visit_jobs

CALLER = "+19375550123"
ANA, BEN, CY = "+19375550201", "+19375550202", "+19375550203"
PASSWORD = "correct horse battery"
TOKEN = re.compile(r'name="csrf_token"[^>]*value="([^"]+)"')
# A Wednesday morning in the program's time zone (America/New_York, EST): 10:00 local is 15:00 UTC.
NOW = datetime(2026, 11, 4, 13, 0)


@pytest.fixture
def office(redis_url, database_url):
    """The line with office hours (Mon-Fri 8-20) and a holiday on Friday Nov 6."""
    config = settings(redis_url, database_url, OPEN_HOURS="mon-fri 08:00-20:00", HOLIDAYS="2026-11-06")
    with fresh_app(config) as app:
        yield app


@pytest.fixture
def world(office, monkeypatch):
    """Three specialists, a case with one call (Spanish, from CALLER), and a clock frozen at NOW."""
    monkeypatch.setattr(clock, "now", lambda: NOW)
    sent: list[tuple[str, str]] = []
    monkeypatch.setattr("voice.twilio_rest.send_sms", lambda config, to, body, status_callback=None: sent.append((to, body)) or f"SM{len(sent)}")
    with office.app_context():
        db = office.extensions["db"].session()
        team = [specialists.add_specialist(db, name, number, ["en", "es"]).id
                for name, number in (("Ana Ruiz", ANA), ("Ben Cole", BEN), ("Cy Park", CY))]
        call = calls.start_call(db, "CA1", CALLER, "+19375550100")
        call.started_at, call.language, call.category, call.location = NOW, "es", "noise", "1200 Salem Ave"
        db.commit()
        yield {"app": office, "db": db, "r": office.extensions["redis"], "team": team, "case": db.get(Case, call.case_id),
               "call": call, "sent": sent, "config": office.config}


def plan(world, day=date(2026, 11, 5), at=time(10, 0), team=None, address="1200 Salem Ave", number=CALLER):
    return visits.Plan(visits.local_to_utc(day, at, "America/New_York"), team if team is not None else world["team"][:2],
                       address, number, "es")


def book(world, **kwargs) -> Visit:
    visit = visits.schedule(world["db"], world["r"], world["config"], world["case"], plan(world, **kwargs))
    world["db"].commit()
    return visit


def visit_count(world) -> int:
    return world["db"].scalar(select(func.count(Visit.id)))


@pytest.mark.parametrize(("change", "message"), [
    ({"address": ""}, "Enter the address"),
    ({"address": "x" * 301}, "at most 300 characters"),
    ({"day": date(2026, 11, 4), "at": time(7, 0)}, "already passed"),
    ({"team": [9999, 1]}, "not on the roster"),
    ({"team": []}, "Choose 2 specialists"),
    ({"at": time(21, 0)}, "off shift"),
    ({"day": date(2026, 11, 7)}, "off shift"),  # a Saturday
])
def test_bad_visits_are_refused_with_a_clear_message_and_change_nothing(world, change, message):
    if "team" in change and change["team"] and change["team"][1] == 1:
        change["team"] = [9999, world["team"][0]]
    with pytest.raises(visits.VisitError, match=message):
        visits.schedule(world["db"], world["r"], world["config"], world["case"], plan(world, **change))
    world["db"].rollback()
    assert visit_count(world) == 0


def test_a_specialist_already_booked_counting_travel_is_refused(world):
    book(world)  # 10:00-11:00 with Ana and Ben
    with pytest.raises(visits.VisitError, match="Ana Ruiz is already booked"):
        book(world, at=time(11, 20), team=[world["team"][0], world["team"][2]])  # inside 30 minutes of travel
    world["db"].rollback()
    book(world, at=time(11, 30), team=[world["team"][0], world["team"][2]])  # just clear of it
    assert visit_count(world) == 2


def test_a_holiday_or_travel_outside_hours_needs_a_yes(world):
    with pytest.raises(visits.NeedsConfirmation) as holiday:
        book(world, day=date(2026, 11, 6))
    assert holiday.value.warnings == ["That day is a holiday."]
    world["db"].rollback()
    with pytest.raises(visits.NeedsConfirmation, match="travel outside"):
        book(world, at=time(8, 0))
    world["db"].rollback()
    assert visit_count(world) == 0
    visit = visits.schedule(world["db"], world["r"], world["config"], world["case"], plan(world, day=date(2026, 11, 6)),
                            confirmed=True)
    world["db"].commit()
    assert visit.status == visits.SCHEDULED


def test_reminders_are_queued_once_sent_once_in_the_callers_language_and_never_after_a_cancel(world):
    visit = book(world)
    scheduled = tasks.queue(world["r"]).scheduled_job_registry.get_job_ids()
    assert sorted(scheduled) == [f"visit-{visit.id}-v1-day_before", f"visit-{visit.id}-v1-hour_before"]
    visit_jobs.send_change(visit.id, "confirm", 1)
    assert world["sent"][0][0] == CALLER and "le visitarán" in world["sent"][0][1] and "1200 Salem Ave" in world["sent"][0][1]
    assert {to for to, _ in world["sent"]} == {CALLER, ANA, BEN}
    world["sent"].clear()
    day_before = visit.starts_at - timedelta(days=1)
    visit_jobs.send_reminder(visit.id, "day_before", 1, now=day_before)
    visit_jobs.send_reminder(visit.id, "day_before", 1, now=day_before)  # a re-run sends nothing
    assert len(world["sent"]) == 3
    assert "recordatorio" in dict(world["sent"])[CALLER] and "Visit tomorrow" in dict(world["sent"])[ANA]
    world["sent"].clear()
    visits.cancel(world["db"], world["r"], visit, "caller asked", None)
    world["db"].commit()
    visit_jobs.send_reminder(visit.id, "hour_before", 1, now=visit.starts_at - timedelta(hours=1))
    assert world["sent"] == []
    visit_jobs.send_change(visit.id, "cancelled", 1)
    assert "cancelada" in dict(world["sent"])[CALLER]
    assert world["db"].scalar(select(func.count(VisitMessage.id)).where(VisitMessage.kind == "day_before")) == 3


def test_a_moved_visit_sends_the_old_reminders_nothing_and_texts_the_change(world):
    visit = book(world)
    visits.reschedule(world["db"], world["r"], world["config"], visit,
                      plan(world, at=time(14, 0), team=[world["team"][0], world["team"][2]]))
    world["db"].commit()
    assert visit.version == 2
    visit_jobs.send_reminder(visit.id, "hour_before", 1, now=NOW)  # the old version's job
    assert world["sent"] == []
    visit_jobs.send_change(visit.id, "changed", 2, [world["team"][1]])
    assert {to for to, _ in world["sent"]} == {CALLER, ANA, CY, BEN}  # Ben left the team and hears of it
    assert "cambió" in dict(world["sent"])[CALLER]
    ids = tasks.queue(world["r"]).scheduled_job_registry.get_job_ids()
    assert f"visit-{visit.id}-v2-hour_before" in ids


def test_a_caller_number_outside_the_allowed_countries_gets_no_texts(world):
    visit = book(world, number="+442071838750")
    assert visit.contact_number is None
    visit_jobs.send_change(visit.id, "confirm", 1)
    assert {to for to, _ in world["sent"]} == {ANA, BEN}


def test_routing_skips_a_specialist_on_a_visit_and_the_board_says_so(world, monkeypatch):
    visit = book(world)
    db, r = world["db"], world["r"]
    ana, ben, cy = (db.get(models.Specialist, i) for i in world["team"])
    for specialist in (ana, ben, cy):
        specialists.set_available(db, r, specialist, True)
    db.commit()
    during = visit.starts_at + timedelta(minutes=10)
    monkeypatch.setattr(clock, "now", lambda: during)
    assert visits.on_visit_now(db, ana.id) is not None and visits.on_visit_now(db, cy.id) is None
    call = calls.start_call(db, "CA2", "+19375550999", "+19375550100")
    hold = Hold(call_id=call.id, language="en", status=holds.WAITING)
    db.add(hold)
    db.commit()
    chosen = offers.claim_ringing(db, r, hold, limit=5).everyone
    assert [s.name for s in chosen] == ["Cy Park"]
    assert routing.lease_holder(r, ana.id) is None  # given back at once
    from voice.dashboard import queries

    board = queries.board(db, r, "America/New_York")
    states = {row.specialist.name: row.state for row in board["specialists"]}
    assert states["Ana Ruiz"] == states["Ben Cole"] == "on_visit"


def test_the_outcome_closes_the_case_in_person_and_an_unrecorded_one_is_overdue(world, monkeypatch):
    visit = book(world)
    with pytest.raises(visits.VisitError, match="not started"):
        visits.record_outcome(world["db"], visit, "agreement_reached", None)
    later = visit.ends_at + timedelta(days=1, minutes=1)
    monkeypatch.setattr(clock, "now", lambda: later)
    assert visits.overdue(world["db"]) == [visit]
    with pytest.raises(visits.VisitError, match="Choose how"):
        visits.record_outcome(world["db"], visit, "went fine", None)
    visits.record_outcome(world["db"], visit, "agreement_reached", "both signed")
    world["db"].commit()
    case = world["case"]
    assert (case.status, case.outcome, case.closed_how) == ("closed", "agreement_reached", "in_person")
    assert visits.overdue(world["db"]) == []


def test_the_calendar_feed_lists_the_visits_at_a_revocable_secret_url(world):
    visit = book(world)
    app = world["app"]
    with app.app_context():
        db = app.extensions["db"].session()
        create_user(db, "ana@city.gov", PASSWORD, "specialist", world["team"][0])
        db.commit()
    with between_requests():
        calendar_feed_checks(app, world, visit)


def calendar_feed_checks(app, world, visit):
    client = signed_in(app, "ana@city.gov")
    page = client.get(f"/dashboard/specialists/{world['team'][0]}/calendar").get_data(as_text=True)
    made = client.post(f"/dashboard/specialists/{world['team'][0]}/calendar",
                       data={"csrf_token": TOKEN.search(page).group(1), "action": "new"})
    assert made.status_code == 302
    page = client.get(made.location).get_data(as_text=True)
    url = re.search(r'value="https://line.example.org(/dashboard/feeds/[^"]+\.ics)"', page).group(1)
    feed = app.test_client().get(url)
    assert feed.status_code == 200 and feed.mimetype == "text/calendar"
    body = feed.get_data(as_text=True)
    assert f"UID:visit-{visit.id}@line.example.org" in body and "1200 Salem Ave" in body
    assert "DTSTART:20261105T150000Z" in body
    # Someone else's feed page is not Ana's to see.
    assert client.get(f"/dashboard/specialists/{world['team'][1]}/calendar").status_code == 404
    client.post(f"/dashboard/specialists/{world['team'][0]}/calendar",
                data={"csrf_token": TOKEN.search(page).group(1), "action": "revoke"})
    assert app.test_client().get(url).status_code == 404


def test_a_follow_up_is_a_callback_scheduled_for_its_day_and_comes_due_on_the_board(world, monkeypatch):
    db = world["db"]
    request = callbacks.queue_follow_up(db, world["case"], NOW + timedelta(days=7), "check the noise stopped",
                                        "America/New_York")
    db.commit()
    assert request.status == callbacks.SCHEDULED and request.due_at == NOW + timedelta(days=7)
    assert request.callback_number == CALLER and request.call.case_id == world["case"].id
    assert callbacks.follow_ups_due(db) == []
    with pytest.raises(callbacks.FollowUpError, match="already has a follow-up"):
        callbacks.queue_follow_up(db, world["case"], NOW + timedelta(days=8), None, "America/New_York")
    monkeypatch.setattr(clock, "now", lambda: NOW + timedelta(days=7, minutes=1))
    callbacks.promote_due(db)
    db.commit()
    db.expire_all()
    assert db.get(CallbackRequest, request.id).status == callbacks.PENDING
    assert [r.id for r in callbacks.follow_ups_due(db)] == [request.id]


@contextmanager
def between_requests():
    """Step out of the fixture's app context, so each request has its own (and its own `g`), as in life."""
    context = app_ctx._get_current_object()
    context.pop()
    try:
        yield
    finally:
        context.push()


def signed_in(app, email: str):
    client = app.test_client()
    token = TOKEN.search(client.get("/dashboard/login").get_data(as_text=True)).group(1)
    client.post("/dashboard/login", data={"email": email, "password": PASSWORD, "csrf_token": token})
    return client


def test_the_visit_form_over_http_refuses_bad_input_escaped_and_audits_a_booking(world):
    app = world["app"]
    with app.app_context():
        db = app.extensions["db"].session()
        create_user(db, "coord@city.gov", PASSWORD, "coordinator")
        db.commit()
    with between_requests():
        visit_form_checks(app, world)


def visit_form_checks(app, world):
    client = signed_in(app, "coord@city.gov")
    case_id = world["case"].id
    page = client.get(f"/dashboard/cases/{case_id}").get_data(as_text=True)
    assert "First call in 30 days about noise" in page
    token = TOKEN.search(page).group(1)
    base = {"csrf_token": token, "day": "2026-11-05", "time": "10:00", "address": "<b>1200</b> Salem Ave",
            "team": [str(i) for i in world["team"][:2]], "contact_number": "937-555-0123"}
    refused = client.post(f"/dashboard/cases/{case_id}/visits", data={**base, "team": [str(world["team"][0])]})
    text = refused.get_data(as_text=True)
    assert refused.status_code == 400 and "Choose 2 specialists for the team" in text and 'href="#team"' in text
    assert client.post(f"/dashboard/cases/{case_id}/visits", data={**base, "csrf_token": "nope"}).status_code == 400
    holiday = client.post(f"/dashboard/cases/{case_id}/visits", data={**base, "day": "2026-11-06"})
    assert holiday.status_code == 409 and "That day is a holiday." in holiday.get_data(as_text=True)
    assert visit_count(world) == 0
    booked = client.post(f"/dashboard/cases/{case_id}/visits", data=base)
    assert booked.status_code == 302
    shown = client.get(booked.location).get_data(as_text=True)
    assert "&lt;b&gt;1200&lt;/b&gt; Salem Ave" in shown and "<b>1200" not in shown
    with app.app_context():
        actions = app.extensions["db"].session().scalars(select(AuditEntry.action)).all()
    assert "schedule_visit" in actions and "view_case" in actions
