"""The coordinator's dashboard under /dashboard/: sessions, CSRF, login throttling, pages and the `user` CLI."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import timedelta

from flask import Blueprint, Flask, g, redirect, request, url_for
from flask.sessions import SecureCookieSessionInterface

from voice.dashboard import (
    auth,
    board,
    call_pages,
    callback_pages,
    case_pages,
    conference_pages,
    errors,
    report_pages,
    roster_pages,
    safety_pages,
    service_pages,
    site,
)
from voice.dashboard.extensions import csrf, limiter, login_manager

# Every blueprint of the dashboard; `site` carries the templates and static files the others use.
PAGES = (site.bp, auth.bp, board.bp, call_pages.bp, case_pages.bp, callback_pages.bp, roster_pages.bp,
         report_pages.bp, safety_pages.bp, service_pages.bp, conference_pages.bp)


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


def init_app(app: Flask, exempt: Iterable[Blueprint]) -> None:
    """The dashboard's blueprints, sessions, CSRF and limits; `exempt` (the Twilio webhooks) skip CSRF and limits."""
    secure = app.config["PUBLIC_BASE_URL"].startswith("https://")
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
    webhooks = tuple(exempt)
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

    for blueprint in PAGES:
        app.register_blueprint(blueprint)
    errors.init_app(app)

    @app.get("/")
    def root():
        return redirect(url_for("board.board"))
