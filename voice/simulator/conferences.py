"""Conferences: <Dial><Conference> on a leg, the REST API's Conference and Participant resources, who hears whom.

A conference (https://www.twilio.com/docs/voice/conference) is created when its first participant connects
(or a participant is added to a new FriendlyName through the REST API) and is `init`: its participants hear
the waitUrl. It starts (`in-progress`) once at least two participants are in it and one of them has
startConferenceOnEnter (https://www.twilio.com/docs/voice/twiml/conference, statusCallbackEvent `start`),
and ends (`completed`) when its last participant leaves, a participant with endConferenceOnExit leaves, or the
REST API sets Status=completed. A participant who leaves while the call goes on (the conference ended, they
were kicked) carries on with its TwiML: the <Dial> action (DialCallStatus `answered`) or the next verb; a
participant the REST API added has no TwiML, so its call hangs up.

Who hears whom (https://www.twilio.com/docs/voice/conference, "Key Conference Features"): nobody hears anybody
until the conference starts; a muted participant is heard by nobody; a held participant hears the holdUrl and
neither hears nor is heard; a coach (coach= / Coaching + CallSidToCoach) is heard only by the call it coaches;
announcements are heard by everyone in the conference.

Participants' states: queued -> ringing -> connected -> complete (or failed), one function each: add_participant
(REST) or _join (TwiML), _join, _leave, _end_conference.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET  # noqa: S405 (types only; parsing goes through defusedxml)
from dataclasses import dataclass, field
from datetime import UTC, datetime

from voice.simulator.legs import (
    CallRecord,
    Disconnected,
    HungUpByApi,
    Leg,
    Redirected,
    TwiMLError,
    new_sid,
    resolve,
)
from voice.simulator.rest_answers import flag
from voice.simulator.timing import rfc2822, speaking_seconds

# https://www.twilio.com/docs/api/errors/13238: "The TwiML that executes via the waitUrl, holdUrl, or announceUrl
# can only contain Say, Play, Pause, and Redirect verbs."
CONFERENCE_DOCUMENT_VERBS = {"Play", "Say", "Pause", "Redirect"}
CONFERENCE_CONTEXTS = {"conference-wait": "waitUrl", "hold": "holdUrl", "announce": "announceUrl"}
EVENTS = {"start", "end", "join", "leave", "mute", "hold", "modify", "speaker", "announcement"}
# <Conference beep> and the Participants API's Beep: https://www.twilio.com/docs/voice/twiml/conference#attributes-beep
BEEPS = {"true", "false", "onEnter", "onExit"}
MAX_PARTICIPANTS = 250
# The REST API's ConferenceStatusCallbackEvent default (https://www.twilio.com/docs/voice/api/conference-participant-resource);
# the TwiML statusCallbackEvent has none.
REST_DEFAULT_EVENTS = {"start", "end"}
# With time_scale 0, conference time passes in steps of this many phone seconds, each giving the other legs and
# the app this much real time, so that what happens in a conference interleaves as it would in life.
STEP_SECONDS = 5.0
STEP_YIELD_SECONDS = 0.01
DEFAULT_MUSIC = "default"


class ConferenceError(Exception):
    """A REST request Twilio refuses: its HTTP status and Twilio error code."""

    def __init__(self, status: int, code: int, message: str):
        super().__init__(message)
        self.status = status
        self.code = code


class Interrupted(Exception):  # noqa: N818 (a signal, not an error)
    """What a participant was hearing (wait music, hold music) stops: the conference changed around them."""


@dataclass(frozen=True)
class ConferenceJoin:
    """The target a REST-added participant's call runs when answered: straight into its conference."""

    participant: Participant


@dataclass(eq=False)
class Announcement:
    """An AnnounceUrl played to one participant, or to everyone (the conference's: one event when all heard it)."""

    url: str
    to_everyone: bool = False
    # Participants yet to hear a conference-wide announcement.
    left: int = 1


@dataclass(eq=False)
class Speech:
    """Something a participant (or an announcement) said in a conference, and who heard it."""

    text: str
    heard_by: list[str]


