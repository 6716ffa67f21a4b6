"""Point a real Twilio number at this deployment: `python scripts/provision_twilio.py [--dry-run]`.

Reads TWILIO_ACCOUNT_SID, TWILIO_AUTH_TOKEN, TWILIO_PHONE_NUMBER and PUBLIC_BASE_URL (environment or .env),
finds the number on the account, and sets its voice URL, voice fallback URL, status callback and messaging
URL (all POST). Prints each field as old -> new; --dry-run changes nothing. The same as
`flask --app voice twilio provision`, for machines where the app itself does not start yet.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from dotenv import load_dotenv

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from voice.commands.provision import provision  # noqa: E402
from voice.config import ConfigError, load_settings  # noqa: E402


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
