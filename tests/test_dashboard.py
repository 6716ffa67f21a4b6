"""The dashboard through Flask's test client: who may see what, CSRF, filters, pages, escaping, the audit log."""

from __future__ import annotations

import csv
import io
import re
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
import responses
from sqlalchemy import func, select

from tests.support import ACCOUNT_SID, AUTH_TOKEN, LINE, PASSWORD, csrf, fresh_app, login, settings
from voice import create_app
from voice.clock import utcnow
from voice.dashboard import queries
from voice.dashboard.auth import create_user
from voice.line import specialists
from voice.models import AuditEntry, Call, CallbackRequest, Specialist, User
from voice.simulator.fake_twilio import SILENT_MP3, FakeTwilio


@pytest.fixture
def db(app):
    """The database session without holding an app context open: requests then each get their own `g`,
    as they do in production (a shared context would carry one request's CSRF token into the next)."""
    from sqlalchemy.orm import Session

    session = Session(app.extensions["db"].engine, expire_on_commit=False)
    yield session
    session.close()


@pytest.fixture
def people(app, db):
    """A coordinator, and two specialists with accounts; each specialist handled one call."""
    alice = specialists.add_specialist(db, "Alice Mediator", "+19375550201", ["en", "es"])
    bruno = specialists.add_specialist(db, "Bruno Mediator", "+19375550202", ["en"])
    db.flush()
    create_user(db, "coord@city.gov", PASSWORD, "coordinator")
    create_user(db, "alice@city.gov", PASSWORD, "specialist", alice.id)
    create_user(db, "bruno@city.gov", PASSWORD, "specialist", bruno.id)
    alice_call = Call(call_sid="CA" + "a" * 32, from_number="+19375550123", caller_name="Dana Whitfield",
                      category="noise", outcome="bridged", specialist_id=alice.id, language="en",
                      connected_at=utcnow(), location="400 W Third St")
    bruno_call = Call(call_sid="CA" + "b" * 32, from_number="+19375550124", caller_name="Eli Brooks",
                      category="parking", outcome="bridged", specialist_id=bruno.id, language="es")
    db.add_all([alice_call, bruno_call])
    db.commit()
    return {"alice": alice, "bruno": bruno, "alice_call": alice_call.id, "bruno_call": bruno_call.id}


def pages(people) -> dict[str, str]:
    return {
        "board": "/dashboard/",
        "board_live": "/dashboard/board/live",
        "calls": "/dashboard/calls",
        "export": "/dashboard/calls.csv",
        "own_call": f"/dashboard/calls/{people['alice_call']}",
        "roster": "/dashboard/roster",
        "callbacks": "/dashboard/callbacks",
        "reports": "/dashboard/reports",
        "audit": "/dashboard/audit",
    }


COORDINATOR_ONLY = {"roster", "callbacks", "reports", "audit"}


def test_root_redirects_to_the_dashboard(client):
    assert client.get("/").headers["Location"].endswith("/dashboard/")


def test_logged_out_sees_nothing_but_the_login_page(client, people):
    for name, path in pages(people).items():
        response = client.get(path)
        assert response.status_code == 302 and "/dashboard/login" in response.headers["Location"], name
    assert client.get("/dashboard/login").status_code == 200
    assert client.get(f"/dashboard/calls/{people['alice_call']}/recording").status_code == 302


def test_logged_out_posts_change_nothing(client, people, db):
    token = csrf(client)
    for path in [f"/dashboard/specialists/{people['alice'].id}/availability", "/dashboard/roster",
                 f"/dashboard/calls/{people['alice_call']}/disposition", "/dashboard/callbacks/1/retry"]:
        response = client.post(path, data={"csrf_token": token, "on": "1", "disposition": "referred",
                                           "name": "X", "phone": "+19375550999"})
        assert response.status_code == 302, (path, response.status_code)
    db.expire_all()
    assert db.scalar(select(func.count(Specialist.id))) == 2
    assert db.get(Call, people["alice_call"]).disposition is None


def test_coordinator_sees_every_page(client, people):
    assert login(client, "coord@city.gov").status_code == 302
    for name, path in pages(people).items():
        assert client.get(path).status_code == 200, name
    assert client.get(f"/dashboard/calls/{people['bruno_call']}").status_code == 200


