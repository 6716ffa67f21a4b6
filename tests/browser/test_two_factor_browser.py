"""Two-factor sign-in in Chromium: a coordinator enrols, signs in with a code and with a recovery code once,
and axe-core finds nothing on any of the pages on the way."""

from __future__ import annotations

import time

import pyotp
import pytest
from sqlalchemy.orm import Session

from tests.support import PASSWORD, assert_accessible, fresh_app, settings
from voice.dashboard.auth import create_user


@pytest.fixture
def app(redis_url, database_url):
    with fresh_app(settings(redis_url, database_url, REQUIRE_2FA_FOR="coordinator")) as app:
        with Session(app.extensions["db"].engine) as db:
            create_user(db, "coord@city.gov", PASSWORD, "coordinator")
            db.commit()
        yield app


def password_step(page, base: str, expected: str) -> None:
    page.goto(base + "/dashboard/login")
    page.fill("input[name=email]", "coord@city.gov")
    page.fill("input[name=password]", PASSWORD)
    page.click("button.primary")
    page.wait_for_url(base + expected)


def sign_out(page, base: str) -> None:
    page.click("text=Sign out")
    page.wait_for_url(base + "/dashboard/login")


def test_a_coordinator_enrols_then_signs_in_with_a_code_and_with_a_recovery_code_once(served, new_page):
    from playwright.sync_api import expect

    page = new_page()
    password_step(page, served, "/dashboard/login/two-factor/enrol")
    expect(page.locator("h1")).to_have_text("Set up two-factor sign-in")
    assert page.locator("img.qr").evaluate("img => img.complete && img.naturalWidth > 0")
    assert_accessible(page, "two-factor enrolment")
    page.goto(served + "/dashboard/")  # the half sign-in opens nothing
    expect(page).to_have_url(served + "/dashboard/login?next=%2Fdashboard%2F")

    password_step(page, served, "/dashboard/login/two-factor/enrol")
    secret = page.locator("#totp-secret").inner_text().replace(" ", "")
    totp = pyotp.TOTP(secret)
    page.fill("#code", "12345")
    page.click("button.primary")
    expect(page.locator(".error-summary")).to_be_visible()
    assert_accessible(page, "two-factor enrolment with an error")
    page.fill("#code", totp.now())
    page.click("button.primary")
    expect(page.locator("h1")).to_have_text("Two-factor sign-in is on")
    codes = page.locator("#recovery-codes code").all_inner_texts()
    assert len(codes) == 10
    assert_accessible(page, "recovery codes")
    page.click("text=I have saved them: continue")
    expect(page.locator("h1")).to_have_text("Live board")
    page.goto(served + "/dashboard/users")
    expect(page.get_by_role("button", name="Reset two-factor sign-in of coord@city.gov")).to_be_visible()
    assert_accessible(page, "accounts with two-factor on")
    sign_out(page, served)

    # A code: the enrolment's own code is spent, so the next one (inside the window) signs in.
    password_step(page, served, "/dashboard/login/two-factor")
    assert_accessible(page, "two-factor code")
    page.fill("#code", "000000")
    page.click("button.primary")
    expect(page.locator(".error-summary")).to_be_visible()
    assert_accessible(page, "two-factor code with an error")
    page.fill("#code", totp.at(time.time() + 30))
    page.click("button.primary")
    expect(page.locator("h1")).to_have_text("Live board")
    sign_out(page, served)

    # A recovery code works once.
    password_step(page, served, "/dashboard/login/two-factor")
    page.click("text=Use a recovery code instead")
    assert_accessible(page, "recovery code")
    page.fill("#code", codes[0])
    page.click("button.primary")
    expect(page.locator("h1")).to_have_text("Live board")
    expect(page.locator(".flash.ok")).to_contain_text("9 left")
    sign_out(page, served)
    password_step(page, served, "/dashboard/login/two-factor")
    page.click("text=Use a recovery code instead")
    page.fill("#code", codes[0])
    page.click("button.primary")
    expect(page.locator(".error-summary")).to_contain_text("used already")
    assert_accessible(page, "recovery code with an error")
    page.goto(served + "/dashboard/")
    expect(page).to_have_url(served + "/dashboard/login?next=%2Fdashboard%2F")
