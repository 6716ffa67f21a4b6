"""A local fake of Twilio's REST API: the calls and texts the app places are played on the simulated phone.

Point the app at it with TWILIO_API_BASE_URL. Calls.create rings the `to` number on the simulated phone's
network in a background thread (whisper, Dial, status callbacks, answering machine detection, all signed as
Twilio signs them), placed at the account's calls per second; Messages.create keeps the text, refuses numbers
that texted STOP, and posts its delivery statuses; IncomingPhoneNumbers lets provisioning be tried without an
account. Live calls (the ones it placed and the simulated phone's inbound calls) can be fetched, hung up,
canceled and redirected, the phone's queues listed, dequeued and deleted, and its conferences and their
participants listed, added, muted, held, coached, announced to, kicked and ended (fake_conferences.py), as on
Twilio. Requests Twilio would refuse are refused with Twilio's status and error code (401/20003, 400/21211, ...).

Tests can also mount it into a `responses.RequestsMock` (the same app answers https://api.twilio.com/...
in-process, no server), make the next calls or every text fail, and hold placed calls until they ring them.
"""

from __future__ import annotations

import itertools
import re
import socket
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from urllib.parse import urlsplit

from flask import Flask, Response, request
from werkzeug.serving import make_server

from voice.simulator.amd import AmdSettings
from voice.simulator.fake_conferences import add_conference_routes
from voice.simulator.legs import CallRecord, CallStateError, Leg
from voice.simulator.messages import ERRORS, Outcome
from voice.simulator.phone import SimulatedPhone
from voice.simulator.queues import Queue, QueueNotEmpty
from voice.simulator.rest_answers import (
    API,
    API_VERSION,
    CALL_EVENTS,
    absolute_url,
    error_answer,
    events,
    json_answer,
    not_found,
    page,
    parse_time,
    snake_case,
    valid_number,
)
from voice.simulator.timing import rfc2822

# What every recording's .mp3 plays: a few bytes of an MP3 header, enough for a browser to show a (silent) player.
SILENT_MP3 = b"ID3\x03\x00\x00\x00\x00\x00\x00" + b"\xff\xfb\x90\x00" * 64
# https://www.twilio.com/docs/voice/api/call-resource: "By default, each account is granted one CPS for calls
# created via POST requests to the /Calls endpoint" (and the same for /Participants); "Calls beyond your account's
# CPS limit will be queued and will execute at the CPS rate."
CALLS_PER_SECOND = 1.0
NUMBER_FIELDS = ("voice_url", "voice_method", "voice_fallback_url", "voice_fallback_method", "status_callback",
                 "status_callback_method", "sms_url", "sms_method", "sms_fallback_url", "sms_fallback_method")


@dataclass
class PlacedCall:
    sid: str
    to: str
    from_: str
    url: str
    status_callback: str | None
    twiml: str | None = None
    timeout: float = 60
    status: str = "queued"
    created_at: datetime = field(default_factory=lambda: datetime.now(UTC))
    ended_at: datetime | None = None
    record: CallRecord | None = None
    done: threading.Event = field(default_factory=threading.Event)
    status_events: set[str] = field(default_factory=lambda: {"completed"})
    amd: AmdSettings | None = None
    # What runs on answer instead of TwiML (a participant's conference).
    target: object | None = None
    # Seconds (phone clock) the call waits for the account's calls per second before it is placed.
    queued_seconds: float = 0.0
    # SendDigits: keys played to whoever answers, before the call's TwiML runs.
    send_digits: str | None = None


# A failure injected into Calls.create: Twilio's answer (HTTP status, error code), or an exception instead of any
# answer (mounted, the client's request raises it; served, the connection drops).
CallFailure = tuple[int, int] | Exception