def test_specialist_sees_the_board_and_only_their_own_calls(client, people):
    login(client, "alice@city.gov")
    for name, path in pages(people).items():
        expected = 403 if name in COORDINATOR_ONLY else 200
        assert client.get(path).status_code == expected, name
    assert client.get(f"/dashboard/calls/{people['bruno_call']}").status_code == 404
    log = client.get("/dashboard/calls").get_data(as_text=True)
    assert "Dana Whitfield" in log and "Eli Brooks" not in log
    exported = client.get("/dashboard/calls.csv").get_data(as_text=True)
    assert "Dana Whitfield" in exported and "Eli Brooks" not in exported
    token = csrf(client, "/dashboard/")
    switched = client.post(f"/dashboard/specialists/{people['bruno'].id}/availability",
                           data={"csrf_token": token, "on": "1"})
    assert switched.status_code == 403


def test_wrong_password_and_unknown_email_get_the_same_answer(client, people):
    wrong = login(client, "coord@city.gov", "not the password")
    unknown = login(client, "nobody@city.gov", "not the password")
    assert wrong.status_code == unknown.status_code == 401
    assert "do not match an account" in wrong.get_data(as_text=True)


def test_password_guessing_is_slowed_down(client, people):
    statuses = [login(client, "coord@city.gov", f"guess number {n}").status_code for n in range(12)]
    assert statuses[:10] == [401] * 10 and 429 in statuses[10:]


def test_login_never_redirects_off_site(client, people):
    response = client.post("/dashboard/login?next=//evil.example/x", data={
        "email": "coord@city.gov", "password": PASSWORD, "csrf_token": csrf(client)})
    assert response.headers["Location"] == "/dashboard/"


def test_session_cookie_is_httponly_and_samesite(client, people):
    response = login(client, "coord@city.gov")
    cookie = response.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie
    assert "Secure" in cookie  # PUBLIC_BASE_URL is https in the tests


def test_session_cookie_is_not_secure_on_a_plain_http_deployment(people, redis_url, database_url):
    plain = create_app(settings(redis_url, database_url, PUBLIC_BASE_URL="http://line.internal"))
    cookie = login(plain.test_client(), "coord@city.gov").headers["Set-Cookie"]
    plain.extensions["db"].dispose()
    assert "HttpOnly" in cookie and "Secure" not in cookie


def test_the_board_polling_itself_does_not_keep_a_session_alive(client, people, app, monkeypatch):
    login(client, "coord@city.gov")
    assert "Set-Cookie" in client.get("/dashboard/").headers
    assert "Set-Cookie" not in client.get("/dashboard/board/live").headers
    # Past the idle limit the signed cookie no longer counts: the next poll is sent to the login page.
    import itsdangerous.timed

    later = itsdangerous.timed.time.time() + app.config["SESSION_IDLE_MINUTES"] * 60 + 5
    monkeypatch.setattr(itsdangerous.timed, "time", type("Clock", (), {"time": staticmethod(lambda: later)}))
    response = client.get("/dashboard/board/live")
    assert response.status_code == 302 and "/dashboard/login" in response.headers["Location"]


def test_a_specialist_account_without_a_roster_entry_sees_no_calls(client, people, db):
    create_user(db, "unlinked@city.gov", PASSWORD, "specialist")
    orphan = Call(call_sid="CA" + "c" * 32, from_number="+19375550125", caller_name="Nobody Assigned",
                  outcome="abandoned")
    db.add(orphan)
    db.commit()
    login(client, "unlinked@city.gov")
    assert client.get(f"/dashboard/calls/{orphan.id}").status_code == 404
    assert "Nobody Assigned" not in client.get("/dashboard/calls").get_data(as_text=True)


def test_state_changes_need_a_csrf_token(client, people, db):
    login(client, "coord@city.gov")
    call = people["alice_call"]
    refused = client.post(f"/dashboard/calls/{call}/disposition", data={"disposition": "referred"})
    assert refused.status_code == 400
    db.expire_all()
    assert db.get(Call, call).disposition is None
    token = csrf(client, "/dashboard/")
    saved = client.post(f"/dashboard/calls/{call}/disposition",
                        data={"disposition": "in_person_scheduled", "notes": "Thursday 3 pm", "csrf_token": token})
    assert saved.status_code == 302
    db.expire_all()
    row = db.get(Call, call)
    assert (row.disposition, row.disposition_notes) == ("in_person_scheduled", "Thursday 3 pm")


def test_specialist_can_disposition_and_note_their_own_call_only(client, people, db):
    login(client, "bruno@city.gov")
    token = csrf(client, "/dashboard/")
    assert client.post(f"/dashboard/calls/{people['alice_call']}/notes",
                       data={"body": "mine now", "csrf_token": token}).status_code == 404
    assert client.post(f"/dashboard/calls/{people['bruno_call']}/notes",
                       data={"body": "Called the landlord", "csrf_token": token}).status_code == 302
    page = client.get(f"/dashboard/calls/{people['bruno_call']}").get_data(as_text=True)
    assert "Called the landlord" in page


