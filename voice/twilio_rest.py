"""Everything the line asks of Twilio's REST API, as plain functions, and the one client they share.

Each function raises `TwilioError`, whose `permanent` flag says whether trying again can help; jobs decide
whether to retry from that flag alone. `TWILIO_API_BASE_URL` sends every request to a local fake instead.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from datetime import datetime
from typing import Any

import requests
from twilio.base.exceptions import TwilioException, TwilioRestException
from twilio.http.http_client import TwilioHttpClient
from twilio.rest import Client

# Every Twilio product host: api.twilio.com, messaging.twilio.com, api.dublin.ie1.twilio.com, ...
_TWILIO_HOST = re.compile(r"^https://[a-z0-9.-]+\.twilio\.com")
REST_TIMEOUT_SECONDS = 10
LIVE_STATUSES = ("queued", "ringing", "in-progress")
# A call's final statuses, as its status callback and the Call resource report them.
# https://www.twilio.com/docs/voice/api/call-resource#call-status-values
TERMINAL_STATUSES = frozenset({"completed", "busy", "no-answer", "failed", "canceled"})


class TwilioError(Exception):
    """Twilio's REST API failed; `permanent` is True when the same request can never succeed."""

    def __init__(self, message: str, permanent: bool, code: int | None = None, status: int | None = None):
        super().__init__(message)
        self.permanent = permanent
        self.code = code
        self.status = status


def _wrap(error: Exception) -> TwilioError:
    if isinstance(error, TwilioError):
        return error
    if isinstance(error, TwilioRestException):
        # 5xx and 429 (too many requests) pass; any other 4xx (21211 invalid number, 20003 auth, ...) will not.
        transient = error.status >= 500 or error.status == 429
        return TwilioError(f"HTTP {error.status}, error {error.code}: {error.msg}", permanent=not transient,
                           code=error.code, status=error.status)
    if isinstance(error, requests.RequestException):
        return TwilioError(f"{type(error).__name__}: {error}", permanent=False)
    if isinstance(error, TwilioException):
        # Listing raises a plain TwilioException carrying the raw response (e.g. HTTP 401 {"code": 20003, ...}).
        text = " ".join(str(arg) for arg in error.args)
        return TwilioError(text, permanent="HTTP 5" not in text and "HTTP 429" not in text)
    return TwilioError(f"{type(error).__name__}: {error}", permanent=False)


class RedirectingHttpClient(TwilioHttpClient):
    """Sends every request to `base_url` instead of Twilio, keeping the path (e.g. /2010-04-01/...)."""

    def __init__(self, base_url: str, timeout: float = REST_TIMEOUT_SECONDS):
        super().__init__(timeout=timeout)
        self.base_url = base_url.rstrip("/")

    def request(self, method, url, *args, **kwargs):
        return super().request(method, api_url({"TWILIO_API_BASE_URL": self.base_url}, url), *args, **kwargs)


def api_url(config: Mapping, url: str) -> str:
    """A Twilio API URL (e.g. a recording's) as this deployment must fetch it: via TWILIO_API_BASE_URL if set."""
    base = (config.get("TWILIO_API_BASE_URL") or "").strip().rstrip("/")
    return _TWILIO_HOST.sub(base, url) if base else url


def rest_client(config: Mapping) -> Client:
    """The one REST client (tests use it to talk to the fake as any Twilio client would)."""
    base_url = (config.get("TWILIO_API_BASE_URL") or "").strip()
    http_client = RedirectingHttpClient(base_url) if base_url else TwilioHttpClient(timeout=REST_TIMEOUT_SECONDS)
    return Client(config["TWILIO_ACCOUNT_SID"], config["TWILIO_AUTH_TOKEN"], http_client=http_client)


def place_call(config: Mapping, to: str, url: str, status_callback: str, timeout: int) -> str:
    """Ring `to` from the line; Twilio requests `url` when they answer. Returns the new Call SID."""
    try:
        call = rest_client(config).calls.create(
            to=to, from_=config["TWILIO_PHONE_NUMBER"], url=url, method="POST", status_callback=status_callback,
            status_callback_event=["completed"], status_callback_method="POST", timeout=timeout,
        )
    except Exception as error:
        raise _wrap(error) from error
    return call.sid


