"""The dashboard in a real Chromium (Playwright) against the app served over HTTP: the coordinator's day."""

from __future__ import annotations

import threading
from pathlib import Path

from tests.support import DISPATCH
from voice.dashboard.auth import create_user
from voice.simulator import Dispatcher, FlaskTransport, ScriptedCaller, SimulatedPhone, SpecialistPhone

SHOTS = Path(__file__).parent.parent / "screenshots"
PASSWORD = "correct horse battery"


class PausingCaller(ScriptedCaller):
    """A caller who stops to think at the name question until told to go on (so the call sits in the intake)."""

    def __init__(self, inputs):
        super().__init__(inputs)
        self.at_name = threading.Event()
        self.go_on = threading.Event()

    def respond(self, prompt, kinds):
        if "name" in prompt.lower() and not self.at_name.is_set():
            self.at_name.set()
            self.go_on.wait(30)
        return super().respond(prompt, kinds)


def test_coordinator_watches_a_call_records_the_outcome_reads_reports_and_exports(app, served, browser, add_specialist,
                                                                                  tmp_path):
    from playwright.sync_api import expect

    SHOTS.mkdir(exist_ok=True)
    # Nobody is on, so the caller answers the callback questions (and the call sits in the intake meanwhile).
    add_specialist("Alice Mediator", "+19375550201", languages=("en", "es"), on=False)
    add_specialist("Bruno Mediator", "+19375550202", on=False)
    with app.app_context():
        session = app.extensions["db"].session()
        create_user(session, "coord@city.gov", PASSWORD, "coordinator")
        session.commit()

    page = browser.new_page(viewport={"width": 1280, "height": 860})
    page.goto(served + "/dashboard/")
    expect(page).to_have_url(served + "/dashboard/login?next=%2Fdashboard%2F")
    page.screenshot(path=str(SHOTS / "login.png"))
    page.fill("input[name=email]", "coord@city.gov")
    page.fill("input[name=password]", PASSWORD)
    page.click("button.primary")
    expect(page.locator("h1")).to_have_text("Live board")
    expect(page.locator("#board")).to_contain_text("No callers on the line right now")

    # A call arrives and pauses in the intake; the board shows it without a reload.
    caller = PausingCaller(["2", "5", "Dana Whitfield", "400 West Third Street", "1", "My brother will not leave", "1"])
    phone = SimulatedPhone(FlaskTransport(app), app.config["TWILIO_AUTH_TOKEN"], app.config["TWILIO_ACCOUNT_SID"],
                           app.config["TWILIO_PHONE_NUMBER"], app.config["PUBLIC_BASE_URL"],
                           network={DISPATCH: Dispatcher(), "+19375550201": SpecialistPhone("Alice Mediator")})
    records = []
    call = threading.Thread(target=lambda: records.append(phone.call_line("+19375550123", caller)))
    call.start()
    assert caller.at_name.wait(10)
    expect(page.locator("#board")).to_contain_text("at “name”", timeout=10_000)
    page.screenshot(path=str(SHOTS / "board-call-in-intake.png"), full_page=True)

    caller.go_on.set()
    call.join(20)
    assert records and records[0].problems == [] and "will call you back" in records[0].heard()
    expect(page.locator("#board")).to_contain_text("No callers on the line right now", timeout=10_000)
    expect(page.locator("#board-waiting")).to_contain_text("Dana Whitfield")

    page.click("text=Calls")
    expect(page.locator("table.log")).to_contain_text("Dana Whitfield")
    page.screenshot(path=str(SHOTS / "calls.png"), full_page=True)
    page.click("table.log a >> nth=0")
    expect(page.locator("h1")).to_contain_text("Dana Whitfield")
    expect(page.locator("dl.facts")).to_contain_text("My brother will not leave")
    expect(page.locator(".timeline")).to_contain_text("callback queued")
    page.check("input[value=in_person_scheduled]")
    page.fill("textarea[name=notes]", "Both agreed to meet at the Mediation Center on Thursday.")
    page.click("text=Save disposition")
    expect(page.locator(".flash")).to_have_text("Disposition saved.")
    expect(page.locator(".badge.ok")).to_have_text("In-person mediation scheduled")
    page.screenshot(path=str(SHOTS / "call-detail.png"), full_page=True)

    page.click("text=Reports")
    expect(page.locator(".stats").first).to_contain_text("answered live")
    expect(page.locator(".stats").nth(1)).to_contain_text("cases opened")
    # The charts are drawn once chart.js has loaded, after the page's text: wait for them, do not race them.
    page.wait_for_function("() => window.Chart && ['perDay', 'handled', 'caseOutcome', 'closedHow', 'perSpecialist']"
                           ".every((id) => !!Chart.getChart(id))", timeout=15000)
    page.screenshot(path=str(SHOTS / "reports.png"), full_page=True)

    page.click("text=Callbacks")
    page.screenshot(path=str(SHOTS / "callbacks.png"), full_page=True)
    page.click("text=Roster")
    expect(page.locator("table.log")).to_contain_text("")
    page.screenshot(path=str(SHOTS / "roster.png"), full_page=True)

    page.click("text=Calls")
    with page.expect_download() as download:
        page.click("text=Export CSV")
    saved = tmp_path / "calls.csv"
    download.value.save_as(saved)
    text = saved.read_text()
    assert text.startswith("call_sid,started_at,from,") and "Dana Whitfield" in text and "in_person_scheduled" in text

    phone_view = browser.new_page(viewport={"width": 390, "height": 844})
    phone_view.context.add_cookies(page.context.cookies())
    phone_view.goto(served + "/dashboard/")
    phone_view.screenshot(path=str(SHOTS / "board-phone.png"), full_page=True)