def test_what_callers_said_is_shown_escaped(client, people, db):
    call = db.get(Call, people["alice_call"])
    call.caller_name = "<script>alert('name')</script>"
    call.description = '"><img src=x onerror=alert(1)>'
    db.commit()
    login(client, "coord@city.gov")
    for path in ["/dashboard/calls", f"/dashboard/calls/{call.id}", "/dashboard/board/live"]:
        html = client.get(path).get_data(as_text=True)
        assert "<script>alert" not in html and "<img src=x" not in html, path
    detail = client.get(f"/dashboard/calls/{call.id}").get_data(as_text=True)
    assert "&lt;script&gt;" in detail and "&lt;img src=x" in detail


def test_viewing_playing_and_exporting_are_audited(client, people, db, app):
    call = db.get(Call, people["alice_call"])
    call.recording_sid = "RE" + "1" * 32
    call.recording_url = f"https://api.twilio.com/2010-04-01/Accounts/AC{'0' * 32}/Recordings/{call.recording_sid}"
    db.commit()
    login(client, "coord@city.gov")
    detail = client.get(f"/dashboard/calls/{call.id}").get_data(as_text=True)
    assert "twilio.com" not in detail and f"/dashboard/calls/{call.id}/recording" in detail
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        FakeTwilio(None, ACCOUNT_SID, AUTH_TOKEN, LINE).mount(rsps)
        played = client.get(f"/dashboard/calls/{call.id}/recording")
        assert played.status_code == 200 and played.data == SILENT_MP3
        assert rsps.calls[0].request.headers["Authorization"].startswith("Basic ")
    client.get("/dashboard/calls.csv?category=noise")
    db.expire_all()
    actions = [a for a, in db.execute(select(AuditEntry.action).order_by(AuditEntry.id))]
    assert actions == ["login", "view_call", "play_recording", "export"]
    audit_page = client.get("/dashboard/audit").get_data(as_text=True)
    assert "play recording" in audit_page and "coord@city.gov" in audit_page


def test_a_recording_twilio_will_not_give_is_a_502_not_a_crash(client, people, db, app):
    call = db.get(Call, people["alice_call"])
    call.recording_url = f"https://api.twilio.com/2010-04-01/Accounts/AC{'0' * 32}/Recordings/RE{'2' * 32}"
    db.commit()
    app.config["TWILIO_API_BASE_URL"] = "http://twilio.test"
    login(client, "coord@city.gov")
    proxied = f"http://twilio.test/2010-04-01/Accounts/AC{'0' * 32}/Recordings/RE{'2' * 32}.mp3"
    # `responses`, not the fake Twilio: the fake serves every recording, and this needs a 404 and a refused connection.
    with responses.RequestsMock() as rsps:
        rsps.add(responses.GET, proxied, status=404)
        assert client.get(f"/dashboard/calls/{call.id}/recording").status_code == 502
        rsps.add(responses.GET, proxied, body=responses.ConnectionError("refused"))
        assert client.get(f"/dashboard/calls/{call.id}/recording").status_code == 502


def make_calls(db, count: int, **fields) -> None:
    base = utcnow() - timedelta(hours=1)
    db.add_all([Call(call_sid=f"CA{fields.get('category', 'x')}{n:030d}", from_number="+19375550150",
                     started_at=base - timedelta(minutes=n), **fields) for n in range(count)])
    db.commit()


def test_call_log_filters(client, people, db):
    make_calls(db, 3, category="pets_animals", outcome="escalated", language="es")
    login(client, "coord@city.gov")

    def names(query: str) -> int:
        return client.get("/dashboard/calls?" + query).get_data(as_text=True).count("/dashboard/calls/")

    assert names("category=pets_animals") == 3
    assert names("outcome=escalated&language=es") == 3
    assert names("language=en") == 1
    assert names(f"specialist={people['bruno'].id}") == 1
    assert names("q=(937)%20555-0123") == 1
    assert names("q=Dana") == 1
    assert names("q=%25") == 0  # a wildcard is searched for literally
    # The log's dates are the city's: "today" there, which is not the machine's for hours around midnight UTC.
    city_today = datetime.now(ZoneInfo(client.application.config["TIMEZONE"])).date()
    today = city_today.isoformat()
    assert names(f"start=2000-01-01&end={(city_today + timedelta(days=1)).isoformat()}") == 5
    assert names(f"start={today}&end={today}") == 5  # a one-day range includes the whole day
    assert names("start=2000-01-01&end=2000-01-02") == 0
    assert "is not a date" in client.get("/dashboard/calls?start=yesterday").get_data(as_text=True)


