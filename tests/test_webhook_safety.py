"""The promises every webhook keeps: signed or refused, repeatable, and a person at the end of any fault."""

from __future__ import annotations

import subprocess
import sys

import pytest
from defusedxml.ElementTree import fromstring
from sqlalchemy import func, select
from twilio.request_validator import RequestValidator

from tests.support import ACCOUNT_SID, AUTH_TOKEN, DISPATCH, LINE, PUBLIC, incoming, settings, signed
from voice import create_app
from voice.models import Call, CallEvent
from voice.simulator import FlaskTransport, ScriptedCaller, SimulatedPhone

CALLER = "+19375550123"






def verbs(body: bytes | str) -> list:
    root = fromstring(body if isinstance(body, bytes) else body.encode())
    assert root.tag == "Response"
    return list(root)


def count(app, model) -> int:
    with app.app_context():
        return app.extensions["db"].session().scalar(select(func.count()).select_from(model))


def dials_dispatch(body: bytes) -> bool:
    dialled = [(n.text or "").strip() for v in verbs(body) if v.tag == "Dial" for n in [v, *v]]
    return DISPATCH in dialled


@pytest.mark.parametrize("path", ["/voice/incoming", "/voice/intake/language?call=CAx", "/voice/status",
                                  "/voice/fallback", "/voice/offer/whisper?hold=1", "/sms/incoming"])
def test_unsigned_or_wrongly_signed_requests_are_refused_and_write_nothing(app, client, path):
    assert client.post(path, data=incoming()).status_code == 403
    assert signed(client, path, incoming(), token="someone-elses-token").status_code == 403
    assert count(app, Call) == 0 and count(app, CallEvent) == 0


def test_signature_covers_the_query_string(app, client):
    params = incoming()
    signature = RequestValidator(AUTH_TOKEN).compute_signature(PUBLIC + "/voice/intake/safety?call=CA1", params)
    tampered = client.post("/voice/intake/safety?call=CA2", data=params, headers={"X-Twilio-Signature": signature})
    assert tampered.status_code == 403


def test_a_repeated_request_gets_the_same_answer_and_changes_nothing(app, client):
    first = signed(client, "/voice/incoming", incoming())
    events = count(app, CallEvent)
    again = signed(client, "/voice/incoming", incoming())
    assert again.status_code == 200 and again.data == first.data
    assert count(app, Call) == 1 and count(app, CallEvent) == events

    step = "/voice/intake/greeting?call=" + incoming()["CallSid"] + "&attempt=1"
    answer = signed(client, step, incoming(Digits="2"))
    events = count(app, CallEvent)
    assert signed(client, step, incoming(Digits="2")).data == answer.data
    assert count(app, CallEvent) == events


def test_redis_down_still_puts_the_caller_through_to_dispatch(redis_url, database_url):
    app = create_app(settings("redis://127.0.0.1:1/0", database_url))
    response = signed(app.test_client(), "/voice/incoming", incoming())
    assert response.status_code == 200 and response.mimetype == "text/xml"
    # The greeting needs only the database; a later step that needs Redis falls back to dispatch.
    phone = SimulatedPhone(FlaskTransport(app), AUTH_TOKEN, ACCOUNT_SID, LINE, PUBLIC, expect_fault=True)
    record = phone.call_line(CALLER, ScriptedCaller(["2", "1", "Dana", "Main and 5th", "1", "noise", "1"]))
    assert record.problems == []
    assert "technical problem" in record.heard()
    assert any(DISPATCH in what for who, what in record.transcript if who == "network")


def test_database_down_still_puts_the_caller_through_to_dispatch(redis_url, tmp_path):
    missing = tmp_path / "no-such-dir" / "calls.db"
    app = create_app(settings(redis_url, f"sqlite:///{missing}"))
    response = signed(app.test_client(), "/voice/incoming", incoming())
    assert response.status_code == 200 and dials_dispatch(response.data)
    text = " ".join(v.text or "" for v in verbs(response.data) if v.tag == "Say")
    assert "sorry" in text.lower() and "lo sentimos" in text.lower()


