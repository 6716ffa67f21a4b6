"""Everything the line asks of Twilio's REST API, as plain functions, and the one client they share.

Each function raises `TwilioError`, whose `permanent` flag says whether trying again can help; jobs decide
whether to retry from that flag alone. `TWILIO_API_BASE_URL` sends every request to a local fake instead.

Twilio's health lives here too: jobs make their requests through `noting_health`, which marks Twilio down in
Redis when it does not answer (refused, timed out, 5xx) and up again on any answer. While it is down, `may_ask`
lets one request through per TWILIO_PROBE_SECONDS; the dashboard's banner reads `down_since`.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable, Iterator, Mapping
from datetime import UTC, datetime
from typing import Any, TypeVar

import redis
import requests
from twilio.base.exceptions import TwilioException, TwilioRestException
from twilio.http.http_client import TwilioHttpClient
from twilio.rest import Client

from voice.redisdb import Keys

log = logging.getLogger("voice.twilio_rest")
T = TypeVar("T")
# Every Twilio product host: api.twilio.com, messaging.twilio.com, api.dublin.ie1.twilio.com, ...
_TWILIO_HOST = re.compile(r"^https://[a-z0-9.-]+\.twilio\.com")
REST_TIMEOUT_SECONDS = 10
LIVE_STATUSES = ("queued", "ringing", "in-progress")
# A call's final statuses, as its status callback and the Call resource report them.
# https://www.twilio.com/docs/voice/api/call-resource#call-status-values
TERMINAL_STATUSES = frozenset({"completed", "busy", "no-answer", "failed", "canceled"})


class TwilioError(Exception):
    """Twilio's REST API failed; `permanent` is True when the same request can never succeed.

    `unanswered` is True when no answer came at all (refused, reset, timed out).
    """

    def __init__(self, message: str, permanent: bool, code: int | None = None, status: int | None = None,
                 unanswered: bool = False):
        super().__init__(message)
        self.permanent = permanent
        self.code = code
        self.status = status
        self.unanswered = unanswered


def _wrap(error: Exception) -> TwilioError:
    if isinstance(error, TwilioError):
        return error
    if isinstance(error, TwilioRestException):
        # 5xx and 429 (too many requests) pass; any other 4xx (21211 invalid number, 20003 auth, ...) will not.
        transient = error.status >= 500 or error.status == 429
        return TwilioError(f"HTTP {error.status}, error {error.code}: {error.msg}", permanent=not transient,
                           code=error.code, status=error.status)
    if isinstance(error, requests.ConnectionError | requests.Timeout | ConnectionError | TimeoutError):
        return TwilioError(f"{type(error).__name__}: {error}", permanent=False, unanswered=True)
    if isinstance(error, requests.RequestException):
        return TwilioError(f"{type(error).__name__}: {error}", permanent=False)
    if isinstance(error, TwilioException):
        # Listing raises a plain TwilioException carrying the raw response (e.g. HTTP 401 {"code": 20003, ...}).
        text = " ".join(str(arg) for arg in error.args)
        found = re.search(r"HTTP (\d{3})", text)
        status = int(found.group(1)) if found else None
        return TwilioError(text, permanent="HTTP 5" not in text and "HTTP 429" not in text, status=status)
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


def place_call(config: Mapping, to: str, url: str, status_callback: str, timeout: int,
               send_digits: str | None = None) -> str:
    """Ring `to` from the line; Twilio requests `url` when they answer. Returns the new Call SID.

    `send_digits`: keys played once the call connects (an interpreter service's PIN): digits, # * and w, a
    half-second pause (https://www.twilio.com/docs/voice/api/call-resource#create-a-call-resource, SendDigits).
    """
    extra = {"send_digits": send_digits} if send_digits else {}
    try:
        call = rest_client(config).calls.create(
            to=to, from_=config["TWILIO_PHONE_NUMBER"], url=url, method="POST", status_callback=status_callback,
            status_callback_event=["completed"], status_callback_method="POST", timeout=timeout, **extra,
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


def live_call_sid(config: Mapping, to: str, after: datetime | None = None) -> str | None:
    """The SID of a call from the line to `to` that is queued, ringing or in progress (created since `after`).

    Twilio filters by status (one per request); `StartTime>` only counts whole days, so `after` is checked here
    against each call's creation time.
    """
    client = rest_client(config)
    try:
        found = [call for status in LIVE_STATUSES
                 for call in client.calls.list(to=to, from_=config["TWILIO_PHONE_NUMBER"], status=status, limit=5)
                 if call.status == status]
    except Exception as error:
        raise _wrap(error) from error
    if after is not None:
        since = after.replace(tzinfo=UTC) if after.tzinfo is None else after
        found = [call for call in found if call.date_created is None or call.date_created >= since]
    return found[0].sid if found else None


def probe(config: Mapping) -> None:
    """The cheapest request there is (one call of the account's log): does Twilio answer at all?"""
    try:
        rest_client(config).calls.list(limit=1)
    except Exception as error:
        raise _wrap(error) from error


# --- Twilio's health, in Redis: the banner reads it, dispatch waits on it ------------------------------------


def unreachable(error: TwilioError) -> bool:
    """Twilio did not answer at all (refused, timed out) or answered 5xx: the service failed, not the request."""
    return error.unanswered or (error.status or 0) >= 500


def probe_seconds(config: Mapping) -> int:
    return config["TWILIO_PROBE_SECONDS"]


def noting_health(r: redis.Redis, request: Callable[..., T], config: Mapping, *args: Any, **kwargs: Any) -> T:
    """Make one REST request (`request(config, ...)`) and note whether Twilio answered."""
    try:
        result = request(config, *args, **kwargs)
    except TwilioError as error:
        if unreachable(error) and r.set(Keys.twilio_down_since(), f"{time.time():.3f}", nx=True):
            # This failure counts as the interval's probe: the next request to Twilio waits its turn.
            r.set(Keys.twilio_probe(), "1", ex=probe_seconds(config))
            log.warning("Twilio's REST API is unreachable (%s); waiting for it before calling anyone", error)
        raise
    if r.delete(Keys.twilio_down_since()):
        log.warning("Twilio's REST API answers again")
    return result


def down_since(r: redis.Redis) -> float | None:
    """When Twilio's REST API stopped answering (epoch seconds), or None while it answers."""
    value = r.get(Keys.twilio_down_since())
    return float(value) if value is not None else None


def may_ask(r: redis.Redis, config: Mapping) -> bool:
    """True while Twilio answers; while it is down, True for one request per TWILIO_PROBE_SECONDS (the probe)."""
    if not r.exists(Keys.twilio_down_since()):
        return True
    return bool(r.set(Keys.twilio_probe(), "1", nx=True, ex=probe_seconds(config)))


# https://help.twilio.com/articles/223134027-Twilio-support-for-opt-out-keywords-SMS-STOP-filtering-: on a long
# code Twilio itself answers STOP, STOPALL, UNSUBSCRIBE, CANCEL, END, QUIT (and REVOKE, OPTOUT) and then refuses
# every text from the line to that phone (error 21610) until it texts START, YES or UNSTOP; HELP and INFO get
# Twilio's help reply. The text still reaches us, with OptOutType (STOP, START, HELP) when Advanced Opt-Out is on
# (https://www.twilio.com/docs/messaging/tutorials/advanced-opt-out).
OPT_OUT_KEYWORDS = {
    "STOP": frozenset({"STOP", "STOPALL", "UNSUBSCRIBE", "CANCEL", "END", "QUIT", "REVOKE", "OPTOUT"}),
    "START": frozenset({"START", "YES", "UNSTOP"}),
    "HELP": frozenset({"HELP", "INFO"}),
}

# Twilio's error codes for a text that is refused or never arrives, as the coordinator reads them.
# https://www.twilio.com/docs/api/errors/21610 and /30003, /30005, /30006, /30007, /30034, /21614
OPTED_OUT = 21610
MESSAGE_ERRORS = {
    OPTED_OUT: "the number texted STOP to the line",
    21614: "not a mobile number",
    30003: "the phone is off or out of reach",
    30005: "the number does not exist",
    30006: "a landline, or a carrier that takes no texts",
    30007: "filtered by the carrier",
    30034: "the line's number is not registered for texting (A2P 10DLC)",
}
# A text's statuses as its status callback reports them, in the order they come; the last two are failures.
# https://www.twilio.com/docs/messaging/guides/outbound-message-status-in-status-callbacks
MESSAGE_STATUSES = ("queued", "sent", "delivered", "undelivered", "failed")
MESSAGE_FAILED = ("undelivered", "failed")


def refused_status(code: int | None) -> str:
    """What a text Twilio would not send is: opted out (21610), or not sent (the number takes no texts)."""
    return "opted_out" if code == OPTED_OUT else "not_sent"


def status_advances(current: str | None, status: str) -> bool:
    """Whether a text's status callback is news: callbacks can arrive out of order, and a later status never gives
    way to an earlier one."""
    order = MESSAGE_STATUSES
    return status in order and order.index(status) >= (order.index(current) if current in order else -1)


def send_sms(config: Mapping, to: str, body: str, status_callback: str | None = None) -> str:
    """Text `to` from the line; returns the Message SID. Twilio posts each later status to `status_callback`."""
    try:
        extra = {"status_callback": status_callback} if status_callback else {}
        return rest_client(config).messages.create(to=to, from_=config["TWILIO_PHONE_NUMBER"], body=body, **extra).sid
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


# --- conferences, participants and queues (voice/line/conferences.py says who is in which conference) ---------


def _unless_gone(request: Callable[[], object]) -> None:
    """Make a request that ends or removes something; if Twilio no longer has it (404), it is done already."""
    try:
        request()
    except TwilioRestException as error:
        if error.status == 404:
            return
        raise _wrap(error) from error
    except Exception as error:
        raise _wrap(error) from error


def end_conference(config: Mapping, conference_sid: str) -> None:
    """End a conference for everyone in it; one already over (404) is left as it is.

    https://www.twilio.com/docs/voice/api/conference-resource#update-a-conference-resource (Status=completed)
    """
    _unless_gone(lambda: rest_client(config).conferences(conference_sid).update(status="completed"))


def add_participant(config: Mapping, conference: str, to: str, **options: Any) -> str:
    """Dial `to` into a conference (by its SID or FriendlyName); returns the participant's Call SID.

    https://www.twilio.com/docs/voice/api/conference-participant-resource#create-a-participant-resource
    `options` are the resource's own (label, muted, coaching, call_sid_to_coach, beep, timeout, ...).
    """
    try:
        return rest_client(config).conferences(conference).participants.create(
            from_=config["TWILIO_PHONE_NUMBER"], to=to, **options).call_sid
    except Exception as error:
        raise _wrap(error) from error


def in_conference(config: Mapping, conference_sid: str, call_sid: str) -> bool:
    """Whether this call is in the conference now (connected), as Twilio sees it, not as its callbacks said.

    https://www.twilio.com/docs/voice/api/conference-participant-resource#fetch-a-participant-resource: only
    participants of a conference that is not over are found (404 otherwise).
    """
    try:
        return rest_client(config).conferences(conference_sid).participants(call_sid).fetch().status == "connected"
    except TwilioRestException as error:
        if error.status == 404:
            return False
        raise _wrap(error) from error
    except Exception as error:
        raise _wrap(error) from error


def update_participant(config: Mapping, conference_sid: str, call_sid: str, **changes: Any) -> None:
    """Hold, unhold, mute or coach a participant.

    https://www.twilio.com/docs/voice/api/conference-participant-resource#update-a-participant-resource: HoldMethod
    defaults to GET, so a HoldUrl is always sent with hold_method POST here (our webhooks answer POST only).
    """
    if changes.get("hold_url"):
        changes.setdefault("hold_method", "POST")
    try:
        rest_client(config).conferences(conference_sid).participants(call_sid).update(**changes)
    except Exception as error:
        raise _wrap(error) from error


def unhold(config: Mapping, conference_sid: str, call_sid: str) -> None:
    """Take a participant off hold (a request a job can repeat: plain arguments only)."""
    update_participant(config, conference_sid, call_sid, hold=False)


def remove_participant(config: Mapping, conference_sid: str, call_sid: str) -> None:
    """Take a participant out of a conference (a REST-added one's call then ends); one already gone is left."""
    _unless_gone(lambda: rest_client(config).conferences(conference_sid).participants(call_sid).delete())


def delete_queue(config: Mapping, queue_sid: str) -> None:
    """Delete a held caller's queue once they are out of it (one already gone is left as it is).

    https://www.twilio.com/docs/voice/api/queue-resource#delete-a-queue-resource: "Queues persist. To optimize
    fetch operations, inactive Queues should be deleted." Twilio removes only an empty queue.
    """
    _unless_gone(lambda: rest_client(config).queues(queue_sid).delete())


def empty_queues(config: Mapping, prefix: str, limit: int = 200) -> list[tuple[str, str]]:
    """(SID, name) of the account's queues named with `prefix` that nobody is waiting in."""
    try:
        found = rest_client(config).queues.list(limit=limit)
    except Exception as error:
        raise _wrap(error) from error
    return [(queue.sid, queue.friendly_name) for queue in found
            if (queue.friendly_name or "").startswith(prefix) and not queue.current_size]


# The REST requests a job may repeat for a webhook that could not reach Twilio (tasks.rest_after_commit).
RETRIABLE = {"redirect_call": redirect_call, "end_conference": end_conference, "delete_queue": delete_queue,
             "unhold": unhold, "remove_participant": remove_participant,
             "end_call": end_call}
