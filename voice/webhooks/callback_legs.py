"""A callback's two legs: the specialist's (whisper, keys, out of the conference, its end) and the caller's (the
"press 1" screen, into the conference, its end)."""

from __future__ import annotations

from flask import Blueprint, request

from voice import db as database
from voice.line import callback_legs
from voice.models import CallbackRequest
from voice.redisdb import get_redis
from voice.webhooks.answers import (
    attempt_arg,
    caller_fault,
    digits,
    empty_twiml,
    hangup_twiml,
    specialist_arg,
)
from voice.webhooks.guard import twilio_webhook

bp = Blueprint("callback_legs", __name__, url_prefix="/voice/callback")


def callback_request() -> CallbackRequest | None:
    return database.session().get(CallbackRequest, request.args.get("request", 0, type=int) or 0)


def call_sid() -> str:
    return request.form.get("CallSid", "")


# A fault on the specialist's leg hangs up on them only; the request stays in progress and the sweep recovers it.
@bp.post("/whisper")
@twilio_webhook(hangup_twiml)
def whisper():
    return callback_legs.whisper(database.session(), get_redis(), callback_request(), specialist_arg(), call_sid(),
                                 repeat=attempt_arg("repeat"))


@bp.post("/answer")
@twilio_webhook(hangup_twiml)
def answer():
    return callback_legs.answer(database.session(), get_redis(), callback_request(), specialist_arg(), digits(),
                                call_sid(), repeat=attempt_arg("repeat"),
                                stage="intro" if request.args.get("stage") == "intro" else "details")


@bp.post("/dial-result")
@twilio_webhook(hangup_twiml)
def dial_result():
    return callback_legs.dial_result(database.session(), get_redis(), callback_request(), specialist_arg(),
                                     request.form.to_dict())


@bp.post("/closing")
@twilio_webhook(hangup_twiml)
def closing():
    """The caller was not reached: a REST redirect takes the waiting specialist out of the conference to hear so."""
    return callback_legs.closing_words(callback_request(), specialist_arg())


# The caller's leg: a fault puts them through to dispatch, as every caller's fault does.
@bp.post("/screen")
@twilio_webhook(caller_fault)
def screen():
    return callback_legs.screen(callback_request(), specialist_arg())


@bp.post("/pressed")
@twilio_webhook(caller_fault)
def pressed():
    return callback_legs.pressed(database.session(), callback_request(), specialist_arg(), digits(), attempt_arg())


@bp.post("/caller-done")
@twilio_webhook(caller_fault)
def caller_done():
    return callback_legs.caller_done(callback_request())


@bp.post("/cut-off")
@twilio_webhook(caller_fault)
def cut_off():
    return callback_legs.cut_off_words(callback_request())


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
