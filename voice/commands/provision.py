"""Point the line's real Twilio number at this deployment: `flask --app voice twilio provision [--dry-run]`."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from urllib.parse import urlsplit

import click
from flask import current_app
from flask.cli import AppGroup

from voice import twilio_rest
from voice.twilio_rest import TwilioError
from voice.webhooks.answers import caller_fault

# Hosts Twilio's servers can never reach: provisioning them would leave the number dead.
_LOCAL_HOSTS = {"localhost", "127.0.0.1", "0.0.0.0", "::1"}  # noqa: S104 (compared, not bound)


def wanted(base_url: str, fallback_url: str = "") -> dict[str, str]:
    """The number's settings this app needs, as twilio-python's update() names them.

    The fallback is Twilio's answer when our Voice URL fails
    (https://www.twilio.com/docs/phone-numbers/api/incomingphonenumber-resource: voice_fallback_url). On our own
    host it cannot help when the host is down, so VOICE_FALLBACK_URL names a document elsewhere: a TwiML Bin
    (https://www.twilio.com/docs/serverless/twiml-bins, hosted by Twilio) or a static file, fetched with GET, which a
    TwiML Bin and any static host both answer.
    """
    base_url = base_url.rstrip("/")
    return {
        "voice_url": f"{base_url}/voice/incoming",
        "voice_method": "POST",
        "voice_fallback_url": fallback_url or f"{base_url}/voice/fallback",
        "voice_fallback_method": "GET" if fallback_url else "POST",
        "status_callback": f"{base_url}/voice/status",
        "status_callback_method": "POST",
        "sms_url": f"{base_url}/sms/incoming",
        "sms_method": "POST",
    }


def provision(config: Mapping, dry_run: bool, out: Callable[[str], None] = print) -> int:
    """Set the number's webhooks from PUBLIC_BASE_URL, printing each field old -> new; 0 on success."""
    base_url = config["PUBLIC_BASE_URL"]
    if not reachable_by_twilio(config, out):
        return 2
    try:
        number = twilio_rest.find_number(config, config["TWILIO_PHONE_NUMBER"])
    except TwilioError as error:
        out(f"provision: Twilio refused to list the account's numbers: {error}")
        return 1
    if number is None:
        out(f"provision: {config['TWILIO_PHONE_NUMBER']} is not a number on account {config['TWILIO_ACCOUNT_SID']}")
        return 1
    fallback_url = config.get("VOICE_FALLBACK_URL") or ""
    if not fallback_url:
        out("warning: the voice fallback is this app's own /voice/fallback, which fails with the host; put the "
            "TwiML of `flask --app voice twilio fallback-twiml` in a TwiML Bin and set VOICE_FALLBACK_URL to it")
    elif urlsplit(fallback_url).hostname == urlsplit(base_url).hostname:
        out(f"warning: VOICE_FALLBACK_URL is on {urlsplit(base_url).hostname}, the app's own host: it fails with it")
    changes = changes_for(number, base_url, out, fallback_url)
    if not changes:
        out(f"{number.phone_number} is already set up for {base_url}")
        return 0
    if dry_run:
        out(f"dry run: {len(changes)} setting(s) of {number.phone_number} would change; nothing was changed")
        return 0
    try:
        twilio_rest.update_number(config, number.sid, **changes)
    except TwilioError as error:
        out(f"provision: Twilio refused the update: {error}")
        return 1
    out(f"updated {len(changes)} setting(s) of {number.phone_number} ({number.sid})")
    return 0


def reachable_by_twilio(config: Mapping, out: Callable[[str], None]) -> bool:
    """False (said why) for a local PUBLIC_BASE_URL, which would leave the number dead; warns on plain http."""
    base_url = config["PUBLIC_BASE_URL"]
    if (urlsplit(base_url).hostname or "") in _LOCAL_HOSTS and not config.get("TWILIO_API_BASE_URL"):
        out(f"provision: PUBLIC_BASE_URL is {base_url}, which Twilio cannot reach; "
            "set it to this deployment's public https address")
        return False
    if not base_url.startswith("https://"):
        out(f"warning: {base_url} is not https; callers' details would cross the internet unencrypted")
    return True


def changes_for(number, base_url: str, out: Callable[[str], None], fallback_url: str = "") -> dict[str, str]:
    """The number's fields that differ from what this deployment needs, each printed old -> new."""
    changes = {}
    for name, value in wanted(base_url, fallback_url).items():
        old = getattr(number, name, None) or ""
        if old == value:
            out(f"  {name:<24} {value}  (unchanged)")
        else:
            out(f"  {name:<24} {old or '(empty)'} -> {value}")
            changes[name] = value
    return changes


twilio_cli = AppGroup("twilio", help="The line's Twilio number.")


@twilio_cli.command("fallback-twiml")
def fallback_twiml_command():
    """Print the TwiML for the number's fallback: paste it into a TwiML Bin, then set VOICE_FALLBACK_URL to the Bin."""
    # The very answer /voice/fallback gives: an apology, then dispatch (both languages), needing nothing of ours.
    click.echo(caller_fault())


@twilio_cli.command("provision")
@click.option("--dry-run", is_flag=True, help="Print what would change; change nothing.")
def provision_command(dry_run: bool):
    """Point TWILIO_PHONE_NUMBER's voice, fallback, status and SMS webhooks at PUBLIC_BASE_URL."""
    code = provision(current_app.config, dry_run, out=click.echo)
    if code:
        raise SystemExit(code)
