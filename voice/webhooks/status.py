"""Call status callbacks: the end of a caller's call, or of a specialist's leg."""

from __future__ import annotations

from flask import Blueprint, request
from twilio.twiml.voice_response import VoiceResponse

from voice import db as database
from voice.line import offers as bridge
from voice.redisdb import get_redis
from voice.webhooks.guard import twilio_webhook
from voice.webhooks.intake import current_call

bp = Blueprint("status", __name__, url_prefix="/voice")


def empty_twiml() -> str:
    return str(VoiceResponse())


@bp.post("/status")
@twilio_webhook(empty_twiml)
def status():
    bridge.call_status(database.session(), get_redis(), current_call(), request.form.to_dict())
    return empty_twiml()
