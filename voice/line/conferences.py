"""Every bridge is a conference, one per caller's call and named for it: how each person joins, and who is in
it now, as Twilio's conference and participant status callbacks report it.

Who joins, and how (docs/call-model.md tells the whole model):

- the caller (label `caller`): startConferenceOnEnter false, so a caller who arrives first hears the wait music,
  never silence; endConferenceOnExit true, so the caller leaving ends the call for everyone, as a hangup ended
  the two-party bridge;
- the specialist (label `specialist`): startConferenceOnEnter true (they start it), endConferenceOnExit false
  (a specialist's line dropping must not drop the caller), and hangupOnStar: * ends the call on purpose;
- anyone added through the Participants API (an interpreter, a supervisor, a transfer's third party):
  startConferenceOnEnter true, endConferenceOnExit false, and no beep, so nobody is told that a supervisor
  is listening.

https://www.twilio.com/docs/voice/twiml/conference#attributes-startConferenceOnEnter ("If a participant joins
and startConferenceOnEnter is false, that participant will hear background music and stay muted until a
participant joins where startConferenceOnEnter is true"), #attributes-endConferenceOnExit ("If a participant has
this attribute set to true, then when that participant leaves, the conference ends and all other participants
drop out"), and https://www.twilio.com/docs/voice/twiml/conference#attributes-status-callback-event for the
events recorded here.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import bindparam, select, update
from sqlalchemy.orm import Session
from twilio.twiml.voice_response import VoiceResponse

from voice.clock import utcnow
from voice.line import calls
from voice.models import Call, ConferenceParticipant
from voice.twiml import webhook_url

CALLER = "caller"
SPECIALIST = "specialist"
INTERPRETER = "interpreter"
TRANSFER = "transfer"
SUPERVISOR = "supervisor"
# Every event the line records on the timeline (the REST API's default is only start and end).
EVENTS = ("start", "end", "join", "leave", "hold", "mute", "modify")
# A participant's own call still going (they were moved or pressed *) is not their line dropping.
GONE_STATUSES = frozenset({"completed", "busy", "no-answer", "failed", "canceled"})
EVENT_KINDS = {
    "conference-start": "conference_started",
    "conference-end": "conference_ended",
    "participant-join": "participant_joined",
    "participant-leave": "participant_left",
    "participant-hold": "participant_held",
    "participant-unhold": "participant_unheld",
    "participant-mute": "participant_muted",
    "participant-unmute": "participant_unmuted",
    "participant-modify": "participant_changed",
}

PARTICIPANTS_OF_CALL = (select(ConferenceParticipant).where(ConferenceParticipant.call_id == bindparam("call_id"))
                        .order_by(ConferenceParticipant.id))


def name(call: Call) -> str:
    """The conference's FriendlyName: the caller's Call SID, never their number or name (Twilio asks for no
    personal data in a conference's name: https://www.twilio.com/docs/voice/twiml/conference)."""
    return f"ml-{call.call_sid}"[:64]


def status_url(call: Call) -> str:
    return webhook_url("/voice/conference/status", call=call.call_sid)


def join(response: VoiceResponse, call: Call, label: str, action: str, *, start: bool, end: bool,
         hangup_on_star: bool = False) -> VoiceResponse:
    """Add the <Dial><Conference> that puts this leg in the call's conference; `action` hears how it left."""
    dial = response.dial(action=action, method="POST", hangup_on_star=True if hangup_on_star else None)
    dial.conference(name(call), participant_label=label, start_conference_on_enter=start,
                    end_conference_on_exit=end, beep=False, status_callback=status_url(call),
                    status_callback_event=" ".join(EVENTS), status_callback_method="POST")
    return response


def added_options(call: Call, label: str, **extra: object) -> dict:
    """The Participants API options of someone dialed into the call's conference (see the module docstring)."""
    return {"label": label, "beep": "false", "start_conference_on_enter": True, "end_conference_on_exit": False,
            "conference_status_callback": status_url(call), "conference_status_callback_event": list(EVENTS),
            "conference_status_callback_method": "POST", **extra}


# --- who is in the conference ---------------------------------------------------------------------------------


def participants(db: Session, call: Call) -> list[ConferenceParticipant]:
    with db.no_autoflush:
        return list(db.scalars(PARTICIPANTS_OF_CALL, {"call_id": call.id}))


def present(db: Session, call: Call) -> list[ConferenceParticipant]:
    """Everyone in (or being dialed into) the call's conference now."""
    return [p for p in participants(db, call) if p.left_at is None]


def in_now(db: Session, call: Call, label: str) -> ConferenceParticipant | None:
    """The participant with this label who is in the conference now (joined, not left)."""
    return next((p for p in present(db, call) if p.label == label and p.joined_at is not None), None)


def conference_sid(db: Session, call: Call) -> str | None:
    """The SID of the call's conference while anyone is in it."""
    return next((p.conference_sid for p in reversed(present(db, call)) if p.conference_sid), None)


def dialing(db: Session, call: Call, label: str, conference: str = "", **fields: object) -> ConferenceParticipant:
    """Someone is about to be dialed into the conference: on the call (and on the board) from now, committed before
    Twilio is asked, so their first event (which may come before Twilio's answer to us) finds them by label."""
    row = ConferenceParticipant(call_id=call.id, call_sid="", label=label, conference_sid=conference, **fields)
    db.add(row)
    calls.record_event(db, call, "participant_dialed", label=label, **{
        key: value for key, value in fields.items() if key in ("detail", "specialist_id")})
    db.commit()
    return row


def dialed(db: Session, row: ConferenceParticipant, call_sid: str | None) -> None:
    """Twilio answered the request to dial them: their call's SID (unless their first event already said it), or
    None when Twilio refused (they are off the call again)."""
    if call_sid is None:
        row.left_at, row.left_reason = utcnow(), "not placed"
        return
    db.execute(update(ConferenceParticipant).where(ConferenceParticipant.id == row.id,
                                                   ConferenceParticipant.call_sid == "")
               .values(call_sid=call_sid[:64]).execution_options(synchronize_session=False))


# --- what Twilio's status callbacks say ----------------------------------------------------------------------


@dataclass(frozen=True)
class Update:
    """One conference or participant event, as the upper layers act on it."""

    event: str
    label: str | None
    call_sid: str | None
    call_status: str | None
    reason: str | None
    participant: ConferenceParticipant | None

    @property
    def gone(self) -> bool:
        """A participant whose own call ended (their line dropped, or they hung up), not one moved or ended by us."""
        return self.event == "participant-leave" and (self.call_status or "") in GONE_STATUSES


def record_status(db: Session, call: Call, form: dict, specialist_id: int | None = None) -> Update:
    """Put one status callback on the call's timeline and on its participants; `specialist_id` is the specialist
    whose leg a `specialist` label stands for (the one who took the caller)."""
    event = form.get("StatusCallbackEvent", "")
    label = (form.get("ParticipantLabel") or "")[:40] or None
    sid = (form.get("CallSid") or "")[:64] or None
    conference = (form.get("ConferenceSid") or "")[:34]
    status, reason = form.get("ParticipantCallStatus"), form.get("ReasonParticipantLeft")
    detail: dict = {"conference_sid": conference}
    if sid:
        detail.update(label=label, participant_call_sid=sid)
    if event == "participant-leave":
        detail.update(reason=reason, call_status=status)
    if event == "conference-end":
        detail.update(reason=form.get("ReasonConferenceEnded"), ended_by=form.get("ParticipantLabelEndingConference"))
    if event in EVENT_KINDS:
        calls.record_event(db, call, EVENT_KINDS[event], **detail)
    row = None
    if sid and event.startswith("participant-"):
        row = _participant(db, call, sid, conference, label, specialist_id if label == SPECIALIST else None)
        now = utcnow()
        if event == "participant-join":
            row.joined_at = row.joined_at or now
        elif event == "participant-leave":
            row.left_at, row.left_reason = now, (reason or "left")[:40]
        elif event in ("participant-hold", "participant-unhold"):
            row.on_hold = event == "participant-hold"
        db.flush()  # the layers above ask who is in now, this event included
    elif event == "conference-end":
        # Everyone still in is out: the conference is over, whatever order the leave events come in.
        for other in present(db, call):
            if other.conference_sid in ("", conference) and other.joined_at is not None:
                other.left_at, other.left_reason = utcnow(), other.left_reason or "conference_ended"
    return Update(event, label, sid, status, reason, row)


def _participant(db: Session, call: Call, sid: str, conference: str, label: str | None,
                 specialist_id: int | None) -> ConferenceParticipant:
    """This call's participant row for one leg in this conference (made on its first event)."""
    for row in reversed(participants(db, call)):
        if row.conference_sid not in ("", conference) or row.left_at is not None:
            continue
        if row.call_sid == sid or (row.call_sid == "" and row.label == label):
            row.call_sid = sid
            row.conference_sid = conference or row.conference_sid
            return row
    row = ConferenceParticipant(call_id=call.id, call_sid=sid, conference_sid=conference, label=label or "someone",
                                specialist_id=specialist_id)
    db.add(row)
    return row


def on_calls_now(db: Session, within_hours: int = 12) -> list[tuple[Call, list[ConferenceParticipant]]]:
    """Every call with people in its conference now, and who they are (the board), longest running first."""
    since = utcnow() - timedelta(hours=within_hours)
    rows = db.scalars(select(ConferenceParticipant).where(ConferenceParticipant.left_at.is_(None),
                                                          ConferenceParticipant.added_at >= since)
                      .order_by(ConferenceParticipant.call_id, ConferenceParticipant.id)).all()
    by_call: dict[int, list[ConferenceParticipant]] = {}
    for row in rows:
        by_call.setdefault(row.call_id, []).append(row)
    found = db.scalars(select(Call).where(Call.id.in_(by_call), Call.ended_at.is_(None))).all() if by_call else []
    return sorted(((call, by_call[call.id]) for call in found), key=lambda pair: pair[0].started_at)


def who(participant: ConferenceParticipant) -> str:
    """How the board names a participant."""
    if participant.label == CALLER:
        return "Caller"
    if participant.label == SPECIALIST:
        return participant.specialist.name if participant.specialist else "Specialist"
    if participant.label == INTERPRETER:
        return f"Interpreter ({participant.detail})" if participant.detail else "Interpreter"
    if participant.label.startswith(SUPERVISOR):
        name = participant.user.email if participant.user else "Supervisor"
        return f"{name} ({SUPERVISOR_WORDS.get(participant.detail or '', 'listening')})"
    if participant.label == TRANSFER:
        return f"Transfer: {participant.detail or 'a service'}"
    return participant.label


SUPERVISOR_WORDS = {"listen": "listening", "coach": "coaching", "join": "joined"}


def interpreter_minutes(db: Session, since: datetime, until: datetime) -> dict[str, float]:
    """Minutes interpreters were in calls that started in [since, until), by language where it was keyed."""
    rows = db.execute(select(ConferenceParticipant.detail, ConferenceParticipant.joined_at,
                             ConferenceParticipant.left_at)
                      .join(Call, Call.id == ConferenceParticipant.call_id)
                      .where(ConferenceParticipant.label == INTERPRETER, ConferenceParticipant.joined_at.is_not(None),
                             Call.started_at >= since, Call.started_at < until)).all()
    minutes: dict[str, float] = {}
    for language, joined, left in rows:
        key = language or "not keyed"
        minutes[key] = minutes.get(key, 0.0) + ((left or utcnow()) - joined).total_seconds() / 60
    return {key: round(value, 1) for key, value in sorted(minutes.items())}
