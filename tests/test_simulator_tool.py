"""The simulator as a tool: it reports what Twilio would reject, and the fake REST API plays outbound calls."""

from __future__ import annotations

import time

import pytest
from flask import Flask, Response
from twilio.base.exceptions import TwilioRestException

from tests.support import ACCOUNT_SID, AUTH_TOKEN, LINE, PUBLIC, load_script, serve_app
from voice.simulator import FlaskTransport, ScriptedCaller, SimulatedPhone, SpecialistPhone, phone
from voice.simulator.embedded_redis import free_port
from voice.simulator.fake_twilio import FakeTwilio
from voice.twilio_rest import rest_client

XML = "text/xml"


def twiml_app(documents: dict[str, str]) -> Flask:
    """An app that answers each path with a fixed TwiML document (and status callbacks with nothing)."""
    app = Flask("fixed")
    for path, body in {"/voice/status": "<Response/>", **documents}.items():
        app.add_url_rule(path, path, lambda body=body: Response(body, mimetype=XML), methods=["POST"])
    return app


def broken_app(kind: str, fake_port: int = 0) -> Flask:
    app = Flask("broken")

    @app.post("/voice/incoming")
    def incoming():
        if kind == "slow":
            time.sleep(0.3)
            return Response("<Response><Say>Sorry for the wait.</Say></Response>", mimetype=XML)
        if kind == "whisper-500":
            # Like the worker's callback: a call placed through the (fake) REST API, whose whisper fails.
            rest = rest_client({"TWILIO_ACCOUNT_SID": ACCOUNT_SID, "TWILIO_AUTH_TOKEN": AUTH_TOKEN,
                                "TWILIO_API_BASE_URL": f"http://127.0.0.1:{fake_port}"})
            rest.calls.create(to="+19375550201", from_=LINE, url=f"{PUBLIC}/voice/whisper")
            return Response("<Response><Say>A specialist will call you.</Say></Response>", mimetype=XML)
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

    @app.post("/voice/whisper")
    def whisper():
        return Response("Traceback (most recent call last): ...", status=500)

    return app


@pytest.mark.parametrize("kind, problem", [("500", "error"), ("html", "invalid"), ("bad-xml", "invalid"),
                                           ("bad-verb", "invalid"), ("loop", "loop"), ("slow", "slow")])
def test_the_simulator_reports_what_twilio_would_reject(kind, problem, monkeypatch):
    # Twilio's 15 seconds, scaled down so a slow webhook takes a fraction of a second to show.
    monkeypatch.setattr(phone, "TWILIO_TIMEOUT_SECONDS", 0.1)
    phone_ = SimulatedPhone(FlaskTransport(broken_app(kind)), AUTH_TOKEN, ACCOUNT_SID, LINE, PUBLIC)
    record = phone_.call_line("+19375550123", ScriptedCaller())
    assert any(p.startswith(problem) for p in record.problems), record.problems


def test_a_well_behaved_app_has_no_problems(monkeypatch):
    monkeypatch.setattr(phone, "TWILIO_TIMEOUT_SECONDS", 0.1)
    app = twiml_app({"/voice/incoming": "<Response><Say>Hello.</Say><Hangup/></Response>"})
    record = SimulatedPhone(FlaskTransport(app), AUTH_TOKEN, ACCOUNT_SID, LINE, PUBLIC).call_line(
        "+19375550123", ScriptedCaller())
    assert record.problems == [] and record.heard() == "Hello."






def test_simulate_call_exits_nonzero_against_a_broken_instance(capsys):
    url, server = serve_app(broken_app("500"))
    try:
        code = load_script("simulate_call").main(["--url", url, "--public-base-url", PUBLIC, "--auth-token", AUTH_TOKEN,
                                                  "--line", LINE, "1"])
    finally:
        server.shutdown()
    assert code == 1 and "PROBLEMS" in capsys.readouterr().out


def test_simulate_call_drives_the_real_app_over_http(app, capsys):
    url, server = serve_app(app)
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


def test_simulate_call_reads_a_script_file_and_drives_the_real_app(app, tmp_path, capsys):
    script = tmp_path / "noise.txt"
    script.write_text("# language, safety: someone is in danger\n1\n1\n")
    url, server = serve_app(app)
    try:
        code = load_script("simulate_call").main([
            "--url", url, "--public-base-url", PUBLIC, "--auth-token", AUTH_TOKEN, "--account-sid", ACCOUNT_SID,
            "--line", LINE, "--dispatch", "+19375550911", "--script", str(script)])
    finally:
        server.shutdown()
    out = capsys.readouterr().out
    assert code == 0, out
    assert "caller: presses '1'" in out and "dialing +19375550911 (911 dispatch)" in out


