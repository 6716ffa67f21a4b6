"""The simulated phone: signs requests as Twilio does, follows the TwiML back verb by verb, and plays
the people on the line (a caller, specialists, dispatch). It also reports what Twilio would reject.

Each leg (a call, or one side of a bridge) runs in its own thread and keeps time on a phone clock: a <Say>
takes as long as it would to speak, a phone rings six seconds before it is answered, and so on. With
`time_scale` > 0 a leg really sleeps that long times the scale, so concurrent legs interleave as in life.
Live legs can be found by CallSid (`phone.legs`) and changed while they run (`update_call`), as Twilio's
REST API changes a live call, or lost (`drop`, `hang_up`) as a real line is; queues (`phone.queues`, queues.py)
hold callers between <Enqueue> and <Dial><Queue>; conferences (`phone.conferences`, conferences.py) hold
<Dial><Conference> callers and the participants the REST API adds. Outbound calls may meet a voicemail and
answering machine detection (amd.py); texts meet opt-out keywords and delivery failures (`phone.messaging`).
"""

from __future__ import annotations

import threading
import time
import xml.etree.ElementTree as ET  # noqa: S405 (types only; parsing goes through defusedxml)
from collections.abc import Callable
from datetime import UTC, datetime

from defusedxml.ElementTree import ParseError, fromstring
from twilio.request_validator import RequestValidator

from voice.simulator.amd import AmdSettings, detect
from voice.simulator.callbacks import CallbackDispatcher
from voice.simulator.conferences import (
    CONFERENCE_CONTEXTS,
    CONFERENCE_DOCUMENT_VERBS,
    Conference,
    ConferenceCalls,
    ConferenceJoin,
    Interrupted,
)
from voice.simulator.legs import (
    CallRecord,
    CallStateError,
    Canceled,
    Dequeued,
    Disconnected,
    Exchange,
    HungUpByApi,
    Inline,
    Leg,
    Redirected,
    TwiMLError,
    new_sid,
    resolve,
)
from voice.simulator.messages import Messaging
from voice.simulator.people import HANGUP, Dispatcher, Party, SpecialistPhone
from voice.simulator.queues import Queue, QueueCalls
from voice.simulator.timing import (
    GATHER_TIMEOUT_SECONDS,
    HESITATION,
    HESITATION_SECONDS,
    KEY_PRESS_SECONDS,
    SAY_WORDS_PER_MINUTE,
    STUCK_SECONDS,
    TWILIO_TIMEOUT_SECONDS,
    YIELD_SECONDS,
    speaking_seconds,
)
from voice.twiml import FAULT_MESSAGE

KNOWN_VERBS = {"Say", "Play", "Pause", "Gather", "Record", "Redirect", "Dial", "Hangup", "Reject", "Enqueue", "Leave", "Sms", "Connect"}
NOUNS = {"Dial": {"Number", "Client", "Conference", "Queue", "Sip"}, "Gather": {"Say", "Play", "Pause"}}
# https://www.twilio.com/docs/voice/twiml/enqueue (waitUrl): "Play, Say, Pause, Hangup, Redirect, Leave, Gather".
WAIT_VERBS = {"Play", "Say", "Pause", "Gather", "Redirect", "Leave", "Hangup"}
# https://www.twilio.com/docs/voice/twiml/queue (url): "The allowed verbs ... are Play, Say, Pause, and Redirect."
DEQUEUE_VERBS = {"Play", "Say", "Pause", "Redirect"}
# https://www.twilio.com/docs/voice/twiml/number#attributes-url: "You can use this TwiML to privately <Play> or
# <Say> information to the called party. You could also provide a chance to decline the phone call using <Gather>
# and <Hangup>. The url attribute does not support any other TwiML verbs."
WHISPER_VERBS = {"Play", "Say", "Gather", "Hangup"}
# A waitUrl's <Gather>: the <Enqueue> page (https://www.twilio.com/docs/voice/twiml/enqueue#attributes-wait-url)
# says it takes "dtmf and speech": keys, words, or both (<Gather input>'s own values). A conference's waitUrl takes
# no <Gather> at all (13238, CONFERENCE_DOCUMENT_VERBS).
WAIT_GATHER_INPUTS = {"dtmf", "speech", "dtmf speech", "speech dtmf"}
# How long Twilio's automatic end-of-speech (speechTimeout="auto") waits after the last word: not documented;
# shorter than a caller's hesitation, which is what cuts an answer off.
AUTO_END_OF_SPEECH_SECONDS = 1.0
CONTEXT_VERBS = {"wait": WAIT_VERBS, "dequeue": DEQUEUE_VERBS, "whisper": WHISPER_VERBS,
                 **dict.fromkeys(CONFERENCE_CONTEXTS, CONFERENCE_DOCUMENT_VERBS)}
