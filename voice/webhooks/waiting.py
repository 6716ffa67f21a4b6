"""The held caller's side: the Enqueue wait URL, answers and keys while holding, leaving the queue."""

from __future__ import annotations

from flask import Blueprint, request
from twilio.twiml.voice_response import VoiceResponse

from voice import db as database
from voice.line import holds, waiting
from voice.models import Hold
from voice.redisdb import get_redis
from voice.webhooks.answers import caller_fault, empty_twiml
from voice.webhooks.guard import twilio_webhook

bp = Blueprint("waiting", __name__, url_prefix="/voice/hold")


def current_hold() -> Hold | None:
    return holds.by_id(database.session(), request.args.get("hold", 0, type=int) or 0)


def wait_fault() -> str:
    """A fault while the caller holds: out of the queue, and the Enqueue action sends them to dispatch.

    Only the verbs Twilio allows in a wait document may be used here (no <Dial>).
    """
    response = VoiceResponse()
    response.leave()
    return str(response)


@bp.post("/wait")
@twilio_webhook(wait_fault)
def hold_wait():
    return waiting.wait(database.session(), get_redis(), current_hold(), request.form.get("QueueTime", 0, type=int) or 0)


@bp.post("/answer")
@twilio_webhook(wait_fault)
def hold_answer():
    form = request.form
    return waiting.answer(database.session(), get_redis(), current_hold(), request.args.get("step", "")[:32],
                          form.get("Digits", ""), form.get("SpeechResult", ""))


@bp.post("/key")
@twilio_webhook(wait_fault)
def hold_key():
    return waiting.key_pressed(database.session(), get_redis(), current_hold(), request.form.get("Digits", ""))


@bp.post("/left")
@twilio_webhook(caller_fault)
def hold_left():
    return waiting.left(database.session(), get_redis(), current_hold(), request.form.to_dict())


@bp.post("/connect")
@twilio_webhook(empty_twiml)  # a fault here must not stop the bridge; the caller just hears no words
def hold_connect():
    return waiting.caller_connected(database.session(), current_hold())