@pytest.mark.parametrize("lookup_limit", [1, 2000], ids=["common name: by date", "rare name: by name index"])
def test_search_by_name_is_a_case_insensitive_prefix(client, people, db, monkeypatch, lookup_limit):
    monkeypatch.setattr(queries, "NAME_LOOKUP_LIMIT", lookup_limit)
    db.add_all([Call(call_sid=f"CAd{n:031d}", from_number="+19375550160", caller_name=name)
                for n, name in enumerate(["dana Ortiz", "DANIEL Park", "Adana Smith", "Dan_a Typo"])])
    db.commit()
    login(client, "coord@city.gov")

    def found(q: str) -> set[str]:
        html = client.get("/dashboard/calls", query_string={"q": q}).get_data(as_text=True)
        return {n for n in ("Dana Whitfield", "dana Ortiz", "DANIEL Park", "Adana Smith", "Dan_a Typo") if n in html}

    assert found("dana") == {"Dana Whitfield", "dana Ortiz"}
    assert found("DAN") == {"Dana Whitfield", "dana Ortiz", "DANIEL Park", "Dan_a Typo"}
    assert found("dan_") == {"Dan_a Typo"}
    assert found("Zelda") == set()


def test_call_log_pages_with_a_keyset_cursor(client, people, db):
    make_calls(db, 120, category="other")
    login(client, "coord@city.gov")
    seen: list[str] = []
    url = "/dashboard/calls?category=other"
    while url:
        html = client.get(url).get_data(as_text=True)
        seen += re.findall(r'href="/dashboard/calls/(\d+)"', html)
        match = re.search(r'href="(/dashboard/calls\?after=[^"]+)"', html)
        url = match.group(1).replace("&amp;", "&") if match else None
    assert len(seen) == 120 and len(set(seen)) == 120


def test_phone_numbers_are_masked_in_the_list(client, people):
    login(client, "coord@city.gov")
    html = client.get("/dashboard/calls").get_data(as_text=True)
    assert "0123" in html and "555-0123" not in html and "+19375550123" not in html


def test_export_has_the_same_columns_as_the_cli(client, people, runner):
    login(client, "coord@city.gov")
    page = list(csv.reader(io.StringIO(client.get("/dashboard/calls.csv").get_data(as_text=True))))
    cli = list(csv.reader(io.StringIO(runner.invoke(args=["calls", "export"]).output)))
    assert page[0] == cli[0] and len(page) == len(cli) == 3


def test_coordinator_switches_a_specialist_on_from_the_board(client, people, db, r):
    login(client, "coord@city.gov")
    token = csrf(client, "/dashboard/")
    client.post(f"/dashboard/specialists/{people['alice'].id}/availability", data={"csrf_token": token, "on": "1"})
    db.expire_all()
    assert specialists.state_of(r, db.get(Specialist, people["alice"].id)) == "available"
    assert "Available" in client.get("/dashboard/board/live").get_data(as_text=True)


def test_roster_validates_phone_numbers(client, people, db):
    login(client, "coord@city.gov")
    token = csrf(client, "/dashboard/roster")
    bad = client.post("/dashboard/roster", data={"name": "Cora", "phone": "12", "csrf_token": token},
                      follow_redirects=True)
    assert "not a valid phone number" in bad.get_data(as_text=True)
    client.post("/dashboard/roster", data={"name": "Cora Mediadora", "phone": "937 555 0203", "languages": ["es"],
                                           "csrf_token": token})
    cora = db.scalar(select(Specialist).where(Specialist.name == "Cora Mediadora"))
    assert cora.phone == "+19375550203" and cora.languages == "es"
    client.post(f"/dashboard/roster/{cora.id}", data={"name": "Cora M.", "phone": "+1 937 555 0203", "languages": ["es"],
                                                      "active": "0", "csrf_token": token})
    db.expire_all()
    assert db.get(Specialist, cora.id).active is False


def test_callbacks_page_retry_cancel_and_reassign(client, people, db):
    call = db.get(Call, people["alice_call"])
    row = CallbackRequest(call_id=call.id, callback_number="+19375550123", language="en", status="unreachable",
                          attempts=4, reason="caller did not answer 4 callback attempts")
    db.add(row)
    db.commit()
    login(client, "coord@city.gov")
    token = csrf(client, "/dashboard/callbacks")
    assert "caller did not answer" in client.get("/dashboard/callbacks").get_data(as_text=True)
    client.post(f"/dashboard/callbacks/{row.id}/retry", data={"csrf_token": token})
    db.expire_all()
    assert db.get(CallbackRequest, row.id).status == "pending"
    client.post(f"/dashboard/callbacks/{row.id}/reassign", data={"csrf_token": token, "specialist_id": str(people["bruno"].id)})
    db.expire_all()
    assert db.get(CallbackRequest, row.id).specialist_id == people["bruno"].id
    client.post(f"/dashboard/callbacks/{row.id}/cancel", data={"csrf_token": token, "reason": "resolved in person"})
    db.expire_all()
    assert (db.get(CallbackRequest, row.id).status, db.get(CallbackRequest, row.id).reason) == ("cancelled", "resolved in person")


