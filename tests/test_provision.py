"""Provisioning the line's number (voice.provisioning, its flask command and script) against the fake Twilio
REST API mounted in `responses` (which records each request): the exact fields sent, and nothing sent on a dry run."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from urllib.parse import parse_qs

import responses
from defusedxml.ElementTree import fromstring

from tests.support import AUTH_TOKEN, PUBLIC
from voice.commands.provision import provision, wanted
from voice.simulator.fake_twilio import FakeTwilio

ACCOUNT = "AC" + "1" * 32
NUMBER_SID = "PN" + "2" * 32
BASE = "https://line.dayton.example"
CONFIG = {"TWILIO_ACCOUNT_SID": ACCOUNT, "TWILIO_AUTH_TOKEN": "secret", "TWILIO_PHONE_NUMBER": "+19375550100",
          "PUBLIC_BASE_URL": BASE, "TWILIO_API_BASE_URL": ""}


def number(account: str = ACCOUNT, **fields) -> dict:
    base = {"sid": NUMBER_SID, "account_sid": account, "phone_number": "+19375550100",
            "voice_url": "https://old.example/x", "voice_method": "GET", "voice_fallback_url": "",
            "voice_fallback_method": "POST", "status_callback": "", "status_callback_method": "POST",
            "sms_url": "https://demo.twilio.com/welcome/sms/reply", "sms_method": "POST"}
    base.update(fields)
    return base


def twilio(rsps, *numbers, account: str = ACCOUNT, token: str = CONFIG["TWILIO_AUTH_TOKEN"]) -> FakeTwilio:
    """The fake Twilio REST API for `account`, holding just `numbers`, mounted in `rsps`."""
    fake = FakeTwilio(None, account, token, CONFIG["TWILIO_PHONE_NUMBER"])
    fake.numbers = {n["phone_number"]: n for n in numbers}
    fake.mount(rsps)
    return fake


def mocked():
    # The fake mounts a callback per method; a test that never deletes anything is no failure.
    return responses.RequestsMock(assert_all_requests_are_fired=False)


def posted(call) -> dict:
    return {k: v[0] for k, v in parse_qs(call.request.body).items()}


def test_provision_sets_every_webhook_and_says_what_changed():
    lines: list[str] = []
    with mocked() as rsps:
        twilio(rsps, number())
        assert provision(CONFIG, dry_run=False, out=lines.append) == 0
        assert "PhoneNumber=%2B19375550100" in rsps.calls[0].request.url
        assert rsps.calls[1].request.headers["Authorization"].startswith("Basic ")
        sent = posted(rsps.calls[1])
    # Only what differs is sent: voice_method was GET, the other methods were already POST.
    assert sent == {
        "VoiceUrl": f"{BASE}/voice/incoming", "VoiceMethod": "POST",
        "VoiceFallbackUrl": f"{BASE}/voice/fallback",
        "StatusCallback": f"{BASE}/voice/status",
        "SmsUrl": f"{BASE}/sms/incoming",
    }
    text = "\n".join(lines)
    assert f"https://old.example/x -> {BASE}/voice/incoming" in text
    assert f"(empty) -> {BASE}/voice/fallback" in text
    assert "sms_method" in text and "(unchanged)" in text
    assert "updated 5 setting(s) of +19375550100" in lines[-1]


def test_a_blank_number_gets_every_field_including_the_methods():
    blank = number(**{name: "" for name in wanted(BASE)})
    with mocked() as rsps:
        twilio(rsps, blank)
        assert provision(CONFIG, dry_run=False, out=lambda _: None) == 0
        sent = posted(rsps.calls[1])
    assert sent == {"VoiceUrl": f"{BASE}/voice/incoming", "VoiceMethod": "POST",
                    "VoiceFallbackUrl": f"{BASE}/voice/fallback", "VoiceFallbackMethod": "POST",
                    "StatusCallback": f"{BASE}/voice/status", "StatusCallbackMethod": "POST",
                    "SmsUrl": f"{BASE}/sms/incoming", "SmsMethod": "POST"}


def test_dry_run_sends_no_post():
    lines: list[str] = []
    with mocked() as rsps:
        twilio(rsps, number())
        assert provision(CONFIG, dry_run=True, out=lines.append) == 0
        assert [c.request.method for c in rsps.calls] == ["GET"]
    assert f"https://old.example/x -> {BASE}/voice/incoming" in "\n".join(lines)
    assert "nothing was changed" in lines[-1]


def test_a_number_not_on_the_account_is_a_clear_error():
    lines: list[str] = []
    with mocked() as rsps:
        twilio(rsps)
        assert provision(CONFIG, dry_run=False, out=lines.append) == 1
    assert "+19375550100 is not a number on account" in lines[-1]


def test_wrong_credentials_are_a_clear_error_not_a_traceback():
    lines: list[str] = []
    with mocked() as rsps:
        twilio(rsps, number(), token="not-the-configured-token")
        assert provision(CONFIG, dry_run=False, out=lines.append) == 1
    assert "refused to list" in lines[-1] and "HTTP 401" in lines[-1] and "20003" in lines[-1]


def test_already_provisioned_sends_no_update():
    lines: list[str] = []
    with mocked() as rsps:
        twilio(rsps, number(**wanted(BASE)))
        assert provision(CONFIG, dry_run=False, out=lines.append) == 0
        assert len(rsps.calls) == 1
    assert "already set up" in lines[-1]


def test_a_local_address_is_refused_before_asking_twilio():
    lines: list[str] = []
    with responses.RequestsMock():  # any request would fail the test: none is registered
        assert provision({**CONFIG, "PUBLIC_BASE_URL": "http://127.0.0.1:5000"}, dry_run=False,
                         out=lines.append) == 2
    assert "Twilio cannot reach" in lines[-1]


def test_the_flask_command_provisions_the_configured_number(runner, app):
    account = app.config["TWILIO_ACCOUNT_SID"]
    with mocked() as rsps:
        twilio(rsps, number(account), account=account, token=AUTH_TOKEN)
        dry = runner.invoke(args=["twilio", "provision", "--dry-run"])
        assert dry.exit_code == 0, dry.output
        assert len(rsps.calls) == 1
        result = runner.invoke(args=["twilio", "provision"])
        assert result.exit_code == 0, result.output
        assert posted(rsps.calls[-1])["VoiceUrl"] == f"{PUBLIC}/voice/incoming"
    assert f"-> {PUBLIC}/sms/incoming" in result.output and "updated 5 setting(s)" in result.output


def test_the_script_reads_its_settings_from_the_environment(monkeypatch, capsys):
    for name, value in {**CONFIG, "DISPATCH_TRANSFER_NUMBER": "+19375550911", "SECRET_KEY": "x",
                        "RETENTION_DAYS": "365"}.items():
        monkeypatch.setenv(name, value)
    path = Path(__file__).parent.parent / "scripts" / "provision_twilio.py"
    spec = importlib.util.spec_from_file_location("provision_twilio", path)
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    # A developer's .env must neither decide this test nor leak into the others.
    monkeypatch.setattr(script, "load_dotenv", lambda: None)
    with mocked() as rsps:
        twilio(rsps, number())
        assert script.main(["--dry-run"]) == 0
    assert "nothing was changed" in capsys.readouterr().out
    monkeypatch.delenv("PUBLIC_BASE_URL")
    assert script.main(["--dry-run"]) == 2
    assert "PUBLIC_BASE_URL" in capsys.readouterr().err


BIN = "https://handler.twilio.com/twiml/EH" + "3" * 32


def test_the_fallback_is_a_twiml_bin_off_our_host_fetched_with_get():
    lines: list[str] = []
    with mocked() as rsps:
        twilio(rsps, number())
        assert provision({**CONFIG, "VOICE_FALLBACK_URL": BIN}, dry_run=False, out=lines.append) == 0
        sent = posted(rsps.calls[1])
    assert (sent["VoiceFallbackUrl"], sent["VoiceFallbackMethod"]) == (BIN, "GET")
    assert not any(line.startswith("warning") for line in lines)


def test_a_fallback_on_our_own_host_is_warned_about():
    lines: list[str] = []
    with mocked() as rsps:
        twilio(rsps, number())
        assert provision(CONFIG, dry_run=True, out=lines.append) == 0
        assert provision({**CONFIG, "VOICE_FALLBACK_URL": f"{BASE}/static/fallback.xml"}, dry_run=True,
                         out=lines.append) == 0
    assert any("fails with the host" in line and "fallback-twiml" in line for line in lines)
    assert any("is on line.dayton.example, the app's own host" in line for line in lines)


def test_the_fallback_twiml_puts_callers_through_to_dispatch_with_nothing_of_ours(runner, app):
    result = runner.invoke(args=["twilio", "fallback-twiml"])
    assert result.exit_code == 0, result.output
    root = fromstring(result.output.strip().encode())
    assert [n.text for n in root.iter("Number")] == [app.config["DISPATCH_TRANSFER_NUMBER"]]
    assert "Connecting you back to dispatch" in result.output and PUBLIC not in result.output
    assert [verb.tag for verb in root] == ["Say", "Say", "Dial", "Say", "Say"]