def test_a_bug_in_a_step_still_reaches_a_person(app, client, monkeypatch):
    from voice.line import intake

    def broken(*args, **kwargs):
        raise RuntimeError("a bug")

    monkeypatch.setattr(intake, "answer", broken)
    response = signed(client, "/voice/intake/safety?call=CA9", incoming("CA9", Digits="2"))
    assert response.status_code == 200 and dials_dispatch(response.data)


def test_fallback_needs_neither_redis_nor_the_database(tmp_path):
    app = create_app(settings("redis://127.0.0.1:1/0", f"sqlite:///{tmp_path}/missing/x.db"))
    response = signed(app.test_client(), "/voice/fallback", incoming(ErrorCode="11200"))
    assert response.status_code == 200 and dials_dispatch(response.data)


HOSTILE = [
    "<Say>hi</Say>]]><script>alert(1)</script>",
    "Robert'); DROP TABLE calls;--",
    "\x00\x07\x1b[31mred\x7f",
    "=HYPERLINK(\"http://evil\")",
    "x" * 50_000,
    "😀 José Ñandú 中文",
]


@pytest.mark.parametrize("speech", HOSTILE)
def test_hostile_speech_is_stored_safely_and_the_call_goes_on(app, phone, speech):
    record = phone.call_line(CALLER, ScriptedCaller(["2", "1", speech, speech, "1", speech, "1"]))
    assert record.problems == []
    with app.app_context():
        call = app.extensions["db"].session().scalar(select(Call))
        for value in (call.caller_name, call.location, call.description):
            assert value and "\x00" not in value and "\x1b" not in value and len(value) <= 2000
        assert call.outcome == "callback_queued"


@pytest.mark.parametrize("digits", ["", "#", "*", "99999999999999999999", "1" * 5000, "abc", "<x/>"])
def test_odd_keypad_input_never_breaks_a_step(app, client, digits):
    signed(client, "/voice/incoming", incoming())
    for step in ("greeting", "safety", "category", "name", "callback_number", "callback_number_new", "window"):
        path = f"/voice/intake/{step}?call={incoming()['CallSid']}&attempt=1"
        response = signed(client, path, incoming(Digits=digits))
        assert response.status_code == 200 and response.mimetype == "text/xml"
        body = response.get_data(as_text=True)
        assert "technical problem" not in body, f"{step} fell into the fault path on {digits[:20]!r}"
        said = verbs(response.data)
        asks_again = any(v.tag == "Gather" and f"/voice/intake/{step}" in (v.get("action") or "") for v in said)
        moves_on = any(v.tag == "Gather" for v in said) or dials_dispatch(response.data)
        # Once a key meant danger (all ones), the call went to dispatch: later steps end politely, changing nothing.
        over = [v.tag for v in said] == ["Say", "Hangup"] and "Goodbye" in body
        # Nonsense is asked again (or, for the keys that mean something, acted on); never an empty answer.
        assert asks_again or moves_on or over, f"{step} answered {body}"


def test_a_missing_setting_stops_start_up_with_one_line_naming_it(tmp_path):
    script = "from voice import create_app; create_app()"
    env = {"PATH": "/usr/bin:/bin", "TWILIO_ACCOUNT_SID": ACCOUNT_SID, "TWILIO_AUTH_TOKEN": "x",
           "TWILIO_PHONE_NUMBER": LINE, "PUBLIC_BASE_URL": PUBLIC, "SECRET_KEY": "s",
           "RETENTION_DAYS": "365"}
    result = subprocess.run([sys.executable, "-c", script], env=env, cwd=tmp_path, capture_output=True, text=True)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "DISPATCH_TRANSFER_NUMBER" in lines[0]

    env["DISPATCH_TRANSFER_NUMBER"] = "not a number"
    result = subprocess.run([sys.executable, "-c", script], env=env, cwd=tmp_path, capture_output=True, text=True)
    assert result.returncode == 2 and "DISPATCH_TRANSFER_NUMBER" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
