"""The calls' conferences: Twilio's conference and participant status callbacks, the goodbye a caller hears when a
specialist ends the call on purpose, and the legs of people dialed in (an interpreter), and the hold music."""

from __future__ import annotations

from flask import Blueprint, request

from voice import db as database
from voice.line import conference_events, questions, third_parties
from voice.redisdb import get_redis
from voice.webhooks.answers import caller_fault, current_call, empty_twiml, hangup_twiml
from voice.webhooks.guard import twilio_webhook

bp = Blueprint("conference", __name__, url_prefix="/voice/conference")


@bp.post("/status")
@twilio_webhook(empty_twiml)
def status():
    conference_events.on_status(database.session(), get_redis(), current_call(), request.form.to_dict())
    return empty_twiml()


@bp.post("/goodbye")
@twilio_webhook(caller_fault)
def goodbye():
    """The specialist ended the call (*): the caller is redirected here, out of the conference, and hears goodbye."""
    return questions.finished(current_call())


@bp.post("/interpreter")
@twilio_webhook(hangup_twiml)  # a fault on the interpreter's leg ends that leg; the caller's call goes on
def interpreter():
    """The interpreter service answered (its PIN already keyed by SendDigits): into the call's conference."""
    return third_parties.interpreter_twiml(current_call())


@bp.post("/added-left")
@twilio_webhook(hangup_twiml)
def added_left():
    """A dialed-in participant's Dial action: they are out of the conference, and their leg ends."""
    return hangup_twiml()


@bp.post("/added-status")
@twilio_webhook(empty_twiml)
def added_status():
    third_parties.added_leg_status(database.session(), current_call(), request.args.get("label", "")[:40],
                                   request.form.to_dict())
    return empty_twiml()


@bp.post("/hold-music")
@twilio_webhook(empty_twiml)
def hold_music():
    """The holdUrl of a caller held during a warm transfer."""
    return third_parties.hold_music()
