"""The simulated phone: signs requests as Twilio does, follows the TwiML back verb by verb, and plays
the people on the line (a caller, specialists, dispatch). It also reports what Twilio would reject.

Each leg (a call, or one side of a bridge) runs in its own thread and keeps time on a phone clock: a <Say>
takes as long as it would to speak, a phone rings six seconds before it is answered, and so on. With
`time_scale` > 0 a leg really sleeps that long times the scale, so concurrent legs interleave as in life.
Live legs can be found by CallSid (`phone.legs`) and changed while they run (`update_call`), as Twilio's
REST API changes a live call; queues (`phone.queues`) hold callers between <Enqueue> and <Dial><Queue>.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
import xml.etree.ElementTree as ET  # noqa: S405 (types only; parsing goes through defusedxml)
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from urllib.parse import urljoin, urlsplit

import requests
from defusedxml.ElementTree import ParseError, fromstring
from twilio.request_validator import RequestValidator

from voice.twiml import FAULT_MESSAGE

HANGUP = "<hangup>"
TWILIO_TIMEOUT_SECONDS = 15.0
KNOWN_VERBS = {"Say", "Play", "Pause", "Gather", "Record", "Redirect", "Dial", "Hangup", "Reject", "Enqueue", "Leave", "Sms", "Connect"}
NOUNS = {"Dial": {"Number", "Client", "Conference", "Queue", "Sip"}, "Gather": {"Say", "Play", "Pause"}}
# https://www.twilio.com/docs/voice/twiml/enqueue (waitUrl): "Play, Say, Pause, Hangup, Redirect, Leave, Gather".
WAIT_VERBS = {"Play", "Say", "Pause", "Gather", "Redirect", "Leave", "Hangup"}
# https://www.twilio.com/docs/voice/twiml/queue (url): "The allowed verbs ... are Play, Say, Pause, and Redirect."
DEQUEUE_VERBS = {"Play", "Say", "Pause", "Redirect"}
CONTEXT_NAMES = {"wait": "waitUrl", "dequeue": "<Queue url>"}
LIVE = ("queued", "ringing", "in-progress")

# The phone clock, in seconds of life.
RING_SECONDS = 6.0
KEY_PRESS_SECONDS = 1.5
SAY_WORDS_PER_MINUTE = 160
SPOKEN_WORDS_PER_SECOND = 2.5
GATHER_TIMEOUT_SECONDS = 5.0
# With time_scale 0 nothing sleeps; a leg that only waits (hold music) still gives other threads this long.
YIELD_SECONDS = 0.05
# However long a leg waits for another (a bridge to end), it gives up after this much real time.
STUCK_SECONDS = 60.0
# What the app says when it fails inside (voice/twiml.py): a caller who hears it met a crash.
FAULT_TEXTS = set(FAULT_MESSAGE.values())


def new_sid(prefix: str = "CA") -> str:
    return prefix + uuid.uuid4().hex


# --- transports: how the phone's requests reach the app -------------------------------------------


class FlaskTransport:
    """Sends requests to a Flask app in this process (tests), noting exceptions the app logs meanwhile."""

    def __init__(self, app):
        self.app = app

    def post(self, url: str, data: dict, headers: dict) -> tuple[int, str, str]:
        status, body, content_type, _ = self.post_watching(url, data, headers)
        return status, body, content_type

    def post_watching(self, url: str, data: dict, headers: dict) -> tuple[int, str, str, list[str]]:
        """As `post`, plus each exception logged (ERROR or above, with exc_info) while the app handled it."""
        parts = urlsplit(url)
        path = parts.path + (f"?{parts.query}" if parts.query else "")
        catcher = _ExceptionCatcher(threading.get_ident())
        root = logging.getLogger()
        root.addHandler(catcher)
        try:
            with self.app.test_client() as client:
                response = client.post(path, data=data, headers=headers)
                body = response.get_data(as_text=True)
                response.close()  # as a WSGI server does once the answer is sent
        finally:
            root.removeHandler(catcher)
        return response.status_code, body, response.content_type or "", catcher.seen


class _ExceptionCatcher(logging.Handler):
    """Collects logged exceptions from one thread (the test client runs the app in the caller's thread)."""

    def __init__(self, thread_id: int):
        super().__init__(logging.ERROR)
        self.thread_id = thread_id
        self.seen: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        if record.exc_info and record.thread == self.thread_id:
            self.seen.append(f"exception: {record.name}: {record.getMessage()}")


class HttpTransport:
    """Sends requests over HTTP to a running instance; `target` replaces the public base URL when set."""

    def __init__(self, public_base_url: str, target: str | None = None, timeout: float = TWILIO_TIMEOUT_SECONDS):
        self.public = public_base_url.rstrip("/")
        self.target = (target or public_base_url).rstrip("/")
        self.timeout = timeout
        self.session = requests.Session()

    def post(self, url: str, data: dict, headers: dict) -> tuple[int, str, str]:
        if url.startswith(self.public):
            url = self.target + url[len(self.public):]
        try:
            response = self.session.post(url, data=data, headers=headers, timeout=self.timeout)
        except requests.RequestException as error:
            return 599, f"{type(error).__name__}: {error}", ""
        return response.status_code, response.text, response.headers.get("Content-Type", "")


# --- the people on the line -----------------------------------------------------------------------


class Party:
    """Someone who may pick up a phone. Subclasses decide what they press or say."""

    label = "someone"
    answers = True
    busy = False
    talk_seconds = 90

    def respond(self, prompt: str, kinds: set[str]) -> str | None:
        """What they press or say after hearing `prompt`; None is silence, HANGUP hangs up."""
        return None

    def record(self, prompt: str) -> int | None:
        """Seconds of message they leave after the beep, or None for nothing."""
        return None


class ScriptedCaller(Party):
    """A caller who answers each prompt with the next item: digits, words, None (silence) or HANGUP."""

    label = "caller"

    def __init__(self, inputs: Iterable[str | None] = (), message_seconds: int | None = 20, label: str = "caller"):
        self.inputs = list(inputs)
        self.message_seconds = message_seconds
        self.label = label

    def respond(self, prompt: str, kinds: set[str]) -> str | None:
        return self.inputs.pop(0) if self.inputs else None

    def record(self, prompt: str) -> int | None:
        return self.message_seconds


class InteractiveCaller(Party):
    """A person at the keyboard: they read each prompt and type keys or words (Enter alone is silence)."""

    def __init__(self, label: str = "you", ask: Callable[[str], str] = input):
        self.label = label
        self.ask = ask

    def respond(self, prompt: str, kinds: set[str]) -> str | None:
        if not prompt.strip():
            return None  # music on hold, nothing asked: no need to stop for the keyboard
        how = "keys or words" if "speech" in kinds else "keys"
        try:
            answer = self.ask(f"  [{self.label}: type {how}, Enter for silence, q to hang up] > ").strip()
        except EOFError:
            return HANGUP
        if answer.lower() == "q":
            return HANGUP
        return answer or None

    def record(self, prompt: str) -> int | None:
        answer = self.respond(prompt, {"speech"})
        return 15 if answer and answer != HANGUP else None


class SpecialistPhone(Party):
    """A specialist's phone: rings, maybe answers, hears the whisper and presses a key."""

    label = "specialist"

    def __init__(self, name: str = "specialist", accept: str | None = "1", answers: bool = True,
                 busy: bool = False, talk_seconds: int = 240):
        self.label = name
        self.accept = accept
        self.answers = answers
        self.busy = busy
        self.talk_seconds = talk_seconds

    def respond(self, prompt: str, kinds: set[str]) -> str | None:
        return self.accept


class Dispatcher(Party):
    label = "911 dispatch"
    talk_seconds = 60


# --- what happened ------------------------------------------------------------------------------


@dataclass
class Exchange:
    url: str
    params: dict
    status: int
    seconds: float
    body: str


@dataclass
class CallRecord:
    call_sid: str
    transcript: list[tuple[str, str]] = field(default_factory=list)
    exchanges: list[Exchange] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    bridged_with: list[str] = field(default_factory=list)
    ended_by: str = ""
    # How Twilio would report the call: completed, or busy / no-answer / canceled for an outbound call.
    status: str = "completed"
    # Called with each line as it happens (the demo prints the conversation live).
    echo: Callable[[str, str], None] | None = None
    # (phone-clock seconds, label): "answered", "dispatch", "specialist", "said:<first 40 chars>", ...
    marks: list[tuple[float, str]] = field(default_factory=list)
    # The leg's clock (set by the phone); marks are taken on it.
    clock: Callable[[], float] = lambda: 0.0
    # A test that causes a fault on purpose sets this, so hearing the fault message is not a problem.
    expect_fault: bool = False

    def say(self, who: str, text: str) -> None:
        self.transcript.append((who, text))
        if self.echo is not None:
            self.echo(who, text)

    def mark(self, label: str) -> None:
        """Note the phone-clock time of an event (a benchmark finds it again with `first_mark`)."""
        self.marks.append((self.clock(), label))

    def first_mark(self, prefix: str) -> float | None:
        """Clock time of the first mark starting with `prefix`, or None."""
        return next((at for at, label in self.marks if label.startswith(prefix)), None)

    def problem(self, text: str) -> None:
        if text not in self.problems:
            self.problems.append(text)

    def text(self) -> str:
        return "\n".join(f"{who:>14}: {what}" for who, what in self.transcript)

    def heard(self, who: str = "caller") -> str:
        """Everything spoken to `who`, as one string (for assertions)."""
        return " ".join(what for w, what in self.transcript if w == f"to {who}")


@dataclass(frozen=True)
class Inline:
    """TwiML given inline (the REST API's Twiml= parameter) rather than fetched from a URL."""

    twiml: str


@dataclass(eq=False)
class Leg:
    """One live call leg: who is on it, its status, its clock and what the REST API has asked of it."""

    sid: str
    from_number: str
    to_number: str
    party: Party
    direction: str
    parent_sid: str | None = None
    status: str = "queued"
    record: CallRecord | None = None
    # Seconds on this leg's own clock (used when time_scale is 0).
    counted: float = 0.0
    # ("redirect", target) | ("hangup",) | ("cancel",), set by update_call, acted on at the next check.
    control: tuple | None = None
    # What to run on answer, when a not-yet-answered call is redirected.
    answer_target: object | None = None
    member: Member | None = None
    bridge: Bridge | None = None
    started_at: datetime = field(default_factory=lambda: datetime.now(UTC))
    ended_at: datetime | None = None
    wake: threading.Event = field(default_factory=threading.Event)
    ended: threading.Event = field(default_factory=threading.Event)
    request_limit: int = 0

    @property
    def number(self) -> str:
        """The number of the person on this leg (the caller on an inbound leg, the called party otherwise)."""
        return self.from_number if self.direction == "inbound" else self.to_number


@dataclass(eq=False)
class Queue:
    """A call queue, created on demand by <Enqueue> (https://www.twilio.com/docs/voice/api/queue-resource)."""

    name: str
    sid: str
    members: list[Member] = field(default_factory=list)
    waited: list[float] = field(default_factory=list)
    max_size: int = 100
    created_at: datetime = field(default_factory=lambda: datetime.now(UTC))

    def average_wait(self) -> int:
        return int(sum(self.waited) / len(self.waited)) if self.waited else 0


@dataclass(eq=False)
class Member:
    leg: Leg
    queue: Queue
    enqueued_clock: float
    enqueued_at: datetime = field(default_factory=lambda: datetime.now(UTC))
    # Set (under the phone's lock) by whoever takes this member out: a dialer's bridge, or a REST dequeue.
    bridge: Bridge | None = None
    dequeue_target: object | None = None


@dataclass(eq=False)
class Bridge:
    """A dialer and a dequeued caller: dequeued -> connected -> ended, or dequeued -> abandoned."""

    dialer: Leg
    caller: Leg
    queue: Queue
    url: str | None
    state: str = "dequeued"
    ended_clock: float = 0.0
    talked: float = 0.0


class Redirected(Exception):  # noqa: N818 (a signal, not an error)
    def __init__(self, target):
        super().__init__("redirected")
        self.target = target


class HungUpByApi(Exception):  # noqa: N818
    pass


class Canceled(Exception):  # noqa: N818
    pass


class Dequeued(Exception):  # noqa: N818
    pass


class CallStateError(Exception):
    """An update Twilio refuses: the call is not in progress (21220)."""


# --- the phone itself -----------------------------------------------------------------------------


class SimulatedPhone:
    """Plays Twilio for one line: inbound calls, outbound calls, the network of phones they reach."""

    def __init__(self, transport, auth_token: str, account_sid: str, line_number: str, public_base_url: str,
                 network: dict[str, Party] | None = None, status_callback_path: str = "/voice/status",
                 voice_path: str = "/voice/incoming", max_requests: int = 120, status_before_action: bool = True,
                 echo: Callable[[str, str], None] | None = None, time_scale: float = 0.0,
                 play_seconds: float = 30.0, max_wait_cycles: int = 200, expect_fault: bool = False):
        self.transport = transport
        self.validator = RequestValidator(auth_token)
        self.account_sid = account_sid
        self.line_number = line_number
        self.base = public_base_url.rstrip("/")
        self.network: dict[str, Party] = dict(network or {})
        self.status_callback_url = self.base + status_callback_path
        self.voice_url = self.base + voice_path
        self.max_requests = max_requests
        self.status_before_action = status_before_action
        self.echo = echo
        self.time_scale = time_scale
        self.play_seconds = play_seconds
        self.max_wait_cycles = max_wait_cycles
        self.expect_fault = expect_fault
        self.started = time.monotonic()
        self.legs: dict[str, Leg] = {}
        self.queues: dict[str, Queue] = {}
        self._lock = threading.RLock()

    # -- public entry points --

    def clock(self) -> float:
        """Seconds on the phone's shared clock (with time_scale 0: the furthest any leg has counted)."""
        if self.time_scale > 0:
            return (time.monotonic() - self.started) / self.time_scale
        with self._lock:
            return max((leg.counted for leg in self.legs.values()), default=0.0)

    def call_line(self, from_number: str, caller: Party, call_sid: str | None = None,
                  expect_fault: bool | None = None) -> CallRecord:
        """An inbound call to the line (as a 911 transfer arrives), followed to its end."""
        leg = self._register(Leg(call_sid or new_sid(), from_number, self.line_number, caller, "inbound",
                                 status="in-progress"), expect_fault)
        record = leg.record
        record.mark("answered")
        try:
            record.ended_by = self._run_leg(leg, record, (self.voice_url, {}))
            record.say("network", "call ended")
            self._finish(leg, "completed", self.status_callback_url)
        finally:
            leg.ended.set()
        return record

    def start_call_line(self, from_number: str, caller: Party, call_sid: str | None = None,
                        expect_fault: bool | None = None) -> Leg:
        """As call_line, in a thread of its own: returns the live leg at once (`leg.ended`, `leg.record`)."""
        sid = call_sid or new_sid()
        thread = threading.Thread(target=self.call_line, args=(from_number, caller, sid, expect_fault), daemon=True)
        with self._lock:
            thread.start()
            while sid not in self.legs:
                self._lock.release()
                time.sleep(0.001)
                self._lock.acquire()
            return self.legs[sid]

    def place_call(self, to: str, from_: str, call_sid: str | None = None) -> Leg:
        """Register an outbound call (status queued) before it rings, so the REST API can find it at once."""
        return self._register(Leg(call_sid or new_sid(), from_, to, self.network.get(to) or Party(), "outbound-api"))

    def outbound_call(self, to: str, from_: str, url: str | None, status_callback: str | None = None,
                      call_sid: str | None = None, timeout: float = 60, twiml: str | None = None) -> CallRecord:
        """A call the app placed through the REST API: ring `to`, run `url` (or `twiml`) when they answer."""
        with self._lock:
            leg = self.legs.get(call_sid) if call_sid else None
        if leg is None:
            leg = self.place_call(to, from_, call_sid)
        record = leg.record
        party = self.network.get(to)
        try:
            if party is not None and party.busy:
                status = "busy"
            else:
                leg.status = "ringing"
                answers = party is not None and party.answers
                # https://www.twilio.com/docs/voice/api/call-resource (Timeout: how long to let it ring, default 60)
                self._wait(leg, RING_SECONDS if answers else timeout)
                status = "in-progress" if answers else "no-answer"
        except (Canceled, HungUpByApi):
            status = "canceled"
        if status != "in-progress":
            record.status = status
            how = "the call was canceled before anyone answered" if status == "canceled" else f"{to} did not answer"
            record.say("network", f"{how} ({status})")
            self._finish(leg, status, status_callback)
            leg.ended.set()
            return record
        leg.status = "in-progress"
        record.mark("answered")
        record.say("network", f"{party.label} answered")
        try:
            target = leg.answer_target or (Inline(twiml) if twiml else (url, {}))
            record.ended_by = self._run_leg(leg, record, target)
            self._finish(leg, "completed", status_callback)
        finally:
            leg.ended.set()
        return record

    def update_call(self, sid: str, status: str | None = None, url: str | None = None,
                    method: str | None = None, twiml: str | None = None, wait: bool = True) -> Leg:
        """Change a live call as Twilio's REST API does; KeyError if unknown, CallStateError (21220) if over.

        A hangup or cancel waits (`wait`) for the call to end; a call nobody is playing yet ends when played.

        https://www.twilio.com/docs/voice/api/call-resource#update-a-call-resource
        """
        with self._lock:
            leg = self.legs[sid]
            if url or twiml:
                # https://www.twilio.com/docs/errors/21220: "Calls that have completed cannot be ... redirected."
                if leg.status not in LIVE:
                    raise CallStateError("Call is not in-progress. Cannot redirect.")
                target = Inline(twiml) if twiml else (url, {})
                if method and method.upper() != "POST":
                    leg.record.problem(f"unsupported: the simulator only requests with POST, not {method} ({url})")
                if leg.status == "in-progress":
                    leg.control = ("redirect", target)
                else:
                    # Not answered yet: the new URL is what runs when they answer.
                    leg.answer_target = target
            elif status == "canceled":
                # "canceled" only ends a call that is queued or ringing; an answered call goes on.
                if leg.status in ("queued", "ringing"):
                    leg.control = ("cancel",)
            elif status == "completed":
                if leg.status in ("queued", "ringing"):
                    # Docs are silent on completing an unanswered call; it never connects, so report canceled.
                    leg.control = ("cancel",)
                elif leg.status == "in-progress":
                    leg.control = ("hangup",)
        leg.wake.set()
        if wait and status in ("canceled", "completed") and leg.control is not None:
            leg.ended.wait(5)
        return leg

    def dequeue_member(self, queue_sid: str, call_sid: str, url: str) -> Member:
        """Take one member out of a queue and run `url` on its call (the Member resource's update).

        https://www.twilio.com/docs/voice/api/member-resource: "Front" names the member at the front.
        KeyError when the queue or member is not there.
        """
        with self._lock:
            queue = next(q for q in self.queues.values() if q.sid == queue_sid) if queue_sid else None
            if queue is None:
                raise KeyError(queue_sid)
            candidates = queue.members[:1] if call_sid == "Front" else [m for m in queue.members if m.leg.sid == call_sid]
            if not candidates:
                raise KeyError(call_sid)
            member = candidates[0]
            queue.members.remove(member)
            member.dequeue_target = (url, {})
        member.leg.wake.set()
        return member

    def send_sms(self, from_number: str, body: str, path: str = "/sms/incoming") -> tuple[int, str]:
        """A text message to the line (e.g. a specialist texting ON): the app's status code and reply body."""
        params = {
            "AccountSid": self.account_sid,
            "ApiVersion": "2010-04-01",
            "MessageSid": new_sid("SM"),
            "SmsSid": "",
            "From": from_number,
            "To": self.line_number,
            "Body": body,
            "NumMedia": "0",
        }
        params["SmsSid"] = params["MessageSid"]
        return self.signed_post(self.base + path, params)

    def signed_post(self, url: str, params: dict) -> tuple[int, str]:
        """One request signed exactly as Twilio signs it: the status code and body."""
        headers = {"X-Twilio-Signature": self.validator.compute_signature(url, params)}
        status, body, _ = self.transport.post(url, params, headers)
        return status, body

    # -- legs and the clock --

    def _register(self, leg: Leg, expect_fault: bool | None = None) -> Leg:
        leg.record = CallRecord(leg.sid, echo=self.echo, clock=lambda: self._now(leg),
                                expect_fault=self.expect_fault if expect_fault is None else expect_fault)
        leg.request_limit = self.max_requests
        with self._lock:
            self.legs[leg.sid] = leg
        return leg

    def _finish(self, leg: Leg, status: str, status_callback: str | None) -> None:
        leg.status = status
        leg.ended_at = datetime.now(UTC)
        if status_callback:
            duration = int(round(leg.counted)) if status == "completed" else 0
            self._post(leg, leg.record, status_callback, {"CallStatus": status, "CallDuration": str(duration)},
                       follow=False)

    def _now(self, leg: Leg) -> float:
        return self.clock() if self.time_scale > 0 else leg.counted

    def _checkpoint(self, leg: Leg) -> None:
        """Act on what arrived for this leg meanwhile: a REST hangup, cancel or redirect, or a dequeue."""
        with self._lock:
            control = leg.control
            if control is not None and control[0] == "redirect":
                leg.control = None
            dequeued = leg.member is not None and (leg.member.bridge or leg.member.dequeue_target)
        if control is not None:
            if control[0] == "hangup":
                raise HungUpByApi()
            if control[0] == "cancel":
                raise Canceled()
            raise Redirected(control[1])
        if dequeued:
            raise Dequeued()

    def _wait(self, leg: Leg, seconds: float | None, until: Callable[[], bool] = lambda: False,
              idle: bool = False) -> bool:
        """Spend `seconds` of the clock on this leg (None: as long as it takes) unless `until()` comes true first.

        Interrupted by the REST API or a dequeue (raises). Returns whether `until()` came true.
        """
        self._checkpoint(leg)
        if until():
            return True
        scale = self.time_scale
        if seconds is None:
            real = STUCK_SECONDS
        elif scale > 0:
            real = seconds * scale
        else:
            real = YIELD_SECONDS if idle else 0.0
        started = time.monotonic()
        deadline = started + real
        came_true = False
        try:
            while True:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                leg.wake.wait(remaining)
                leg.wake.clear()
                self._checkpoint(leg)
                if until():
                    came_true = True
                    break
        finally:
            elapsed = time.monotonic() - started
            if scale > 0:
                leg.counted += elapsed / scale
            elif seconds is not None and not came_true and time.monotonic() >= deadline:
                leg.counted += seconds
        if seconds is None and not came_true:
            raise TwiMLError(f"stuck: leg {leg.sid} waited {STUCK_SECONDS:.0f}s of real time for another leg")
        return came_true

    # -- the engine --

    def _run_leg(self, leg: Leg, record: CallRecord, target) -> str:
        """Run TwiML on a leg until it ends, following REST redirects; returns how it ended."""
        while True:
            try:
                return self._run_document(leg, record, target, "call")
            except Redirected as redirect:
                record.say("network", "the call is redirected through the REST API")
                target = redirect.target
            except (HungUpByApi, Canceled):
                record.say("network", "the call is hung up through the REST API")
                return "api-hangup"
            except TwiMLError as error:
                record.problem(str(error))
                record.say(f"to {leg.party.label}", "[Twilio] We are sorry, an application error has occurred. Goodbye.")
                return "error"

    def _params(self, leg: Leg, extra: dict) -> dict:
        params = {
            "AccountSid": self.account_sid,
            "ApiVersion": "2010-04-01",
            "CallSid": leg.sid,
            "From": leg.from_number,
            "To": leg.to_number,
            "Called": leg.to_number,
            "Caller": leg.from_number,
            "Direction": leg.direction,
            "CallStatus": "in-progress",
        }
        if leg.parent_sid:
            params["ParentCallSid"] = leg.parent_sid
        params.update({k: v for k, v in extra.items() if v is not None})
        return params

    def _post(self, leg: Leg, record: CallRecord, url: str, extra: dict, follow: bool = True) -> str | None:
        """Sign and send one webhook request; None when Twilio would give up on the call."""
        if len(record.exchanges) >= max(leg.request_limit, self.max_requests):
            raise TwiMLError(f"loop: more than {max(leg.request_limit, self.max_requests)} webhook requests on one call")
        params = self._params(leg, extra)
        headers = {"X-Twilio-Signature": self.validator.compute_signature(url, params)}
        started = time.monotonic()
        watching = getattr(self.transport, "post_watching", None)
        if watching is not None:
            status, body, content_type, exceptions = watching(url, params, headers)
        else:
            (status, body, content_type), exceptions = self.transport.post(url, params, headers), []
        seconds = time.monotonic() - started
        record.exchanges.append(Exchange(url, params, status, seconds, body))
        if not record.expect_fault:
            for exception in exceptions:
                record.problem(f"{exception} (at {url})")
        if seconds > TWILIO_TIMEOUT_SECONDS:
            record.problems.append(f"slow: {url} took {seconds:.1f}s (Twilio gives up after 15s)")
        if status != 200:
            record.problems.append(f"error: {url} answered HTTP {status}: {body[:200]}")
            if follow:
                # Twilio would play its application-error message and hang up here.
                record.say(f"to {leg.party.label}", "[Twilio] We are sorry, an application error has occurred. Goodbye.")
                return None
        elif follow and "xml" not in content_type:
            record.problems.append(f"invalid: {url} answered with Content-Type {content_type!r}, not XML")
        return body

    def _run_document(self, leg: Leg, record: CallRecord, target, context: str) -> str:
        """Fetch TwiML (or take it inline) and run it, chaining through actions; returns how it ended.

        `context` is "call", "wait" (an Enqueue's waitUrl and what it leads to) or "dequeue" (a Queue url).
        """
        visits: dict[str, int] = {}
        deferred: list = []
        while True:
            if isinstance(target, Inline):
                url, body = self.base + "/", target.twiml
            else:
                url, extra = target
                key = url + repr(sorted(extra.items()))
                visits[key] = visits.get(key, 0) + 1
                if visits[key] > 3:
                    raise TwiMLError(f"loop: the same request to {url} was made {visits[key]} times")
                body = self._post(leg, record, url, extra)
            for post in deferred:
                post()
            deferred = []
            if body is None:
                return "error"
            outcome = self._run_verbs(leg, record, self._parse(body, url), url, deferred, context)
            if isinstance(outcome, str):
                return outcome
            target = outcome

    def _parse(self, body: str, url: str) -> list[ET.Element]:
        try:
            root = fromstring(body.encode("utf-8"))
        except ParseError as error:
            raise TwiMLError(f"invalid: {url} returned TwiML that is not well-formed XML ({error})") from None
        if root.tag != "Response":
            raise TwiMLError(f"invalid: {url} returned <{root.tag}>, not <Response>")
        for verb in root:
            if verb.tag not in KNOWN_VERBS:
                raise TwiMLError(f"invalid: {url} used an unknown verb <{verb.tag}>")
            allowed = NOUNS.get(verb.tag)
            for child in verb:
                if allowed is None or child.tag not in allowed:
                    raise TwiMLError(f"invalid: <{child.tag}> is not allowed inside <{verb.tag}> ({url})")
        return list(root)

    def _speak(self, leg: Leg, record: CallRecord, element: ET.Element, url: str, context: str) -> str:
        """Play one Say, Play or Pause to the leg, taking its time on the clock."""
        idle = context == "wait"
        if element.tag == "Say":
            text = (element.text or "").strip()
            record.mark(f"said:{text}")
            record.say(f"to {leg.party.label}", text)
            if not record.expect_fault and text in FAULT_TEXTS:
                record.problem(f"fault: the caller heard the fault message at {url}")
            loops = max(int(element.get("loop") or 1), 1)
            self._wait(leg, loops * len(text.split()) * 60 / SAY_WORDS_PER_MINUTE, idle=idle)
            return text
        if element.tag == "Play":
            record.say(f"to {leg.party.label}", f"[audio {element.text}]")
            self._wait(leg, self.play_seconds, idle=idle)
        elif element.tag == "Pause":
            # https://www.twilio.com/docs/voice/twiml/pause: length defaults to 1 second.
            self._wait(leg, float(element.get("length") or 1), idle=idle)
        return ""

    def _run_verbs(self, leg: Leg, record: CallRecord, verbs: list[ET.Element], url: str, deferred: list,
                   context: str = "call"):
        """Run one document: the next (url, params) to request, or how the leg ended."""
        allowed = {"wait": WAIT_VERBS, "dequeue": DEQUEUE_VERBS}.get(context)
        for verb in verbs:
            self._checkpoint(leg)
            tag = verb.tag
            if allowed is not None and tag not in allowed:
                raise TwiMLError(f"invalid: <{tag}> is not allowed in a {CONTEXT_NAMES[context]} document ({url})")
            if tag in {"Say", "Play", "Pause"}:
                self._speak(leg, record, verb, url, context)
            elif tag == "Gather":
                outcome = self._gather(leg, record, verb, url, context)
                if outcome is not None:
                    return outcome
            elif tag == "Record":
                seconds = leg.party.record(record.transcript[-1][1] if record.transcript else "")
                action = _resolve(url, verb.get("action")) or url
                if seconds:
                    record.say(leg.party.label, f"(leaves a {seconds}-second message)")
                    self._wait(leg, seconds)
                    sid = new_sid("RE")
                    return action, {
                        "RecordingSid": sid,
                        "RecordingUrl": f"https://api.twilio.com/2010-04-01/Accounts/{self.account_sid}/Recordings/{sid}",
                        "RecordingDuration": str(seconds),
                        "Digits": "hangup",
                    }
                record.say(leg.party.label, "(says nothing after the beep)")
                self._wait(leg, float(verb.get("timeout") or 5))
                return action, {"RecordingDuration": "0", "Digits": "hangup"}
            elif tag == "Redirect":
                target = (verb.text or "").strip()
                if not target:
                    raise TwiMLError(f"invalid: <Redirect> without a URL ({url})")
                return _resolve(url, target), {}
            elif tag == "Dial":
                queues = [child for child in verb if child.tag == "Queue"]
                if queues:
                    outcome = self._dial_queue(leg, record, verb, queues[0], url)
                else:
                    outcome = self._dial(leg, record, verb, deferred)
                if outcome is not None:
                    return outcome
            elif tag == "Enqueue":
                outcome = self._enqueue(leg, record, verb, url)
                if outcome is not None:
                    return outcome
            elif tag == "Leave":
                if context == "wait":
                    return "leave"
                # https://www.twilio.com/docs/voice/twiml/leave only acts on a queued call; elsewhere: nothing.
            elif tag in {"Hangup", "Reject"}:
                record.say("network", f"{tag.lower()} by the app")
                return "app-hangup"
            else:
                raise TwiMLError(f"unsupported: the simulator does not play <{tag}>")
        # Falling off the end of a document hangs up, as on Twilio (or, in a whisper, bridges; in a waitUrl,
        # requests the waitUrl again).
        return "end"

    def _gather(self, leg: Leg, record: CallRecord, verb: ET.Element, url: str, context: str):
        """Prompt, then the party's answer after the time it takes: (action, params), an ending, or None."""
        prompt = " ".join(self._speak(leg, record, child, url, context) for child in verb)
        kinds = set((verb.get("input") or "dtmf").split())
        answer = leg.party.respond(prompt, kinds)
        if answer == HANGUP:
            record.say(leg.party.label, "(hangs up)")
            return "party-hangup"
        action = _resolve(url, verb.get("action")) or url
        params = self._gather_params(verb, answer, kinds) if answer else {}
        if params:
            if "Digits" in params:
                self._wait(leg, KEY_PRESS_SECONDS)
            else:
                self._wait(leg, len(answer.split()) / SPOKEN_WORDS_PER_SECOND + KEY_PRESS_SECONDS)
            shown = params.get("Digits") or params.get("SpeechResult")
            how = "presses" if "Digits" in params else "says"
            record.say(leg.party.label, f"{how} {shown!r}")
            return action, params
        # https://www.twilio.com/docs/voice/twiml/gather: timeout defaults to 5 seconds.
        self._wait(leg, float(verb.get("timeout") or GATHER_TIMEOUT_SECONDS), idle=context == "wait")
        record.say(leg.party.label, "(silence)" if not answer else f"(says {answer!r}; only keys count here)")
        if (verb.get("actionOnEmptyResult") or "").lower() == "true":
            return action, {}
        return None

    @staticmethod
    def _gather_params(verb: ET.Element, answer: str, kinds: set[str]) -> dict:
        finish = verb.get("finishOnKey", "#")
        is_keys = all(ch.isdigit() or ch in "*#" for ch in answer)
        if is_keys and "dtmf" in kinds:
            digits = answer
            if finish and finish in digits:
                digits = digits.split(finish, 1)[0]
            num = verb.get("numDigits")
            if num:
                digits = digits[: int(num)]
            return {"Digits": digits} if digits else {}
        if "speech" in kinds:
            return {"SpeechResult": answer, "Confidence": "0.91"}
        # A key-only prompt answered with words: Twilio hears nothing.
        return {}

    def _mark_bridge(self, record: CallRecord, party: Party) -> None:
        if isinstance(party, Dispatcher):
            record.mark("dispatch")
        elif isinstance(party, SpecialistPhone):
            record.mark("specialist")

    def _dial(self, leg: Leg, record: CallRecord, verb: ET.Element, deferred: list):
        """Ring the dialed number, run its whisper, bridge, then report to the Dial action."""
        numbers = [child for child in verb if child.tag == "Number"]
        target = numbers[0] if numbers else None
        number = ((target.text if target is not None else verb.text) or "").strip()
        caller_id = verb.get("callerId") or leg.to_number
        party = self.network.get(number)
        child = Leg(new_sid(), caller_id, number, party or Party(), "outbound-dial", parent_sid=leg.sid,
                    status="in-progress", counted=leg.counted)
        child.request_limit = self.max_requests
        record.say("network", f"dialing {number}" + (f" ({party.label})" if party else " (nobody there)"))
        status, duration = "no-answer", 0
        # https://www.twilio.com/docs/voice/twiml/dial#timeout: rings 30 seconds unless told otherwise.
        ring_for = float(verb.get("timeout") or 30)
        if party is not None and party.busy:
            status = "busy"
            record.say("network", f"{number} is busy")
        elif party is not None and party.answers:
            self._wait(leg, RING_SECONDS)
            child.counted = leg.counted
            status = "completed"
            url = target.get("url") if target is not None else None
            # A whisper that runs to its end bridges the two; one that hangs up does not.
            ended = self._run_document(child, record, (_resolve(self.base + "/", url), {}), "call") if url else "end"
            leg.counted = max(leg.counted, child.counted)
            if ended == "end":
                duration = party.talk_seconds
                record.bridged_with.append(number)
                self._mark_bridge(record, party)
                record.say("network", f"{leg.party.label} and {party.label} are connected")
                record.say("network", f"(they talk for {duration // 60} min {duration % 60} s; {party.label} hangs up)")
                self._wait(leg, duration)
        else:
            self._wait(leg, ring_for)
            record.say("network", f"{number} rang {verb.get('timeout', '30')} seconds, no answer")
        callback = target.get("statusCallback") if target is not None else None
        if callback:
            def post_status():
                self._post(child, record, callback, {"CallStatus": status, "CallDuration": str(duration)}, follow=False)
            # Twilio does not promise which of the two arrives first; tests try both orders.
            if self.status_before_action or not verb.get("action"):
                post_status()
            else:
                deferred.append(post_status)
        action = verb.get("action")
        if action:
            return action, {"DialCallStatus": status, "DialCallSid": child.sid, "DialCallDuration": str(duration)}
        return None

    # -- queues: <Enqueue> on the caller's leg, <Dial><Queue> on the dialer's --

    def _enqueue(self, leg: Leg, record: CallRecord, verb: ET.Element, url: str):
        """Wait in a queue until dequeued, Leave, a hangup or a REST change: the next request, an ending, or None.

        https://www.twilio.com/docs/voice/twiml/enqueue
        """
        name = (verb.text or "").strip()
        action = _resolve(url, verb.get("action"))
        wait_url = _resolve(url, verb.get("waitUrl"))
        for attribute in ("method", "waitUrlMethod"):
            if (verb.get(attribute) or "POST").upper() != "POST":
                record.problem(f"unsupported: the simulator only requests with POST ({attribute} at {url})")
        with self._lock:
            queue = self.queues.get(name)
            if queue is None:
                queue = self.queues[name] = Queue(name, new_sid("QU"))
            if len(queue.members) >= queue.max_size:
                member = None
            else:
                member = Member(leg, queue, self._now(leg))
                queue.members.append(member)
                leg.member = member
                # Holding takes many waitUrl requests; Twilio has no such limit, the simulator only stops loops.
                leg.request_limit = max(leg.request_limit, 400)
        if member is None:
            record.say("network", f"queue {name!r} is full")
            return (action, {"QueueResult": "queue-full", "QueueSid": queue.sid, "QueueTime": "0"}) if action else None
        record.say("network", f"{leg.party.label} waits in queue {name!r}")

        def action_params(result: str) -> dict:
            return {"QueueResult": result, "QueueSid": queue.sid, "QueueTime": str(self._queue_time(member))}

        try:
            outcome = self._wait_in_queue(leg, record, member, wait_url)
        except Dequeued:
            with self._lock:
                bridge, target = member.bridge, member.dequeue_target
                leg.member = None
            self._left_queue(member)
            if bridge is None:
                # Dequeued through the REST API (Member resource): its Url runs on the call, the action is told
                # "redirected" ("redirected out of the queue, typically by a REST API request"), TwiML ignored.
                if action:
                    self._post(leg, record, action, action_params("redirected"), follow=False)
                raise Redirected(target) from None
            return self._bridge_from_queue(leg, record, member, bridge, action, action_params)
        except Redirected:
            self._leave_queue(leg, member)
            if action:
                self._post(leg, record, action, action_params("redirected"), follow=False)
            raise
        except (HungUpByApi, Canceled):
            self._leave_queue(leg, member)
            if action:
                self._post(leg, record, action, action_params("hangup"), follow=False)
            raise
        except TwiMLError:
            # Twilio's QueueResult would be "error"; the simulator treats a bad wait document as the fault it is:
            # a problem, and the caller hears Twilio's error (safe either way: the test fails).
            self._leave_queue(leg, member)
            raise
        self._leave_queue(leg, member)
        if outcome == "leave":
            record.say("network", f"{leg.party.label} leaves queue {name!r}")
            # https://www.twilio.com/docs/voice/twiml/leave: with no action, the verb after <Enqueue> runs next.
            return (action, action_params("leave")) if action else None
        # The caller hung up (or the app hung up on them) while waiting: the action is told, its TwiML ignored.
        if action:
            self._post(leg, record, action, action_params("hangup"), follow=False)
        return outcome

    def _queue_time(self, member: Member) -> int:
        return int(self._now(member.leg) - member.enqueued_clock)

    def _leave_queue(self, leg: Leg, member: Member) -> None:
        """Take the member out (unless someone took it first: then that bridge is abandoned)."""
        with self._lock:
            leg.member = None
            if member in member.queue.members:
                member.queue.members.remove(member)
                taken = None
            else:
                taken = member.bridge
            if taken is not None and taken.state == "dequeued":
                taken.state = "abandoned"
        self._left_queue(member)
        if taken is not None:
            taken.dialer.wake.set()

    def _left_queue(self, member: Member) -> None:
        with self._lock:
            member.queue.waited.append(self._now(member.leg) - member.enqueued_clock)

    def _wait_in_queue(self, leg: Leg, record: CallRecord, member: Member, wait_url: str | None) -> str:
        """Run the waitUrl again and again: "leave", "party-hangup", "app-hangup" or "error"; raises on a dequeue."""
        for _ in range(self.max_wait_cycles):
            self._checkpoint(leg)
            if wait_url is None:
                # Twilio's default hold music.
                record.say(f"to {leg.party.label}", "[hold music]")
                self._wait(leg, self.play_seconds, idle=True)
                continue
            with self._lock:
                queue = member.queue
                position = queue.members.index(member) + 1 if member in queue.members else 1
                params = {"QueueSid": queue.sid, "QueuePosition": str(position),
                          "QueueTime": str(self._queue_time(member)), "AvgQueueTime": str(queue.average_wait()),
                          "CurrentQueueSize": str(len(queue.members)), "MaxQueueSize": str(queue.max_size)}
            outcome = self._run_document(leg, record, (wait_url, params), "wait")
            if outcome != "end":
                return outcome
            self._wait(leg, 0, idle=True)
        raise TwiMLError(f"loop: the waitUrl {wait_url} was requested {self.max_wait_cycles} times")

    def _bridge_from_queue(self, leg: Leg, record: CallRecord, member: Member, bridge: Bridge,
                           action: str | None, action_params: Callable[[str], dict]):
        """The caller's side of a dequeue: hear the Queue url, talk until the bridge ends, then the action."""
        queue_time = self._queue_time(member)
        params = {"QueueSid": bridge.queue.sid, "QueueTime": str(queue_time),
                  # Twilio's docs spell it so: https://www.twilio.com/docs/voice/twiml/queue
                  "DequeingCallSid": bridge.dialer.sid}
        result = "bridged"
        try:
            if bridge.url:
                self._run_document(leg, record, (bridge.url, params), "dequeue")
            with self._lock:
                if bridge.state != "dequeued":
                    raise TwiMLError("stuck: the dialer left before the bridge")
                leg.counted = bridge.dialer.counted = max(leg.counted, bridge.dialer.counted)
                bridge.state = "connected"
                leg.bridge = bridge
            bridge.dialer.wake.set()
            dialer = bridge.dialer
            record.bridged_with.append(dialer.number)
            dialer.record.bridged_with.append(leg.number)
            self._mark_bridge(record, dialer.party)
            record.say("network", f"{leg.party.label} and {dialer.party.label} are connected")
            self._wait(leg, None, until=lambda: bridge.state == "ended")
        except Redirected:
            # "redirected-from-bridged: the queued and then successfully bridged session was transferred out."
            result = "redirected-from-bridged" if bridge.state == "connected" else "redirected"
            self._end_bridge(leg, bridge)
            if action:
                self._post(leg, record, action, {**action_params(result), "QueueTime": str(queue_time)}, follow=False)
            raise
        except (HungUpByApi, Canceled):
            self._end_bridge(leg, bridge)
            if action:
                self._post(leg, record, action, {**action_params(result), "QueueTime": str(queue_time)}, follow=False)
            raise
        except TwiMLError:
            self._end_bridge(leg, bridge)
            raise
        finally:
            leg.bridge = None
        leg.counted = max(leg.counted, bridge.ended_clock)
        record.say("network", f"the bridge with {bridge.dialer.party.label} ends")
        # Twilio: "the action URL is hit once when the bridged parties disconnect".
        if action:
            return action, {**action_params("bridged"), "QueueTime": str(queue_time)}
        return None

    def _end_bridge(self, leg: Leg, bridge: Bridge) -> None:
        with self._lock:
            if bridge.state == "dequeued":
                bridge.state = "abandoned"
            elif bridge.state == "connected":
                bridge.state = "ended"
                bridge.ended_clock = self._now(leg)
        bridge.dialer.wake.set()
        bridge.caller.wake.set()

    def _claim(self, queue: Queue, dialer: Leg, url: str | None) -> Bridge | None:
        """Take the member at the front of the queue for this dialer (never the same member for two)."""
        with self._lock:
            for member in list(queue.members):
                if member.leg.status == "in-progress" and member.bridge is None and member.dequeue_target is None:
                    queue.members.remove(member)
                    member.bridge = Bridge(dialer, member.leg, queue, url)
                    member.leg.wake.set()
                    return member.bridge
        return None

    def _dial_queue(self, leg: Leg, record: CallRecord, verb: ET.Element, noun: ET.Element, url: str):
        """<Dial><Queue>: bridge with the caller at the front, talk, then the Dial action.

        https://www.twilio.com/docs/voice/twiml/queue
        """
        name = (noun.text or "").strip()
        action = _resolve(url, verb.get("action"))
        queue_url = _resolve(url, noun.get("url"))
        with self._lock:
            queue = self.queues.get(name)
        if queue is None:
            # "If the queue does not exist, Dial will post an error status to its action URL."
            record.say("network", f"queue {name!r} does not exist")
            return (action, {"DialCallStatus": "failed", "DialCallDuration": "0"}) if action else None
        record.say("network", f"dialing queue {name!r}")
        claimed: list[Bridge] = []

        def take() -> bool:
            bridge = self._claim(queue, leg, queue_url)
            if bridge is not None:
                claimed.append(bridge)
            return bool(claimed)

        # "If the queue is empty, Dial will wait until the next person joins the queue or until the <Dial>
        # timeout duration is reached." (timeout: 30 s by default, https://www.twilio.com/docs/voice/twiml/dial)
        self._wait(leg, float(verb.get("timeout") or 30), until=take, idle=True)
        bridge = claimed[0] if claimed else None
        if bridge is not None:
            try:
                self._wait(leg, None, until=lambda: bridge.state in ("connected", "abandoned", "ended"))
            except BaseException:
                self._end_bridge(leg, bridge)
                raise
        if bridge is None or bridge.state == "abandoned":
            # Nobody to bridge with. What Twilio posts then is not documented: the action gets completed with
            # DialCallDuration 0 and no DialCallSid, so an app must look for DialCallSid (true on Twilio either way).
            record.say("network", f"nobody is waiting in queue {name!r}")
            params = {"DialCallStatus": "completed", "DialCallDuration": "0", "QueueSid": queue.sid}
            return (action, params) if action else None
        caller = bridge.caller
        started = self._now(leg)
        record.say("network", f"{leg.party.label} is connected with {caller.party.label} from queue {name!r}")
        try:
            # The conversation lasts the dialing party's talk time; it ends when they hang up (or the caller goes).
            self._wait(leg, leg.party.talk_seconds, until=lambda: bridge.state == "ended")
        finally:
            self._end_bridge(leg, bridge)
        duration = int(round(self._now(leg) - started))
        record.say("network", f"the bridge with {caller.party.label} ends after {duration} s")
        params = {"DialCallStatus": "completed", "DialCallSid": caller.sid, "DialCallDuration": str(duration),
                  "QueueSid": queue.sid}
        return (action, params) if action else None


def _resolve(base: str, url: str | None) -> str | None:
    """A relative URL in TwiML is relative to the document's own URL, as in a browser."""
    return urljoin(base, url) if url else None


class TwiMLError(Exception):
    """The app returned something Twilio would reject, or the call looped."""

