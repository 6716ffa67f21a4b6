"""The dashboard's error pages: styled, in words, with a way back; Twilio's webhooks keep their own answers."""

from __future__ import annotations

from flask import Flask, render_template, request
from werkzeug.exceptions import HTTPException, InternalServerError

MESSAGES = {
    400: ("The form could not be used", "It may have been open too long. Go back, reload the page and try again."),
    403: ("You do not have access to this page", "This page is for the coordinator. Ask them if you need it."),
    404: ("Page not found", "There is nothing at this address, or it is not one of your calls."),
    405: ("That cannot be done here", "This address does not take that kind of request."),
    429: ("Too many at once", "Wait a minute, then try again."),
    500: ("Something went wrong", "The problem has been logged. Try again in a moment."),
    502: ("Twilio did not answer", "The recording could not be fetched. Try again in a moment."),
}


def render_error(error: HTTPException):
    """A /dashboard error as a page of ours; anything else as it was (webhooks answer Twilio, not people)."""
    if not request.path.startswith("/dashboard"):
        return error
    code = error.code or 500
    title, advice = MESSAGES.get(code, (error.name, ""))
    # A 500 may come from the database itself: the page then shows no navigation (which asks who is signed in).
    return render_template("dashboard/error.html", code=code, title=title, advice=advice,
                           bare=isinstance(error, InternalServerError)), code


def init_app(app: Flask) -> None:
    for code in MESSAGES:
        app.register_error_handler(code, render_error)
