"""A visit from a case page in a real Chromium: book it (after a refused try), see it in the specialist's
calendar feed, move it, record its outcome; axe-core finds nothing on each new page."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from tests.support import assert_accessible, sign_in
from voice import clock
from voice.dashboard.auth import create_user
from voice.line import calls, specialists

CALLER = "+19375550123"


def test_schedule_a_visit_see_it_in_the_feed_move_it_and_record_the_outcome(served, new_page, app, monkeypatch):
    with app.app_context():
        db = app.extensions["db"].session()
        ana = specialists.add_specialist(db, "Ana Ruiz", "+19375550201", ["en"])
        specialists.add_specialist(db, "Ben Cole", "+19375550202", ["en"])
        create_user(db, "coord@city.gov", "correct horse battery", "coordinator")
        create_user(db, "ana@city.gov", "correct horse battery", "specialist", ana.id)
        call = calls.start_call(db, "CA1", CALLER, "+19375550100")
        call.category, call.location, call.callback_number = "noise", "1200 Salem Ave", CALLER
        db.commit()
        case_id, ana_id = call.case_id, ana.id
    tomorrow = datetime.now(ZoneInfo("America/New_York")).date() + timedelta(days=1)

    page = new_page()
    sign_in(page, served, "coord@city.gov")
    page.goto(f"{served}/dashboard/cases/{case_id}")
    assert "First call in 30 days about noise" in page.content()
    assert_accessible(page, "case page")

    # Only one specialist chosen: refused, the summary links to the team, nothing booked.
    page.fill("#day", tomorrow.isoformat())
    page.fill("#time", "10:00")
    page.check("text=Ana Ruiz")
    page.click("text=Book the visit")
    assert page.locator(".error-summary").is_visible()
    assert "Choose 2 specialists for the team" in page.content()
    assert_accessible(page, "case page with a visit error")

    page.check("text=Ben Cole")
    page.click("text=Book the visit")
    page.wait_for_selector("#visit-status")
    assert "Visit booked" in page.content() and "Ana Ruiz, Ben Cole" in page.content()
    assert_accessible(page, "visit page")
    visit_url = page.url

    # Ana's calendar feed, at the link she makes herself.
    ana_page = new_page()
    sign_in(ana_page, served, "ana@city.gov")
    ana_page.goto(f"{served}/dashboard/specialists/{ana_id}/calendar")
    ana_page.click("text=Make a link")
    assert_accessible(ana_page, "calendar feed page")
    feed_path = ana_page.input_value("#feed-url").split("line.example.org", 1)[1]
    feed = ana_page.request.get(served + feed_path)
    assert feed.ok and "1200 Salem Ave" in feed.text() and "SEQUENCE:0" in feed.text()

    # Move it to the afternoon.
    page.goto(visit_url)
    page.fill("#time", "14:00")
    page.click("text=Save the change")
    page.wait_for_selector("#visit-status")
    assert "Visit changed" in page.content() and "2:00 PM" in page.content()
    assert "SEQUENCE:1" in ana_page.request.get(served + feed_path).text()

    # The visit has happened: the team records the outcome.
    later = datetime.combine(tomorrow + timedelta(days=1), datetime.min.time())
    monkeypatch.setattr(clock, "now", lambda: later)
    page.goto(visit_url)
    page.check("text=agreement reached")
    page.fill("#notes", "Both agreed to quiet hours after 10 p.m.")
    page.click("text=Record the outcome")
    page.wait_for_selector("#visit-outcome")
    assert "agreement reached" in page.locator("#visit-outcome").inner_text()
    assert_accessible(page, "visit page with its outcome")
    page.goto(f"{served}/dashboard/cases")
    assert_accessible(page, "cases list")
    page.goto(f"{served}/dashboard/cases/{case_id}")
    assert "Closed: agreement reached" in page.content()
    assert isinstance(tomorrow, date)
