"""The dashboard by keyboard alone, and a live board that never moves focus and says what changed."""

from __future__ import annotations

from sqlalchemy.orm import Session

from tests.support import PASSWORD, tab_to
from voice.clock import utcnow
from voice.dashboard.auth import create_user
from voice.line import specialists
from voice.models import Call, CallbackRequest, Specialist


def focused(page) -> str:
    return page.evaluate("() => document.activeElement.id || document.activeElement.tagName")


def roster(app, r, *people: tuple[str, str, bool]) -> dict[str, int]:
    with Session(app.extensions["db"].engine, expire_on_commit=False) as db:
        ids = {}
        for name, number, on in people:
            specialist = specialists.add_specialist(db, name, number, ["en"])
            db.commit()
            if on:
                specialists.set_available(db, r, specialist, True)
            ids[name] = specialist.id
        create_user(db, "coord@city.gov", PASSWORD, "coordinator")
        db.add(Call(call_sid="CA" + "1" * 32, from_number="+19375550123", caller_name="Dana Whitfield",
                    outcome="bridged", specialist_id=ids[people[0][0]], connected_at=utcnow(), ended_at=utcnow()))
        db.commit()
        return ids


def test_the_main_actions_by_keyboard_alone(served, new_page, app, r):
    from playwright.sync_api import expect

    ids = roster(app, r, ("Alice Mediator", "+19375550201", True))
    page = new_page()
    page.goto(served + "/dashboard/login")
    assert focused(page) == "email"  # the login form starts on its first field
    page.keyboard.type("coord@city.gov")
    page.keyboard.press("Tab")
    page.keyboard.type(PASSWORD)
    page.keyboard.press("Enter")
    expect(page.locator("h1")).to_have_text("Live board")
    # On every page the first Tab reaches the skip link, which jumps past the navigation.
    page.keyboard.press("Tab")
    assert page.evaluate("() => document.activeElement.textContent") == "Skip to main content"
    page.keyboard.press("Enter")
    assert focused(page) == "main"

    tab_to(page, f"#availability-{ids['Alice Mediator']}-button")
    page.keyboard.press("Enter")
    expect(page.locator(f"#specialist-{ids['Alice Mediator']} .badge")).to_have_text("Off")

    tab_to(page, "nav a[href='/dashboard/calls']")
    page.keyboard.press("Enter")
    expect(page.locator("h1")).to_have_text("Calls")
    tab_to(page, "input[name=q]")
    page.keyboard.type("Dana")
    page.keyboard.press("Enter")
    expect(page).to_have_url(served + "/dashboard/calls?start=&end=&category=&outcome=&specialist=&language=&q=Dana")
    expect(page.locator("table.log tbody tr")).to_have_count(1)

    tab_to(page, "table.log a")
    page.keyboard.press("Enter")
    expect(page.locator("h1")).to_contain_text("Dana Whitfield")
    tab_to(page, "input[name=disposition]")
    page.keyboard.press("ArrowDown")  # to the second choice, which arrow keys also select
    assert page.evaluate("() => document.activeElement.value") == "in_person_scheduled"
    tab_to(page, "textarea[name=notes]")
    page.keyboard.type("Meeting on Thursday.")
    tab_to(page, "form[action$='/disposition'] button")
    page.keyboard.press("Enter")
    expect(page.locator(".flash")).to_have_text("Disposition saved.")
    expect(page.locator(".badge.ok")).to_have_text("In-person mediation scheduled")

    tab_to(page, "#note-body")
    page.keyboard.type("Left a message with the landlord.")
    page.keyboard.press("Tab")
    page.keyboard.press("Enter")
    expect(page.locator(".note")).to_contain_text("Left a message with the landlord.")


def test_the_live_board_keeps_focus_and_announces_changes(served, new_page, app, r):
    from playwright.sync_api import expect

    app.config["BOARD_REFRESH_MS"] = 400
    ids = roster(app, r, ("Ana O'Neil", "+19375550201", True), ("Bruno Mediator", "+19375550202", False))
    page = new_page()
    page.goto(served + "/dashboard/login")
    page.fill("input[name=email]", "coord@city.gov")
    page.fill("input[name=password]", PASSWORD)
    page.keyboard.press("Enter")
    expect(page.locator("h1")).to_have_text("Live board")
    ana = ids["Ana O'Neil"]
    button = f"availability-{ana}-button"
    tab_to(page, f"#{button}")
    page.evaluate("() => { document.activeElement.marked = 'yes'; }")
    expect(page.locator("#updated")).to_contain_text("Updated")

    def same_button_still_focused():
        assert focused(page) == button
        assert page.evaluate("() => document.activeElement.marked") == "yes"  # the very same node

    page.wait_for_timeout(2000)  # several refreshes with an apostrophe on the board
    same_button_still_focused()
    expect(page.locator("#board-announcer")).to_have_text("")

    with Session(app.extensions["db"].engine, expire_on_commit=False) as db:
        specialists.set_available(db, r, db.get(Specialist, ids["Bruno Mediator"]), True)
    expect(page.locator("#board-announcer")).to_have_text("Bruno Mediator is now available.")
    same_button_still_focused()

    with Session(app.extensions["db"].engine, expire_on_commit=False) as db:
        specialists.set_available(db, r, db.get(Specialist, ana), False)
        call = Call(call_sid="CA" + "2" * 32, from_number="+19375550124", caller_name="Eli Brooks", outcome="callback_queued")
        db.add(call)
        db.flush()
        db.add_all([CallbackRequest(call_id=call.id, callback_number="+19375550124", status="pending")])
        db.commit()
    expect(page.locator("#board-announcer")).to_have_text("Ana O'Neil is now off. 1 caller waiting for a callback.")
    # Her button now switches her on, and it is still the one the keyboard is on.
    expect(page.locator(f"#{button}")).to_have_text("Switch on")
    same_button_still_focused()
    page.keyboard.press("Enter")
    expect(page.locator(f"#specialist-{ana} .badge")).to_have_text("Available")
