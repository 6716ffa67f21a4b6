"""The floor for scripts/bench_webhooks.py: a bare Flask app that checks Twilio's signature and answers fixed TwiML.

  gunicorn --chdir scripts 'floor_app:create_app()'   (TWILIO_AUTH_TOKEN and PUBLIC_BASE_URL from the environment)

No database, no Redis, no call flow: whatever the line does beyond this costs its own time.
"""

from __future__ import annotations

import os

from flask import Flask, Response, request
from twilio.request_validator import RequestValidator
from twilio.twiml.voice_response import VoiceResponse


def fixed_twiml(base: str) -> str:
    """One valid answer of a typical size: a question with a Gather, and a Redirect if it falls through."""
    response = VoiceResponse()
    gather = response.gather(input="dtmf speech", action=base + "/voice/intake/next", method="POST", timeout=5)
    gather.say("Where is this happening? Please say the street address, or the nearest cross streets.",
               voice="Polly.Joanna", language="en-US")
    response.redirect(base + "/voice/intake/next", method="POST")
    return str(response)


def create_app() -> Flask:
    app = Flask(__name__)
    base = os.environ["PUBLIC_BASE_URL"].rstrip("/")
    validator = RequestValidator(os.environ["TWILIO_AUTH_TOKEN"])
    body = fixed_twiml(base)

    @app.post("/<path:path>")
    def answer(path: str):
        url = base + request.path
        query = request.query_string.decode("utf-8", "replace")
        if query:
            url += "?" + query
        signature = request.headers.get("X-Twilio-Signature", "")
        if not signature or not validator.validate(url, request.form.to_dict(flat=True), signature):
            return Response("invalid Twilio signature", status=403, mimetype="text/plain")
        return Response(body, mimetype="text/xml")

    return app
