"""Field safety on the dashboard over HTTP: Arrived, Done and SOS on the visit page (the team only, audited, on
the timeline), the board's field panel, and a coordinator ending an escalation with a note (refused without
one, shown escaped). Real Redis and SQL; the ladder's texts and calls are only queued here."""

from __future__ import annotations

from contextlib import contextmanager
from datetime import datetime, timedelta

import pytest
from sqlalchemy import select

from tests.support import ALICE, BRUNO, CALLER, LINE, PASSWORD, FieldClock, csrf, fresh_app, login, settings
from voice import clock
from voice.casework import field_safety, visits
from voice.dashboard.auth import create_user
from voice.line import calls, specialists
from voice.models import AuditEntry, Case, SafetyAlert, SafetyContact, Visit

START = datetime(2026, 11, 4, 14, 0)  # 9:00 local; the visit is at 10:00


@pytest.fixture
def world(redis_url, database_url, monkeypatch):
    moment = FieldClock(START)
    monkeypatch.setattr(clock, "now", moment)
    config = settings(redis_url, database_url, SAFETY_COORDINATOR_NUMBERS="+19375550300",
                      SAFETY_DISPATCH_NUMBER="+19375550999")
    with fresh_app(config) as app:
        with app.app_context():
            visit_id = _book(app)
        moment.advance(60)
        yield {"app": app, "visit_id": visit_id, "clock": moment}


def _book(app) -> int:
    """Ana and Ben on a visit at 10:00; Cy on the roster too; a coordinator and two specialists' accounts."""
    db = app.extensions["db"].session()
    ana = specialists.add_specialist(db, "Ana Ruiz", ALICE, ["en"])
    ben = specialists.add_specialist(db, "Ben Cole", BRUNO, ["en"])
    cy = specialists.add_specialist(db, "Cy Park", "+19375550203", ["en"])
    create_user(db, "coord@city.gov", PASSWORD, "coordinator")
    create_user(db, "ana@city.gov", PASSWORD, "specialist", ana.id)
    create_user(db, "cy@city.gov", PASSWORD, "specialist", cy.id)
    call = calls.start_call(db, "CA1", CALLER, LINE)
    visit = visits.schedule(db, app.extensions["redis"], app.config, db.get(Case, call.case_id),
                            visits.Plan(START + timedelta(hours=1), [ana.id, ben.id], "12 <i>Oak</i> St", CALLER))
    db.commit()
    return visit.id


@contextmanager
def database(world):
    """A session of the app's, between requests (each request has its own app context, as in life)."""
    with world["app"].app_context():
        db = world["app"].extensions["db"].session()
        yield db
        db.close()


def client_for(world, email: str):
    client = world["app"].test_client()
    login(client, email)
    return client


def post(client, path: str, page: str, **data):
    return client.post(path, data={"csrf_token": csrf(client, page), **data})


def visit_row(world) -> Visit:
    with database(world) as db:
        visit = db.get(Visit, world["visit_id"])
        db.expunge_all()
        return visit


def audited(world) -> list[str]:
    with database(world) as db:
        return list(db.scalars(select(AuditEntry.action).order_by(AuditEntry.id)))


def test_the_team_checks_in_and_out_on_the_visit_page_and_the_board_shows_them_out_there(world):
    ana = client_for(world, "ana@city.gov")
    page = f"/dashboard/visits/{world['visit_id']}"
    shown = ana.get(page).get_data(as_text=True)
    assert 'id="arrived-button"' in shown and 'id="done-button"' not in shown and 'id="sos-button"' in shown
    done = post(ana, f"{page}/arrived", page)
    assert done.status_code == 302
    shown = ana.get(page).get_data(as_text=True)
    assert "Checked in. The team is due back by 10:45 AM." in shown
    assert "Checked in; due back by 10:45 AM" in shown and "Ana Ruiz (visit page)" in shown
    assert visit_row(world).field_state == "in_field"
    board = ana.get("/dashboard/").get_data(as_text=True)
    assert 'data-field="Ana Ruiz and Ben Cole at 12 &lt;i&gt;Oak&lt;/i&gt; St"' in board
    assert "in since 10:00 AM · due back 10:45 AM" in board and "End the escalation" not in board

    world["clock"].advance(50)  # past due back: the board says so before any text goes
    assert 'data-field-state="due back"' in ana.get("/dashboard/board/live").get_data(as_text=True)
    assert post(ana, f"{page}/done", page).status_code == 302
    assert visit_row(world).field_state == "out"
    assert "No team is out on a visit." in ana.get("/dashboard/board/live").get_data(as_text=True)
    assert audited(world)[-2:] == ["safety_check_in", "safety_check_out"]


