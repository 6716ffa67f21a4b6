"""The roster's levels and skills in Chromium: by keyboard alone, and clean for axe-core with a program's language."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy.orm import Session

from tests.support import PASSWORD, assert_accessible, fresh_app, settings, sign_in, tab_to
from voice.dashboard.auth import create_user
from voice.line import specialists
from voice.models import Specialist

ARABIC = str(Path(__file__).resolve().parents[2] / "docs" / "examples" / "ar.toml")


@pytest.fixture
def app(redis_url, database_url):
    """The dashboard of a program that offers Arabic (docs/examples/ar.toml) besides English and Spanish."""
    with fresh_app(settings(redis_url, database_url, LANGUAGE_FILES=ARABIC)) as app:
        yield app


def test_a_coordinator_sets_a_level_and_skills_by_keyboard_on_a_clean_roster(served, new_page, app):
    from playwright.sync_api import expect

    with Session(app.extensions["db"].engine, expire_on_commit=False) as db:
        alice = specialists.add_specialist(db, "Alice Mediator", "+19375550201", ["en"])
        create_user(db, "coord@city.gov", PASSWORD, "coordinator")
        db.commit()
    page = new_page()
    sign_in(page, served, "coord@city.gov")
    page.goto(served + "/dashboard/roster")
    expect(page.locator("legend")).to_have_text("Languages")
    expect(page.locator("form[action='/dashboard/roster'] label.check")).to_have_text(["English", "Spanish", "Arabic"])
    assert_accessible(page, "roster with levels, skills and a third language")

    tab_to(page, f"input[form='edit-{alice.id}'][value='ar']")
    page.keyboard.press("Space")  # she speaks Arabic too
    tab_to(page, "select[aria-label='Level of Alice Mediator']")
    page.keyboard.press("ArrowDown")  # to level 2
    page.keyboard.press("Tab")
    assert page.evaluate("() => document.activeElement.getAttribute('aria-label')") == "Skills of Alice Mediator"
    page.keyboard.type("Supervisor, landlord tenant")
    tab_to(page, f"form#edit-{alice.id} button")
    page.keyboard.press("Enter")
    expect(page.locator(".flash")).to_have_text("Alice Mediator saved.")
    assert_accessible(page, "roster after saving")
    with Session(app.extensions["db"].engine) as db:
        saved = db.get(Specialist, alice.id)
        assert (saved.level, saved.skills) == (2, "en,ar,supervisor,landlord-tenant")
