"""Two-factor sign-in through Flask's test client: enrolment, codes that work once, recovery codes, resets,
the half sign-in that opens nothing, and sessions that end when idle."""

from __future__ import annotations

import re
import time
from types import SimpleNamespace

import pyotp
import pytest
from sqlalchemy import select, text
from sqlalchemy.orm import Session

from tests.support import PASSWORD, TOKEN, csrf, fresh_app, login, settings
from voice.dashboard import two_factor
from voice.dashboard.auth import create_user
from voice.line import specialists
from voice.models import AuditEntry, Call, RecoveryCode, User

ENROL = "/dashboard/login/two-factor/enrol"
CODE = "/dashboard/login/two-factor"
RECOVERY = "/dashboard/login/two-factor/recovery"
SECRET = re.compile(r'id="totp-secret"[^>]*>([^<]+)<')
CODES = re.compile(r"<li><code>([^<]+)</code></li>")


@pytest.fixture
def app(redis_url, database_url):
    with fresh_app(settings(redis_url, database_url, REQUIRE_2FA_FOR="coordinator")) as app:
        yield app


@pytest.fixture
def db(app):
    session = Session(app.extensions["db"].engine, expire_on_commit=False)
    yield session
    session.close()


@pytest.fixture
def people(app, db):
    alice = specialists.add_specialist(db, "Alice Mediator", "+19375550201", ["en"])
    db.flush()
    create_user(db, "coord@city.gov", PASSWORD, "coordinator")
    create_user(db, "boss@city.gov", PASSWORD, "coordinator")
    create_user(db, "alice@city.gov", PASSWORD, "specialist", alice.id)
    call = Call(call_sid="CA" + "a" * 32, from_number="+19375550123", caller_name="Dana Whitfield",
                outcome="bridged", specialist_id=alice.id)
    db.add(call)
    db.commit()
    return {"call": call.id}


@pytest.fixture
def clock(monkeypatch):
    """The time the server reads codes at, moved by the test instead of waiting 30 seconds."""
    now = SimpleNamespace(value=time.time())
    monkeypatch.setattr(two_factor, "time", SimpleNamespace(time=lambda: now.value))
    return now


def code_at(secret: str, when: float) -> str:
    return pyotp.TOTP(secret).at(when)


def post_code(client, path: str, code: str):
    return client.post(path, data={"code": code, "csrf_token": csrf(client, path)})


def enrol(client, email: str, when: float) -> tuple[str, list[str]]:
    """Password, then enrolment with the key shown on the page; the secret and the recovery codes."""
    assert login(client, email).headers["Location"].endswith(ENROL)
    secret = SECRET.search(client.get(ENROL).get_data(as_text=True)).group(1).replace(" ", "")
    done = post_code(client, ENROL, code_at(secret, when))
    assert done.status_code == 200, done.get_data(as_text=True)
    return secret, CODES.findall(done.get_data(as_text=True))


def sign_out(client) -> None:
    client.post("/dashboard/logout", data={"csrf_token": csrf(client, "/dashboard/")})


def signed_in(client) -> bool:
    return client.get("/dashboard/").status_code == 200


def protected(people) -> list[str]:
    return ["/dashboard/", "/dashboard/board/live", "/dashboard/calls", "/dashboard/calls.csv",
            f"/dashboard/calls/{people['call']}", "/dashboard/roster", "/dashboard/callbacks", "/dashboard/reports",
            "/dashboard/users", "/dashboard/audit", "/dashboard/account/password"]


def test_the_password_alone_never_reaches_a_page_when_two_factor_is_required(client, people, db, clock):
    assert login(client, "coord@city.gov").headers["Location"].endswith(ENROL)
    for path in protected(people):
        response = client.get(path)
        assert response.status_code == 302 and "/dashboard/login" in response.headers["Location"], path
    token = TOKEN.search(client.get(ENROL).get_data(as_text=True)).group(1)
    changed = client.post("/dashboard/roster", data={"csrf_token": token, "name": "X", "phone": "+19375550999"})
    assert changed.status_code == 302 and "/dashboard/login" in changed.headers["Location"]
    assert client.get(CODE).headers["Location"].endswith(ENROL)  # not enrolled: nothing to type a code for
    # Enrolled, the password step again opens only the code page.
    secret, _ = enrol(client, "coord@city.gov", clock.value)
    sign_out(client)
    assert login(client, "coord@city.gov").headers["Location"].endswith(CODE)
    for path in protected(people):
        assert client.get(path).status_code == 302, path
    db.expire_all()
    user = db.scalar(select(User).where(User.email == "coord@city.gov"))
    assert user.totp_secret == secret and user.totp_enrolled_at is not None


