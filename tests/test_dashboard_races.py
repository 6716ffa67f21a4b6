"""Double clicks against the app served over HTTP: identical posts at once give a form error, never a 500.

Each test holds every request at a barrier just after its uniqueness check, so all of them pass the check
before any of them writes: the race the database's unique constraints settle, made to happen every time.
"""

from __future__ import annotations

import re
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests
from sqlalchemy import func, select
from sqlalchemy.orm import Session
from werkzeug.serving import make_server

from tests.support import fresh_app, settings
from voice.dashboard import auth
from voice.dashboard.auth import create_user
from voice.line import specialists
from voice.models import Call, CallEvent, Specialist, User

PASSWORD = "correct horse battery"
TOKEN = re.compile(r'name="csrf_token"[^>]*value="([^"]+)"')
AT_ONCE = 4


@pytest.fixture
def served(redis_url, database_url):
    # Plain http, so the session cookie is not Secure and `requests` sends it back.
    with fresh_app(settings(redis_url, database_url, PUBLIC_BASE_URL="http://127.0.0.1")) as app:
        server = make_server("127.0.0.1", 0, app, threaded=True)
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        with Session(app.extensions["db"].engine, expire_on_commit=False) as db:
            create_user(db, "coord@city.gov", PASSWORD, "coordinator")
            db.commit()
            yield app, f"http://127.0.0.1:{server.server_port}", db
        server.shutdown()


def signed_in(base: str) -> tuple[requests.Session, str]:
    browser = requests.Session()
    token = TOKEN.search(browser.get(base + "/dashboard/login").text).group(1)
    browser.post(base + "/dashboard/login", data={"email": "coord@city.gov", "password": PASSWORD,
                                                  "csrf_token": token}, allow_redirects=False)
    return browser, TOKEN.search(browser.get(base + "/dashboard/").text).group(1)


def hold_after(monkeypatch, owner, name: str) -> threading.Barrier:
    """Make `owner.name` wait until AT_ONCE requests have all called it."""
    barrier = threading.Barrier(AT_ONCE, timeout=10)
    original = getattr(owner, name)

    def held(*args, **kwargs):
        result = original(*args, **kwargs)
        barrier.wait()
        return result

    monkeypatch.setattr(owner, name, held)
    return barrier


class HeldHasher:
    """argon2's hasher (whose methods cannot be patched) behind an object whose `hash` can be."""

    def __init__(self, hasher):
        self.hash, self.verify = hasher.hash, hasher.verify


def post_at_once(base: str, path: str, forms: list[dict]) -> list[requests.Response]:
    sessions = [signed_in(base) for _ in forms]
    with ThreadPoolExecutor(len(forms)) as pool:
        futures = [pool.submit(browser.post, base + path, data={**form, "csrf_token": token}, timeout=60)
                   for (browser, token), form in zip(sessions, forms, strict=True)]
        return [future.result() for future in futures]


def test_four_identical_add_specialist_posts_add_one_and_explain_the_rest(served, monkeypatch):
    app, base, db = served
    hold_after(monkeypatch, specialists, "find_by_phone")
    form = {"name": "Cora Mediadora", "phone": "937 555 0203", "languages": "es"}
    answers = post_at_once(base, "/dashboard/roster", [form] * AT_ONCE)
    assert [a.status_code for a in answers] == [200] * AT_ONCE  # each followed its redirect to the roster
    added = [a for a in answers if "Cora Mediadora added" in a.text]
    refused = [a for a in answers if "is already on the roster" in a.text]
    assert len(added) == 1 and len(refused) == AT_ONCE - 1
    assert db.scalar(select(func.count(Specialist.id)).where(Specialist.phone == "+19375550203")) == 1


def test_two_roster_edits_giving_two_people_one_number_save_one(served, monkeypatch):
    app, base, db = served
    people = [specialists.add_specialist(db, f"Person {n}", f"+1937555030{n}", ["en"]) for n in range(AT_ONCE)]
    db.commit()
    hold_after(monkeypatch, specialists, "find_by_phone")
    forms = [{"name": p.name, "phone": "+19375550399", "languages": "en", "active": "1"} for p in people]
    answers = [None] * AT_ONCE
    sessions = [signed_in(base) for _ in people]
    with ThreadPoolExecutor(AT_ONCE) as pool:
        futures = [pool.submit(browser.post, f"{base}/dashboard/roster/{p.id}", data={**f, "csrf_token": token},
                               timeout=60) for (browser, token), p, f in zip(sessions, people, forms, strict=True)]
        answers = [future.result() for future in futures]
    assert [a.status_code for a in answers] == [200] * AT_ONCE
    assert sum("already belongs to someone else" in a.text for a in answers) == AT_ONCE - 1
    db.expire_all()
    assert db.scalar(select(func.count(Specialist.id)).where(Specialist.phone == "+19375550399")) == 1


def test_four_identical_add_account_posts_create_one_and_explain_the_rest(served, monkeypatch):
    app, base, db = served
    # create_user hashes the password between its email check and its insert.
    monkeypatch.setattr(auth, "_hasher", HeldHasher(auth._hasher))
    hold_after(monkeypatch, auth._hasher, "hash")
    form = {"email": "twice@city.gov", "role": "coordinator", "specialist_id": "", "password": "a long first password"}
    answers = post_at_once(base, "/dashboard/users", [form] * AT_ONCE)
    assert sorted(a.status_code for a in answers) == [200] + [400] * (AT_ONCE - 1)
    assert sum("twice@city.gov already has an account" in a.text for a in answers) == AT_ONCE - 1
    assert db.scalar(select(func.count(User.id)).where(User.email == "twice@city.gov")) == 1


def test_four_disposition_posts_at_once_all_succeed_and_the_last_one_stands(served):
    app, base, db = served
    call = Call(call_sid="CA" + "d" * 32, from_number="+19375550123", outcome="bridged")
    db.add(call)
    db.commit()
    choices = ["resolved_by_phone", "referred", "no_further_action", "in_person_scheduled"]
    answers = post_at_once(base, f"/dashboard/calls/{call.id}/disposition",
                           [{"disposition": choice, "notes": choice} for choice in choices])
    assert [a.status_code for a in answers] == [200] * AT_ONCE
    assert all("Disposition saved." in a.text for a in answers)
    db.expire_all()
    saved = db.get(Call, call.id)
    assert saved.disposition in choices and saved.disposition_notes == saved.disposition
    events = db.scalar(select(func.count(CallEvent.id)).where(CallEvent.call_id == call.id, CallEvent.kind == "disposition"))
    assert events == AT_ONCE
