"""The coordinator's dashboard under /dashboard/: sessions, CSRF, login throttling, pages and the `user` CLI."""

from __future__ import annotations

from datetime import timedelta

from flask import Flask, g, redirect, request, url_for
from flask.sessions import SecureCookieSessionInterface
from flask_limiter import Limiter
from flask_limiter.util import get_remote_address
from flask_login import LoginManager
from flask_wtf.csrf import CSRFProtect


class IdleSessionInterface(SecureCookieSessionInterface):
    """Signed cookie sessions renewed by what a person does, not by a page polling on its own."""

    def open_session(self, app: Flask, request):
        # No cookie (every Twilio webhook): an empty session, without building the signer (1% of a webhook).
        if app.config["SESSION_COOKIE_NAME"] not in request.cookies:
            return self.session_class()
        return super().open_session(app, request)

    def should_set_cookie(self, app: Flask, session) -> bool:
        # The cookie's signed timestamp is what expires; not re-signing it on a poll lets an open board time out.
        if g.get("passive_request") and not session.modified:
            return False
        return super().should_set_cookie(app, session)


csrf = CSRFProtect()
login_manager = LoginManager()
limiter = Limiter(key_func=get_remote_address, default_limits=[])


def init_app(app: Flask) -> None:
    """Call last in create_app: every blueprint registered before this one is a Twilio webhook."""
    from voice.commands import accounts as cli
    from voice.dashboard import auth, errors, pages
    from voice.dashboard import call_pages as cases
    from voice.dashboard import case_pages as case_views

    secure = app.config["PUBLIC_BASE_URL"].startswith("https://")
    # Notes per account: enough for a busy shift, not enough for a stuck key or a script to bury a call.
    app.config.setdefault("RATELIMIT_NOTES", "30 per 10 minutes")
    app.config.setdefault("BOARD_REFRESH_MS", 3000)
    app.config.update(
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        SESSION_COOKIE_SECURE=secure,
        REMEMBER_COOKIE_HTTPONLY=True,
        REMEMBER_COOKIE_SAMESITE="Lax",
        REMEMBER_COOKIE_SECURE=secure,
        PERMANENT_SESSION_LIFETIME=timedelta(minutes=app.config["SESSION_IDLE_MINUTES"]),
        # Each request refreshes the cookie, so the lifetime is an idle timeout.
        SESSION_REFRESH_EACH_REQUEST=True,
        RATELIMIT_STORAGE_URI=app.config["REDIS_URL"],
        RATELIMIT_STRATEGY="moving-window",
        RATELIMIT_SWALLOW_ERRORS=True,
    )
    app.session_interface = IdleSessionInterface()
    webhooks = list(app.blueprints.values())
    csrf.init_app(app)
    for blueprint in webhooks:
        # Twilio cannot send a CSRF token; these views check Twilio's signature instead, never a cookie.
        csrf.exempt(blueprint)
    login_manager.init_app(app)
    login_manager.login_view = "auth.login"
    login_manager.session_protection = "strong"
    limiter.init_app(app)
    webhook_names = frozenset(blueprint.name for blueprint in webhooks)

    @limiter.request_filter
    def _twilio_webhook() -> bool:
        # Never rate-limit a caller (Twilio is one client for every call), and skip the limiter's per-request work.
        return request.blueprint in webhook_names

    app.register_blueprint(auth.bp)
    app.register_blueprint(pages.bp)
    app.register_blueprint(cases.bp)
    app.register_blueprint(case_views.bp)
    app.cli.add_command(cli.user_cli)
    errors.init_app(app)

    @app.get("/")
    def root():
        return redirect(url_for("pages.board"))