@dataclass(eq=False)
class Conference:
    name: str
    sid: str
    status: str = "init"
    participants: list[Participant] = field(default_factory=list)
    created_at: datetime = field(default_factory=lambda: datetime.now(UTC))
    updated_at: datetime = field(default_factory=lambda: datetime.now(UTC))
    # Set by the first participant to join: "Subsequent statusCallbackEvents will be ignored."
    status_callback: str | None = None
    events: set[str] = field(default_factory=set)
    configured: bool = False
    max_participants: int = MAX_PARTICIPANTS
    reason_ended: str | None = None
    call_sid_ending: str | None = None
    sequence: int = 0
    # The furthest any participant's clock has come (time_scale 0): joining participants catch up to it.
    clock: float = 0.0
    speech: list[Speech] = field(default_factory=list)
    # Every status callback posted: its parameters and the app's HTTP status.
    callbacks: list[dict] = field(default_factory=list)

    def heard_by(self, call_sid: str) -> str:
        """Everything the call `call_sid` heard said in this conference, as one string (for assertions)."""
        return " ".join(s.text for s in self.speech if call_sid in s.heard_by)

    def find(self, key: str) -> Participant | None:
        """The participant with this CallSid or label, among those now in (or being added to) the conference."""
        return next((p for p in self.participants if key in (p.leg.sid, p.label)), None)

    def events_posted(self, name: str | None = None) -> list[dict]:
        """The parameters of each status callback posted (only `name`, e.g. "participant-leave", if given)."""
        return [c["params"] for c in self.callbacks if name in (None, c["params"]["StatusCallbackEvent"])]


@dataclass(eq=False)
class Participant:
    conference: Conference
    leg: Leg
    label: str | None = None
    muted: bool = False
    hold: bool = False
    hold_url: str | None = None
    coaching: bool = False
    call_sid_to_coach: str | None = None
    start_on_enter: bool = True
    end_on_exit: bool = False
    beep: str = "true"
    # DEFAULT_MUSIC: Twilio's hold music; "": silence; else a waitUrl run once, then silence.
    wait_url: str = DEFAULT_MUSIC
    status: str = "queued"
    via_api: bool = False
    # The ReasonParticipantLeft once someone else took them out (kicked, the conference ended).
    removed: str | None = None
    announcements: list[Announcement] = field(default_factory=list)
    date_created: datetime = field(default_factory=lambda: datetime.now(UTC))
    date_updated: datetime = field(default_factory=lambda: datetime.now(UTC))
    # Set when what they hear must stop now (the conference started, they were put on hold, ...); a document
    # they are `playing` (waitUrl, holdUrl) is then cut short.
    interrupt: bool = False
    playing: bool = False
    # <Dial hangupOnStar="true">: pressing * takes them out of the conference, and their TwiML goes on.
    hangup_on_star: bool = False
    left_by_star: bool = False


def can_hear(listener: Participant, speaker: Participant) -> bool:
    """Twilio's rules for one participant hearing another (see the module docstring)."""
    if listener is speaker or listener.conference.status != "in-progress":
        return False
    if listener.status != "connected" or speaker.status != "connected":
        return False
    if speaker.muted or speaker.hold or listener.hold:
        return False
    if speaker.coaching:
        return listener.leg.sid == speaker.call_sid_to_coach
    return True


def event_names(value: str | None) -> set[str]:
    """statusCallbackEvent values, space-separated (TwiML) or joined from repeated form fields."""
    return set((value or "").replace(",", " ").split())


