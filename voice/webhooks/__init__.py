"""Twilio-facing blueprints: every request signed, every answer valid TwiML, every fault a safe path.

Views only read the request, call one function of `voice.line`, and return its TwiML. `BLUEPRINTS` is the
one list of them: the app registers these, and exempts exactly these from CSRF and rate limits (Twilio
signs its requests instead, see `guard`).
"""

from __future__ import annotations

from flask import Blueprint, Flask

from voice.webhooks import callback_legs, conference, handoff, intake, offers, safety, sms, status, waiting

BLUEPRINTS: tuple[Blueprint, ...] = (intake.bp, handoff.bp, waiting.bp, offers.bp, callback_legs.bp, conference.bp,
                                     status.bp, sms.bp, safety.bp)


def init_app(app: Flask) -> None:
    for blueprint in BLUEPRINTS:
        app.register_blueprint(blueprint)
