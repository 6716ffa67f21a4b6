"""What the Twilio webhooks share beyond the guard: the request's arguments, the caller's row, and the
answers that end a leg when something breaks (a caller always reaches dispatch)."""

from __future__ import annotations

from flask import current_app, request
from twilio.twiml.voice_response import VoiceResponse

from voice import db as database
from voice.line import calls
from voice.models import Call
from voice.twiml import fault_response, hangup


def caller_fault() -> str:
    """Whatever broke, the caller is put through to a person at dispatch."""
    config = current_app.config
    return fault_response(config["DISPATCH_TRANSFER_NUMBER"], config["VOICE_EN"], config["VOICE_ES"])


def hangup_twiml() -> str:
    """A fault on a specialist's leg ends that leg only; the caller keeps holding."""
    return hangup()


def empty_twiml() -> str:
    """Status callbacks: Twilio wants an empty answer, and a fault must not change that."""
    return str(VoiceResponse())


def digits() -> str:
    """The keys a specialist's or a team's Gather heard (a few at most: the rest is noise)."""
    return request.form.get("Digits", "")[:4]


def attempt_arg(name: str = "attempt") -> int:
    return max(1, min(request.args.get(name, 1, type=int) or 1, 20))


def specialist_arg() -> int:
    return request.args.get("specialist", 0, type=int) or 0


def poll_arg() -> int:
    return max(0, min(request.args.get("poll", 0, type=int) or 0, 50))


def current_call() -> Call:
    """The caller's call row, created if an earlier request never reached us."""
    sid = request.args.get("call") or request.form.get("CallSid", "")
    db = database.session()
    form = request.form
    return calls.start_call(db, sid[:64], form.get("From", "")[:32], form.get("To", "")[:32],
                            form.get("ForwardedFrom", "")[:32])
