"""The caller's side: the number's Voice URL, each intake answer, saved messages, and the fallback URL."""

from __future__ import annotations

from flask import Blueprint, Response, current_app, request

from voice import db as database
from voice.line import endings, intake
from voice.redisdb import get_redis
from voice.webhooks.answers import attempt_arg, caller_fault, current_call
from voice.webhooks.guard import signature_is_valid, twilio_webhook

bp = Blueprint("intake", __name__, url_prefix="/voice")


@bp.post("/incoming")
@twilio_webhook(caller_fault)
def incoming():
    form = request.form
    return intake.begin(database.session(), get_redis(), form.get("CallSid", "")[:64], form.get("From", "")[:32],
                        form.get("To", "")[:32], form.get("ForwardedFrom", "")[:32])


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
    return endings.message_recorded(database.session(), current_call(), request.form.to_dict())


@bp.post("/transfer")
@twilio_webhook(caller_fault)
def transfer():
    """A specialist sent the caller back to dispatch from the case page (a REST update of the caller's call)."""
    return endings.transfer_twiml(database.session(), current_call(), callback=request.args.get("leg") == "callback")


@bp.post("/fallback")
def fallback():
    """Twilio calls this when our Voice URL failed: no Redis, no database, straight to a person."""
    if not signature_is_valid():
        return Response("invalid Twilio signature", status=403, mimetype="text/plain")
    current_app.logger.error("Twilio used the fallback URL: ErrorCode=%s ErrorUrl=%s",
                             request.form.get("ErrorCode"), request.form.get("ErrorUrl"))
    return Response(caller_fault(), mimetype="text/xml")
