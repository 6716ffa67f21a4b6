"""The safety ladder's calls: the alert a coordinator, backup or dispatch hears, their 1, and each call's end."""

from __future__ import annotations

from flask import Blueprint, current_app, request
from twilio.twiml.voice_response import VoiceResponse

from voice import db as database
from voice.casework import field_safety, safety_calls
from voice.models import SafetyContact
from voice.redisdb import get_redis
from voice.twiml import say
from voice.webhooks.answers import attempt_arg, digits, empty_twiml
from voice.webhooks.guard import twilio_webhook

bp = Blueprint("safety", __name__, url_prefix="/voice/safety")


def safety_fault() -> str:
    """Whatever broke, the person called still learns a team may need them (the ladder goes on regardless)."""
    response = VoiceResponse()
    say(response, "Safety alert from the mediation line: a field team may need help. Open the live board now.", "en")
    response.hangup()
    return str(response)


def _contact() -> SafetyContact | None:
    return database.session().get(SafetyContact, request.args.get("contact", 0, type=int) or 0)


@bp.post("/call")
@twilio_webhook(safety_fault)
def call():
    return safety_calls.call_twiml(_contact(), current_app.config, attempt_arg())


@bp.post("/ack")
@twilio_webhook(safety_fault)
def ack():
    return safety_calls.answer_twiml(database.session(), _contact(), current_app.config,
                                     digits(), attempt_arg())


@bp.post("/status")
@twilio_webhook(empty_twiml)
def status():
    contact = _contact()
    if contact is not None:
        field_safety.call_ended(database.session(), get_redis(), current_app.config, contact,
                                request.form.get("CallStatus", "")[:16])
    return empty_twiml()