def test_report_numbers(app, db, people):
    start = utcnow() - timedelta(hours=3)
    for n, wait in enumerate([10, 20, 30, 40, 100]):
        db.add(Call(call_sid=f"CAr{n:031d}", started_at=start, connected_at=start + timedelta(seconds=wait),
                    outcome="bridged", category="noise"))
    db.add(Call(call_sid="CAr" + "9" * 31, started_at=start, outcome="escalated", category="household"))
    db.commit()
    today = datetime.now().date()
    data = queries.report(db, today - timedelta(days=2), today + timedelta(days=1), "America/New_York")
    assert data["how_handled"]["Answered live"] == 5 + 2  # and the two calls the fixture made
    assert data["how_handled"]["Escalated to dispatch"] == 1
    # Waits of ~0 (the fixture's live call), 10, 20, 30, 40 and 100 seconds.
    assert data["live_median_s"] == pytest.approx(25, abs=0.5)
    assert data["live_p90_s"] == pytest.approx(70, abs=0.5)
    assert data["by_outcome"] == {"bridged": 7, "escalated": 1}
    assert data["by_language"] == {"en": 7, "es": 1}
    assert sum(data["per_day"]) == data["total"] == sum(sum(row) for row in data["heat"])


def test_reports_page_renders_charts_for_any_range(client, people):
    login(client, "coord@city.gov")
    html = client.get("/dashboard/reports?start=2026-01-01&end=2026-12-31").get_data(as_text=True)
    assert "chart.umd.min.js" in html and 'id="report-data"' in html and "When calls come in" in html
    garbage = client.get("/dashboard/reports?start=garbage")
    # A bad date is said so, and the page falls back to this month instead of failing.
    assert garbage.status_code == 200 and "Dates must look like 2026-11-01." in garbage.get_data(as_text=True)
    from zoneinfo import ZoneInfo

    this_month = datetime.now(ZoneInfo("America/New_York")).date().replace(day=1).isoformat()
    assert f'value="{this_month}"' in garbage.get_data(as_text=True)


def test_user_create_prompts_for_the_password(runner, app, db):
    result = runner.invoke(args=["user", "create", "Boss@City.gov", "--role", "coordinator"],
                           input=f"{PASSWORD}\n{PASSWORD}\n")
    assert result.exit_code == 0, result.output
    assert PASSWORD not in result.output
    user = db.scalar(select(User))
    assert user.email == "boss@city.gov" and user.password_hash.startswith("$argon2")
    no_phone = runner.invoke(args=["user", "create", "s@city.gov", "--role", "specialist"], input="x\n")
    assert no_phone.exit_code != 0 and "--phone" in no_phone.output
    short = runner.invoke(args=["user", "create", "t@city.gov", "--role", "coordinator"], input="short\nshort\n")
    assert short.exit_code != 0 and "10 characters" in short.output


def test_webhooks_ignore_session_cookies(client, people):
    login(client, "coord@city.gov")
    # Logged in or not, a Twilio webhook without Twilio's signature is refused.
    assert client.post("/voice/incoming", data={"CallSid": "CA1"}).status_code == 403


def test_pages_forbid_framing_and_foreign_scripts(client, people):
    login(client, "coord@city.gov")
    headers = client.get("/dashboard/").headers
    assert "frame-ancestors 'none'" in headers["Content-Security-Policy"]
    assert "script-src" not in headers["Content-Security-Policy"]  # default-src 'self' covers scripts
    assert headers["X-Content-Type-Options"] == "nosniff"


# --- sessions end on the server -------------------------------------------------------------------


def session_cookie(client) -> str:
    return client.get_cookie("session").value


def replay(app, cookie: str, path: str = "/dashboard/"):
    """A second browser holding a copy of the cookie."""
    other = app.test_client()
    other.set_cookie("session", cookie, domain="localhost")
    return other.get(path)


def test_a_session_copied_before_sign_out_is_refused_after_it(client, people, app):
    login(client, "coord@city.gov")
    copied = session_cookie(client)
    assert replay(app, copied).status_code == 200
    client.post("/dashboard/logout", data={"csrf_token": csrf(client, "/dashboard/")})
    refused = replay(app, copied)
    assert refused.status_code == 302 and "/dashboard/login" in refused.headers["Location"]


