"""A local fake of Twilio's REST API: the calls and texts the app places are played on the simulated phone.

Point the app at it with TWILIO_API_BASE_URL. Calls.create rings the `to` number on the simulated phone's
network in a background thread (whisper, Dial, status callbacks, all signed as Twilio signs them);
Messages.create keeps the text; IncomingPhoneNumbers lets provisioning be tried without an account.
"""

from __future__ import annotations

import itertools
import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import phonenumbers
from flask import Flask, Response, request
from werkzeug.serving import make_server

from voice.simulator.phone import CallRecord, SimulatedPhone

API = "/2010-04-01/Accounts/<account>"


@dataclass
class PlacedCall:
    sid: str
    to: str
    from_: str
    url: str
    status_callback: str | None
    status: str = "queued"
    created_at: float = field(default_factory=time.time)
    record: CallRecord | None = None
    done: threading.Event = field(default_factory=threading.Event)


class FakeTwilio:
    """The fake REST API for one account; `phone` plays every call it is asked to place."""

    def __init__(self, phone: SimulatedPhone, account_sid: str, auth_token: str, line_number: str,
                 on_text: Callable[[dict], None] | None = None, on_call: Callable[[PlacedCall], None] | None = None):
        self.phone = phone
        self.account_sid = account_sid
        self.auth_token = auth_token
        self.calls: list[PlacedCall] = []
        self.texts: list[dict] = []
        self.numbers = {line_number: {"sid": "PN" + "0" * 32, "phone_number": line_number, "voice_url": "",
                                      "voice_method": "POST", "voice_fallback_url": "", "voice_fallback_method": "POST",
                                      "status_callback": "", "status_callback_method": "POST", "sms_url": "",
                                      "sms_method": "POST", "friendly_name": "Mediation line"}}
        self.on_text = on_text
        self.on_call = on_call
        self._ids = itertools.count(1)
        self.app = self._build()
        self._server = None
        self.url = ""

    # -- serving --

    def start(self, host: str = "127.0.0.1", port: int = 0) -> str:
        self._server = make_server(host, port, self.app, threaded=True)
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        self.url = f"http://{host}:{self._server.server_port}"
        return self.url

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()

    def wait_for_calls(self, timeout: float = 30) -> bool:
        """Wait until every call placed so far has been played to its end."""
        return all(call.done.wait(timeout) for call in list(self.calls))

    # -- the API --

    def _build(self) -> Flask:
        app = Flask("fake_twilio")

        def error(status: int, code: int, message: str) -> Response:
            body = {"code": code, "message": message, "more_info": f"https://www.twilio.com/docs/errors/{code}",
                    "status": status}
            return Response(json.dumps(body), status=status, mimetype="application/json")

        @app.before_request
        def authenticate():
            auth = request.authorization
            if auth is None or (auth.username, auth.password) != (self.account_sid, self.auth_token):
                return error(401, 20003, "Authenticate")
            return None

        @app.post(f"{API}/Calls.json")
        def create_call(account):
            to = request.form.get("To", "")
            if not _valid(to):
                return error(400, 21211, f"The 'To' number {to} is not a valid phone number.")
            if not request.form.get("Url"):
                return error(400, 21205, "Url parameter is required.")
            call = PlacedCall(f"CA{next(self._ids):032d}", to, request.form.get("From", ""), request.form["Url"],
                              request.form.get("StatusCallback"))
            self.calls.append(call)
            threading.Thread(target=self._play, args=(call,), daemon=True).start()
            return Response(json.dumps(self._call_json(call)), status=201, mimetype="application/json")

        @app.get(f"{API}/Calls.json")
        def list_calls(account):
            found = [c for c in self.calls
                     if request.args.get("To") in (None, c.to) and request.args.get("From") in (None, c.from_)]
            return _page("calls", [self._call_json(c) for c in found])

        @app.post(f"{API}/Messages.json")
        def create_message(account):
            to = request.form.get("To", "")
            if not _valid(to):
                return error(400, 21211, f"The 'To' number {to} is not a valid phone number.")
            text = {"sid": f"SM{next(self._ids):032d}", "to": to, "from": request.form.get("From", ""),
                    "body": request.form.get("Body", ""), "status": "queued"}
            self.texts.append(text)
            if self.on_text:
                self.on_text(text)
            return Response(json.dumps(text), status=201, mimetype="application/json")

        @app.get(f"{API}/IncomingPhoneNumbers.json")
        def list_numbers(account):
            wanted = request.args.get("PhoneNumber")
            return _page("incoming_phone_numbers",
                         [n for number, n in self.numbers.items() if wanted in (None, number)])

        @app.post(f"{API}/IncomingPhoneNumbers/<sid>.json")
        def update_number(account, sid):
            for number in self.numbers.values():
                if number["sid"] == sid:
                    for key, value in request.form.items():
                        number[_snake(key)] = value
                    return Response(json.dumps(number), mimetype="application/json")
            return error(404, 20404, "The requested resource was not found")

        @app.get(f"{API}/Recordings/<sid>.mp3")
        def recording(account, sid):
            # A few bytes of an MP3 header: enough for a browser to show a (silent) player.
            return Response(b"ID3\x03\x00\x00\x00\x00\x00\x00" + b"\xff\xfb\x90\x00" * 64, mimetype="audio/mpeg")

        return app

    def _play(self, call: PlacedCall) -> None:
        call.status = "in-progress"
        try:
            call.record = self.phone.outbound_call(call.to, call.from_, call.url, status_callback=call.status_callback,
                                                   call_sid=call.sid)
        finally:
            call.status = "completed"
            call.done.set()
            if self.on_call:
                self.on_call(call)

    def _call_json(self, call: PlacedCall) -> dict:
        return {"sid": call.sid, "account_sid": self.account_sid, "to": call.to, "from": call.from_,
                "status": call.status, "direction": "outbound-api", "api_version": "2010-04-01"}


def _valid(number: str) -> bool:
    try:
        return phonenumbers.is_possible_number(phonenumbers.parse(number, None))
    except phonenumbers.NumberParseException:
        return False


def _snake(name: str) -> str:
    return "".join("_" + ch.lower() if ch.isupper() else ch for ch in name).lstrip("_")


def _page(key: str, items: list) -> Response:
    body = {key: items, "end": max(len(items) - 1, 0), "page": 0, "page_size": 50, "start": 0,
            "next_page_uri": None, "first_page_uri": "", "previous_page_uri": None, "uri": ""}
    return Response(json.dumps(body), mimetype="application/json")
