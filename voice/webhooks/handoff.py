"""A dispatcher's warm handoff: the incident number, and the answer when nobody is free."""

from __future__ import annotations

from flask import Blueprint, request

from voice import db as database
from voice.line import handoff
from voice.redisdb import get_redis
from voice.webhooks.answers import attempt_arg, caller_fault, current_call
from voice.webhooks.guard import twilio_webhook

bp = Blueprint("handoff", __name__, url_prefix="/voice/handoff")


@bp.post("/incident")
@twilio_webhook(caller_fault)
def incident():
    return handoff.incident(database.session(), get_redis(), current_call(), request.form.get("Digits", ""))


@bp.post("/nobody")
@twilio_webhook(caller_fault)
def nobody():
    return handoff.nobody_answer(database.session(), get_redis(), current_call(), request.form.get("Digits", ""),
                                 attempt_arg())
