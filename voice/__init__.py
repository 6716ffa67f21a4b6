"""mediation-line: the phone line behind a city's mediation-based alternative response to 911."""

from __future__ import annotations

import logging
import os
import sys

from flask import Flask


def create_app(test_config: dict | None = None) -> Flask:
    """Build the app: settings, database, Redis, webhooks, dashboard and CLI."""
    from dotenv import find_dotenv, load_dotenv

    from voice import dashboard, db, health, redisdb
    from voice.casework import retention
    from voice.commands import provision as provisioning
    from voice.commands import queue as callbacks_cli
    from voice.commands import roster as cli
    from voice.config import ConfigError, load_settings
    from voice.line import routing
    from voice.tasks import on_specialist_freed
    from voice.webhooks import callback_legs as callbacks
    from voice.webhooks import intake, sms, status
    from voice.webhooks import offers as bridge

    if test_config is None:
        # The .env of the directory the line runs in (the README's promise), not one found beside the package.
        load_dotenv(find_dotenv(usecwd=True))
    app = Flask(__name__, instance_relative_config=True)
    try:
        settings = load_settings(test_config)
    except ConfigError as error:
        print(f"mediation-line: {error}", file=sys.stderr)
        raise SystemExit(2) from None
    if not settings["DATABASE_URL"]:
        os.makedirs(app.instance_path, exist_ok=True)
        settings["DATABASE_URL"] = "sqlite:///" + os.path.join(app.instance_path, "mediation-line.db")
    app.config.update(settings)
    if not app.debug and not app.testing:
        logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")

    db.init_app(app)
    redisdb.init_app(app)
    for blueprint in (intake.bp, bridge.bp, status.bp, sms.bp, callbacks.bp):
        app.register_blueprint(blueprint)
    # Someone turning available (ON, or a call ending) is when a waiting caller can be called back.
    routing.specialist_freed.connect(on_specialist_freed)
    cli.init_app(app)
    callbacks_cli.init_app(app)
    provisioning.init_app(app)
    health.init_app(app)
    retention.init_app(app)
    # Last: the dashboard exempts every blueprint registered before it (the Twilio webhooks) from CSRF.
    dashboard.init_app(app)
    return app
