"""The dashboard's shell, shared by every page: its templates and static files, the template filters and
labels, and the security headers on every dashboard response."""

from __future__ import annotations

from datetime import datetime

from flask import Blueprint, Response, current_app, request

from voice import durations, languages, phones
from voice.dashboard import queries
from voice.script import CATEGORY_LABELS

bp = Blueprint("site", __name__, url_prefix="/dashboard", template_folder="templates", static_folder="static",
               static_url_path="/static")


DISPOSITIONS = {
    "resolved_by_phone": "Resolved by phone",
    "in_person_scheduled": "In-person mediation scheduled",
    "referred": "Referred elsewhere",
    "no_further_action": "No further action",
}


OUTCOME_LABELS = {
    "in_intake": "In intake", "connecting": "Connecting", "bridged": "Answered live",
    "callback_queued": "Callback queued", "callback_completed": "Called back", "escalated": "Escalated to dispatch",
    "abandoned": "Hung up", "unreachable": "Unreachable", "failed": "Failed",
}


# Only our own scripts run; no plugins; pages cannot be framed; caller text can never load anything from elsewhere.
SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
                               "media-src 'self'; object-src 'none'; frame-ancestors 'none'; form-action 'self'; "
                               "base-uri 'none'",
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "same-origin",
    "Permissions-Policy": "camera=(), microphone=(), geolocation=(), payment=(), usb=()",
    "Cache-Control": "no-store",
}


HSTS = "max-age=31536000; includeSubDomains"


@bp.after_app_request
def security_headers(response: Response) -> Response:
    if request.path.startswith("/dashboard"):
        for name, value in SECURITY_HEADERS.items():
            response.headers.setdefault(name, value)
        # Only over https: a plain-http deployment sending HSTS would lock browsers out of it.
        if current_app.config["PUBLIC_BASE_URL"].startswith("https://"):
            response.headers.setdefault("Strict-Transport-Security", HSTS)
    return response


@bp.app_template_filter("local")
def local_time(value: datetime | None, fmt: str = "%b %-d, %-I:%M %p") -> str:
    local = queries.to_local(value, current_app.config["TIMEZONE"])
    return local.strftime(fmt) if local else ""


@bp.app_template_filter("ago")
def ago(value: datetime | None) -> str:
    return durations.ago(value)


@bp.app_template_filter("phone")
def phone_display(value: str | None) -> str:
    return phones.display(value, current_app.config["DEFAULT_REGION"])


@bp.app_template_filter("masked")
def phone_masked(value: str | None) -> str:
    return phones.masked(value, current_app.config["DEFAULT_REGION"])


@bp.app_context_processor
def labels() -> dict:
    return {"CATEGORY_LABELS": CATEGORY_LABELS, "OUTCOME_LABELS": OUTCOME_LABELS, "DISPOSITIONS": DISPOSITIONS,
            "LANGUAGE_NAMES": languages.catalogue().names(), "program_name": current_app.config["PROGRAM_NAME"]}
