"""mediation-line: the phone line behind a city's mediation-based alternative response to 911."""

from __future__ import annotations

import logging
import os
import sys

from flask import Flask


def create_app(test_config: dict | None = None) -> Flask:
    """Build the app: settings, database, Redis, webhooks, dashboard and CLI."""
    # The factory imports the app's parts when it is called, as Flask's tutorial does: importing one module of
    # the package (a worker's job, a script) must not build or import the whole web app.
    from dotenv import find_dotenv, load_dotenv

    from voice import commands, dashboard, db, health, redisdb, webhooks
    from voice.config import ConfigError, load_settings
    from voice.line import routing
    from voice.reporting import outcomes
    from voice.tasks import on_specialist_freed

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
    webhooks.init_app(app)
    # Someone turning available (ON, or a call ending) is when a waiting caller can be called back.
    routing.specialist_freed.connect(on_specialist_freed)
    # A call or case from 911 closing is reported back to the 911 center.
    outcomes.init_app()
    commands.init_app(app)
    health.init_app(app)
    dashboard.init_app(app, exempt=webhooks.BLUEPRINTS)
    return app
