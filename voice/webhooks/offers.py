"""The specialists' phones rung for a held caller: the whisper, the key, leaving the conference, the leg's end."""

from __future__ import annotations

from flask import Blueprint, request

from voice import db as database
from voice.line import offers
from voice.redisdb import get_redis
from voice.webhooks.answers import attempt_arg, digits, empty_twiml, hangup_twiml, poll_arg, specialist_arg
from voice.webhooks.guard import twilio_webhook
from voice.webhooks.waiting import current_hold

bp = Blueprint("offers", __name__, url_prefix="/voice/offer")


@bp.post("/whisper")
@twilio_webhook(hangup_twiml)  # a fault on a specialist's leg ends that leg; the caller keeps holding
def offer_whisper():
    return offers.offer_whisper(database.session(), get_redis(), current_hold(), specialist_arg(), poll=poll_arg(),
                                repeat=attempt_arg("repeat"))


@bp.post("/answer")
@twilio_webhook(hangup_twiml)
def offer_answer():
    return offers.offer_answer(database.session(), get_redis(), current_hold(), specialist_arg(),
                               digits(), repeat=attempt_arg("repeat"))


@bp.post("/done")
@twilio_webhook(hangup_twiml)
def offer_done():
    return offers.offer_done(database.session(), get_redis(), current_hold(), specialist_arg(),
                             request.form.to_dict())


@bp.post("/status")
@twilio_webhook(empty_twiml)
def offer_status():
    offers.offer_status(database.session(), get_redis(), current_hold(), specialist_arg(), request.form.to_dict())
    return empty_twiml()
