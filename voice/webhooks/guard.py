"""What every Twilio webhook shares: the signature check, replay of repeated requests, and the safe fault path."""

from __future__ import annotations

import hmac
import logging
import time
from collections.abc import Callable
from functools import partial, wraps

import redis
from flask import Response, current_app, request
from twilio.request_validator import RequestValidator

from voice import db as database
from voice.redisdb import Keys, get_redis

log = logging.getLogger("voice.webhooks")

REPLAY_SECONDS = 24 * 3600
# Held in place of the answer while the first copy of a request is being answered. It outlives gunicorn's
# --timeout (20 s), so a worker killed mid-request lets go of it on its own.
PENDING = b"\0answering"
CLAIM_SECONDS = 30
# How long a copy that arrives while the first is still being answered waits for that answer.
WAIT_FOR_FIRST_SECONDS = 10.0


def signed_url() -> str:
    """The URL Twilio signed: our public base plus the path and query it requested."""
    url = current_app.config["PUBLIC_BASE_URL"] + request.path
    query = request.query_string.decode("utf-8", "replace")
    return f"{url}?{query}" if query else url


def signature_is_valid(url: str | None = None) -> bool:
    signature = request.headers.get("X-Twilio-Signature", "")
    if not signature:
        return False
    validator = RequestValidator(current_app.config["TWILIO_AUTH_TOKEN"])
    url, params = url or signed_url(), request.form.to_dict(flat=True)
    # validate() signs the URL twice (with and without an explicit port) on every request; Twilio signs the
    # URL it was given, which is ours exactly, so that is tried first and validate() only when it differs.
    # https://www.twilio.com/docs/usage/security#validating-requests
    if hmac.compare_digest(validator.compute_signature(url, params), signature):
        return True
    return validator.validate(url, params, signature)


def fingerprint() -> str:
    """Identifies one Twilio request: its signature, an HMAC of its URL and every parameter (checked first).

    A retry of it carries the same signature; any other request, another.
    """
    return request.headers.get("X-Twilio-Signature", "")


class StillAnswering(Exception):
    """The first copy of this request has not been answered in WAIT_FOR_FIRST_SECONDS."""


def claim_or_replay(r: redis.Redis, key: str) -> bytes | None:
    """None when this request is ours to answer (one SET NX claims it); else the answer the first copy got."""
    deadline = time.monotonic() + WAIT_FOR_FIRST_SECONDS
    while True:
        if r.set(key, PENDING, nx=True, ex=CLAIM_SECONDS):
            return None
        answer = r.get(key)
        if answer is not None and answer != PENDING:
            return answer
        # Still being answered (Twilio retried a slow request), or the first copy failed and let go (None:
        # claim it ourselves on the next turn). Either way, never answer the same request twice at once.
        if time.monotonic() > deadline:
            raise StillAnswering(key)
        if answer == PENDING:
            time.sleep(0.05)


def twilio_webhook(on_fault: Callable[[], str], mimetype: str = "text/xml"):
    """Wrap a view that returns TwiML: 403 when unsigned, the same answer when repeated, `on_fault()` on any error."""

    def decorate(view: Callable[..., str]):
        @wraps(view)
        def wrapper(*args, **kwargs):
            url = signed_url()
            if not signature_is_valid(url):
                log.warning("rejected unsigned request to %s", request.path)
                return Response("invalid Twilio signature", status=403, mimetype="text/plain")
            key = Keys.webhook_response(fingerprint())
            try:
                replay = claim_or_replay(get_redis(), key)
                if replay is not None:
                    return Response(replay, mimetype=mimetype)
            except StillAnswering:
                log.error("a repeat of %s came while the first was still unanswered", request.path)
                return Response(on_fault(), mimetype=mimetype)
            except Exception:
                # Redis is down: the view will find out too and take its own safe path.
                log.exception("could not check for a repeated request")
                key = None
            try:
                body = view(*args, **kwargs)
                database.final_commit(database.session())
            except Exception:
                log.exception("webhook %s failed; answering with the safe path", request.path)
                try:
                    database.session().rollback()
                except Exception:
                    log.exception("rollback failed")
                if key is not None:
                    # Nothing was written: a retry of this request may try again.
                    forget(key)
                return Response(on_fault(), mimetype=mimetype)
            response = Response(body, mimetype=mimetype)
            if key is not None:
                # Stored once the answer is on its way (the server closes the response after sending it): a
                # Redis round trip the caller need not wait for. A copy arriving meanwhile waits for it.
                response.call_on_close(partial(remember, get_redis(), key, body))
            return response

        return wrapper

    return decorate


def remember(r: redis.Redis, key: str, body: str) -> None:
    """Keep an answer for replay; runs as the response closes, after the request's app context is gone."""
    try:
        r.set(key, body, ex=REPLAY_SECONDS)
    except Exception:
        log.exception("could not remember the answer for %s", key)


def forget(key: str) -> None:
    try:
        get_redis().delete(key)
    except Exception:
        log.exception("could not let go of %s", key)
