"""What every Twilio webhook shares: the signature check, replay of repeated requests, and the safe fault path."""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable
from functools import wraps

from flask import Response, current_app, request
from twilio.request_validator import RequestValidator

from voice import db as database
from voice.redisdb import Keys, get_redis

log = logging.getLogger("voice.webhooks")

REPLAY_SECONDS = 24 * 3600


def signed_url() -> str:
    """The URL Twilio signed: our public base plus the path and query it requested."""
    url = current_app.config["PUBLIC_BASE_URL"] + request.path
    query = request.query_string.decode("utf-8", "replace")
    return f"{url}?{query}" if query else url


def signature_is_valid() -> bool:
    validator = RequestValidator(current_app.config["TWILIO_AUTH_TOKEN"])
    signature = request.headers.get("X-Twilio-Signature", "")
    return bool(signature) and validator.validate(signed_url(), request.form.to_dict(flat=True), signature)


def fingerprint() -> str:
    """Identifies one Twilio request; a retry of it has the same fingerprint."""
    digest = hashlib.sha256(signed_url().encode())
    for key, value in sorted(request.form.items(multi=True)):
        digest.update(b"\0" + key.encode() + b"=" + value.encode())
    return digest.hexdigest()


def twilio_webhook(on_fault: Callable[[], str], mimetype: str = "text/xml"):
    """Wrap a view that returns TwiML: 403 when unsigned, the same answer when repeated, `on_fault()` on any error."""

    def decorate(view: Callable[..., str]):
        @wraps(view)
        def wrapper(*args, **kwargs):
            if not signature_is_valid():
                log.warning("rejected unsigned request to %s", request.path)
                return Response("invalid Twilio signature", status=403, mimetype="text/plain")
            key = None
            try:
                redis_client = get_redis()
                key = Keys.webhook_response(fingerprint())
                replay = redis_client.get(key)
                if replay is not None:
                    return Response(replay, mimetype=mimetype)
            except Exception:
                # Redis is down: the view will find out too and take its own safe path.
                log.exception("could not check for a repeated request")
            try:
                body = view(*args, **kwargs)
                database.session().commit()
            except Exception:
                log.exception("webhook %s failed; answering with the safe path", request.path)
                try:
                    database.session().rollback()
                except Exception:
                    log.exception("rollback failed")
                return Response(on_fault(), mimetype=mimetype)
            if key is not None:
                try:
                    get_redis().set(key, body, ex=REPLAY_SECONDS)
                except Exception:
                    log.exception("could not remember the answer to %s", request.path)
            return Response(body, mimetype=mimetype)

        return wrapper

    return decorate
