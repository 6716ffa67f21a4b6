"""The line's call status callback: the end of a caller's call, whatever part of the line they were in (or of a
specialist's own call back into a caller they were cut off from)."""

from __future__ import annotations

from flask import Blueprint, request

from voice import db as database
from voice.line import endings, holds, offers
from voice.redisdb import get_redis
from voice.webhooks.answers import current_call, empty_twiml
from voice.webhooks.guard import twilio_webhook

bp = Blueprint("status", __name__, url_prefix="/voice")


@bp.post("/status")
@twilio_webhook(empty_twiml)
def status():
    db, r, form = database.session(), get_redis(), request.form.to_dict()
    rejoined = offers.rejoin_leg(r, form.get("CallSid", ""))
    if rejoined is not None:
        hold_id, specialist_id = rejoined
        offers.offer_status(db, r, holds.by_id(db, hold_id), specialist_id, form)
        return empty_twiml()
    endings.call_status(db, r, current_call(), form)
    return empty_twiml()
