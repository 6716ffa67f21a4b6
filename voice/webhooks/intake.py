"""The caller's side: the number's Voice URL, each intake answer, saved messages, and the fallback URL."""

from __future__ import annotations

from flask import Blueprint, Response, current_app, request

from voice import db as database
from voice.line import calls, intake
from voice.line import offers as bridge
from voice.redisdb import get_redis
from voice.twiml import fault_response, hangup
from voice.webhooks.guard import signature_is_valid, twilio_webhook

bp = Blueprint("intake", __name__, url_prefix="/voice")


def caller_fault() -> str:
    """Whatever broke, the caller is put through to a person at dispatch."""
    config = current_app.config
    return fault_response(config["DISPATCH_TRANSFER_NUMBER"], config["VOICE_EN"], config["VOICE_ES"])


def attempt_arg(name: str = "attempt") -> int:
    return max(1, min(request.args.get(name, 1, type=int) or 1, 20))


def specialist_arg() -> int:
    return request.args.get("specialist", 0, type=int) or 0


def current_call():
    """The caller's call row, created if an earlier request never reached us."""
    sid = request.args.get("call") or request.form.get("CallSid", "")
    db = database.session()
    return calls.start_call(db, sid[:64], request.form.get("From", "")[:32], request.form.get("To", "")[:32])


@bp.post("/incoming")
@twilio_webhook(caller_fault)
def incoming():
    form = request.form
    return intake.begin(database.session(), form.get("CallSid", "")[:64], form.get("From", "")[:32], form.get("To", "")[:32])


@bp.post("/intake/<step>")
@twilio_webhook(caller_fault)
def intake_step(step: str):
    call = current_call()
    form = request.form
    return intake.answer(
        database.session(), get_redis(), call, step, attempt_arg(), form.get("Digits", ""), form.get("SpeechResult", "")
    )


@bp.post("/recorded")
@twilio_webhook(caller_fault)
def recorded():
    return bridge.message_recorded(database.session(), current_call(), request.form.to_dict())


@bp.post("/transfer")
@twilio_webhook(caller_fault)
def transfer():
    """A specialist sent the caller back to dispatch from the case page (a REST update of the caller's call)."""
    return bridge.transfer_twiml(database.session(), current_call())


@bp.post("/fallback")
def fallback():
    """Twilio calls this when our Voice URL failed: no Redis, no database, straight to a person."""
    if not signature_is_valid():
        return Response("invalid Twilio signature", status=403, mimetype="text/plain")
    current_app.logger.error("Twilio used the fallback URL: ErrorCode=%s ErrorUrl=%s",
                             request.form.get("ErrorCode"), request.form.get("ErrorUrl"))
    return Response(caller_fault(), mimetype="text/xml")


def hangup_twiml() -> str:
    return hangup()