def test_simulate_call_with_the_fake_rest_api_flags_a_failing_outbound_webhook(capsys):
    fake_port = free_port()
    url, server = serve_app(broken_app("whisper-500", fake_port))
    try:
        code = load_script("simulate_call").main([
            "--url", url, "--public-base-url", PUBLIC, "--auth-token", AUTH_TOKEN, "--account-sid", ACCOUNT_SID,
            "--line", LINE, "--specialist", "+19375550201=Alice", "--fake-twilio-port", str(fake_port)])
    finally:
        server.shutdown()
    out = capsys.readouterr().out
    assert code == 1, out
    # The inbound call itself was fine; the call the app placed through the REST API was not.
    assert "caller hears: A specialist will call you." in out
    assert f"error: {PUBLIC}/voice/whisper answered HTTP 500" in out


@pytest.fixture
def fake():
    """The fake REST API serving one account; its calls ring phones on a network with Alice on it."""
    app = twiml_app({"/voice/whisper": "<Response><Say>Hi Alice.</Say></Response>"})
    phone_ = SimulatedPhone(FlaskTransport(app), AUTH_TOKEN, ACCOUNT_SID, LINE, PUBLIC,
                            network={"+19375550201": SpecialistPhone("Alice")})
    fake = FakeTwilio(phone_, ACCOUNT_SID, AUTH_TOKEN, LINE)
    fake.start()
    yield fake
    fake.stop()


def client_for(fake: FakeTwilio):
    return rest_client({"TWILIO_ACCOUNT_SID": ACCOUNT_SID, "TWILIO_AUTH_TOKEN": AUTH_TOKEN,
                        "TWILIO_API_BASE_URL": fake.url})


@pytest.mark.parametrize("to, from_, url, code", [
    ("+19375550201", "+19375550999", f"{PUBLIC}/voice/whisper", 21210),  # not the account's number
    ("+19375550201", LINE, "/voice/whisper", 21205),  # Twilio needs an absolute URL
    ("", LINE, f"{PUBLIC}/voice/whisper", 21201),
])
def test_the_fake_refuses_calls_twilio_would_refuse(fake, to, from_, url, code):
    with pytest.raises(TwilioRestException) as refused:
        client_for(fake).calls.create(to=to, from_=from_, url=url)
    assert refused.value.code == code and refused.value.status == 400
    assert fake.calls == []


def test_the_fake_reports_each_call_as_twilio_does(fake):
    client = client_for(fake)
    answered = client.calls.create(to="+19375550201", from_=LINE, url=f"{PUBLIC}/voice/whisper",
                                   status_callback=f"{PUBLIC}/voice/status")
    unanswered = client.calls.create(to="+19375550299", from_=LINE, url=f"{PUBLIC}/voice/whisper")
    assert fake.wait_for_calls(10)
    assert client.calls(answered.sid).fetch().status == "completed"
    assert client.calls(unanswered.sid).fetch().status == "no-answer"
    assert fake.calls[0].record.heard("Alice") == "Hi Alice."
    # The status callback was signed and sent, as the worker's callback legs rely on.
    assert [e.params["CallStatus"] for e in fake.calls[0].record.exchanges if e.url.endswith("/status")] == ["completed"]
    since = fake.calls[0].created_at.replace(microsecond=0)
    assert {c.sid for c in client.calls.list(from_=LINE, start_time_after=since)} == {answered.sid, unanswered.sid}
    assert client.calls.list(to="+19375550201", status="no-answer") == []
    with pytest.raises(TwilioRestException) as missing:
        client.calls("CA" + "f" * 32).fetch()
    assert missing.value.status == 404 and missing.value.code == 20404


def test_the_fake_hangs_up_a_live_call_only_by_status(fake):
    client = client_for(fake)
    with pytest.raises(TwilioRestException) as unknown:
        client.calls("CA" + "e" * 32).update(status="completed")
    assert unknown.value.status == 404
    call = client.calls.create(to="+19375550201", from_=LINE, url=f"{PUBLIC}/voice/whisper")
    assert fake.wait_for_calls(10)
    assert client.calls(call.sid).update(status="canceled").status == "completed"  # already over: unchanged
    with pytest.raises(TwilioRestException) as unsupported:
        client.calls(call.sid).update(url=f"{PUBLIC}/voice/whisper")
    assert unsupported.value.status == 400


def test_the_fake_refuses_texts_twilio_would_refuse(fake):
    client = client_for(fake)
    with pytest.raises(TwilioRestException) as no_body:
        client.messages.create(to="+19375550123", from_=LINE, body="")
    assert no_body.value.code == 21602
    with pytest.raises(TwilioRestException) as wrong_from:
        client.messages.create(to="+19375550123", from_="+19375550999", body="hi")
    assert wrong_from.value.code == 21606
    sent = client.messages.create(to="+19375550123", from_=LINE, body="hi")
    assert sent.status == "queued" and sent.date_created is not None
    assert [t["body"] for t in fake.texts] == ["hi"]


def test_the_fake_only_serves_its_own_account(fake):
    other = rest_client({"TWILIO_ACCOUNT_SID": "AC" + "9" * 32, "TWILIO_AUTH_TOKEN": AUTH_TOKEN,
                         "TWILIO_API_BASE_URL": fake.url})
    with pytest.raises(TwilioRestException) as denied:
        other.messages.create(to="+19375550123", from_=LINE, body="x")
    assert denied.value.status == 401
