"""Point a real Twilio number at this deployment: `python scripts/provision_twilio.py [--dry-run]`.

Reads TWILIO_ACCOUNT_SID, TWILIO_AUTH_TOKEN, TWILIO_PHONE_NUMBER and PUBLIC_BASE_URL (environment or .env),
finds the number on the account, and sets its voice URL, voice fallback URL, status callback and messaging
URL (all POST). Prints each field as old -> new; --dry-run changes nothing.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Mapping
from pathlib import Path

from dotenv import load_dotenv

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from voice.config import ConfigError, load_settings  # noqa: E402
from voice.twilio_rest import rest_client  # noqa: E402


def wanted(base_url: str) -> dict[str, str]:
    """The number's settings this app needs, as twilio-python's update() names them."""
    return {
        "voice_url": f"{base_url}/voice/incoming",
        "voice_method": "POST",
        "voice_fallback_url": f"{base_url}/voice/fallback",
        "voice_fallback_method": "POST",
        "status_callback": f"{base_url}/voice/status",
        "status_callback_method": "POST",
        "sms_url": f"{base_url}/sms/incoming",
        "sms_method": "POST",
    }


def provision(config: Mapping, dry_run: bool, out=print) -> int:
    client = rest_client(config)
    numbers = client.incoming_phone_numbers.list(phone_number=config["TWILIO_PHONE_NUMBER"], limit=1)
    if not numbers:
        out(f"provision: {config['TWILIO_PHONE_NUMBER']} is not a number on account {config['TWILIO_ACCOUNT_SID']}")
        return 1
    number = numbers[0]
    changes = {}
    for field, value in wanted(config["PUBLIC_BASE_URL"]).items():
        old = getattr(number, field, None) or ""
        if old == value:
            out(f"  {field:<24} {value}  (unchanged)")
        else:
            out(f"  {field:<24} {old or '(empty)'} -> {value}")
            changes[field] = value
    if not changes:
        out(f"{number.phone_number} is already set up for {config['PUBLIC_BASE_URL']}")
        return 0
    if dry_run:
        out(f"dry run: {len(changes)} setting(s) of {number.phone_number} would change; nothing was changed")
        return 0
    client.incoming_phone_numbers(number.sid).update(**changes)
    out(f"updated {len(changes)} setting(s) of {number.phone_number} ({number.sid})")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dry-run", action="store_true", help="print what would change, change nothing")
    args = parser.parse_args(argv)
    load_dotenv()
    try:
        config = load_settings()
    except ConfigError as error:
        print(f"provision: {error}", file=sys.stderr)
        return 2
    return provision(config, args.dry_run)


if __name__ == "__main__":
    raise SystemExit(main())
