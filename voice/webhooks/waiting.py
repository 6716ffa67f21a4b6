"""The held caller's side: the Enqueue wait URL, answers and keys while holding, leaving the queue, and the moves
in and out of the call's conference."""

from __future__ import annotations

from flask import Blueprint, request
from twilio.twiml.voice_response import VoiceResponse

from voice import db as database
from voice.line import holds, waiting
from voice.models import Hold
from voice.redisdb import get_redis
from voice.webhooks.answers import caller_fault
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
    form = request.form
    return waiting.wait(database.session(), get_redis(), current_hold(), form.get("QueueTime", 0, type=int) or 0,
                        form.get("QueueSid", ""))


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


# The moves a REST redirect or the conference makes: a fault puts the caller through to dispatch.
@bp.post("/bring")
@twilio_webhook(caller_fault)
def hold_bring():
    """A specialist took the caller: a REST redirect brings them out of their queue into the conference."""
    return waiting.where_now(database.session(), current_hold())


@bp.post("/back")
@twilio_webhook(caller_fault)
def hold_back():
    """The caller's specialist is gone: a REST redirect brings them out of the conference, back in line."""
    return waiting.back(database.session(), current_hold(), request.args.get("why", "")[:16])


@bp.post("/after")
@twilio_webhook(caller_fault)
def hold_after():
    """The caller's Dial action: they are out of the conference."""
    return waiting.after_conference(database.session(), current_hold(), request.form.to_dict())