CONTEXT_NAMES = {"wait": "waitUrl", "dequeue": "<Queue url>", "whisper": "<Number url>", **CONFERENCE_CONTEXTS}
# Documents that only fill time while a caller waits: they yield to other legs, and may loop for long.
WAITING_CONTEXTS = {"wait", *CONFERENCE_CONTEXTS}
LIVE = ("queued", "ringing", "in-progress")
# What the app says when it fails inside (voice/twiml.py): a caller who hears it met a crash.
FAULT_TEXTS = set(FAULT_MESSAGE.values())




class SimulatedPhone(QueueCalls, ConferenceCalls):
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
        # Every conference, in the order created (a name is reused once its conference has ended).
        self.conferences: list[Conference] = []
        self.messaging = Messaging(self.network)
        # Conference events and message statuses, posted in order off the legs' threads.
        self.callbacks = CallbackDispatcher(self.signed_post)
        self._lock = threading.RLock()

    # -- public entry points --

    def clock(self) -> float:
        """Seconds on the phone's shared clock (with time_scale 0: the furthest any leg has counted)."""
        if self.time_scale > 0:
            return (time.monotonic() - self.started) / self.time_scale
        with self._lock:
            return max((leg.counted for leg in self.legs.values()), default=0.0)

    def call_line(self, from_number: str, caller: Party, call_sid: str | None = None,
                  expect_fault: bool | None = None, forwarded_from: str | None = None,
                  caller_name: str | None = None) -> CallRecord:
        """An inbound call to the line (as a 911 transfer arrives), followed to its end.

        `from_number` may be a withheld caller ID (WITHHELD_CALLER_IDS, or an alpha name such as "Anonymous").
        `forwarded_from` and `caller_name` are sent as ForwardedFrom and CallerName on every request, as Twilio
        does when the carrier passes the forwarding number and when the line has VoiceCallerIdLookup on
        (https://www.twilio.com/docs/voice/twiml#request-parameters).
        """
        leg = self._register(Leg(call_sid or new_sid(), from_number, self.line_number, caller, "inbound",
                                 status="in-progress"), expect_fault)
        if forwarded_from:
            leg.extra_params["ForwardedFrom"] = forwarded_from
        if caller_name:
            leg.extra_params["CallerName"] = caller_name
        record = leg.record
        record.mark("answered")
        try:
            record.ended_by = self._run_leg(leg, record, (self.voice_url, {}))
            record.say("network", "call ended")
            self._finish(leg, "completed", self.status_callback_url)
        finally:
            self._fire_due(leg, everything=True)
            leg.ended.set()
        self._settle(record)
        return record

    def start_call_line(self, from_number: str, caller: Party, call_sid: str | None = None,
                        expect_fault: bool | None = None, **options) -> Leg:
        """As call_line, in a thread of its own: returns the live leg at once (`leg.ended`, `leg.record`)."""
        sid = call_sid or new_sid()
        thread = threading.Thread(target=self.call_line, args=(from_number, caller, sid, expect_fault),
                                  kwargs=options, daemon=True)
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

    def forget_call(self, call_sid: str) -> None:
        """Drop a registered call that was never placed (the REST API refused the request after registering it)."""
        with self._lock:
            self.legs.pop(call_sid, None)

    def outbound_call(self, to: str, from_: str, url: str | None, status_callback: str | None = None,
                      call_sid: str | None = None, timeout: float = 60, twiml: str | None = None,
                      status_events: set[str] | None = None, amd: AmdSettings | None = None,
                      target: object | None = None, queued_seconds: float = 0.0,
                      send_digits: str | None = None) -> CallRecord:
        """A call the app placed through the REST API: ring `to`, run `url` (or `twiml`, or `target`) on answer.

        `status_events`: the StatusCallbackEvent values to post (default completed); `amd`: answering machine
        detection; `target`: what runs instead of TwiML (a participant's conference); `queued_seconds`: how long
        the call waits for the account's calls per second before it is placed; `send_digits`: keys played to
        whoever answers before the TwiML runs (SendDigits; w is half a second's pause).
        https://www.twilio.com/docs/voice/api/call-resource#create-a-call-resource
        """
        with self._lock:
            leg = self.legs.get(call_sid) if call_sid else None
        if leg is None:
            leg = self.place_call(to, from_, call_sid)
        record = leg.record
        party = self.network.get(to)
        events = status_events or {"completed"}
        participant = target.participant if isinstance(target, ConferenceJoin) else None
        try:
            if queued_seconds > 0:
                record.say("network", f"queued {queued_seconds:.1f} s for the account's calls per second")
                self._wait(leg, queued_seconds)
            self._progress(leg, status_callback, events, "initiated")
            if party is not None and party.busy:
                status = "busy"
            else:
                leg.status = "ringing"
                if participant is not None:
                    participant.status = "ringing"
                self._progress(leg, status_callback, events, "ringing")
                # https://www.twilio.com/docs/voice/api/call-resource (Timeout: how long to let it ring, default 60)
                answers = party is not None and party.answers and party.answer_after <= timeout
                self._wait(leg, party.answer_after if answers else timeout)
                status = "in-progress" if answers else "no-answer"
        except (Canceled, HungUpByApi):
            status = "canceled"
        if status != "in-progress":
            record.status = status
            how = "the call was canceled before anyone answered" if status == "canceled" else f"{to} did not answer"
            record.say("network", f"{how} ({status})")
            if participant is not None:
                self._leave(participant, "participant_add_failed", status)
            self._finish(leg, status, status_callback, events)
            leg.ended.set()
            self._settle(record)
            return record
        leg.status = "in-progress"
        leg.answered_clock = self._now(leg)
        if party.hangs_up_after is not None:
            leg.hangup_at = leg.answered_clock + party.hangs_up_after
        record.mark("answered")
        record.say("network", f"{party.label} answered")
        self._progress(leg, status_callback, events, "answered")
        try:
            run = leg.answer_target or target or (Inline(twiml) if twiml else (url, {}))
            try:
                answered_by = self._detect_machine(leg, record, amd) if amd else {}
            except Redirected as redirect:
                run, answered_by = redirect.target, {}
            except (HungUpByApi, Canceled, Disconnected) as ended:
                record.ended_by = getattr(ended, "how", "api-hangup")
            if not record.ended_by:
                if answered_by and isinstance(run, tuple):
                    run = (run[0], {**run[1], **answered_by})
                if send_digits:
                    self._send_digits(leg, record, send_digits)
                record.ended_by = self._run_leg(leg, record, run)
            self._finish(leg, "completed", status_callback, events)
        finally:
            self._fire_due(leg, everything=True)
            leg.ended.set()
        self._settle(record)
        return record

    def _send_digits(self, leg: Leg, record: CallRecord, digits: str) -> None:
        """SendDigits: the keys are played to whoever answered (an interpreter service hears its PIN), each w
        half a second; the time a key's tone takes is not documented: a tenth of a second each here."""
        record.say("network", f"sends keys {digits!r}")
        self._tell(leg, record, f"[keys {digits}]")
        self._wait(leg, 0.5 * digits.count("w") + 0.1 * (len(digits) - digits.count("w")))

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

    def drop(self, call_sid: str, wait: bool = True) -> Leg:
        """The network loses the party on this call (signal gone), as distinct from their hanging up.

        Twilio reports such a call like any other that ended after answer (CallStatus completed, "answered and has
        ended normally": https://www.twilio.com/docs/voice/api/call-resource#call-status-values; in a conference,
        ReasonParticipantLeft participant_hung_up); the record says "dropped". KeyError if unknown,
        CallStateError if the call is not in progress. Waits (`wait`) up to 5 s for the call to end.
        """
        return self._disconnect(call_sid, "drop", wait)

    def hang_up(self, call_sid: str, wait: bool = True) -> Leg:
        """The party on this call hangs up now (whatever they were hearing)."""
        return self._disconnect(call_sid, "party-hangup", wait)

    def settle(self, timeout: float = 10.0) -> bool:
        """Wait until every asynchronous callback so far (conference events, message statuses) is answered."""
        return self.callbacks.settle(timeout)

    def send_sms(self, from_number: str, body: str, path: str = "/sms/incoming") -> tuple[int, str]:
        """A text message to the line (e.g. a specialist texting ON): the app's status code and reply body.

        Twilio's default opt-out handling applies first (STOP, START, HELP: `messaging`), and the text still
        reaches the app.
        """
        kind = self.messaging.receive(from_number, self.line_number, body)
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
        if kind and self.messaging.advanced_opt_out:
            params["OptOutType"] = kind
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

    def _finish(self, leg: Leg, status: str, status_callback: str | None, events: set[str] | None = None) -> None:
        leg.status = status
        leg.ended_at = datetime.now(UTC)
        if status_callback and "completed" in (events or {"completed"}):
            duration = int(round(leg.counted)) if status == "completed" else 0
            extra = {"CallStatus": status, "CallDuration": str(duration)}
            if leg.answered_by:
                extra["AnsweredBy"] = leg.answered_by
            self._post(leg, leg.record, status_callback, extra, follow=False)

    def _progress(self, leg: Leg, status_callback: str | None, events: set[str], event: str) -> None:
        """A call progress event (initiated, ringing, answered) the call asked for with StatusCallbackEvent.

        https://www.twilio.com/docs/voice/twiml/number#attributes-status-callback-event: answered reports
        CallStatus in-progress.
        """
        if status_callback and event in events:
            status = {"answered": "in-progress"}.get(event, event)
            self._post(leg, leg.record, status_callback, {"CallStatus": status, "CallbackSource": "call-progress-events"},
                       follow=False)

    def _detect_machine(self, leg: Leg, record: CallRecord, amd: AmdSettings) -> dict:
        """Answering machine detection on a just-answered call: the AnsweredBy the first request carries (sync),
        or nothing, with the result posted to the AMD callback when the leg's clock gets there (async)."""
        answered_by, seconds = detect(leg.party, amd)
        if amd.asynchronous:
            self._report_machine(leg, record, amd.callback, answered_by, seconds, leg.answered_clock + seconds)
            return {}
        # Synchronous: "blocks the execution of the call until Answering Machine Detection is completed".
        self._wait(leg, seconds)
        leg.answered_by = answered_by
        record.say("network", f"answering machine detection: {answered_by} after {seconds:.1f} s")
        return {"AnsweredBy": answered_by}

    def _report_machine(self, leg: Leg, record: CallRecord, callback: str | None, answered_by: str,
                        seconds: float, at: float, on: Leg | None = None) -> None:
        """Post an asynchronous AMD result to `callback` once the clock of `on` (default `leg`) reaches `at`."""
        def report() -> None:
            leg.answered_by = answered_by
            record.say("network", f"answering machine detection: {answered_by} after {seconds:.1f} s")
            if callback:
                self._post(leg, record, callback, {"AnsweredBy": answered_by,
                                                   "MachineDetectionDuration": str(int(seconds * 1000))},
                           follow=False)
            else:
                # https://www.twilio.com/docs/api/errors/21262: no AMD status callback URL
                record.say("network", "(warning 21262: no AMD status callback URL was given)")

        (on or leg).events.append((at, report))

    def _fire_due(self, leg: Leg, everything: bool = False) -> None:
        """Run the leg's scheduled events whose time has come (all of them once the call is over)."""
        if not leg.events:
            return
        now = self._now(leg)
        due = [event for event in leg.events if everything or event[0] <= now]
        for event in due:
            leg.events.remove(event)
        for _, action in sorted(due, key=lambda event: event[0]):
            action()

    def _settle(self, record: CallRecord) -> None:
        if not self.callbacks.settle(TWILIO_TIMEOUT_SECONDS):
            record.problem("slow: conference or message callbacks were still unanswered after 15 s")

    def _disconnect(self, call_sid: str, how: str, wait: bool) -> Leg:
        with self._lock:
            leg = self.legs[call_sid]
            if leg.status != "in-progress":
                raise CallStateError(f"Call is {leg.status}, not in progress")
            leg.control = (how,)
            parent = self.legs.get(leg.parent_sid) if leg.parent_sid else None
        leg.wake.set()
        if parent is not None:
            parent.wake.set()  # a dialed leg has no thread of its own: its caller's leg holds the bridge
        if wait:
            leg.ended.wait(5)
        return leg

    def _tell(self, leg: Leg, record: CallRecord, text: str) -> None:
        """Something said to the party on `leg`: into the transcript, and to the party (a voicemail records it)."""
        record.say(f"to {leg.party.label}", text)
        leg.party.hear(text, self._now(leg) - leg.answered_clock)

    def _now(self, leg: Leg) -> float:
        return self.clock() if self.time_scale > 0 else leg.counted

    def _checkpoint(self, leg: Leg) -> None:
        """Act on what arrived for this leg meanwhile: a REST hangup, cancel or redirect, a dequeue, a dropped
        line or the party hanging up, a change in its conference; and run its scheduled events."""
        self._fire_due(leg)
        if leg.hangup_at is not None and leg.status == "in-progress" and self._now(leg) >= leg.hangup_at:
            leg.hangup_at = None
            leg.record.say(leg.party.label, "(hangs up)")
            raise Disconnected("party-hangup")
        with self._lock:
            control = leg.control
            if control is not None and control[0] in ("redirect", "drop", "party-hangup"):
                leg.control = None
            dequeued = leg.member is not None and (leg.member.bridge or leg.member.dequeue_target)
            participant = leg.participant
            interrupted = participant is not None and participant.playing and participant.interrupt
        if control is not None:
            if control[0] == "hangup":
                raise HungUpByApi()
            if control[0] == "cancel":
                raise Canceled()
            if control[0] == "drop":
                leg.record.say("network", f"{leg.party.label}'s line drops (signal lost)")
                raise Disconnected("dropped")
            if control[0] == "party-hangup":
                leg.record.say(leg.party.label, "(hangs up)")
                raise Disconnected("party-hangup")
            raise Redirected(control[1])
        if dequeued:
            raise Dequeued()
        if interrupted:
            raise Interrupted()

    def _wait(self, leg: Leg, seconds: float | None, until: Callable[[], bool] = lambda: False,
              idle: bool = False) -> bool:
        """Spend `seconds` of the clock on this leg (None: as long as it takes) unless `until()` comes true first.

        Interrupted by the REST API or a dequeue (raises). Returns whether `until()` came true.
        """
        self._checkpoint(leg)
        if until():
            return True
        hangs_up = False
        if seconds is not None and leg.hangup_at is not None and leg.status == "in-progress":
            # The party hangs up of their own accord (a voicemail's longest message) partway through.
            left = max(leg.hangup_at - self._now(leg), 0.0)
            hangs_up, seconds = left < seconds, min(seconds, left)
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
        if hangs_up and not came_true:
            self._checkpoint(leg)
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
            except Disconnected as gone:
                return gone.how
            except TwiMLError as error:
                record.problem(str(error))
                self._tell(leg, record, "[Twilio] We are sorry, an application error has occurred. Goodbye.")
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
        params.update(leg.extra_params)
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
                self._tell(leg, record, "[Twilio] We are sorry, an application error has occurred. Goodbye.")
                return None
        elif follow and "xml" not in content_type:
            record.problems.append(f"invalid: {url} answered with Content-Type {content_type!r}, not XML")
        return body

    def _run_document(self, leg: Leg, record: CallRecord, target, context: str) -> str:
        """Fetch TwiML (or take it inline) and run it, chaining through actions; returns how it ended.

        `context` is "call", "wait" (an Enqueue's waitUrl and what it leads to), "dequeue" (a Queue url),
        "whisper" (a Number url), or "conference-wait", "hold", "announce" (a conference's documents).
        """
        if isinstance(target, ConferenceJoin):
            # A participant the REST API added: no TwiML, straight into the conference, and hang up after it.
            self._in_conference(leg, record, target.participant, None)
            return "end"
        visits: dict[str, int] = {}
        deferred: list = []
        # A waiting document may loop on itself (a <Redirect> to its own URL) for as long as the caller waits.
        repeats = self.max_wait_cycles if context in WAITING_CONTEXTS else 3
        while True:
            if isinstance(target, Inline):
                url, body = self.base + "/", target.twiml
            else:
                url, extra = target
                key = url + repr(sorted(extra.items()))
                visits[key] = visits.get(key, 0) + 1
                if visits[key] > repeats:
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
        idle = context in WAITING_CONTEXTS
        if element.tag == "Say":
            text = (element.text or "").strip()
            record.mark(f"said:{text}")
            self._tell(leg, record, text)
            if not record.expect_fault and text in FAULT_TEXTS:
                record.problem(f"fault: the caller heard the fault message at {url}")
            loops = max(int(element.get("loop") or 1), 1)
            self._wait(leg, loops * len(text.split()) * 60 / SAY_WORDS_PER_MINUTE, idle=idle)
            return text
        if element.tag == "Play":
            self._tell(leg, record, f"[audio {element.text}]")
            self._wait(leg, self.play_seconds, idle=idle)
        elif element.tag == "Pause":
            # https://www.twilio.com/docs/voice/twiml/pause: length defaults to 1 second.
            self._wait(leg, float(element.get("length") or 1), idle=idle)
        return ""

    def _run_verbs(self, leg: Leg, record: CallRecord, verbs: list[ET.Element], url: str, deferred: list,
                   context: str = "call"):
        """Run one document: the next (url, params) to request, or how the leg ended."""
        allowed = CONTEXT_VERBS.get(context)
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
                action = resolve(url, verb.get("action")) or url
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
                return resolve(url, target), {}
            elif tag == "Dial":
                queues = [child for child in verb if child.tag == "Queue"]
                conferences = [child for child in verb if child.tag == "Conference"]
                if queues:
                    outcome = self._dial_queue(leg, record, verb, queues[0], url)
                elif conferences:
                    outcome = self._dial_conference(leg, record, verb, conferences[0], url)
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
        self._check_gather(record, verb, url, context)
        prompt = " ".join(self._speak(leg, record, child, url, context) for child in verb)
        kinds = set((verb.get("input") or "dtmf").split())
        answer = leg.party.respond(prompt, kinds)
        if answer == HANGUP:
            record.say(leg.party.label, "(hangs up)")
            return "party-hangup"
        action = resolve(url, verb.get("action")) or url
        params = self._gather_params(verb, answer, kinds) if answer else {}
        if params:
            if "Digits" in params:
                self._wait(leg, KEY_PRESS_SECONDS)
            else:
                params["SpeechResult"], seconds = self._recognised(verb, answer)
                self._wait(leg, seconds)
                if params["SpeechResult"] != " ".join(answer.replace(HESITATION, " ").split()):
                    record.say("network", f"speech cut off after {params['SpeechResult']!r}")
            shown = params.get("Digits") or params.get("SpeechResult")
            how = "presses" if "Digits" in params else "says"
            record.say(leg.party.label, f"{how} {shown!r}")
            record.mark(f"{how}:{shown}")  # the moment the last key (or word) was given
            return action, params
        # https://www.twilio.com/docs/voice/twiml/gather: timeout defaults to 5 seconds.
        self._wait(leg, float(verb.get("timeout") or GATHER_TIMEOUT_SECONDS), idle=context == "wait")
        record.say(leg.party.label, "(silence)" if not answer else f"(says {answer!r}; only keys count here)")
        if (verb.get("actionOnEmptyResult") or "").lower() == "true":
            return action, {}
        return None

    @staticmethod
    def _check_gather(record: CallRecord, verb: ET.Element, url: str, context: str) -> None:
        """What Twilio's pages say a <Gather> may not be: refused (a TwiMLError) or reported as a problem."""
        kinds = verb.get("input") or "dtmf"
        if context == "wait" and kinds not in WAIT_GATHER_INPUTS:
            raise TwiMLError(f"invalid: <Gather input=\"{kinds}\"> in a waitUrl document ({url}); the <Enqueue> page "
                             "names dtmf and speech")
        if verb.get("speechModel") and (verb.get("speechTimeout") or "").lower() == "auto":
            # https://www.twilio.com/docs/api/errors/13335: "Use a positive integer for speechTimeout whenever you set
            # speechModel on <Gather>. Twilio does not support speechTimeout="auto" in this configuration."
            record.problem(f"warning 13335: speechTimeout auto with speechModel {verb.get('speechModel')} ({url})")

    @staticmethod
    def _recognised(verb: ET.Element, answer: str) -> tuple[str, float]:
        """What Twilio hears of a spoken answer, and how long until it posts it: speaking, then the speech timeout.

        https://www.twilio.com/docs/voice/twiml/gather#speechtimeout: a number is the seconds of silence after
        speech before recognition stops; "auto" stops at the first pause. Unset, it is the Gather's timeout. A
        caller's hesitation ("twelve hundred ... Salem Avenue") is such a pause: what follows a cut is lost.
        """
        setting = (verb.get("speechTimeout") or verb.get("timeout") or str(GATHER_TIMEOUT_SECONDS)).lower()
        pieces = [piece.strip() for piece in answer.split(HESITATION) if piece.strip()] or [answer]
        heard, seconds = [pieces[0]], speaking_seconds(pieces[0])
        for piece in pieces[1:]:
            if setting == "auto" or float(setting) <= HESITATION_SECONDS:
                break
            heard.append(piece)
            seconds += HESITATION_SECONDS + speaking_seconds(piece)
        end = AUTO_END_OF_SPEECH_SECONDS if setting == "auto" else float(setting)
        return " ".join(heard), seconds + end

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
        """Ring the dialed number, run its whisper, bridge, then report to the Dial action.

        The whisper (<Number url>) runs on the called party's side before the bridge; one that hangs up (the
        party declined, or pressed nothing and the document ends in <Hangup>) leaves them unbridged. What
        DialCallStatus Twilio then reports is not documented: the simulator says completed (the called party did
        answer), with DialBridged false (https://www.twilio.com/docs/voice/twiml/dial#action), so an app must
        look at DialBridged, which is right on Twilio either way.
        """
        numbers = [child for child in verb if child.tag == "Number"]
        target = numbers[0] if numbers else None
        number = ((target.text if target is not None else verb.text) or "").strip()
        caller_id = verb.get("callerId") or leg.to_number
        party = self.network.get(number)
        child = Leg(new_sid(), caller_id, number, party or Party(), "outbound-dial", parent_sid=leg.sid,
                    status="ringing", counted=leg.counted, record=record)
        child.request_limit = self.max_requests
        # The dialed leg is a call of its own on Twilio: the REST API can fetch it, the network can drop it.
        with self._lock:
            self.legs[child.sid] = child
        record.say("network", f"dialing {number}" + (f" ({party.label})" if party else " (nobody there)"))
        status, duration, bridged = "no-answer", 0, False
        # https://www.twilio.com/docs/voice/twiml/dial#timeout: rings 30 seconds unless told otherwise.
        ring_for = float(verb.get("timeout") or 30)
        callback = target.get("statusCallback") if target is not None else None
        try:
            if party is not None and party.busy:
                status = "busy"
                record.say("network", f"{number} is busy")
            elif party is not None and party.answers and party.answer_after <= ring_for:
                self._wait(leg, party.answer_after)
                child.counted = child.answered_clock = leg.counted
                child.status = "in-progress"
                status = "completed"
                self._dial_machine_detection(leg, child, record, target)
                url = target.get("url") if target is not None else None
                # A whisper that runs to its end bridges the two; one that hangs up does not.
                ended = self._run_document(child, record, (resolve(self.base + "/", url), {}), "whisper") if url else "end"
                leg.counted = max(leg.counted, child.counted)
                if ended == "end":
                    bridged = True
                    record.bridged_with.append(number)
                    self._mark_bridge(record, party)
                    record.say("network", f"{leg.party.label} and {party.label} are connected")
                    talk = party.talk_seconds
                    started = self._now(leg)
                    if self._wait(leg, talk, until=lambda: child.control is not None):
                        gone = "'s line drops (signal lost)" if child.control == ("drop",) else " hangs up"
                        record.say("network", f"{party.label}{gone}")
                        duration = int(round(self._now(leg) - started))
                    else:
                        duration = talk
                        record.say("network", f"(they talk for {talk // 60} min {talk % 60} s; "
                                              f"{party.label} hangs up)")
            else:
                self._wait(leg, ring_for)
                record.say("network", f"{number} rang {verb.get('timeout', '30')} seconds, no answer")
        except BaseException:
            # The caller's side ended mid-call (hung up, dropped, redirected): the dialed leg ends with it.
            if callback and child.status == "in-progress":
                self._post(child, record, callback, {"CallStatus": "completed", "CallDuration": str(duration)},
                           follow=False)
            raise
        finally:
            child.status = status if child.status != "in-progress" else "completed"
            child.ended_at = datetime.now(UTC)
            child.ended.set()
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
            return action, {"DialCallStatus": status, "DialCallSid": child.sid, "DialCallDuration": str(duration),
                            "DialBridged": str(bridged).lower()}
        return None

    def _dial_machine_detection(self, leg: Leg, child: Leg, record: CallRecord, target: ET.Element | None) -> None:
        """<Number machineDetection>: always asynchronous, reported to amdStatusCallback.

        https://www.twilio.com/docs/voice/twiml/number#attributes-machine-detection and the AMD FAQ (AMD on
        <Dial><Number> is "asynchronous by default and cannot be configured to behave otherwise").
        """
        if target is None or not target.get("machineDetection"):
            return
        form = {key[0].upper() + key[1:]: value for key, value in target.attrib.items()}
        try:
            amd = AmdSettings.from_form(form, asynchronous=True, callback_field="AmdStatusCallback")
        except ValueError as error:
            raise TwiMLError(f"invalid: <Number> {error}") from None
        answered_by, seconds = detect(child.party, amd)
        callback = resolve(self.base + "/", amd.callback) if amd.callback else None
        self._report_machine(child, record, callback, answered_by, seconds, self._now(leg) + seconds, on=leg)