def test_enrolment_shows_a_qr_code_and_gives_ten_recovery_codes_kept_only_hashed(client, people, db, clock):
    login(client, "coord@city.gov")
    page = client.get(ENROL).get_data(as_text=True)
    assert '<img class="qr" src="data:image/svg+xml' in page
    assert 'autocomplete="one-time-code"' in page and 'inputmode="numeric"' in page
    _, codes = enrol(client, "coord@city.gov", clock.value)
    assert len(codes) == 10 and len(set(codes)) == 10
    assert signed_in(client)
    hashes = db.scalars(select(RecoveryCode.code_hash)).all()
    assert len(hashes) == 10 and all(h.startswith("$argon2") for h in hashes)
    assert not any(code.replace("-", "") in h for code in codes for h in hashes)
    assert "2fa_enrol" in db.scalars(select(AuditEntry.action)).all()


def test_a_wrong_code_is_refused_with_the_error_tied_to_the_field(client, people, clock):
    secret, _ = enrol(client, "coord@city.gov", clock.value)
    sign_out(client)
    clock.value += 30
    login(client, "coord@city.gov")
    right = code_at(secret, clock.value)
    wrong = post_code(client, CODE, f"{(int(right) + 1) % 1_000_000:06d}")
    page = wrong.get_data(as_text=True)
    assert wrong.status_code == 400 and "That code is not right" in page
    assert 'href="#code"' in page and 'aria-describedby="code-hint code-error"' in page
    assert not signed_in(client)
    assert post_code(client, CODE, code_at(secret, clock.value - 600)).status_code == 400  # long expired
    assert post_code(client, CODE, right).headers["Location"] == "/dashboard/"
    assert signed_in(client)


def test_a_code_once_used_is_refused_and_so_are_older_ones(client, people, app, clock):
    secret, _ = enrol(client, "coord@city.gov", clock.value)
    sign_out(client)
    # The code that enrolled cannot sign in, even inside its 30 seconds.
    login(client, "coord@city.gov")
    assert post_code(client, CODE, code_at(secret, clock.value)).status_code == 400
    clock.value += 30
    used = code_at(secret, clock.value)
    assert post_code(client, CODE, used).status_code == 302
    # A copy of it (seen over a shoulder, phished) from another browser a moment later: refused.
    other = app.test_client()
    login(other, "coord@city.gov")
    clock.value += 5
    assert post_code(other, CODE, used).status_code == 400
    assert post_code(other, CODE, code_at(secret, clock.value - 30)).status_code == 400  # the step before
    assert not signed_in(other)
    clock.value += 30
    assert post_code(other, CODE, code_at(secret, clock.value)).status_code == 302


def test_a_recovery_code_signs_in_once(client, people, app, db, clock):
    _, codes = enrol(client, "coord@city.gov", clock.value)
    sign_out(client)
    login(client, "coord@city.gov")
    assert post_code(client, RECOVERY, "zzzzz-zzzzz").status_code == 400
    used = post_code(client, RECOVERY, codes[3].upper().replace("-", " "))  # typed loosely
    assert used.headers["Location"] == "/dashboard/"
    assert "9 left" in client.get("/dashboard/").get_data(as_text=True)
    sign_out(client)
    login(client, "coord@city.gov")
    again = post_code(client, RECOVERY, codes[3])
    assert again.status_code == 400 and "used already" in again.get_data(as_text=True)
    assert not signed_in(client)
    assert post_code(client, RECOVERY, codes[4]).status_code == 302
    assert db.scalars(select(AuditEntry.action)).all().count("2fa_recovery_code") == 2


