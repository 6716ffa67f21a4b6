"""axe-core (WCAG 2.0/2.1 A and AA) finds nothing on any kind of dashboard page, as a coordinator and as a specialist."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy.orm import Session

from tests.support import assert_accessible, sign_in
from voice.clock import utcnow
from voice.dashboard import queries
from voice.dashboard.auth import create_user
from voice.dashboard.site import OUTCOME_LABELS
from voice.line import specialists
from voice.models import Call, CallbackRequest, CallNote, Referral, Service

PASSWORD = "correct horse battery"


@pytest.fixture
def busy_line(app, r):
    """Every state the pages can show: each outcome and callback status, people on and off, an inactive one."""
    with Session(app.extensions["db"].engine, expire_on_commit=False) as db:
        ana = specialists.add_specialist(db, "Ana O'Neil", "+19375550201", ["en", "es"])
        bruno = specialists.add_specialist(db, "Bruno Mediator", "+19375550202", ["en"])
        gone = specialists.add_specialist(db, "Gone Person", "+19375550203", ["en"])
        gone.active = False
        db.commit()
        specialists.set_available(db, r, ana, True)
        create_user(db, "coord@city.gov", PASSWORD, "coordinator")
        create_user(db, "ana@city.gov", PASSWORD, "specialist", ana.id)
        create_user(db, "old@city.gov", PASSWORD, "specialist", gone.id).active = False
        start = utcnow() - timedelta(hours=1)
        calls = []
        for n, outcome in enumerate(OUTCOME_LABELS):
            call = Call(call_sid=f"CA{n:032d}", from_number="+19375550123", caller_name=f"Caller {outcome}",
                        category="noise", outcome=outcome, language="en" if n % 2 else "es",
                        started_at=start - timedelta(days=n % 3, minutes=n), specialist_id=ana.id,
                        connected_at=start if outcome == "bridged" else None,
                        ended_at=None if outcome == "in_intake" else start + timedelta(minutes=5),
                        step="location" if outcome == "in_intake" else None)
            calls.append(call)
        calls[0].started_at = utcnow() - timedelta(minutes=2)
        db.add_all(calls)
        db.flush()
        for n, status in enumerate(["pending", "scheduled", "in_progress", "unreachable"]):
            db.add(CallbackRequest(call_id=calls[n + 1].id, callback_number="+19375550123", status=status,
                                   attempts=n, reason="caller did not answer" if status == "unreachable" else None,
                                   due_at=utcnow() + timedelta(hours=n)))
        bridged = next(c for c in calls if c.outcome == "bridged")
        bridged.disposition, bridged.disposition_notes, bridged.disposition_at = "referred", "To legal aid", utcnow()
        db.add(CallNote(call_id=bridged.id, body="Called the landlord back."))
        legal = Service(name="Legal Aid of the Valley", kind="legal_aid", phone="+19375550401")
        db.add_all([legal, Service(name="Old Shelter", kind="shelter", phone="+19375550402", active=False)])
        db.flush()
        db.add(Referral(call_id=bridged.id, service_id=legal.id, accepted=True))
        db.commit()
        return {"bridged": bridged.id, "bruno": bruno.id}


def visit(page, base: str, path: str, what: str) -> None:
    page.goto(base + path)
    assert_accessible(page, what)


def test_every_coordinator_page_passes_axe(served, new_page, busy_line, app, monkeypatch):
    page = new_page()
    visit(page, served, "/dashboard/login", "login")
    page.fill("input[name=email]", "coord@city.gov")
    page.fill("input[name=password]", "wrong password!")
    page.click("button.primary")
    assert_accessible(page, "login with an error")
    sign_in(page, served, "coord@city.gov")
    assert_accessible(page, "live board")
    for path, what in [("/dashboard/calls", "calls"), ("/dashboard/calls?start=yesterday", "calls with a filter error"),
                       (f"/dashboard/calls/{busy_line['bridged']}", "call detail"),
                       ("/dashboard/callbacks", "callbacks"), ("/dashboard/roster", "roster"),
                       ("/dashboard/users", "accounts"), ("/dashboard/audit", "audit log"),
                       ("/dashboard/services", "services"),
                       ("/dashboard/account/password", "change password"),
                       ("/dashboard/nowhere", "404 page"), ("/dashboard/logout", "405 page")]:
        visit(page, served, path, what)

    page.goto(served + "/dashboard/reports")
    page.evaluate("() => document.querySelectorAll('details').forEach((d) => { d.open = true; })")
    assert_accessible(page, "reports with every table open")

    # Forms that failed: the note too long, a taken account email, a roster flash.
    page.goto(served + f"/dashboard/calls/{busy_line['bridged']}")
    page.fill("#note-body", "x" * 2001)
    page.click("text=Add note")
    assert page.locator(".error-summary").is_visible()
    assert_accessible(page, "call detail with a note error")
    page.goto(served + "/dashboard/users")
    page.fill("#email", "coord@city.gov")
    page.fill("#password", "a long first password")
    page.click("text=Add account")
    assert page.locator(".error-summary").is_visible()
    assert_accessible(page, "accounts with a form error")
    page.goto(served + "/dashboard/roster")
    page.fill("form[action='/dashboard/roster'] input[name=name]", "Someone")
    page.fill("form[action='/dashboard/roster'] input[name=phone]", "12")
    page.click("text=Add")
    assert_accessible(page, "roster with an error message")

    # A 500 renders the bare error page (outside test mode, where Flask would re-raise instead).
    monkeypatch.setitem(app.config, "PROPAGATE_EXCEPTIONS", False)
    monkeypatch.setattr(app, "testing", False)

    def broken(*args, **kwargs):
        raise RuntimeError("the board query broke")

    monkeypatch.setattr(queries, "board", broken)
    visit(page, served, "/dashboard/", "500 page")
    assert "Something went wrong" in page.content()


def test_every_specialist_page_passes_axe(served, new_page, busy_line):
    page = new_page(390, 844)  # on a phone, as a specialist would be
    sign_in(page, served, "ana@city.gov")
    assert_accessible(page, "live board (specialist, phone)")
    for path, what in [("/dashboard/calls", "their calls"), (f"/dashboard/calls/{busy_line['bridged']}", "their call"),
                       ("/dashboard/roster", "403 page"), ("/dashboard/calls/999999", "404 page")]:
        visit(page, served, path, what)