def test_a_password_change_ends_other_sessions_but_not_this_one(client, people, app, db):
    login(client, "alice@city.gov")
    elsewhere = app.test_client()
    login(elsewhere, "alice@city.gov")
    wrong = client.post("/dashboard/account/password", data={
        "current": "not it at all", "new": "a brand new passphrase", "confirm": "a brand new passphrase",
        "csrf_token": csrf(client, "/dashboard/account/password")})
    assert wrong.status_code == 400 and "not your current password" in wrong.get_data(as_text=True)
    changed = client.post("/dashboard/account/password", data={
        "current": PASSWORD, "new": "a brand new passphrase", "confirm": "a brand new passphrase",
        "csrf_token": csrf(client, "/dashboard/account/password")})
    assert changed.status_code == 302
    assert client.get("/dashboard/").status_code == 200
    assert elsewhere.get("/dashboard/").status_code == 302
    assert login(app.test_client(), "alice@city.gov", "a brand new passphrase").status_code == 302


def test_set_password_and_disable_from_the_cli_end_sessions(client, people, app, runner):
    login(client, "alice@city.gov")
    copied = session_cookie(client)
    result = runner.invoke(args=["user", "set-password", "alice@city.gov"], input="another long secret\n" * 2)
    assert result.exit_code == 0, result.output
    assert replay(app, copied).status_code == 302
    login(client, "bruno@city.gov")
    copied = session_cookie(client)
    assert runner.invoke(args=["user", "disable", "bruno@city.gov"]).exit_code == 0
    assert replay(app, copied).status_code == 302
    assert login(app.test_client(), "bruno@city.gov").status_code == 401


def test_coordinator_ends_a_users_sessions_and_disables_an_account(client, people, app, db):
    specialist = app.test_client()
    login(specialist, "alice@city.gov")
    login(client, "coord@city.gov")
    alice = db.scalar(select(User).where(User.email == "alice@city.gov"))
    token = csrf(client, "/dashboard/users")
    assert client.post(f"/dashboard/users/{alice.id}/end-sessions").status_code == 400  # no CSRF token
    assert specialist.get("/dashboard/").status_code == 200
    assert client.post(f"/dashboard/users/{alice.id}/end-sessions", data={"csrf_token": token}).status_code == 302
    assert specialist.get("/dashboard/").status_code == 302
    login(specialist, "alice@city.gov")
    client.post(f"/dashboard/users/{alice.id}/active", data={"csrf_token": token, "active": "0"})
    assert specialist.get("/dashboard/").status_code == 302
    db.expire_all()
    assert db.get(User, alice.id).active is False
    actions = [a for a, in db.execute(select(AuditEntry.action).order_by(AuditEntry.id))]
    assert "end_sessions" in actions and "user_disable" in actions
    assert login(specialist, "alice@city.gov").status_code == 401


def test_only_a_coordinator_may_end_sessions(client, people, db):
    login(client, "alice@city.gov")
    coord = db.scalar(select(User).where(User.email == "coord@city.gov"))
    token = csrf(client, "/dashboard/")
    assert client.get("/dashboard/users").status_code == 403
    assert client.post(f"/dashboard/users/{coord.id}/end-sessions", data={"csrf_token": token}).status_code == 403


def test_coordinator_adds_an_account_and_a_taken_email_is_a_form_error(client, people, db):
    login(client, "coord@city.gov")
    token = csrf(client, "/dashboard/users")
    form = {"email": "New.Person@city.gov", "role": "specialist", "specialist_id": str(people["bruno"].id),
            "password": "a long first password", "csrf_token": token}
    assert client.post("/dashboard/users", data=form).status_code == 302
    again = client.post("/dashboard/users", data=form)
    assert again.status_code == 400 and "new.person@city.gov already has an account" in again.get_data(as_text=True)
    assert db.scalar(select(func.count(User.id)).where(User.email == "new.person@city.gov")) == 1


def test_pages_send_hsts_permissions_policy_and_refuse_plugins_and_frames(client, people, redis_url, database_url):
    login(client, "coord@city.gov")
    for path in ["/dashboard/", "/dashboard/login", "/dashboard/calls"]:
        headers = client.get(path).headers
        assert "object-src 'none'" in headers["Content-Security-Policy"], path
        assert headers["X-Frame-Options"] == "DENY", path
        assert "camera=()" in headers["Permissions-Policy"] and "microphone=()" in headers["Permissions-Policy"]
        assert headers["Strict-Transport-Security"].startswith("max-age=31536000"), path
    plain = create_app(settings(redis_url, database_url, PUBLIC_BASE_URL="http://line.internal"))
    headers = plain.test_client().get("/dashboard/login").headers
    plain.extensions["db"].dispose()
    assert "Strict-Transport-Security" not in headers and headers["X-Frame-Options"] == "DENY"


