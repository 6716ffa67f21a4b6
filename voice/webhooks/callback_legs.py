"""The specialist's leg of a callback the worker placed: whisper, key press, Dial result, both legs' status."""

from __future__ import annotations

from flask import Blueprint, request

from voice import db as database
from voice.line import callback_legs
from voice.models import CallbackRequest
from voice.redisdb import get_redis
from voice.webhooks.answers import attempt_arg, empty_twiml, hangup_twiml, specialist_arg
from voice.webhooks.guard import twilio_webhook

bp = Blueprint("callback_legs", __name__, url_prefix="/voice/callback")


def callback_request() -> CallbackRequest | None:
    return database.session().get(CallbackRequest, request.args.get("request", 0, type=int) or 0)


def call_sid() -> str:
    return request.form.get("CallSid", "")


# A fault on this leg hangs up on the specialist only; the request stays in progress and the sweep recovers it.
@bp.post("/whisper")
@twilio_webhook(hangup_twiml)
def whisper():
    return callback_legs.whisper(database.session(), get_redis(), callback_request(), specialist_arg(), call_sid(),
                                 repeat=attempt_arg("repeat"))


@bp.post("/answer")
@twilio_webhook(hangup_twiml)
def answer():
    return callback_legs.answer(database.session(), get_redis(), callback_request(), specialist_arg(),
                                request.form.get("Digits", "")[:4], call_sid(), repeat=attempt_arg("repeat"))


@bp.post("/dial-result")
@twilio_webhook(hangup_twiml)
def dial_result():
    return callback_legs.dial_result(database.session(), get_redis(), callback_request(), specialist_arg(),
                                     request.form.to_dict())


def _status_report(record) -> str:
    """Hand Twilio's status report on a leg to `record`; Twilio wants an empty answer."""
    record(database.session(), get_redis(), callback_request(), specialist_arg(), request.form.to_dict())
    return empty_twiml()


@bp.post("/status")
@twilio_webhook(empty_twiml)
def status():
    return _status_report(callback_legs.leg_status)


@bp.post("/caller-status")
@twilio_webhook(empty_twiml)
def caller_status():
    return _status_report(callback_legs.caller_leg_status)