class ConferenceCalls:
    """The phone's conferences (a mixin of SimulatedPhone)."""

    # -- public: what tests and the fake REST API use --

    def conference(self, name: str) -> Conference | None:
        """The latest conference with this FriendlyName (a completed one stays until another takes the name)."""
        with self._lock:
            return next((c for c in reversed(self.conferences) if c.name == name), None)

    def find_conference(self, sid: str) -> Conference | None:
        with self._lock:
            return next((c for c in self.conferences if c.sid == sid), None)

    def speak(self, call_sid: str, text: str) -> list[str]:
        """The party on `call_sid` says `text` in its conference now: returns the CallSids of those who heard it.

        KeyError when that call is in no conference.
        """
        leg = self.legs[call_sid]
        participant = leg.participant
        if participant is None:
            raise KeyError(call_sid)
        return self._say_in_conference(participant, text)

    def add_participant(self, key: str, leg: Leg, settings: dict, conference_settings: dict) -> Participant:
        """A participant the REST API adds (Participants create): queued now, joins when its call is answered.

        `key` is a ConferenceSid (which must be active) or a FriendlyName (a new conference if none is active).
        https://www.twilio.com/docs/voice/api/conference-participant-resource#create-a-participant
        """
        with self._lock:
            if key.startswith("CF") and len(key) == 34:
                conference = self.find_conference(key)
                if conference is None or conference.status == "completed":
                    # "If a conference specified by ConferenceSid is not active, the request fails."
                    raise ConferenceError(404, 20404, f"Conference {key} is not active")
            else:
                conference = self._active_conference(key)
            participant = Participant(conference, leg, via_api=True, **settings)
            self._check_joining(conference, participant)
            self._configure(conference, **conference_settings)
            conference.participants.append(participant)
            leg.participant = participant
        return participant

    def update_participant(self, conference_sid: str, key: str, changes: dict) -> Participant:
        """Mute, hold, coach, announce to or change a participant (Participants update); ConferenceError if not."""
        events: list[tuple[str, dict]] = []
        with self._lock:
            participant = self.participant(conference_sid, key)
            conference = participant.conference
            coach_to = changes.get("call_sid_to_coach", participant.call_sid_to_coach)
            coaching = changes.get("coaching", True if "call_sid_to_coach" in changes else participant.coaching)
            if coaching and not coach_to:
                raise ConferenceError(400, 20001, "CallSidToCoach is required when Coaching is true")
            if coaching and conference.find(coach_to) is None:
                raise ConferenceError(400, 20001, f"CallSidToCoach {coach_to} is not in the conference")
            if "muted" in changes and changes["muted"] != participant.muted:
                participant.muted = changes["muted"]
                events.append(("mute", {"StatusCallbackEvent": "participant-" + ("mute" if participant.muted else "unmute")}))
            if "hold" in changes and changes["hold"] != participant.hold:
                participant.hold = changes["hold"]
                participant.interrupt = True
                events.append(("hold", {"StatusCallbackEvent": "participant-" + ("hold" if participant.hold else "unhold")}))
            if "hold_url" in changes:
                participant.hold_url = changes["hold_url"]
            modified = False
            if (coaching, coach_to) != (participant.coaching, participant.call_sid_to_coach):
                participant.coaching, participant.call_sid_to_coach = coaching, coach_to if coaching else None
                modified = True
            for name in ("end_on_exit", "beep", "wait_url"):
                if name in changes and changes[name] != getattr(participant, name):
                    setattr(participant, name, changes[name])
                    modified = True
            if modified:
                # "participant-modify: BeepOnExit, EndConferenceOnExit, Coaching, WaitUrl"
                events.append(("modify", {"StatusCallbackEvent": "participant-modify"}))
            if changes.get("announce_url"):
                participant.announcements.append(Announcement(changes["announce_url"]))
                participant.interrupt = True
            participant.date_updated = datetime.now(UTC)
        participant.leg.wake.set()
        for event, params in events:
            self._conference_event(conference, event, params, participant)
        self._note_bridges(conference)  # unheld, unmuted or no longer coaching: heard by more people now
        return participant

    def remove_participant(self, conference_sid: str, key: str) -> Participant:
        """Kick a participant (Participants delete): their TwiML goes on, or a REST-added call hangs up."""
        with self._lock:
            participant = self.participant(conference_sid, key)
            participant.removed = "participant_updated_via_api"
            participant.interrupt = True
        self._leave(participant, "participant_updated_via_api", self._status_when_taken_out(participant), kicked=True)
        participant.leg.wake.set()
        return participant

    @staticmethod
    def _status_when_taken_out(participant: Participant) -> str:
        """The CallStatus of someone taken out of a conference: a call still ringing is canceled; a call added by
        REST ends; one that joined by TwiML goes on to its next verb."""
        if participant.status != "connected":
            participant.leg.control = ("cancel",)
            return "canceled"
        return "completed" if participant.via_api else "in-progress"

    def update_conference(self, sid: str, status: str | None = None, announce_url: str | None = None) -> Conference:
        """End a conference (Status=completed) or announce into it (AnnounceUrl); ConferenceError if not active.

        https://www.twilio.com/docs/voice/api/conference-resource#update-a-conference-resource
        """
        with self._lock:
            conference = self.find_conference(sid)
            if conference is None or conference.status == "completed":
                raise ConferenceError(404, 20404, f"Conference {sid} is not active")
            if announce_url and conference.status != "in-progress":
                # "an announcement can be played ... at any time after the Conference has started"; what Twilio
                # answers before that is not documented: refused, so an app never counts on it being heard.
                raise ConferenceError(400, 20001, "The conference has not started; nothing to announce into")
            if announce_url:
                listeners = [p for p in conference.participants if p.status == "connected"]
                announcement = Announcement(announce_url, to_everyone=True, left=len(listeners))
                for participant in listeners:
                    participant.announcements.append(announcement)
                    participant.interrupt = True
                    participant.leg.wake.set()
        if status == "completed":
            self._end_conference(conference, "conference-ended-via-api", None)
        return conference

    # -- <Dial><Conference> --

    def _dial_conference(self, leg: Leg, record: CallRecord, verb: ET.Element, noun: ET.Element, url: str):
        """Join the named conference, stay until taken out, then the Dial action (DialCallStatus answered).

        The <Dial> attributes that matter to a conference are action, method and hangupOnStar (a party presses *
        with `press`); timeLimit is not simulated.
        """
        name = (noun.text or "").strip()
        action = resolve(url, verb.get("action"))
        try:
            settings, conference_settings = self._twiml_settings(noun, url, record)
        except ValueError as error:
            raise TwiMLError(f"invalid: <Conference> {error} ({url})") from None
        with self._lock:
            conference = self._active_conference(name)
            participant = Participant(conference, leg, **settings)
            participant.hangup_on_star = (verb.get("hangupOnStar") or "").lower() == "true"
            try:
                self._check_joining(conference, participant)
            except ConferenceError as refused:
                refusal = refused
            else:
                refusal = None
                self._configure(conference, **conference_settings)
                conference.participants.append(participant)
                leg.participant = participant
        if refusal is not None:
            record.say("network", f"not joined to conference {name!r}: {refusal} ({refusal.code})")
            if refusal.code == 13240:
                record.problem(f"error 13240: {refusal} ({url})")
            if refusal.code == 16025:
                # "The call will not be added into the conference and instead continue to the next TwiML verb."
                return None
            # 13240: "the call failing to the action URL"; a full conference (16020) likewise.
            return (action, {"DialCallStatus": "failed"}) if action else None
        self._in_conference(leg, record, participant, action)
        # https://www.twilio.com/docs/voice/twiml/dial#dialcallstatus: "answered: When calling a conference, the
        # called party answered the call and was connected"; DialCallSid and DialCallDuration are "not sent after
        # dialing a conference". After a * (https://www.twilio.com/docs/voice/twiml/dial#hanguponstar): "Twilio
        # submits DialCallStatus=completed to the URL".
        status = "completed" if participant.left_by_star else "answered"
        return (action, {"DialCallStatus": status}) if action else None

    def _twiml_settings(self, noun: ET.Element, url: str, record: CallRecord) -> tuple[dict, dict]:
        """A <Conference> noun's attributes as participant and conference settings; ValueError if Twilio refuses."""
        for attribute in ("waitMethod", "statusCallbackMethod"):
            if (noun.get(attribute) or "POST").upper() != "POST":
                record.problem(f"unsupported: the simulator only requests with POST ({attribute} at {url})")
        beep = noun.get("beep") or "true"
        if beep not in BEEPS:
            raise ValueError(f"beep must be true, false, onEnter or onExit, not {beep!r}")
        wait_url = noun.get("waitUrl")
        coach = noun.get("coach")
        label = noun.get("participantLabel")
        if label is not None and len(label) > 128:
            raise ValueError("participantLabel is longer than 128 characters")
        settings = {
            "muted": bool(flag(noun.get("muted"), "muted")),
            "start_on_enter": flag(noun.get("startConferenceOnEnter"), "startConferenceOnEnter") is not False,
            "end_on_exit": bool(flag(noun.get("endConferenceOnExit"), "endConferenceOnExit")),
            "beep": beep,
            "label": label,
            "wait_url": DEFAULT_MUSIC if wait_url is None else (resolve(url, wait_url) or ""),
            "coaching": bool(coach),
            "call_sid_to_coach": coach or None,
        }
        max_participants = int(noun.get("maxParticipants") or MAX_PARTICIPANTS)
        if not 2 <= max_participants <= MAX_PARTICIPANTS:
            raise ValueError(f"maxParticipants must be 2 to {MAX_PARTICIPANTS}, not {max_participants}")
        unknown = event_names(noun.get("statusCallbackEvent")) - EVENTS
        if unknown:
            raise ValueError(f"statusCallbackEvent has unknown events {sorted(unknown)}")
        conference_settings = {"status_callback": resolve(url, noun.get("statusCallback")),
                               "events": event_names(noun.get("statusCallbackEvent")),
                               "max_participants": max_participants}
        return settings, conference_settings

    # -- joining and leaving --

    def _active_conference(self, name: str) -> Conference:
        """The conference with this FriendlyName that has not ended, or a new one (call under the lock)."""
        conference = next((c for c in self.conferences if c.name == name and c.status != "completed"), None)
        if conference is None:
            conference = Conference(name, new_sid("CF"))
            self.conferences.append(conference)
        return conference

    def _configure(self, conference: Conference, status_callback: str | None, events: set[str],
                   max_participants: int) -> None:
        """The first participant's statusCallback, events and maxParticipants hold for the conference."""
        if not conference.configured:
            conference.configured = True
            conference.status_callback = status_callback
            conference.events = set(events)
            conference.max_participants = max_participants

    def _check_joining(self, conference: Conference, participant: Participant) -> None:
        """ConferenceError if Twilio would not let this participant in (call under the lock)."""
        if participant.label and any(p.label == participant.label for p in conference.participants):
            # https://www.twilio.com/docs/voice/twiml/conference#attributes-participant-label (16025)
            raise ConferenceError(400, 16025, f"A participant labelled {participant.label!r} is already in the conference")
        if len(conference.participants) >= conference.max_participants:
            # https://www.twilio.com/docs/api/errors/16020
            raise ConferenceError(400, 16020, "Conference is full")
        if participant.coaching:
            coached = conference.find(participant.call_sid_to_coach or "")
            if not participant.call_sid_to_coach or coached is None or conference.status != "in-progress" \
                    or coached.status != "connected":
                # https://www.twilio.com/docs/voice/twiml/conference#attributes-coach: a CallSid "currently connected to
                # an in-progress conference", else "the call failing to the action URL and throwing a 13240 error".
                raise ConferenceError(400, 13240, f"{participant.call_sid_to_coach} is not connected to an "
                                                  "in-progress conference")

    def _join(self, leg: Leg, record: CallRecord, participant: Participant) -> None:
        """The participant's call is answered and in the conference: join event, and the start if this starts it."""
        conference = participant.conference
        with self._lock:
            participant.status = "connected"
            participant.date_updated = datetime.now(UTC)
            if self.time_scale == 0:
                leg.counted = max(leg.counted, conference.clock)
            others = [p for p in conference.participants if p is not participant and p.status == "connected"]
            starts = conference.status == "init" and len(others) >= 1 and \
                any(p.start_on_enter for p in [participant, *others])
            if starts:
                conference.status = "in-progress"
                conference.updated_at = datetime.now(UTC)
                conference.clock = max([conference.clock, leg.counted, *(p.leg.counted for p in others)])
                for other in others:
                    other.interrupt = True
                    other.leg.wake.set()
            # Queued under the lock, so nothing said in the conference is reported before it started.
            self._conference_event(conference, "join", {"StatusCallbackEvent": "participant-join"}, participant)
            if starts:
                self._conference_event(conference, "start", {"StatusCallbackEvent": "conference-start"})
        record.say("network", f"{leg.party.label} joins conference {conference.name!r}")
        if starts:
            record.say("network", f"conference {conference.name!r} starts")
        self._note_bridges(conference)
        if conference.status == "in-progress" and participant.beep in ("true", "onEnter"):
            self._to_everyone(conference, "[beep]", but=participant)

    def _note_bridges(self, conference: Conference) -> None:
        """Once a conference is under way, each party's record notes who they can hear (`bridged_with`, and the
        "specialist" or "dispatch" mark a benchmark measures), as a two-party bridge notes the other party."""
        with self._lock:
            if conference.status != "in-progress":
                return
            present = [p for p in conference.participants if p.status == "connected"]
            pairs = [(listener, speaker) for listener in present for speaker in present
                     if can_hear(listener, speaker) and speaker.leg.number not in listener.leg.record.bridged_with]
        for listener, speaker in pairs:
            listener.leg.record.bridged_with.append(speaker.leg.number)
            self._mark_bridge(listener.leg.record, speaker.leg.party)
            listener.leg.record.say("network", f"{listener.leg.party.label} and {speaker.leg.party.label} are connected")

    def press(self, call_sid: str, digits: str) -> bool:
        """The party on `call_sid` presses keys in their conference; True if that took them out of it.

        Only * does anything there, and only for a <Dial hangupOnStar="true">: "When the caller presses '*' Twilio
        will hang up on the called party" (https://www.twilio.com/docs/voice/twiml/dial#hanguponstar); for a
        conference that is the participant leaving it while their call goes on to the Dial action. What
        ReasonParticipantLeft says then is not documented: the simulator says participant_hung_up, with
        ParticipantCallStatus in-progress (their call goes on), so an app must go by the call status.
        """
        with self._lock:
            leg = self.legs[call_sid]
            participant = leg.participant
            starred = participant is not None and participant.hangup_on_star and "*" in digits
            if starred:
                participant.left_by_star = True
        leg.record.say(leg.party.label, f"presses {digits!r}")
        if not starred:
            return False
        self._leave(participant, "participant_hung_up", "in-progress")
        leg.wake.set()
        return True

    def _leave(self, participant: Participant, reason: str, call_status: str, kicked: bool = False) -> None:
        """Take the participant out (once): the leave event, and the end of the conference if that ends it."""
        conference = participant.conference
        with self._lock:
            if participant not in conference.participants:
                return
            conference.participants.remove(participant)
            was_connected = participant.status == "connected"
            participant.status = "complete" if was_connected else "failed"
            participant.removed = participant.removed or reason
            participant.interrupt = True
            participant.date_updated = datetime.now(UTC)
            ends = None
            if conference.status != "completed":
                how = "kicked" if kicked else "left"
                if participant.end_on_exit and was_connected:
                    ends = f"participant-with-end-conference-on-exit-{how}"
                elif not conference.participants:
                    ends = f"last-participant-{how}"
            # https://www.twilio.com/en-us/changelog/participantcallstatus-and-reasonparticipantleft-attributes-added
            self._conference_event(conference, "leave", {"StatusCallbackEvent": "participant-leave",
                                                         "ParticipantCallStatus": call_status,
                                                         "ReasonParticipantLeft": reason}, participant)
        participant.leg.wake.set()
        if was_connected and conference.status == "in-progress" and participant.beep in ("true", "onExit"):
            self._to_everyone(conference, "[beep]", but=participant)
        if ends:
            self._end_conference(conference, ends, participant)

    def _end_conference(self, conference: Conference, reason: str, ending: Participant | None) -> None:
        """The conference is over: everyone still in it drops out (their TwiML goes on), then conference-end."""
        with self._lock:
            if conference.status == "completed":
                return
            conference.status = "completed"
            conference.updated_at = datetime.now(UTC)
            conference.reason_ended = reason
            conference.call_sid_ending = ending.leg.sid if ending else None
            others = list(conference.participants)
        left = "conference_ended_via_api" if reason == "conference-ended-via-api" else "moderator_ended_conference"
        for other in others:
            other.removed = left
            self._leave(other, left, self._status_when_taken_out(other))
        params = {"StatusCallbackEvent": "conference-end", "ReasonConferenceEnded": reason,
                  "Reason": f"Conference ended: {reason}"}
        if ending is not None:
            params["CallSidEndingConference"] = ending.leg.sid
            if ending.label:
                params["ParticipantLabelEndingConference"] = ending.label
        self._conference_event(conference, "end", params)

    # -- being in a conference --

    def _in_conference(self, leg: Leg, record: CallRecord, participant: Participant, action: str | None) -> None:
        """Join and stay until taken out; a hangup, drop or REST change of the call takes the participant out."""
        try:
            self._join(leg, record, participant)
            self._attend(leg, record, participant)
        except (Redirected, HungUpByApi, Disconnected) as gone:
            # Redirected or hung up through the REST API, or the party hung up or was dropped.
            reason = "participant_hung_up" if isinstance(gone, Disconnected) else "participant_updated_via_api"
            status = "in-progress" if isinstance(gone, Redirected) else "completed"
            self._leave(participant, reason, status)
            self._dial_action_ignored(leg, record, action, status)
            raise
        except BaseException:
            self._leave(participant, "participant_hung_up", "completed")
            raise
        finally:
            leg.participant = None
        record.say("network", f"{leg.party.label} is out of conference {participant.conference.name!r} "
                              f"({participant.removed})")

    def _dial_action_ignored(self, leg: Leg, record: CallRecord, action: str | None, call_status: str) -> None:
        """The call left its <Dial><Conference> without the caller going on to it: the action is told, TwiML ignored.

        The docs do not say whether Twilio requests the action when the call itself hangs up or is redirected; as
        for <Enqueue> (whose docs say it does), the simulator requests it and ignores the answer, which an app
        must survive either way. Its CallStatus is the call's own (completed once it hung up), as every request
        says (https://www.twilio.com/docs/voice/twiml#request-parameters).
        """
        if action:
            self._post(leg, record, action, {"DialCallStatus": "answered", "CallStatus": call_status}, follow=False)

    def _attend(self, leg: Leg, record: CallRecord, participant: Participant) -> None:
        """What the participant hears and says until someone takes them out (returns) or their call ends (raises)."""
        conference = participant.conference
        waited = 0
        wait_played = hold_played = False
        talk_started: float | None = None
        lines = list(leg.party.lines)
        while True:
            self._checkpoint(leg)
            if waited > self.max_wait_cycles:
                # A conference nobody starts (or a hold nobody ends) must not hold a test for ever.
                raise TwiMLError(f"stuck: {leg.party.label} waited {waited - 1} times in conference "
                                 f"{conference.name!r} ({'on hold' if participant.hold else 'never started'})")
            with self._lock:
                if participant.removed:
                    return
                participant.interrupt = False
                announcement = participant.announcements.pop(0) if participant.announcements else None
                status = conference.status
                hold = participant.hold
            if announcement:
                self._announce(leg, record, participant, announcement)
            elif hold:
                wait_played = False
                if not hold_played:
                    hold_played = True
                    self._play_conference_document(leg, record, participant, participant.hold_url, "hold")
                else:
                    waited += 1
                    self._conference_wait(leg, self.play_seconds, participant)
            elif status == "init":
                hold_played = False
                waited += 1
                if participant.wait_url == DEFAULT_MUSIC:
                    # Twilio's default classical playlist loops for as long as they wait.
                    self._play_conference_document(leg, record, participant, None, "conference-wait")
                elif participant.wait_url and not wait_played:
                    wait_played = True
                    self._play_conference_document(leg, record, participant, participant.wait_url,
                                                   "conference-wait")
                else:
                    # "Once the TwiML document located at the waitUrl runs out of verbs to execute, silence
                    # will be played" (and waitUrl "" plays nothing at all).
                    self._wait(leg, self.play_seconds, until=lambda: participant.interrupt, idle=True)
            else:
                hold_played = wait_played = False
                if self.time_scale == 0:
                    with self._lock:
                        # Talk time runs on the conference's clock, not on how far this leg had counted alone.
                        leg.counted = max(leg.counted, conference.clock)
                now = self._now(leg)
                if talk_started is None:
                    talk_started = now
                if now - talk_started >= leg.party.talk_seconds:
                    if participant.hangup_on_star and leg.party.ends_with_star:
                        # A party who ends calls with * (a specialist, as the line trains them) leaves that way.
                        self.press(leg.sid, "*")
                        return
                    record.say(leg.party.label, "(hangs up)")
                    raise Disconnected("party-hangup")
                if lines:
                    line = lines.pop(0)
                    self._say_in_conference(participant, line)
                    self._conference_wait(leg, speaking_seconds(line), participant, stop_early=False)
                else:
                    # Listening, or alone once the others have left: the docs say nothing of music after the
                    # start, so the simulator plays silence, and the party stays until their talk time is up.
                    left = leg.party.talk_seconds - (now - talk_started)
                    self._conference_wait(leg, left, participant)

    def _conference_wait(self, leg: Leg, seconds: float, participant: Participant, stop_early: bool = True) -> None:
        """Let `seconds` of conference time pass (less if something changes), in step with the other participants."""
        conference = participant.conference

        def changed() -> bool:
            return stop_early and (participant.interrupt or bool(participant.removed))

        if self.time_scale > 0:
            self._wait(leg, seconds, until=changed)
            return
        remaining = seconds
        while remaining > 0:
            with self._lock:
                leg.counted = max(leg.counted, conference.clock)
            self._checkpoint(leg)
            if changed():
                return
            step = min(remaining, STEP_SECONDS)
            leg.wake.wait(STEP_YIELD_SECONDS)
            leg.wake.clear()
            self._checkpoint(leg)
            if changed():
                return
            leg.counted += step
            remaining -= step
            with self._lock:
                conference.clock = max(conference.clock, leg.counted)

    def _play_conference_document(self, leg: Leg, record: CallRecord, participant: Participant, url: str | None,
                                  context: str) -> None:
        """A waitUrl, holdUrl or announceUrl document, once (None: Twilio's hold music); stops if interrupted."""
        if url is None:
            self._tell(leg, record, "[hold music]")
            self._wait(leg, self.play_seconds, until=lambda: participant.interrupt, idle=True)
            return
        params = {"ConferenceSid": participant.conference.sid, "FriendlyName": participant.conference.name}
        participant.playing = True
        try:
            outcome = self._run_document(leg, record, (url, params), context)
        except Interrupted:
            return
        finally:
            participant.playing = False
        if outcome != "end":
            raise TwiMLError(f"invalid: the {CONFERENCE_CONTEXTS[context]} document at {url} ended the call")

    def _announce(self, leg: Leg, record: CallRecord, participant: Participant, announcement: Announcement) -> None:
        """Play an announcement to the participant (to its end: nothing cuts it short), then announcement-end, or
        announcement-fail if Twilio refuses the document. A conference's announcement is one event, once
        everyone has heard it; a participant's carries the participant ("For participant announcement events,
        Twilio will pass additional participant-related request parameters")."""
        failure = None
        try:
            self._run_document(leg, record, (announcement.url, {"ConferenceSid": participant.conference.sid,
                                                                "FriendlyName": participant.conference.name}),
                               "announce")
        except TwiMLError as error:
            record.problem(str(error))
            failure = str(error)
        with self._lock:
            announcement.left -= 1
            last = announcement.left == 0
        if not last:
            return
        params = {"StatusCallbackEvent": "announcement-fail" if failure else "announcement-end",
                  "AnnounceUrl": announcement.url}
        if failure:
            params["ReasonAnnouncementFailed"] = failure
        self._conference_event(participant.conference, "announcement", params,
                               None if announcement.to_everyone else participant)

    def _say_in_conference(self, speaker: Participant, text: str) -> list[str]:
        """`speaker` says `text`: each participant who can hear them hears it; returns their CallSids."""
        conference = speaker.conference
        with self._lock:
            listeners = [p for p in conference.participants if can_hear(p, speaker)]
            conference.speech.append(Speech(text, [p.leg.sid for p in listeners]))
        speaker.leg.record.say(speaker.leg.party.label, f"(in conference) {text}")
        for listener in listeners:
            self._tell(listener.leg, listener.leg.record, f"{speaker.leg.party.label}: {text}")
        self._conference_event(conference, "speaker", {"StatusCallbackEvent": "participant-speech-start"}, speaker)
        self._conference_event(conference, "speaker", {"StatusCallbackEvent": "participant-speech-stop"}, speaker)
        return [p.leg.sid for p in listeners]

    def _to_everyone(self, conference: Conference, text: str, but: Participant | None = None) -> None:
        with self._lock:
            listeners = [p for p in conference.participants if p is not but and p.status == "connected"]
        for listener in listeners:
            self._tell(listener.leg, listener.leg.record, text)

    # -- finding and reporting --

    def participant(self, conference_sid: str, key: str) -> Participant:
        """The participant (by CallSid or label) in an active conference; ConferenceError 404 if none."""
        conference = self.find_conference(conference_sid)
        participant = conference.find(key) if conference is not None and conference.status != "completed" else None
        if participant is None:
            raise ConferenceError(404, 20404, f"No participant {key} in conference {conference_sid}")
        return participant

    def _conference_event(self, conference: Conference, event: str, params: dict,
                          participant: Participant | None = None) -> None:
        """Post one status callback, if the conference asked for this event (in order, off this thread; it only
        queues the request, so it may be called under the lock to keep events in the order they happened).

        Parameters: https://www.twilio.com/docs/voice/twiml/conference#attributes-status-callback-parameters
        """
        if not conference.status_callback or event not in conference.events:
            return
        with self._lock:
            conference.sequence += 1
            sequence = conference.sequence
        body = {"AccountSid": self.account_sid, "ConferenceSid": conference.sid, "FriendlyName": conference.name,
                "SequenceNumber": str(sequence), "Timestamp": rfc2822(datetime.now(UTC)), **params}
        if participant is not None:
            body.update({"CallSid": participant.leg.sid, "Muted": str(participant.muted).lower(),
                         "Hold": str(participant.hold).lower(), "Coaching": str(participant.coaching).lower(),
                         "EndConferenceOnExit": str(participant.end_on_exit).lower(),
                         "StartConferenceOnEnter": str(participant.start_on_enter).lower()})
            if participant.label:
                body["ParticipantLabel"] = participant.label
            if participant.call_sid_to_coach:
                body["CallSidToCoach"] = participant.call_sid_to_coach
        url = conference.status_callback

        def answered(status: int, text: str) -> None:
            conference.callbacks.append({"url": url, "params": body, "status": status})
            if status != 200:
                problem = f"error: {url} answered HTTP {status} to {body['StatusCallbackEvent']}: {text[:200]}"
                leg = participant.leg if participant is not None else None
                for record in [leg.record] if leg is not None else [p.leg.record for p in conference.participants]:
                    record.problem(problem)

        self.callbacks.post(url, body, answered)
