"""The board's field panel in a real Chromium: a team escalating and a team out there; a change read out in the
live region while focus (and a half-written note) stays put; ending the escalation by keyboard alone; axe-core
finds nothing, with a team escalating and with none."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from tests.support import PASSWORD, assert_accessible, sign_in
from voice.casework import field_safety, visits
from voice.clock import utcnow
from voice.dashboard.auth import create_user
from voice.line import calls, specialists
from voice.models import Case, SafetyAlert, Visit


def team_out(app, db: Session, names: tuple[str, str], numbers: tuple[str, str], address: str) -> int:
    """A visit that began 20 minutes ago, its team checked in."""
    team = [specialists.add_specialist(db, name, number, ["en"]).id for name, number in zip(names, numbers, strict=True)]
    call = calls.start_call(db, f"CA{numbers[0][-4:]}", "+19375550123", "+19375550100")
    visit = visits.schedule(db, app.extensions["redis"], app.config, db.get(Case, call.case_id),
                            visits.Plan(utcnow() + timedelta(minutes=1), team, address))
    visit.starts_at -= timedelta(minutes=21)
    visit.ends_at -= timedelta(minutes=21)
    field_safety.check_in(db, app.extensions["redis"], app.config, visit, field_safety.LINE)
    db.commit()
    return visit.id


def gone_quiet(app, db: Session, visit_id: int) -> SafetyAlert:
    """Its due-back time and the grace are past: the ladder's first rung."""
    visit = db.get(Visit, visit_id)
    visit.checked_in_at -= timedelta(hours=1)
    visit.expected_back_at -= timedelta(hours=1)
    db.commit()
    alert = field_safety.ask_team(db, app.extensions["redis"], app.config, visit.id, visit.expected_back_at)
    db.commit()
    return alert


def test_the_field_panel_reads_out_changes_keeps_focus_and_ends_an_escalation_by_keyboard(served, new_page, app):
    from playwright.sync_api import expect

    app.config["BOARD_REFRESH_MS"] = 400
    app.config["SAFETY_COORDINATOR_NUMBERS"] = ("+19375550300",)
    with app.app_context():
        db = app.extensions["db"].session()
        create_user(db, "coord@city.gov", PASSWORD, "coordinator")
        first = team_out(app, db, ("Ana Ruiz", "Ben Cole"), ("+19375550201", "+19375550202"), "1200 Salem Ave")
        second = team_out(app, db, ("Cy Park", "Dee Lee"), ("+19375550203", "+19375550204"), "5 Elm St")
        alert = gone_quiet(app, db, first)
        alert_id = alert.id
        db.close()

    page = new_page()
    sign_in(page, served, "coord@city.gov")
    expect(page.locator(f"#field-visit-{first} .badge")).to_have_text("Overdue")
    expect(page.locator(f"#field-visit-{second} .badge")).to_have_text("In the field")
    assert_accessible(page, "board with a team overdue and one in the field")

    note = f"#end-{alert_id}-note"
    for _ in range(80):
        page.keyboard.press("Tab")
        if page.evaluate("(s) => document.activeElement.matches(s)", note):
            break
    else:
        raise AssertionError("Tab never reached the escalation's note")
    page.keyboard.type("Called Ana: all fine, finishing up")
    page.evaluate("() => { document.activeElement.marked = 'yes'; }")
    expect(page.locator("#updated")).to_contain_text("Updated")

    with app.app_context():
        db = app.extensions["db"].session()
        gone_quiet(app, db, second)
        db.close()
    expect(page.locator("#board-announcer")).to_have_text("Cy Park and Dee Lee at 5 Elm St is now overdue.")
    assert page.evaluate("() => document.activeElement.marked") == "yes"  # the very same input, still focused
    assert page.input_value(note) == "Called Ana: all fine, finishing up"

    page.keyboard.press("Tab")  # "The team has left", left unticked: they are still there
    page.keyboard.press("Tab")
    assert page.evaluate("() => document.activeElement.id") == f"end-{alert_id}-button"
    page.keyboard.press("Enter")
    expect(page.locator(".flash")).to_have_text("Escalation ended; your note is on the visit.")
    expect(page.locator(f"#field-visit-{first} .badge")).to_have_text("In the field")
    assert_accessible(page, "board after an escalation ended")
    with app.app_context():
        db = app.extensions["db"].session()
        closed = db.scalar(select(SafetyAlert).where(SafetyAlert.id == alert_id))
        assert (closed.closed_how, closed.close_note) == ("coordinator", "Called Ana: all fine, finishing up")

    page.goto(f"{served}/dashboard/visits/{first}")
    expect(page.locator("#safety-timeline")).to_contain_text("Alert ended: ended by a coordinator — Called Ana")
    assert_accessible(page, "visit page with its safety timeline")