def call_status(config: Mapping, sid: str) -> str:
    """The call's status now (queued, ringing, in-progress, completed, ...)."""
    try:
        return rest_client(config).calls(sid).fetch().status
    except Exception as error:
        raise _wrap(error) from error


def redirect_call(config: Mapping, sid: str, url: str) -> None:
    """Make a live call leave whatever it is doing and run the TwiML at `url`."""
    # https://www.twilio.com/docs/voice/api/call-resource#update-a-call-resource
    try:
        rest_client(config).calls(sid).update(url=url, method="POST")
    except Exception as error:
        raise _wrap(error) from error


def end_call(config: Mapping, sid: str) -> str:
    """Stop a call whatever its state: cancel it while it rings, hang it up once answered; returns the status.

    Twilio's `canceled` only stops a queued or ringing call and `completed` only an answered one, and the call
    can be answered between our look and our update, so look again once.
    """
    client = rest_client(config)
    try:
        for _ in range(2):
            status = client.calls(sid).fetch().status
            if status in ("queued", "ringing"):
                status = client.calls(sid).update(status="canceled").status
            elif status == "in-progress":
                status = client.calls(sid).update(status="completed").status
            if status in TERMINAL_STATUSES:
                return status
        return status
    except TwilioRestException as error:
        if error.code == 21220:  # "Call is not in-progress": it ended on its own meanwhile
            return "completed"
        raise _wrap(error) from error
    except Exception as error:
        raise _wrap(error) from error


def live_call_sid(config: Mapping, to: str, after: datetime) -> str | None:
    """The SID of a call from the line to `to`, placed since `after` and not yet over, if Twilio has one."""
    try:
        found = rest_client(config).calls.list(to=to, from_=config["TWILIO_PHONE_NUMBER"], start_time_after=after,
                                           limit=5)
    except Exception as error:
        raise _wrap(error) from error
    live = [c for c in found if c.status in LIVE_STATUSES]
    return live[0].sid if live else None


def send_sms(config: Mapping, to: str, body: str) -> str:
    """Text `to` from the line; returns the Message SID."""
    try:
        return rest_client(config).messages.create(to=to, from_=config["TWILIO_PHONE_NUMBER"], body=body).sid
    except Exception as error:
        raise _wrap(error) from error


def recording_audio(config: Mapping, recording_url: str) -> Iterator[bytes]:
    """A recording's MP3, streamed with the account's credentials (the browser never sees Twilio's URL)."""
    try:
        upstream = requests.get(api_url(config, recording_url + ".mp3"), stream=True, timeout=15,
                                auth=(config["TWILIO_ACCOUNT_SID"], config["TWILIO_AUTH_TOKEN"]))
    except requests.RequestException as error:
        raise _wrap(error) from error
    if upstream.status_code != 200:
        upstream.close()
        raise TwilioError(f"HTTP {upstream.status_code} fetching a recording", permanent=upstream.status_code < 500,
                          status=upstream.status_code)
    return upstream.iter_content(64 * 1024)


def delete_recording(config: Mapping, recording_sid: str) -> None:
    try:
        rest_client(config).recordings(recording_sid).delete()
    except TwilioRestException as error:
        if error.status == 404:
            return  # already gone
        raise _wrap(error) from error
    except Exception as error:
        raise _wrap(error) from error


def find_number(config: Mapping, phone_number: str) -> Any | None:
    """The account's IncomingPhoneNumber for `phone_number`, or None."""
    try:
        numbers = rest_client(config).incoming_phone_numbers.list(phone_number=phone_number, limit=1)
    except Exception as error:
        raise _wrap(error) from error
    return numbers[0] if numbers else None


def update_number(config: Mapping, number_sid: str, **fields: str) -> None:
    try:
        rest_client(config).incoming_phone_numbers(number_sid).update(**fields)
    except Exception as error:
        raise _wrap(error) from error
