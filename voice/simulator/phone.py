"""The simulated phone: signs requests as Twilio does, follows the TwiML back verb by verb, and plays
the people on the line (a caller, specialists, dispatch). It also reports what Twilio would reject."""

from __future__ import annotations

import time
import uuid
import xml.etree.ElementTree as ET  # noqa: S405 (types only; parsing goes through defusedxml)
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from defusedxml.ElementTree import ParseError, fromstring
from twilio.request_validator import RequestValidator

HANGUP = "<hangup>"
TWILIO_TIMEOUT_SECONDS = 15.0
KNOWN_VERBS = {"Say", "Play", "Pause", "Gather", "Record", "Redirect", "Dial", "Hangup", "Reject", "Enqueue", "Leave", "Sms", "Connect"}
NOUNS = {"Dial": {"Number", "Client", "Conference", "Queue", "Sip"}, "Gather": {"Say", "Play", "Pause"}}


def new_sid(prefix: str = "CA") -> str:
    return prefix + uuid.uuid4().hex


# --- transports: how the phone's requests reach the app -------------------------------------------


class FlaskTransport:
    """Sends requests to a Flask app in this process (tests)."""

    def __init__(self, app):
        self.app = app

    def post(self, url: str, data: dict, headers: dict) -> tuple[int, str, str]:
        parts = urlsplit(url)
        path = parts.path + (f"?{parts.query}" if parts.query else "")
        with self.app.test_client() as client:
            response = client.post(path, data=data, headers=headers)
        return response.status_code, response.get_data(as_text=True), response.content_type or ""


class HttpTransport:
    """Sends requests over HTTP to a running instance; `target` replaces the public base URL when set."""

    def __init__(self, public_base_url: str, target: str | None = None, timeout: float = TWILIO_TIMEOUT_SECONDS):
        import requests

        self.public = public_base_url.rstrip("/")
        self.target = (target or public_base_url).rstrip("/")
        self.timeout = timeout
        self.session = requests.Session()

    def post(self, url: str, data: dict, headers: dict) -> tuple[int, str, str]:
        import requests

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
    # How Twilio would report the call: completed, or busy / no-answer for an outbound call nobody took.
    status: str = "completed"
    # Called with each line as it happens (the demo prints the conversation live).
    echo: Callable[[str, str], None] | None = None

    def say(self, who: str, text: str) -> None:
        self.transcript.append((who, text))
        if self.echo is not None:
            self.echo(who, text)

    def text(self) -> str:
        return "\n".join(f"{who:>14}: {what}" for who, what in self.transcript)

    def heard(self, who: str = "caller") -> str:
        """Everything spoken to `who`, as one string (for assertions)."""
        return " ".join(what for w, what in self.transcript if w == f"to {who}")


@dataclass
class Leg:
    sid: str
    from_number: str
    to_number: str
    party: Party
    direction: str
    parent_sid: str | None = None


# --- the phone itself -----------------------------------------------------------------------------


