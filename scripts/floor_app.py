"""The floors for scripts/bench_webhooks.py: bare Flask apps that check Twilio's signature and answer fixed TwiML.

  gunicorn --chdir scripts 'floor_app:create_app()'               (TWILIO_AUTH_TOKEN, PUBLIC_BASE_URL)
  gunicorn --chdir scripts 'floor_app:create_app(durable=True)'   (and REDIS_URL, DATABASE_URL)

The floor has no database, no Redis, no call flow: whatever the line does beyond it costs its own time.
The durable floor adds only what any webhook that must not lose or repeat a caller's answer has to do,
the way the line does it: claim the request in Redis (SET NX on its signature) and keep the answer once
sent, and write one row and one event in one committed transaction, with the line's own engine settings.
What the line spends beyond the durable floor is its call flow: loading the call, the IVR, the TwiML.
"""

from __future__ import annotations

import os
import sys
from functools import partial
from pathlib import Path

from flask import Flask, Response, request
from sqlalchemy import Column, Integer, MetaData, String, Table, bindparam, insert, update
from twilio.request_validator import RequestValidator
from twilio.twiml.voice_response import VoiceResponse

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from voice.db import make_engine  # noqa: E402
from voice.redisdb import connect  # noqa: E402
from voice.webhooks.guard import claim_or_replay, remember  # noqa: E402  (the line's own replay guard)

# The durable floor's own keys and tables, beside the line's in the same Redis and database.
KEY_PREFIX = "floor:"
metadata = MetaData()
calls = Table("durable_floor_calls", metadata, Column("call_sid", String(64), primary_key=True),
              Column("step", String(200)), Column("answers", Integer, nullable=False))
events = Table("durable_floor_events", metadata, Column("id", Integer, primary_key=True),
               Column("call_sid", String(64), nullable=False), Column("kind", String(200), nullable=False))


def fixed_twiml(base: str) -> str:
    """One valid answer of a typical size: a question with a Gather, and a Redirect if it falls through."""
    response = VoiceResponse()
    gather = response.gather(input="dtmf speech", action=base + "/voice/intake/next", method="POST", timeout=5)
    gather.say("Where is this happening? Please say the street address, or the nearest cross streets.",
               voice="Polly.Joanna", language="en-US")
    response.redirect(base + "/voice/intake/next", method="POST")
    return str(response)


def create_app(durable: bool = False) -> Flask:
    app = Flask(__name__)
    base = os.environ["PUBLIC_BASE_URL"].rstrip("/")
    validator = RequestValidator(os.environ["TWILIO_AUTH_TOKEN"])
    body = fixed_twiml(base)
    if durable:
        r = connect(os.environ["REDIS_URL"])
        engine = make_engine(os.environ["DATABASE_URL"])  # its tables: prepare_durable()
        step = (update(calls).where(calls.c.call_sid == bindparam("sid"))
                .values(step=bindparam("new_step"), answers=calls.c.answers + 1))

    @app.post("/<path:path>")
    def answer(path: str):
        url = base + request.path
        query = request.query_string.decode("utf-8", "replace")
        if query:
            url += "?" + query
        signature = request.headers.get("X-Twilio-Signature", "")
        if not signature or not validator.validate(url, request.form.to_dict(flat=True), signature):
            return Response("invalid Twilio signature", status=403, mimetype="text/plain")
        if not durable:
            return Response(body, mimetype="text/xml")
        key = KEY_PREFIX + signature
        replay = claim_or_replay(r, key)
        if replay is not None:
            return Response(replay, mimetype="text/xml")
        sid = request.form.get("CallSid", "")[:64]
        with engine.begin() as connection:
            changed = connection.execute(step, {"sid": sid, "new_step": path}).rowcount
            if not changed:
                connection.execute(insert(calls), {"call_sid": sid, "step": path, "answers": 1})
            connection.execute(insert(events), {"call_sid": sid, "kind": path})
        response = Response(body, mimetype="text/xml")
        response.call_on_close(partial(remember, r, key, body))
        return response

    return app


def prepare_durable(redis_url: str, database_url: str, drop: bool = False) -> None:
    """Create (or at the end drop) the durable floor's tables, emptied, and clear its keys: each run starts from nothing."""
    r = connect(redis_url)
    keys = list(r.scan_iter(KEY_PREFIX + "*", count=1000))
    if keys:
        r.delete(*keys)
    engine = make_engine(database_url)
    try:
        if drop:
            metadata.drop_all(engine)
        else:
            # Made here, before its server starts: two gunicorn workers creating them at once could collide.
            metadata.create_all(engine)
            with engine.begin() as connection:
                for table in (events, calls):
                    connection.execute(table.delete())
    finally:
        engine.dispose()
