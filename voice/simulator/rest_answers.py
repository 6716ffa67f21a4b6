"""How the fake REST API answers: Twilio's JSON bodies, errors and pages, and the checks it makes on input."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from urllib.parse import urlsplit

import phonenumbers
from flask import Response

API_VERSION = "2010-04-01"
API = f"/{API_VERSION}/Accounts/<account>"
# https://www.twilio.com/docs/voice/api/call-resource (StatusCallbackEvent), the same for a participant's call.
CALL_EVENTS = {"initiated", "ringing", "answered", "completed"}


def valid_number(number: str) -> bool:
    try:
        return phonenumbers.is_possible_number(phonenumbers.parse(number, None))
    except phonenumbers.NumberParseException:
        return False


def absolute_url(url: str) -> bool:
    parts = urlsplit(url)
    return parts.scheme in ("http", "https") and bool(parts.netloc)


def snake_case(name: str) -> str:
    return "".join("_" + ch.lower() if ch.isupper() else ch for ch in name).lstrip("_")


def parse_time(value: str | None) -> datetime | None:
    if not value:
        return None
    moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def flag(value: str | None, name: str) -> bool | None:
    """A boolean parameter as twilio-python sends it ("true"/"false"); None if absent; ValueError if neither."""
    if value is None:
        return None
    if value.lower() not in ("true", "false"):
        raise ValueError(f"{name} must be true or false, not {value!r}")
    return value.lower() == "true"


def events(form, name: str) -> set[str]:
    """A list parameter (StatusCallbackEvent): repeated fields as twilio-python sends them, or space-separated."""
    return set(" ".join(form.getlist(name)).replace(",", " ").split())


def json_answer(body: dict, status: int = 200) -> Response:
    return Response(json.dumps(body), status=status, mimetype="application/json")


def error_answer(status: int, code: int, message: str) -> Response:
    return json_answer({"code": code, "message": message, "more_info": f"https://www.twilio.com/docs/errors/{code}",
                        "status": status}, status)


def not_found() -> Response:
    return error_answer(404, 20404, "The requested resource was not found")


def page(key: str, items: list) -> Response:
    body = {key: items, "end": max(len(items) - 1, 0), "page": 0, "page_size": 50, "start": 0,
            "next_page_uri": None, "first_page_uri": "", "previous_page_uri": None, "uri": ""}
    return json_answer(body)