class SimulatedPhone:
    """Plays Twilio for one line: inbound calls, outbound calls, the network of phones they reach."""

    def __init__(self, transport, auth_token: str, account_sid: str, line_number: str, public_base_url: str,
                 network: dict[str, Party] | None = None, status_callback_path: str = "/voice/status",
                 voice_path: str = "/voice/incoming", max_requests: int = 120, status_before_action: bool = True,
                 echo: Callable[[str, str], None] | None = None):
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

    # -- public entry points --

    def call_line(self, from_number: str, caller: Party, call_sid: str | None = None) -> CallRecord:
        """An inbound call to the line (as a 911 transfer arrives), followed to its end."""
        leg = Leg(call_sid or new_sid(), from_number, self.line_number, caller, "inbound")
        record = CallRecord(leg.sid, echo=self.echo)
        record.ended_by = self._run_leg(leg, record, self.voice_url)
        record.say("network", "call ended")
        self._post(leg, record, self.status_callback_url, {"CallStatus": "completed", "CallDuration": "120"},
                   follow=False)
        return record

    def outbound_call(self, to: str, from_: str, url: str, status_callback: str | None = None,
                      call_sid: str | None = None) -> CallRecord:
        """A call the app placed through the REST API: ring `to`, run `url` when they answer."""
        party = self.network.get(to)
        leg = Leg(call_sid or new_sid(), from_, to, party or Party(), "outbound-api")
        record = CallRecord(leg.sid, echo=self.echo)
        if party is None or not party.answers or party.busy:
            status = "busy" if party is not None and party.busy else "no-answer"
            record.status = status
            record.say("network", f"{to} did not answer ({status})")
            if status_callback:
                self._post(leg, record, status_callback, {"CallStatus": status, "CallDuration": "0"}, follow=False)
            return record
        record.say("network", f"{party.label} answered")
        record.ended_by = self._run_leg(leg, record, url)
        if status_callback:
            self._post(leg, record, status_callback, {"CallStatus": "completed", "CallDuration": "60"}, follow=False)
        return record

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

    # -- the engine --

    def _run_leg(self, leg: Leg, record: CallRecord, url: str) -> str:
        try:
            return self._run_document(leg, record, url, {})
        except TwiMLError as error:
            record.problems.append(str(error))
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
        if len(record.exchanges) >= self.max_requests:
            raise TwiMLError(f"loop: more than {self.max_requests} webhook requests on one call")
        params = self._params(leg, extra)
        headers = {"X-Twilio-Signature": self.validator.compute_signature(url, params)}
        started = time.monotonic()
        status, body, content_type = self.transport.post(url, params, headers)
        seconds = time.monotonic() - started
        record.exchanges.append(Exchange(url, params, status, seconds, body))
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

    def _run_document(self, leg: Leg, record: CallRecord, url: str, extra: dict) -> str:
        """Fetch TwiML and run it, chaining through actions; returns how the leg ended."""
        visits: dict[str, int] = {}
        next_request: tuple[str, dict] | None = (url, extra)
        deferred: list = []
        while True:
            url, extra = next_request
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
            outcome = self._run_verbs(leg, record, self._parse(body, url), url, deferred)
            if isinstance(outcome, str):
                return outcome
            next_request = outcome

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

    def _speak(self, leg: Leg, record: CallRecord, element: ET.Element) -> str:
        if element.tag == "Say":
            text = (element.text or "").strip()
            record.say(f"to {leg.party.label}", text)
            return text
        if element.tag == "Play":
            record.say(f"to {leg.party.label}", f"[audio {element.text}]")
        return ""

    def _run_verbs(self, leg: Leg, record: CallRecord, verbs: list[ET.Element], url: str, deferred: list):
        """Run one document: the next (url, params) to request, or how the leg ended."""
        for verb in verbs:
            tag = verb.tag
            if tag in {"Say", "Play", "Pause"}:
                self._speak(leg, record, verb)
            elif tag == "Gather":
                prompt = " ".join(self._speak(leg, record, child) for child in verb)
                kinds = set((verb.get("input") or "dtmf").split())
                answer = leg.party.respond(prompt, kinds)
                if answer == HANGUP:
                    record.say(leg.party.label, "(hangs up)")
                    return "party-hangup"
                action = verb.get("action") or url
                params = self._gather_params(verb, answer, kinds) if answer else {}
                if params:
                    shown = params.get("Digits") or params.get("SpeechResult")
                    how = "presses" if "Digits" in params else "says"
                    record.say(leg.party.label, f"{how} {shown!r}")
                    return action, params
                record.say(leg.party.label, "(silence)" if not answer else f"(says {answer!r}; only keys count here)")
                if (verb.get("actionOnEmptyResult") or "").lower() == "true":
                    return action, {}
            elif tag == "Record":
                seconds = leg.party.record(record.transcript[-1][1] if record.transcript else "")
                action = verb.get("action") or url
                if seconds:
                    record.say(leg.party.label, f"(leaves a {seconds}-second message)")
                    sid = new_sid("RE")
                    return action, {
                        "RecordingSid": sid,
                        "RecordingUrl": f"https://api.twilio.com/2010-04-01/Accounts/{self.account_sid}/Recordings/{sid}",
                        "RecordingDuration": str(seconds),
                        "Digits": "hangup",
                    }
                record.say(leg.party.label, "(says nothing after the beep)")
                return action, {"RecordingDuration": "0", "Digits": "hangup"}
            elif tag == "Redirect":
                target = (verb.text or "").strip()
                if not target:
                    raise TwiMLError(f"invalid: <Redirect> without a URL ({url})")
                return target, {}
            elif tag == "Dial":
                outcome = self._dial(leg, record, verb, deferred)
                if outcome is not None:
                    return outcome
            elif tag in {"Hangup", "Reject"}:
                record.say("network", f"{tag.lower()} by the app")
                return "app-hangup"
            else:
                raise TwiMLError(f"unsupported: the simulator does not play <{tag}>")
        # Falling off the end of a document hangs up, as on Twilio (or, in a whisper, bridges).
        return "end"

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

    def _dial(self, leg: Leg, record: CallRecord, verb: ET.Element, deferred: list):
        """Ring the dialed number, run its whisper, bridge, then report to the Dial action."""
        numbers = [child for child in verb if child.tag == "Number"]
        target = numbers[0] if numbers else None
        number = ((target.text if target is not None else verb.text) or "").strip()
        caller_id = verb.get("callerId") or leg.to_number
        party = self.network.get(number)
        child = Leg(new_sid(), caller_id, number, party or Party(), "outbound-dial", parent_sid=leg.sid)
        record.say("network", f"dialing {number}" + (f" ({party.label})" if party else " (nobody there)"))
        status, duration = "no-answer", 0
        if party is not None and party.busy:
            status = "busy"
            record.say("network", f"{number} is busy")
        elif party is not None and party.answers:
            status = "completed"
            url = target.get("url") if target is not None else None
            # A whisper that runs to its end bridges the two; one that hangs up does not.
            ended = self._run_document(child, record, url, {}) if url else "end"
            if ended == "end":
                duration = party.talk_seconds
                record.bridged_with.append(number)
                record.say("network", f"{leg.party.label} and {party.label} are connected")
                record.say("network", f"(they talk for {duration // 60} min {duration % 60} s; {party.label} hangs up)")
        else:
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


class TwiMLError(Exception):
    """The app returned something Twilio would reject, or the call looped."""
