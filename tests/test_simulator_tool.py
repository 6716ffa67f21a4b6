"""The simulator as a tool: it reports what Twilio would reject, and the fake REST API plays outbound calls."""

from __future__ import annotations

import importlib.util
import threading
from pathlib import Path

import pytest
from flask import Flask, Response
from twilio.base.exceptions import TwilioRestException
from werkzeug.serving import make_server

from tests.conftest import ACCOUNT_SID, AUTH_TOKEN, LINE, PUBLIC
from voice.simulator import FlaskTransport, ScriptedCaller, SimulatedPhone, SpecialistPhone
from voice.simulator.fake_twilio import FakeTwilio
from voice.twilio_rest import rest_client

XML = "text/xml"


def broken_app(kind: str) -> Flask:
    app = Flask("broken")

    @app.post("/voice/incoming")
    def incoming():
        if kind == "500":
            return Response("Internal Server Error", status=500)
        if kind == "html":
            return Response("<html><body>Oops</body></html>", mimetype="text/html")
        if kind == "bad-xml":
            return Response("<Response><Say>unclosed</Response>", mimetype=XML)
        if kind == "bad-verb":
            return Response("<Response><Speak>hi</Speak></Response>", mimetype=XML)
        # kind == "loop": sends the caller round and round
        return Response(f"<Response><Redirect>{PUBLIC}/voice/incoming</Redirect></Response>", mimetype=XML)

    @app.post("/voice/status")
    def status():
        return Response("<Response/>", mimetype=XML)

    return app


@pytest.mark.parametrize("kind, problem", [("500", "error"), ("html", "invalid"), ("bad-xml", "invalid"),
                                           ("bad-verb", "invalid"), ("loop", "loop")])
def test_the_simulator_reports_what_twilio_would_reject(kind, problem):
    phone = SimulatedPhone(FlaskTransport(broken_app(kind)), AUTH_TOKEN, ACCOUNT_SID, LINE, PUBLIC)
    record = phone.call_line("+19375550123", ScriptedCaller())
    assert any(p.startswith(problem) for p in record.problems), record.problems


def load_script(name: str):
    path = Path(__file__).parent.parent / "scripts" / f"{name}.py"
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def serve(app) -> tuple[str, object]:
    server = make_server("127.0.0.1", 0, app, threaded=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return f"http://127.0.0.1:{server.server_port}", server


def test_simulate_call_exits_nonzero_against_a_broken_instance(capsys):
    url, server = serve(broken_app("500"))
    try:
        code = load_script("simulate_call").main(["--url", url, "--public-base-url", PUBLIC, "--auth-token", AUTH_TOKEN,
                                                  "--line", LINE, "1"])
    finally:
        server.shutdown()
    assert code == 1 and "PROBLEMS" in capsys.readouterr().out


def test_simulate_call_drives_the_real_app_over_http(app, capsys):
    url, server = serve(app)
    try:
        code = load_script("simulate_call").main([
            "--url", url, "--public-base-url", PUBLIC, "--auth-token", AUTH_TOKEN, "--account-sid", ACCOUNT_SID,
            "--line", LINE, "--dispatch", "+19375550911", "1", "1"])
    finally:
        server.shutdown()
    out = capsys.readouterr().out
    assert code == 0 and "no problems" in out and "911 dispatch" in out


def test_fake_twilio_places_a_call_through_the_app_and_refuses_bad_numbers(app, r):
    phone = SimulatedPhone(FlaskTransport(app), AUTH_TOKEN, ACCOUNT_SID, LINE, PUBLIC,
                           network={"+19375550201": SpecialistPhone("Alice", accept="2")})
    fake = FakeTwilio(phone, ACCOUNT_SID, AUTH_TOKEN, LINE)
    base = fake.start()
    try:
        client = rest_client({"TWILIO_ACCOUNT_SID": ACCOUNT_SID, "TWILIO_AUTH_TOKEN": AUTH_TOKEN,
                              "TWILIO_API_BASE_URL": base})
        call = client.calls.create(to="+19375550201", from_=LINE, url=f"{PUBLIC}/voice/callback/whisper?request=99")
        assert call.sid.startswith("CA")
        assert fake.wait_for_calls(10)
        assert "already been handled" in fake.calls[0].record.heard("Alice")
        assert [c.sid for c in client.calls.list(to="+19375550201")] == [call.sid]
        with pytest.raises(TwilioRestException) as refused:
            client.calls.create(to="12", from_=LINE, url=f"{PUBLIC}/x")
        assert refused.value.code == 21211
        message = client.messages.create(to="+19375550123", from_=LINE, body="hello")
        assert message.sid.startswith("SM") and fake.texts[0]["body"] == "hello"
        wrong = rest_client({"TWILIO_ACCOUNT_SID": ACCOUNT_SID, "TWILIO_AUTH_TOKEN": "nope", "TWILIO_API_BASE_URL": base})
        with pytest.raises(TwilioRestException) as denied:
            wrong.messages.create(to="+19375550123", from_=LINE, body="x")
        assert denied.value.status == 401
    finally:
        fake.stop()


def test_provisioning_works_against_the_fake(capsys):
    phone = SimulatedPhone(FlaskTransport(Flask("unused")), AUTH_TOKEN, ACCOUNT_SID, LINE, PUBLIC)
    fake = FakeTwilio(phone, ACCOUNT_SID, AUTH_TOKEN, LINE)
    base = fake.start()
    try:
        config = {"TWILIO_ACCOUNT_SID": ACCOUNT_SID, "TWILIO_AUTH_TOKEN": AUTH_TOKEN, "TWILIO_PHONE_NUMBER": LINE,
                  "PUBLIC_BASE_URL": PUBLIC, "TWILIO_API_BASE_URL": base}
        script = load_script("provision_twilio")
        assert script.provision(config, dry_run=False) == 0
        assert fake.numbers[LINE]["voice_url"] == f"{PUBLIC}/voice/incoming"
        assert fake.numbers[LINE]["sms_url"] == f"{PUBLIC}/sms/incoming"
        assert script.provision(config, dry_run=False) == 0
        assert "already set up" in capsys.readouterr().out
    finally:
        fake.stop()
