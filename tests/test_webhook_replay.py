"""Twilio's repeats while the first copy is still being answered: one answer, given to both, written once."""

from __future__ import annotations

import threading
import time

from sqlalchemy import func, select
from twilio.request_validator import RequestValidator

from tests.support import AUTH_TOKEN, PUBLIC, incoming, signed
from voice.models import CallEvent
from voice.redisdb import Keys
from voice.webhooks import guard


def key_for(app, path: str, params: dict) -> str:
    signature = RequestValidator(AUTH_TOKEN).compute_signature(PUBLIC + path, params)
    with app.test_request_context(path, method="POST", data=params, headers={"X-Twilio-Signature": signature}):
        return Keys.webhook_response(guard.fingerprint())


def test_a_repeat_that_arrives_mid_answer_waits_for_the_first_answer(app, client, r, monkeypatch):
    from voice.line import intake

    started, release = threading.Event(), threading.Event()
    begin = intake.begin
    runs = []

    def slow_begin(*args, **kwargs):
        runs.append(1)
        started.set()
        release.wait(5)
        return begin(*args, **kwargs)

    monkeypatch.setattr(intake, "begin", slow_begin)
    answers = {}

    def first():
        answers["first"] = signed(app.test_client(), "/voice/incoming", incoming()).data

    thread = threading.Thread(target=first)
    thread.start()
    assert started.wait(5)
    threading.Timer(0.3, release.set).start()
    answers["repeat"] = signed(client, "/voice/incoming", incoming()).data
    thread.join(5)
    assert answers["repeat"] == answers["first"] and b"<Gather" in answers["first"]
    assert len(runs) == 1
    with app.app_context():
        session = app.extensions["db"].session()
        assert session.scalar(select(func.count()).select_from(CallEvent).where(CallEvent.kind == "call_started")) == 1


def test_a_request_that_failed_can_be_answered_when_twilio_repeats_it(app, client, r, monkeypatch):
    from voice.line import intake

    def broken(*args, **kwargs):
        raise RuntimeError("a bug")

    monkeypatch.setattr(intake, "begin", broken)
    fault = signed(client, "/voice/incoming", incoming())
    assert b"Dial" in fault.data
    assert r.get(key_for(app, "/voice/incoming", incoming())) is None
    monkeypatch.undo()
    again = signed(client, "/voice/incoming", incoming())
    assert b"<Gather" in again.data


def test_a_repeat_of_a_request_stuck_too_long_reaches_a_person(app, client, r, monkeypatch):
    monkeypatch.setattr(guard, "WAIT_FOR_FIRST_SECONDS", 0.2)
    r.set(key_for(app, "/voice/incoming", incoming()), guard.PENDING, ex=5)
    started = time.monotonic()
    response = signed(client, "/voice/incoming", incoming())
    assert response.status_code == 200 and b"+19375550911" in response.data
    assert time.monotonic() - started < 2
