"""scripts/provision_twilio.py against Twilio's REST API as `responses` plays it."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from urllib.parse import parse_qs

import responses

ACCOUNT = "AC" + "1" * 32
NUMBER_SID = "PN" + "2" * 32
API = f"https://api.twilio.com/2010-04-01/Accounts/{ACCOUNT}"
CONFIG = {"TWILIO_ACCOUNT_SID": ACCOUNT, "TWILIO_AUTH_TOKEN": "secret", "TWILIO_PHONE_NUMBER": "+19375550100",
          "PUBLIC_BASE_URL": "https://line.dayton.example", "TWILIO_API_BASE_URL": ""}


def load_script():
    path = Path(__file__).parent.parent / "scripts" / "provision_twilio.py"
    spec = importlib.util.spec_from_file_location("provision_twilio", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def number(**fields) -> dict:
    base = {"sid": NUMBER_SID, "account_sid": ACCOUNT, "phone_number": "+19375550100", "voice_url": "https://old.example/x",
            "voice_method": "GET", "voice_fallback_url": "", "voice_fallback_method": "POST", "status_callback": "",
            "status_callback_method": "POST", "sms_url": "https://demo.twilio.com/welcome/sms/reply", "sms_method": "POST"}
    base.update(fields)
    return base


def listing(rsps, *numbers):
    rsps.add(responses.GET, f"{API}/IncomingPhoneNumbers.json",
             json={"incoming_phone_numbers": list(numbers), "end": 0, "page": 0, "page_size": 50, "start": 0,
                   "next_page_uri": None, "uri": ""})


def test_provision_sets_every_webhook_and_says_what_changed():
    script = load_script()
    lines: list[str] = []
    with responses.RequestsMock() as rsps:
        listing(rsps, number())
        rsps.add(responses.POST, f"{API}/IncomingPhoneNumbers/{NUMBER_SID}.json", json=number())
        assert script.provision(CONFIG, dry_run=False, out=lines.append) == 0
        assert "PhoneNumber=%2B19375550100" in rsps.calls[0].request.url
        sent = {k: v[0] for k, v in parse_qs(rsps.calls[1].request.body).items()}
    assert sent == {
        "VoiceUrl": "https://line.dayton.example/voice/incoming", "VoiceMethod": "POST",
        "VoiceFallbackUrl": "https://line.dayton.example/voice/fallback",
        "StatusCallback": "https://line.dayton.example/voice/status",
        "SmsUrl": "https://line.dayton.example/sms/incoming",
    }
    text = "\n".join(lines)
    assert "https://old.example/x -> https://line.dayton.example/voice/incoming" in text
    assert "sms_method" in text and "(unchanged)" in text


def test_dry_run_changes_nothing():
    script = load_script()
    lines: list[str] = []
    with responses.RequestsMock() as rsps:
        listing(rsps, number())
        assert script.provision(CONFIG, dry_run=True, out=lines.append) == 0
        assert [c.request.method for c in rsps.calls] == ["GET"]
    assert "nothing was changed" in lines[-1]


def test_a_number_not_on_the_account_is_a_clear_error():
    script = load_script()
    lines: list[str] = []
    with responses.RequestsMock() as rsps:
        listing(rsps)
        assert script.provision(CONFIG, dry_run=False, out=lines.append) == 1
    assert "is not a number on account" in lines[-1]


def test_already_provisioned_sends_no_update():
    script = load_script()
    done = number(**{k: v for k, v in load_script().wanted(CONFIG["PUBLIC_BASE_URL"]).items()})
    with responses.RequestsMock() as rsps:
        listing(rsps, done)
        lines: list[str] = []
        assert script.provision(CONFIG, dry_run=False, out=lines.append) == 0
        assert len(rsps.calls) == 1
    assert "already set up" in lines[-1]
