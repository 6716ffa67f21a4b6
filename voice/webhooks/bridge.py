"""The specialist's side of a live call: the whisper, their key press, and the Dial result."""

from __future__ import annotations

from flask import Blueprint, request

from voice import bridge
from voice import db as database
from voice.redisdb import get_redis
from voice.webhooks.guard import twilio_webhook
from voice.webhooks.intake import attempt_arg, caller_fault, current_call, hangup_twiml

bp = Blueprint("bridge", __name__, url_prefix="/voice/bridge")


def specialist_arg() -> int:
    return request.args.get("specialist", 0, type=int) or 0


@bp.post("/whisper")
@twilio_webhook(hangup_twiml)  # a fault on the specialist's leg ends that leg; the caller moves on
def whisper():
    return bridge.whisper(current_call(), specialist_arg(), attempt_arg(), repeat=attempt_arg("repeat"))


@bp.post("/answer")
@twilio_webhook(hangup_twiml)
def answer():
    return bridge.specialist_answer(
        database.session(), get_redis(), current_call(), specialist_arg(), attempt_arg(),
        request.form.get("Digits", "")[:4], repeat=attempt_arg("repeat"),
    )


@bp.post("/dial-result")
@twilio_webhook(caller_fault)
def dial_result():
    return bridge.dial_result(
        database.session(), get_redis(), current_call(), specialist_arg(), attempt_arg(), request.form.to_dict()
    )
