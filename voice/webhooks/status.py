"""The caller's call status callback: the end of their call, whatever part of the line they were in."""

from __future__ import annotations

from flask import Blueprint, request

from voice import db as database
from voice.line import endings
from voice.redisdb import get_redis
from voice.webhooks.answers import current_call, empty_twiml
from voice.webhooks.guard import twilio_webhook

bp = Blueprint("status", __name__, url_prefix="/voice")


@bp.post("/status")
@twilio_webhook(empty_twiml)
def status():
    endings.call_status(database.session(), get_redis(), current_call(), request.form.to_dict())
    return empty_twiml()