def test_a_visit_more_than_twelve_hours_away_cannot_be_checked_into(world):
    world["clock"].moment = START - timedelta(days=1)
    ana = client_for(world, "ana@city.gov")
    page = f"/dashboard/visits/{world['visit_id']}"
    assert post(ana, f"{page}/arrived", page).status_code == 302
    assert "That visit is more than 12 hours away" in ana.get(page).get_data(as_text=True)
    assert visit_row(world).field_state is None


def test_only_the_team_sends_sos_from_the_page_and_it_calls_the_coordinator_and_dispatch(world):
    page = f"/dashboard/visits/{world['visit_id']}"
    cy = client_for(world, "cy@city.gov")
    assert cy.get(page).status_code == 404  # not their visit
    coordinator = client_for(world, "coord@city.gov")
    assert 'id="sos-button"' not in coordinator.get(page).get_data(as_text=True)
    assert post(coordinator, f"{page}/sos", page).status_code == 403

    ana = client_for(world, "ana@city.gov")
    assert post(ana, f"{page}/sos", page).status_code == 302
    assert "SOS sent: calling the coordinator and dispatch now." in ana.get(page).get_data(as_text=True)
    with database(world) as db:
        alert = db.scalar(select(SafetyAlert))
        assert (alert.reason, alert.dispatch_called_at) == ("sos", world["clock"]())
        assert sorted(db.scalars(select(SafetyContact.purpose))) == ["coordinator-call-0", "coordinator-text-0",
                                                                      "dispatch-call-0"]
    assert visit_row(world).field_state == "escalating"
    assert "safety_sos" in audited(world)


def test_a_coordinator_ends_an_escalation_only_with_a_note_shown_escaped(world):
    app = world["app"]
    with database(world) as db:
        visit = db.get(Visit, world["visit_id"])
        field_safety.check_in(db, app.extensions["redis"], app.config, visit, field_safety.LINE)
        db.commit()
        world["clock"].advance(55)
        alert = field_safety.ask_team(db, app.extensions["redis"], app.config, visit.id, visit.expected_back_at)
        db.commit()
        db.expunge_all()
    coordinator = client_for(world, "coord@city.gov")
    board = coordinator.get("/dashboard/").get_data(as_text=True)
    assert f'id="end-{alert.id}-note"' in board and "<strong>not acknowledged</strong>" in board
    assert 'data-field-state="overdue"' in board

    refused = post(coordinator, f"/dashboard/safety/alerts/{alert.id}/end", "/dashboard/", note="  ")
    assert refused.status_code == 302
    assert "Write a note" in coordinator.get("/dashboard/").get_data(as_text=True)
    with database(world) as db:
        assert db.get(SafetyAlert, alert.id).closed_at is None

    ended = post(coordinator, f"/dashboard/safety/alerts/{alert.id}/end", "/dashboard/",
                 note="Spoke to <b>Ana</b>: all fine", team_left="1")
    assert ended.status_code == 302
    with database(world) as db:
        alert = db.get(SafetyAlert, alert.id)
        assert (alert.closed_how, alert.close_note) == ("coordinator", "Spoke to <b>Ana</b>: all fine")
    assert visit_row(world).field_state == "out"
    page = coordinator.get(f"/dashboard/visits/{visit.id}").get_data(as_text=True)
    assert "Alert ended: ended by a coordinator — Spoke to &lt;b&gt;Ana&lt;/b&gt;: all fine" in page
    assert "coord@city.gov" in page
    assert "safety_end_escalation" in audited(world)
    assert post(coordinator, f"/dashboard/safety/alerts/{alert.id}/end", "/dashboard/", note="again").status_code == 302
    assert "already ended" in coordinator.get("/dashboard/").get_data(as_text=True)


def test_the_board_says_when_the_line_has_nobody_left_to_call(world):
    app = world["app"]
    with database(world) as db:
        visit = db.get(Visit, world["visit_id"])
        field_safety.check_in(db, app.extensions["redis"], app.config, visit, field_safety.LINE)
        world["clock"].advance(55)
        alert = field_safety.ask_team(db, app.extensions["redis"], app.config, visit.id, visit.expected_back_at)
        alert.rung = "dispatch"  # climbed with no dispatch number set
        db.commit()
    board = client_for(world, "coord@city.gov").get("/dashboard/").get_data(as_text=True)
    assert "The line has nobody else to call:</strong> call the team, and 911 if you cannot reach them." in board


def test_a_specialist_cannot_end_an_escalation(world):
    ana = client_for(world, "ana@city.gov")
    assert post(ana, "/dashboard/safety/alerts/1/end", "/dashboard/", note="x").status_code == 403


def test_the_board_says_plainly_when_no_coordinator_number_is_set(world):
    world["app"].config["SAFETY_COORDINATOR_NUMBERS"] = ()
    coordinator = client_for(world, "coord@city.gov")
    board = coordinator.get("/dashboard/").get_data(as_text=True)
    assert "No coordinator number is set" in board and "the line can text only the team itself" in board
