"""Text messages: specialists' ON, OFF, STATUS (and Twilio's opt-out keywords), the field's IN, OUT, OK and
safety word, anyone else's text, and the delivery status of every text the line sends."""

from __future__ import annotations

from flask import Blueprint, current_app, request
from twilio.twiml.messaging_response import MessagingResponse

from voice import db as database
from voice import phones
from voice.casework import field_texts, visits
from voice.line import callbacks, specialists
from voice.line.calls import clean_text
from voice.models import CallbackRequest, VisitMessage
from voice.redisdb import get_redis
from voice.twilio_rest import MESSAGE_FAILED
from voice.twiml import webhook_url
from voice.webhooks.answers import empty_twiml
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
    # The field's words first (a team's IN, OUT, OK or SOS); then ON/OFF/STATUS, opt-out keywords, strangers.
    reply = (field_texts.handle_text(database.session(), get_redis(), config, sender, body)
             or specialists.handle_text(database.session(), get_redis(), sender, body, config["PROGRAM_NAME"],
                                        request.form.get("OptOutType")))
    response = MessagingResponse()
    if reply:
        # <Message action>: Twilio reports the reply's status there too (https://www.twilio.com/docs/messaging/twiml/message).
        response.message(reply, action=webhook_url("/sms/status", reply="1"), method="POST")
    return str(response)


@bp.post("/status")
@twilio_webhook(empty_twiml)
def status():
    """A text's status callback (queued, sent, delivered, undelivered, failed; ErrorCode when it failed).
    https://www.twilio.com/docs/messaging/guides/outbound-message-status-in-status-callbacks"""
    form, db = request.form, database.session()
    status, code = form.get("MessageStatus", "")[:16], form.get("ErrorCode", "")
    code = int(code) if code.isdigit() else None
    # Which text it was is in the URL we gave Twilio (signed with it): a callback's caller, or a visit's recipient.
    # Only a real id is looked up: a reply's status names neither, and db.get(..., 0) would still query.
    request_id, message_id = request.args.get("request", 0, type=int), request.args.get("visit_message", 0, type=int)
    if request_id and (callback := db.get(CallbackRequest, request_id)) is not None:
        callbacks.text_status(db, callback, request.args.get("text", "")[:16], status, code,
                              form.get("MessageSid", "")[:64] or None)
    elif message_id and (message := db.get(VisitMessage, message_id)) is not None:
        visits.text_status(db, message, status, code)
    elif status in MESSAGE_FAILED:
        # A reply to someone's text: nothing to update, but an operator should see it failed.
        current_app.logger.warning("reply to %s %s: Twilio error %s", form.get("To", "")[:32], status, code)
    return empty_twiml()