# --- notes ----------------------------------------------------------------------------------------


def test_a_note_over_the_limit_is_a_form_error_and_keeps_the_text(client, people, db):
    from voice.models import CallNote

    login(client, "alice@city.gov")
    token = csrf(client, "/dashboard/")
    too_long = "x" * 2001
    answer = client.post(f"/dashboard/calls/{people['alice_call']}/notes", data={"body": too_long, "csrf_token": token})
    html = answer.get_data(as_text=True)
    assert answer.status_code == 400 and "at most 2,000 characters; this one is 2,001" in html
    assert too_long in html and 'aria-invalid="true"' in html
    assert client.post(f"/dashboard/calls/{people['alice_call']}/notes",
                       data={"body": "x" * 2000, "csrf_token": token}).status_code == 302
    assert db.scalar(select(func.count(CallNote.id))) == 1


def test_notes_are_rate_limited_per_user(client, people, app, db):
    from voice.models import CallNote

    app.config["RATELIMIT_NOTES"] = "5 per minute"
    login(client, "alice@city.gov")
    token = csrf(client, "/dashboard/")
    statuses = [client.post(f"/dashboard/calls/{people['alice_call']}/notes",
                            data={"body": f"note {n}", "csrf_token": token}).status_code for n in range(8)]
    assert statuses[:5] == [302] * 5 and statuses[5:] == [429] * 3
    assert db.scalar(select(func.count(CallNote.id))) == 5
    refused = client.post(f"/dashboard/calls/{people['alice_call']}/notes", data={"body": "again", "csrf_token": token})
    assert "Too many at once" in refused.get_data(as_text=True)
    # Another person's notes are counted on their own.
    other = app.test_client()
    login(other, "coord@city.gov")
    assert other.post(f"/dashboard/calls/{people['alice_call']}/notes",
                      data={"body": "coordinator's note", "csrf_token": csrf(other, "/dashboard/")}).status_code == 302


# --- error pages ----------------------------------------------------------------------------------


def test_dashboard_errors_are_styled_pages_with_a_way_home(client, people, app):
    login(client, "alice@city.gov")
    for path, method, code in [("/dashboard/roster", "get", 403), ("/dashboard/nowhere", "get", 404),
                               (f"/dashboard/calls/{people['bruno_call']}", "get", 404),
                               ("/dashboard/logout", "get", 405)]:
        answer = getattr(client, method)(path)
        html = answer.get_data(as_text=True)
        assert answer.status_code == code, path
        assert 'href="/dashboard/"' in html and "style.css" in html and "Skip to main content" in html, path
        assert f"Error {code}" in html


def test_a_dashboard_500_is_a_styled_page_and_other_paths_keep_their_own(people, redis_url, database_url, monkeypatch):
    from voice.dashboard import queries as dashboard_queries

    quiet = create_app(settings(redis_url, database_url, TESTING=False))
    client = quiet.test_client()
    login(client, "coord@city.gov")

    def broken(*args, **kwargs):
        raise RuntimeError("the board query broke")

    monkeypatch.setattr(dashboard_queries, "board", broken)
    answer = client.get("/dashboard/")
    html = answer.get_data(as_text=True)
    assert answer.status_code == 500 and "Something went wrong" in html and 'href="/dashboard/"' in html
    assert "Sign out" not in html  # the bare page asks nothing of the database
    assert "Something went wrong" not in client.get("/nowhere").get_data(as_text=True)
    quiet.extensions["db"].dispose()


# --- accessibility in the markup (the browser tests run axe-core on the rendered pages) -------------


def test_pages_have_a_skip_link_labelled_note_and_a_legend_for_the_disposition(client, people):
    login(client, "coord@city.gov")
    html = client.get(f"/dashboard/calls/{people['alice_call']}").get_data(as_text=True)
    assert '<a class="skip-link" href="#main">' in html and '<main id="main"' in html
    assert "<legend>How the case ended</legend>" in html
    assert '<label for="note-body">Add a note</label>' in html and 'id="note-body"' in html


def test_each_report_chart_has_its_numbers_as_a_table(client, people):
    login(client, "coord@city.gov")
    html = client.get("/dashboard/reports").get_data(as_text=True)
    for chart in ["perDay", "perWeek", "handled", "outcome", "category", "language", "caseOutcome", "closedHow",
                  "perSpecialist"]:
        assert re.search(rf'<canvas id="{chart}" role="img" aria-label="[^"]+the table below it', html), chart
    # Each chart's table, and "Who took the calls" (a table with no chart); the council's figures (their own test
    # in test_council_pages.py) come after these.
    assert html[:html.index('id="council"')].count('<table class="numbers">') == 10
    numbers = html[html.index("The numbers: by outcome"):]
    assert '<th scope="row">Answered live</th><td>2</td>' in numbers


