"""The held caller's side (wait URL, answers, keys, leaving the queue) and the specialists' offer legs."""

from __future__ import annotations

from flask import Blueprint, request
from twilio.twiml.voice_response import VoiceResponse

from voice import db as database
from voice.line import holds
from voice.line import offers as bridge
from voice.models import Hold
from voice.redisdb import get_redis
from voice.webhooks.guard import twilio_webhook
from voice.webhooks.intake import attempt_arg, caller_fault, hangup_twiml, specialist_arg
from voice.webhooks.status import empty_twiml

bp = Blueprint("bridge", __name__, url_prefix="/voice")


def current_hold() -> Hold | None:
    return holds.by_id(database.session(), request.args.get("hold", 0, type=int) or 0)


def wait_fault() -> str:
    """A fault while the caller holds: out of the queue, and the Enqueue action sends them to dispatch.

    Only the verbs Twilio allows in a wait document may be used here (no <Dial>).
    """
    response = VoiceResponse()
    response.leave()
    return str(response)


def poll_arg() -> int:
    return max(0, min(request.args.get("poll", 0, type=int) or 0, 50))


# --- the caller, while they hold --------------------------------------------------------------------------


@bp.post("/hold/wait")
@twilio_webhook(wait_fault)
def hold_wait():
    return holds.wait(database.session(), get_redis(), current_hold(), request.form.get("QueueTime", 0, type=int) or 0)


@bp.post("/hold/answer")
@twilio_webhook(wait_fault)
def hold_answer():
    form = request.form
    return holds.answer(database.session(), get_redis(), current_hold(), request.args.get("step", "")[:32],
                        form.get("Digits", ""), form.get("SpeechResult", ""))


@bp.post("/hold/key")
@twilio_webhook(wait_fault)
def hold_key():
    return holds.key_pressed(database.session(), get_redis(), current_hold(), request.form.get("Digits", ""))


@bp.post("/hold/left")
@twilio_webhook(caller_fault)
def hold_left():
    return holds.left(database.session(), get_redis(), current_hold(), request.form.to_dict())


@bp.post("/hold/connect")
@twilio_webhook(empty_twiml)  # a fault here must not stop the bridge; the caller just hears no words
def hold_connect():
    return holds.caller_connected(database.session(), current_hold())


# --- the specialist's phone, rung for a held caller -------------------------------------------------------


@bp.post("/offer/whisper")
@twilio_webhook(hangup_twiml)  # a fault on a specialist's leg ends that leg; the caller keeps holding
def offer_whisper():
    return bridge.offer_whisper(database.session(), get_redis(), current_hold(), specialist_arg(), poll=poll_arg(),
                                repeat=attempt_arg("repeat"))


@bp.post("/offer/answer")
@twilio_webhook(hangup_twiml)
def offer_answer():
    return bridge.offer_answer(database.session(), get_redis(), current_hold(), specialist_arg(),
                               request.form.get("Digits", "")[:4], repeat=attempt_arg("repeat"))


@bp.post("/offer/join")
@twilio_webhook(hangup_twiml)
def offer_join():
    return bridge.join_caller(database.session(), current_hold(), specialist_arg(), poll=poll_arg())


@bp.post("/offer/done")
@twilio_webhook(hangup_twiml)
def offer_done():
    return bridge.offer_done(database.session(), get_redis(), current_hold(), specialist_arg(),
                             request.form.to_dict())


@bp.post("/offer/status")
@twilio_webhook(empty_twiml)
def offer_status():
    bridge.offer_status(database.session(), get_redis(), current_hold(), specialist_arg(), request.form.to_dict())
    return empty_twiml()