class FakeTwilio:
    """The fake REST API for one account; `phone` plays every call it is asked to place.

    With autoplay=False a placed call stays queued until the test plays it with `ring_pending()`.
    `calls_per_second` paces the calls it places (Calls and Participants create) on the phone clock, as Twilio
    queues an account's outbound calls at its CPS (None: no pacing).
    """

    def __init__(self, phone: SimulatedPhone, account_sid: str, auth_token: str, line_number: str,
                 on_text: Callable[[dict], None] | None = None, on_call: Callable[[PlacedCall], None] | None = None,
                 autoplay: bool = True, calls_per_second: float | None = CALLS_PER_SECOND):
        self.phone = phone
        self.account_sid = account_sid
        self.auth_token = auth_token
        self.calls: list[PlacedCall] = []
        self.texts: list[dict] = []
        # Every Calls/{sid}.json fetched, in order, and answers a test set for some of them.
        self.fetched: list[str] = []
        self._fetch_answers: dict[str, str | tuple[int, int]] = {}
        self.numbers = {line_number: self._number_json("PN" + "0" * 32, line_number)}
        # Recording SIDs deleted through the API (the retention purge).
        self.deleted_recordings: list[str] = []
        self.on_text = on_text
        self.on_call = on_call
        self.autoplay = autoplay
        self._pending: list[PlacedCall] = []
        self._call_failures: list[CallFailure] = []
        self._text_failure: tuple[int, int] | None = None
        # Set by a test to make Calls.create place the call, then answer only once the gate opens (a worker
        # can be killed while it waits for the answer, as Twilio acts on a request the client never hears back).
        self.answer_gate: threading.Event | None = None
        self.calls_per_second = calls_per_second
        self._next_slot = 0.0
        # Problems the fake saw on the app's side: a status callback that was not answered 200.
        self.problems: list[str] = []
        self._ids = itertools.count(1)
        self._lock = threading.Lock()
        self.app = self._build()
        self._server = None
        self.url = ""

    # -- serving --

    def start(self, host: str = "127.0.0.1", port: int = 0) -> str:
        """Serve the API in a background thread; returns its base URL (the app's TWILIO_API_BASE_URL)."""
        self._server = make_server(host, port, self.app, threaded=True)
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        self.url = f"http://{host}:{self._server.server_port}"
        return self.url

    def stop(self) -> None:
        if self.answer_gate is not None:
            self.answer_gate.set()  # no request left waiting on a server that is going away
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def mount(self, rsps, base_url: str = "https://api.twilio.com") -> None:
        """Answer every request to `base_url` made while `rsps` (a `responses.RequestsMock`) is active, in-process.

        One callback per method (GET, POST, DELETE): make `rsps` with assert_all_requests_are_fired=False.
        """
        pattern = re.compile(re.escape(base_url.rstrip("/")) + r"/")
        for method in ("GET", "POST", "DELETE"):
            rsps.add_callback(method, pattern, callback=self._answer, content_type=None)

    def _answer(self, prepared) -> tuple[int, dict, bytes]:
        """One `requests` request, answered by this app's test client exactly as the served app answers it."""
        parts = urlsplit(prepared.url)
        headers = {k: v for k, v in prepared.headers.items() if k.lower() not in ("host", "content-length")}
        response = self.app.test_client().open(parts.path, method=prepared.method, query_string=parts.query,
                                               headers=headers, data=prepared.body or b"")
        return response.status_code, dict(response.headers), response.get_data()

    def wait_for_calls(self, timeout: float = 30) -> bool:
        """Wait until every call placed so far has been played to its end (with autoplay=False: rung and ended)."""
        return all(call.done.wait(timeout) for call in list(self.calls))

    # -- what tests control --

    def fail_next_calls(self, failures: Iterable[CallFailure]) -> None:
        """Refuse the next Calls.create requests, one failure each (then place calls again)."""
        with self._lock:
            self._call_failures.extend(failures)

    def answer_fetches(self, answers: dict[str, str | tuple[int, int]]) -> None:
        """What Calls/{sid}.json says for these calls: a status ("completed", "no-answer", ...), or a refusal
        (HTTP status, Twilio code). For a call whose end the phone never played, as when webhooks are lost."""
        with self._lock:
            self._fetch_answers = dict(answers)

    def fail_texts(self, status: int | None, code: int | None = None) -> None:
        """Refuse every Messages.create with Twilio's `status` and error `code` (None: send texts again)."""
        self._text_failure = None if status is None else (status, code)

    def ring_pending(self) -> list[CallRecord]:
        """With autoplay=False: play each call placed and not yet played (and any placed meanwhile), each in a
        thread of its own as Twilio plays calls side by side (a specialist waiting in a conference for the caller
        the app dials meanwhile); returns their records in the order they were placed, once all have ended."""
        played: list[PlacedCall] = []
        threads: list[threading.Thread] = []
        while True:
            with self._lock:
                call = self._pending.pop(0) if self._pending else None
            if call is not None:
                played.append(call)
                thread = threading.Thread(target=self._play, args=(call,), daemon=True)
                thread.start()
                threads.append(thread)
                continue
            if not any(thread.is_alive() for thread in threads):
                with self._lock:
                    if not self._pending:
                        return [placed.record for placed in played]
            time.sleep(0.005)

    # -- the API --

    def _build(self) -> Flask:
        app = Flask("fake_twilio")

        # An injected exception reaches whoever made the request rather than becoming a 500.
        app.config["PROPAGATE_EXCEPTIONS"] = True

        @app.before_request
        def authenticate():
            auth = request.authorization
            if auth is None or (auth.username, auth.password) != (self.account_sid, self.auth_token):
                return error_answer(401, 20003, "Authenticate")
            if request.view_args and request.view_args.get("account") != self.account_sid:
                return error_answer(404, 20404, "The requested resource was not found")
            return None

        @app.post(f"{API}/Calls.json")
        def create_call(account):
            with self._lock:
                failure = self._call_failures.pop(0) if self._call_failures else None
            if isinstance(failure, Exception):
                connection = request.environ.get("werkzeug.socket")
                if connection is None:
                    raise failure  # mounted: the client's request raises it
                # Served: no answer at all, the connection just drops (werkzeug closes it quietly).
                connection.shutdown(socket.SHUT_RDWR)
                raise ConnectionAbortedError(f"injected: {failure!r}") from failure
            if failure is not None:
                return error_answer(*failure, "Simulated failure")
            form = request.form
            to, from_, url = form.get("To", ""), form.get("From", ""), form.get("Url", "")
            wrong = self.refuse_numbers(to, from_)
            if wrong is not None:
                return wrong
            if not url and not form.get("Twiml"):
                return error_answer(400, 21205, "Url parameter is required. Please provide a Url or Twiml parameter.")
            for name in ("Url", "StatusCallback", "AsyncAmdStatusCallback"):
                if form.get(name) and not absolute_url(form[name]):
                    return error_answer(400, 21205, f"{name} is not a valid URL: {form[name]}")
            wrong = events(form, "StatusCallbackEvent") - CALL_EVENTS
            if wrong:
                return error_answer(400, 20001, f"StatusCallbackEvent values are not valid: {', '.join(sorted(wrong))}")
            try:
                # https://www.twilio.com/docs/voice/answering-machine-detection (Calls API: sync, or AsyncAmd)
                amd = AmdSettings.from_form(form)
            except ValueError as error:
                return error_answer(400, 20001, str(error))
            digits = form.get("SendDigits") or None
            if digits is not None:
                # https://www.twilio.com/docs/voice/api/call-resource#create-a-call-resource: "The string of keys to
                # dial after connecting to the number, with a maximum length of 32 digits. Valid digits in the
                # string include any digit (0-9), '#', '*' and 'w', to insert a half second pause." And "If both
                # SendDigits and MachineDetection parameters are provided, then MachineDetection will be ignored."
                if len(digits) > 32 or any(ch not in "0123456789#*w" for ch in digits):
                    return error_answer(400, 20001, f"SendDigits is not valid: {digits!r}")
                amd = None
            call = self.new_call(to, from_, form.get("StatusCallback"), url=url, twiml=form.get("Twiml"),
                                 timeout=float(form.get("Timeout") or 60),
                                 status_events=events(form, "StatusCallbackEvent") or {"completed"}, amd=amd,
                                 send_digits=digits)
            # Registered before the response, so the app can fetch, cancel or redirect it straight away.
            self.phone.place_call(to, from_, call.sid)
            self.launch(call)
            if self.answer_gate is not None:
                self.answer_gate.wait(30)
            return json_answer(self._call_json(call), 201)

        @app.get(f"{API}/Calls.json")
        def list_calls(account):
            args = request.args
            after = parse_time(args.get("StartTime>"))
            # Each call as it is now (its status follows its leg), then filtered as Twilio filters.
            found = [body for c in reversed(list(self.calls)) if (body := self._call_json(c))
                     and args.get("To") in (None, c.to) and args.get("From") in (None, c.from_)
                     and args.get("Status") in (None, body["status"]) and (after is None or c.created_at >= after)]
            limit = int(args.get("PageSize") or 50)
            return page("calls", found[:limit])

        @app.get(f"{API}/Calls/<sid>.json")
        def fetch_call(account, sid):
            self.fetched.append(sid)
            answer = self._fetch_answers.get(sid)
            if isinstance(answer, tuple):
                return error_answer(answer[0], answer[1], "simulated failure")
            call = self._find_call(sid)
            if answer is not None:
                found = self._call_json(call) if call is not None else self._leg_json(self.phone.legs[sid])
                return json_answer({**found, "status": answer})
            if call is not None:
                return json_answer(self._call_json(call))
            leg = self.phone.legs.get(sid)
            return json_answer(self._leg_json(leg)) if leg else not_found()

        @app.post(f"{API}/Calls/<sid>.json")
        def update_call(account, sid):
            # https://www.twilio.com/docs/voice/api/call-resource#update-a-call-resource
            form = request.form
            unknown = set(form) - {"Status", "Url", "Method", "Twiml", "FallbackUrl", "FallbackMethod",
                                   "StatusCallback", "StatusCallbackMethod", "TimeLimit"}
            if unknown:
                return error_answer(400, 20001, f"Unknown parameters: {', '.join(sorted(unknown))}")
            if form.get("Status") not in (None, "completed", "canceled"):
                return error_answer(400, 20001, f"Status must be completed or canceled, not {form['Status']}")
            if form.get("Url") and not absolute_url(form["Url"]):
                return error_answer(400, 21205, f"Url is not a valid URL: {form['Url']}")
            call = self._find_call(sid)
            with self._lock:
                # Ending a call still held for ring_pending: it never rings, so it ends now, as on Twilio.
                ends_unplayed = call in self._pending and form.get("Status") is not None
                if ends_unplayed:
                    self._pending.remove(call)
            try:
                leg = self.phone.update_call(sid, status=form.get("Status"), url=form.get("Url"),
                                             method=form.get("Method"), twiml=form.get("Twiml"),
                                             wait=not ends_unplayed)
            except KeyError:
                return not_found()
            except CallStateError as error:
                # https://www.twilio.com/docs/errors/21220 (Invalid call state)
                return error_answer(400, 21220, str(error))
            if ends_unplayed:
                self._play(call)
            return json_answer(self._call_json(call) if call else self._leg_json(leg))

        @app.get(f"{API}/Queues.json")
        def list_queues(account):
            # https://www.twilio.com/docs/voice/api/queue-resource
            return page("queues", [self._queue_json(q) for q in list(self.phone.queues.values())])

        @app.get(f"{API}/Queues/<queue_sid>.json")
        def fetch_queue(account, queue_sid):
            queue = self._find_queue(queue_sid)
            return json_answer(self._queue_json(queue)) if queue else not_found()

        @app.delete(f"{API}/Queues/<queue_sid>.json")
        def delete_queue(account, queue_sid):
            try:
                self.phone.delete_queue(queue_sid)
            except KeyError:
                return not_found()
            except QueueNotEmpty as error:
                return error_answer(400, 20001, str(error))
            return Response(status=204)

        @app.get(f"{API}/Queues/<queue_sid>/Members.json")
        def list_members(account, queue_sid):
            # https://www.twilio.com/docs/voice/api/member-resource
            queue = self._find_queue(queue_sid)
            if queue is None:
                return not_found()
            return page("queue_members", [self._member_json(queue, m) for m in list(queue.members)])

        @app.get(f"{API}/Queues/<queue_sid>/Members/<call_sid>.json")
        def fetch_member(account, queue_sid, call_sid):
            queue = self._find_queue(queue_sid)
            members = list(queue.members) if queue else []
            found = members[:1] if call_sid == "Front" else [m for m in members if m.leg.sid == call_sid]
            return json_answer(self._member_json(queue, found[0])) if found else not_found()

        @app.post(f"{API}/Queues/<queue_sid>/Members/<call_sid>.json")
        def dequeue_member(account, queue_sid, call_sid):
            # "Dequeue a member from a queue and have the member's call begin executing the TwiML document at
            # that URL" (https://www.twilio.com/docs/voice/api/member-resource); Url is required.
            url = request.form.get("Url", "")
            if not absolute_url(url):
                return error_answer(400, 21205, f"Url is not a valid URL: {url}")
            queue = self._find_queue(queue_sid)
            if queue is None:
                return not_found()
            try:
                member = self.phone.dequeue_member(queue_sid, call_sid, url)
            except KeyError:
                return not_found()
            return json_answer(self._member_json(queue, member, position=1))

        @app.post(f"{API}/Messages.json")
        def create_message(account):
            if self._text_failure is not None:
                return error_answer(*self._text_failure, "Simulated failure")
            form = request.form
            to, from_ = form.get("To", ""), form.get("From", "")
            if not valid_number(to):
                return error_answer(400, 21211, f"The 'To' number {to} is not a valid phone number.")
            if from_ not in self.numbers:
                return error_answer(400, 21606, f"The From phone number {from_} is not a valid, SMS-capable inbound "
                                          "phone number or short code for your account.")
            if not form.get("Body"):
                return error_answer(400, 21602, "Message body is required.")
            if form.get("StatusCallback") and not absolute_url(form["StatusCallback"]):
                return error_answer(400, 21609, f"StatusCallback is not a valid URL: {form['StatusCallback']}")
            if self.phone.messaging.refuses(from_, to):
                # The number texted STOP: https://www.twilio.com/docs/api/errors/21610
                return error_answer(400, 21610, ERRORS[21610])
            sid = self._sid("SM")
            text = {"sid": sid, "account_sid": self.account_sid, "to": to, "from": from_, "body": form["Body"],
                    "status": "queued", "direction": "outbound-api", "num_segments": "1", "num_media": "0",
                    "error_code": None, "error_message": None, "price": None, "price_unit": "USD",
                    "api_version": API_VERSION, "date_created": rfc2822(datetime.now(UTC)),
                    "uri": f"/{API_VERSION}/Accounts/{self.account_sid}/Messages/{sid}.json"}
            answer = json_answer(text, 201)
            with self._lock:
                self.texts.append(text)
            if self.on_text:
                self.on_text(text)
            self._deliver(text, self.phone.messaging.outcome(from_, to), form.get("StatusCallback"))
            return answer

        @app.get(f"{API}/Messages/<sid>.json")
        def fetch_message(account, sid):
            text = next((t for t in list(self.texts) if t["sid"] == sid), None)
            return json_answer(text) if text else not_found()

        @app.get(f"{API}/IncomingPhoneNumbers.json")
        def list_numbers(account):
            wanted = request.args.get("PhoneNumber")
            return page("incoming_phone_numbers",
                         [n for number, n in self.numbers.items() if wanted in (None, number)])

        @app.post(f"{API}/IncomingPhoneNumbers/<sid>.json")
        def update_number(account, sid):
            number = next((n for n in self.numbers.values() if n["sid"] == sid), None)
            if number is None:
                return not_found()
            changes = {snake_case(key): value for key, value in request.form.items()}
            unknown = set(changes) - set(NUMBER_FIELDS) - {"friendly_name"}
            if unknown:
                return error_answer(400, 20001, f"Unknown parameters: {', '.join(sorted(unknown))}")
            for key, value in changes.items():
                if (key.endswith("url") or key == "status_callback") and value and not absolute_url(value):
                    return error_answer(400, 21502 if key.startswith("sms") else 21402, f"Invalid URL: {value}")
            number.update(changes)
            return json_answer(number)

        @app.get(f"{API}/Recordings/<sid>.mp3")
        def recording(account, sid):
            return Response(SILENT_MP3, mimetype="audio/mpeg")

        @app.delete(f"{API}/Recordings/<sid>.json")
        def delete_recording(account, sid):
            # The retention purge deletes recordings; Twilio answers an empty 204.
            self.deleted_recordings.append(sid)
            return Response(status=204)

        add_conference_routes(app, self)
        return app

    def _deliver(self, text: dict, outcome: Outcome, status_callback: str | None) -> None:
        """The text goes through its statuses after queued, each posted to its StatusCallback (in order, later).

        https://www.twilio.com/docs/messaging/guides/outbound-message-status-in-status-callbacks: "A status
        callback request is not sent for the initial status"; the request carries MessageStatus and, for a failed
        or undelivered text, ErrorCode (https://www.twilio.com/docs/messaging/guides/track-outbound-message-status).
        """
        for status in outcome.statuses:
            failed = status in ("failed", "undelivered") and outcome.error_code is not None
            params = {"AccountSid": self.account_sid, "ApiVersion": API_VERSION, "MessageSid": text["sid"],
                      "SmsSid": text["sid"], "MessageStatus": status, "SmsStatus": status, "From": text["from"],
                      "To": text["to"]}
            if failed:
                params["ErrorCode"] = str(outcome.error_code)

            def done(code: int, body: str, status=status, failed=failed, url=status_callback) -> None:
                text["status"] = status
                if failed:
                    text["error_code"], text["error_message"] = outcome.error_code, ERRORS.get(outcome.error_code)
                if url and code != 200:
                    self.problems.append(f"error: {url} answered HTTP {code} to MessageStatus {status}: {body[:200]}")

            if status_callback:
                self.phone.callbacks.post(status_callback, params, done)
            else:
                done(200, "")

    def refuse_numbers(self, to: str, from_: str) -> Response | None:
        """Twilio's answer to a call (or participant) request with a missing or bad To, or a From not ours."""
        if not to:
            return error_answer(400, 21201, "No 'To' number is specified")
        if not valid_number(to):
            return error_answer(400, 21211, f"The 'To' number {to} is not a valid phone number.")
        if from_ not in self.numbers:
            # The app must call from the line's own number; anything else is a configuration mistake.
            return error_answer(400, 21210, f"The source phone number provided, {from_}, is not yet verified for "
                                            "your account. You may only make calls from phone numbers that you've "
                                            "verified or purchased from Twilio.")
        return None

    def new_call(self, to: str, from_: str, status_callback: str | None, url: str = "", **options) -> PlacedCall:
        """A call the API was asked to place (not yet launched)."""
        return PlacedCall(self._sid("CA"), to, from_, url, status_callback, **options)

    def launch(self, call: PlacedCall) -> None:
        """Queue the call at the account's calls per second, keep it, and play it (now, or by ring_pending)."""
        call.queued_seconds = self._pace()
        self.phone.legs[call.sid].queue_time_ms = int(call.queued_seconds * 1000)
        with self._lock:
            self.calls.append(call)
            if not self.autoplay:
                self._pending.append(call)
        if self.autoplay:
            threading.Thread(target=self._play, args=(call,), daemon=True).start()

    def _pace(self) -> float:
        """How long (phone clock) the next call waits so that calls start at most `calls_per_second` a second.

        With a time scale the phone clock is the account's; without one, legs keep their own clocks and the app's
        requests come in real time, so a burst of requests (ringing three specialists at once) is a burst here.
        """
        if not self.calls_per_second:
            return 0.0
        with self._lock:
            now = self.phone.clock() if self.phone.time_scale > 0 else time.monotonic()
            start = max(now, self._next_slot)
            self._next_slot = start + 1.0 / self.calls_per_second
        return start - now

    def _play(self, call: PlacedCall) -> None:
        try:
            call.record = self.phone.outbound_call(call.to, call.from_, call.url or None,
                                                   status_callback=call.status_callback, call_sid=call.sid,
                                                   timeout=call.timeout, twiml=call.twiml,
                                                   status_events=call.status_events, amd=call.amd,
                                                   target=call.target, queued_seconds=call.queued_seconds,
                                                   send_digits=call.send_digits)
            call.status = self.phone.legs[call.sid].status
        except Exception as error:  # the thread must report a failure, never die silently
            call.status = "failed"
            call.record = CallRecord(call.sid, problems=[f"the simulated phone failed: {error!r}"])
        finally:
            call.ended_at = datetime.now(UTC)
            call.done.set()
            if self.on_call:
                self.on_call(call)

    def _find_call(self, sid: str) -> PlacedCall | None:
        return next((c for c in self.calls if c.sid == sid), None)

    def _find_queue(self, sid: str) -> Queue | None:
        return next((q for q in list(self.phone.queues.values()) if q.sid == sid), None)

    def _queue_json(self, queue: Queue) -> dict:
        return {"sid": queue.sid, "account_sid": self.account_sid, "friendly_name": queue.name,
                "current_size": len(queue.members), "max_size": queue.max_size,
                "average_wait_time": queue.average_wait(), "date_created": rfc2822(queue.created_at),
                "date_updated": rfc2822(queue.created_at),
                "uri": f"/{API_VERSION}/Accounts/{self.account_sid}/Queues/{queue.sid}.json"}

    def _member_json(self, queue: Queue, member, position: int | None = None) -> dict:
        members = list(queue.members)
        if position is None:
            position = members.index(member) + 1 if member in members else 1
        wait = int(self.phone._now(member.leg) - member.enqueued_clock)
        return {"call_sid": member.leg.sid, "queue_sid": queue.sid, "position": position, "wait_time": wait,
                "date_enqueued": rfc2822(member.enqueued_at),
                "uri": f"/{API_VERSION}/Accounts/{self.account_sid}/Queues/{queue.sid}/Members/{member.leg.sid}.json"}

    def _leg_json(self, leg: Leg) -> dict:
        """A call the fake did not place (an inbound call on the simulated phone), as Twilio shows it."""
        end = leg.ended_at
        duration = int((end - leg.started_at).total_seconds()) if end else None
        return {"sid": leg.sid, "account_sid": self.account_sid, "parent_call_sid": leg.parent_sid, "to": leg.to_number,
                "to_formatted": leg.to_number, "from": leg.from_number, "from_formatted": leg.from_number,
                "status": leg.status, "direction": leg.direction, "api_version": API_VERSION,
                "answered_by": leg.answered_by, "queue_time": str(leg.queue_time_ms),
                "date_created": rfc2822(leg.started_at), "date_updated": rfc2822(end or leg.started_at),
                "start_time": rfc2822(leg.started_at), "end_time": rfc2822(end) if end else None,
                "duration": None if duration is None else str(duration), "price": None, "price_unit": "USD",
                "uri": f"/{API_VERSION}/Accounts/{self.account_sid}/Calls/{leg.sid}.json"}

    def _sid(self, prefix: str) -> str:
        with self._lock:
            return f"{prefix}{next(self._ids):032x}"

    def _call_json(self, call: PlacedCall) -> dict:
        leg = self.phone.legs.get(call.sid)
        if leg is not None and call.status != "failed":
            call.status = leg.status
        duration = int((call.ended_at - call.created_at).total_seconds()) if call.ended_at else None
        return {"sid": call.sid, "account_sid": self.account_sid, "parent_call_sid": None, "to": call.to,
                "to_formatted": call.to, "from": call.from_, "from_formatted": call.from_,
                "phone_number_sid": self.numbers[call.from_]["sid"], "status": call.status,
                "direction": "outbound-api", "api_version": API_VERSION,
                "answered_by": leg.answered_by if leg is not None else None,
                "queue_time": str(int(call.queued_seconds * 1000)),
                "date_created": rfc2822(call.created_at), "date_updated": rfc2822(call.ended_at or call.created_at),
                "start_time": rfc2822(call.created_at), "end_time": rfc2822(call.ended_at) if call.ended_at else None,
                "duration": None if duration is None else str(duration), "price": None, "price_unit": "USD",
                "uri": f"/{API_VERSION}/Accounts/{self.account_sid}/Calls/{call.sid}.json"}

    def _number_json(self, sid: str, number: str) -> dict:
        fields = {name: ("POST" if name.endswith("method") else "") for name in NUMBER_FIELDS}
        return {"sid": sid, "account_sid": self.account_sid, "phone_number": number, "friendly_name": number,
                "api_version": API_VERSION, "capabilities": {"voice": True, "sms": True, "mms": True, "fax": False},
                "uri": f"/{API_VERSION}/Accounts/{self.account_sid}/IncomingPhoneNumbers/{sid}.json", **fields}