def test_too_many_wrong_codes_ask_for_the_password_again(client, people, clock):
    enrol(client, "coord@city.gov", clock.value)
    sign_out(client)
    login(client, "coord@city.gov")
    statuses = [post_code(client, CODE, "000000").status_code for _ in range(5)]
    assert statuses == [400] * 4 + [302]
    assert client.get(CODE).headers["Location"].endswith("/dashboard/login")


def test_the_code_step_is_throttled_like_the_password_step(client, people, app, clock, monkeypatch):
    monkeypatch.setattr("voice.dashboard.auth.MAX_WRONG_CODES", 100)
    enrol(client, "coord@city.gov", clock.value)
    sign_out(client)
    login(client, "coord@city.gov")
    statuses = [post_code(client, CODE, f"{n:06d}").status_code for n in range(12)]
    assert statuses[:10] == [400] * 10 and 429 in statuses[10:]


def test_a_half_sign_in_runs_out(client, people, clock, monkeypatch):
    login(client, "coord@city.gov")
    assert client.get(ENROL).status_code == 200
    later = time.time() + 11 * 60
    monkeypatch.setattr("voice.dashboard.auth.time", SimpleNamespace(time=lambda: later))
    gone = client.get(ENROL)
    assert gone.status_code == 302 and gone.headers["Location"].endswith("/dashboard/login")


def test_a_coordinator_resets_two_factor_and_ends_that_users_sessions(client, people, app, db, clock):
    victim = app.test_client()
    secret, _ = enrol(victim, "coord@city.gov", clock.value)
    # A half sign-in under way dies with the reset too.
    halfway = app.test_client()
    login(halfway, "coord@city.gov")
    assert signed_in(victim)
    enrol(client, "boss@city.gov", clock.value)
    user = db.scalar(select(User).where(User.email == "coord@city.gov"))
    users_page = client.get("/dashboard/users").get_data(as_text=True)
    assert "Reset two-factor sign-in of coord@city.gov" in users_page
    token = TOKEN.search(users_page).group(1)
    assert client.post(f"/dashboard/users/{user.id}/reset-2fa").status_code == 400  # no CSRF token
    assert client.post(f"/dashboard/users/{user.id}/reset-2fa", data={"csrf_token": token}).status_code == 302
    assert not signed_in(victim)
    assert halfway.get(CODE).headers["Location"].endswith("/dashboard/login")
    db.expire_all()
    user = db.get(User, user.id)
    assert user.totp_secret is None and user.totp_enrolled_at is None
    assert db.scalar(select(RecoveryCode.id).where(RecoveryCode.user_id == user.id)) is None
    entry = db.scalar(select(AuditEntry).where(AuditEntry.action == "2fa_reset"))
    assert entry.target == f"user:{user.id}" and entry.user.email == "boss@city.gov"
    # Their next sign-in enrols a new authenticator; the old one is no use.
    assert login(victim, "coord@city.gov").headers["Location"].endswith(ENROL)
    assert SECRET.search(victim.get(ENROL).get_data(as_text=True)).group(1).replace(" ", "") != secret


def test_only_a_coordinator_may_reset_two_factor(client, people, db):
    login(client, "alice@city.gov")
    coord = db.scalar(select(User).where(User.email == "coord@city.gov"))
    token = csrf(client, "/dashboard/")
    assert client.post(f"/dashboard/users/{coord.id}/reset-2fa", data={"csrf_token": token}).status_code == 403


def test_reset_2fa_from_the_cli_ends_sessions_and_is_audited(client, people, app, db, runner, clock):
    enrol(client, "coord@city.gov", clock.value)
    assert signed_in(client)
    result = runner.invoke(args=["user", "reset-2fa", "Coord@City.gov"])
    assert result.exit_code == 0 and "sessions have ended" in result.output
    assert not signed_in(client)
    db.expire_all()
    assert db.scalar(select(User.totp_enrolled_at).where(User.email == "coord@city.gov")) is None
    entry = db.scalar(select(AuditEntry).where(AuditEntry.action == "2fa_reset"))
    assert entry.ip == "cli" and entry.user_id is None
    assert runner.invoke(args=["user", "reset-2fa", "nobody@city.gov"]).exit_code != 0


