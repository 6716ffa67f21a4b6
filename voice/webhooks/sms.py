"""Specialists' text messages: ON, OFF, STATUS, and the field's IN, OUT, OK and safety word."""

from __future__ import annotations

from flask import Blueprint, current_app, request
from twilio.twiml.messaging_response import MessagingResponse

from voice import db as database
from voice import phones
from voice.casework import field_texts
from voice.line import specialists
from voice.line.calls import clean_text
from voice.redisdb import get_redis
from voice.webhooks.guard import twilio_webhook

bp = Blueprint("sms", __name__, url_prefix="/sms")


def sms_fault() -> str:
    response = MessagingResponse()
    # An SOS may be what failed: whoever sent it must not wait for a ladder that never started.
    response.message("Sorry, the mediation line could not process that text. Please try again in a minute. "
                     "If you are in danger, call 911.")
    return str(response)


@bp.post("/incoming")
@twilio_webhook(sms_fault)
def incoming():
    config = current_app.config
    sender = phones.to_e164(request.form.get("From"), config["DEFAULT_REGION"])
    body = clean_text(request.form.get("Body", ""), 160) or ""
    reply = (field_texts.handle_text(database.session(), get_redis(), config, sender, body)
             or specialists.handle_text(database.session(), get_redis(), sender, body, config["PROGRAM_NAME"]))
    response = MessagingResponse()
    response.message(reply)
    return str(response)