def test_the_board_names_each_person_and_counts_for_announcements(client, people):
    login(client, "coord@city.gov")
    html = client.get("/dashboard/board/live").get_data(as_text=True)
    assert f'id="specialist-{people["alice"].id}" data-name="Alice Mediator" data-state="off"' in html
    assert 'aria-label="Switch on Alice Mediator"' in html
    assert 'id="board-waiting" data-count="0"' in html
    page = client.get("/dashboard/").get_data(as_text=True)
    assert 'id="board-announcer" class="visually-hidden" role="status" aria-live="polite"' in page


def test_migration_0002_gives_each_existing_account_its_own_token(tmp_path):
    from sqlalchemy import text

    from voice.db import Database

    database = Database(f"sqlite:///{tmp_path}/old.db")
    database.upgrade("0001")
    with database.engine.begin() as conn:
        for email in ["a@city.gov", "b@city.gov"]:
            conn.execute(text("INSERT INTO users (email, password_hash, role, active, created_at) "
                              "VALUES (:e, 'x', 'coordinator', 1, CURRENT_TIMESTAMP)"), {"e": email})
    database.upgrade("0002")
    with database.engine.begin() as conn:
        tokens = [t for t, in conn.execute(text("SELECT session_token FROM users"))]
    assert len(tokens) == 2 and all(len(t) >= 24 for t in tokens) and tokens[0] != tokens[1]
    from alembic import command

    from voice.db import alembic_config

    command.downgrade(alembic_config(database.url), "0001")
    database.dispose()


def test_the_board_shows_who_is_holding_their_place_and_for_how_long(client, people, db):
    from voice.models import Hold

    first = Call(call_sid="CA" + "c" * 32, from_number="+19375550131", outcome="in_intake", language="en",
                 category="noise", started_at=utcnow() - timedelta(minutes=7))
    second = Call(call_sid="CA" + "d" * 32, from_number="+19375550132", outcome="in_intake", language="en",
                  caller_name="Pat O'Neil", started_at=utcnow() - timedelta(minutes=2))
    db.add_all([first, second])
    db.flush()
    db.add_all([Hold(call_id=first.id, language="en", arrived_at=first.started_at, status="waiting"),
                Hold(call_id=second.id, language="en", arrived_at=second.started_at, status="waiting")])
    db.commit()
    login(client, "coord@city.gov")

    html = client.get("/dashboard/board/live").get_data(as_text=True)
    section = " ".join(html[html.index('id="board-holding"'):html.index('id="board-waiting"')].split())
    assert 'data-count="2"' in section
    assert "noise · number 1 in line · holding 7 min" in section
    assert "Pat O&#39;Neil" in section and "number 2 in line · holding 2 min" in section
    # A caller on hold is not also shown as in the intake.
    assert "+19375550131" not in html[html.index('id="board-intake"'):html.index('id="board-holding"')]


def test_the_board_shows_the_hours_and_the_next_holiday(redis_url, database_url):

    holiday = date(datetime.now().year + 1, 1, 1)
    config = settings(redis_url, database_url, OPEN_HOURS="mon-sun 00:00-24:00", HOLIDAYS=holiday.isoformat())
    with fresh_app(config) as app:
        with app.app_context():
            session = app.extensions["db"].session()
            create_user(session, "coord@city.gov", PASSWORD, "coordinator")
            session.commit()
        client = app.test_client()
        login(client, "coord@city.gov")
        html = client.get("/dashboard/").get_data(as_text=True)
    hours = html[html.index('id="board-hours"'):]
    assert "Open now" in hours and f"next holiday {holiday.strftime('%a %b %-d')}" in hours


def test_the_roster_refuses_numbers_the_line_may_not_call(client, people, db):
    login(client, "coord@city.gov")
    token = csrf(client, "/dashboard/roster")
    for number in ("1 900 555 0199", "876 555 0123", "011 44 20 7183 8750"):
        answer = client.post("/dashboard/roster", data={"csrf_token": token, "name": "Mallory", "phone": number,
                                                        "languages": "en"}, follow_redirects=True)
        text = answer.get_data(as_text=True)
        assert "not an ordinary landline or mobile" in text or "country or region the line does not call" in text
    assert db.scalar(select(func.count(Specialist.id)).where(Specialist.name == "Mallory")) == 0