def test_a_specialist_whose_role_is_not_listed_signs_in_as_before(client, people, app, db):
    response = login(client, "alice@city.gov")
    assert response.status_code == 302 and response.headers["Location"] == "/dashboard/"
    assert signed_in(client)
    assert db.scalar(select(User.totp_secret).where(User.email == "alice@city.gov")) is None
    # On the same line a coordinator's password alone goes no further than enrolment.
    assert login(app.test_client(), "coord@city.gov").headers["Location"].endswith(ENROL)


def test_a_specialist_signs_in_with_a_code_where_specialists_must(people, redis_url, database_url, clock):
    with fresh_app(settings(redis_url, database_url, REQUIRE_2FA_FOR="coordinator,specialist")) as strict:
        with Session(strict.extensions["db"].engine) as session:
            alice = specialists.add_specialist(session, "Alice Mediator", "+19375550201", ["en"])
            session.flush()
            create_user(session, "alice@city.gov", PASSWORD, "specialist", alice.id)
            session.commit()
        browser = strict.test_client()
        enrol(browser, "alice@city.gov", clock.value)
        assert signed_in(browser)


def test_nobody_is_asked_for_a_code_by_default(people, redis_url, database_url):
    with fresh_app(settings(redis_url, database_url)) as plain:
        with Session(plain.extensions["db"].engine) as session:
            create_user(session, "coord@city.gov", PASSWORD, "coordinator")
            session.commit()
        browser = plain.test_client()
        assert login(browser, "coord@city.gov").headers["Location"] == "/dashboard/"
        assert signed_in(browser)


def test_a_session_left_idle_ends_and_one_in_use_does_not(client, people, app, monkeypatch):
    import itsdangerous.timed

    login(client, "alice@city.gov")
    start = time.time()
    idle = app.config["SESSION_IDLE_MINUTES"] * 60

    def at(seconds: float) -> None:
        monkeypatch.setattr(itsdangerous.timed, "time", SimpleNamespace(time=lambda: start + seconds))

    # Active every few minutes for longer than the idle limit: still signed in (each page renews the cookie).
    for minutes in range(5, app.config["SESSION_IDLE_MINUTES"] + 15, 5):
        at(minutes * 60)
        assert client.get("/dashboard/calls").status_code == 200, minutes
    last = (app.config["SESSION_IDLE_MINUTES"] + 10) * 60
    at(last + idle - 5)
    assert client.get("/dashboard/calls").status_code == 200
    at(last + idle - 5 + idle + 5)
    response = client.get("/dashboard/calls")
    assert response.status_code == 302 and "/dashboard/login" in response.headers["Location"]


def test_migration_0006_keeps_accounts_and_goes_back(tmp_path):
    from alembic import command

    from voice.db import Database, alembic_config

    database = Database(f"sqlite:///{tmp_path}/old.db")
    database.upgrade("0003")
    with database.engine.begin() as conn:
        conn.execute(text("INSERT INTO users (email, password_hash, role, active, created_at, session_token) "
                          "VALUES ('a@city.gov', 'x', 'coordinator', 1, CURRENT_TIMESTAMP, 'tok')"))
    database.upgrade("0006")
    with database.engine.begin() as conn:
        row = conn.execute(text("SELECT email, totp_secret, totp_enrolled_at, totp_last_step FROM users")).one()
        assert tuple(row) == ("a@city.gov", None, None, None)
        assert conn.execute(text("SELECT COUNT(*) FROM recovery_codes")).scalar() == 0
    command.downgrade(alembic_config(database.url), "0003")
    with database.engine.begin() as conn:
        assert conn.execute(text("SELECT email FROM users")).scalar() == "a@city.gov"
    database.dispose()


def test_the_second_step_pages_send_someone_signed_in_to_the_board(client, people):
    login(client, "alice@city.gov")
    for path in (ENROL, CODE, RECOVERY):
        assert client.get(path).headers["Location"] == "/dashboard/", path
