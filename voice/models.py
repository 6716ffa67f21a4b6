"""The SQL schema: the source of truth for calls, the roster and callbacks."""

from __future__ import annotations

import secrets
from datetime import datetime

from sqlalchemy import (
    Boolean,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    func,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

from voice.clock import utcnow


def new_session_token() -> str:
    return secrets.token_urlsafe(24)


class Base(DeclarativeBase):
    pass


class Specialist(Base):
    __tablename__ = "specialists"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(120))
    phone: Mapped[str] = mapped_column(String(20), unique=True)
    # 1 or 2: the city's two levels of specialist; routing prefers level 2 for complex callers.
    level: Mapped[int] = mapped_column(Integer, default=1, server_default="1")
    # Comma-separated tags, lower case (voice/line/specialists.py normalises them): "en,es,supervisor,family".
    # A tag of two letters is a language, by its ISO 639-1 code.
    skills: Mapped[str] = mapped_column(String(400), default="en", server_default="en")
    # On the roster at all (deactivated specialists are kept for the call history).
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    # Switched on for calls (ON/OFF by SMS, CLI or dashboard).
    available: Mapped[bool] = mapped_column(Boolean, default=False)
    available_since: Mapped[datetime | None] = mapped_column(DateTime)
    # When they texted STOP (or a text to them failed with 21610): Twilio sends them nothing until they text START.
    texts_opted_out_at: Mapped[datetime | None] = mapped_column(DateTime)
    # The secret in the URL of their calendar feed of visits; a new one (or None) revokes the old URL.
    calendar_token: Mapped[str | None] = mapped_column(String(64), unique=True, index=True)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow, onupdate=utcnow)

    @property
    def skill_list(self) -> list[str]:
        return [tag for tag in (self.skills or "").split(",") if tag]

    @property
    def supervisor(self) -> bool:
        """The skill `supervisor`: they may listen to, coach or join other specialists' calls from the board."""
        return "supervisor" in self.skill_list

    @property
    def language_list(self) -> list[str]:
        """The languages they take calls in: their skills of two letters (ISO 639-1 codes)."""
        return [tag for tag in self.skill_list if len(tag) == 2]

    @property
    def languages(self) -> str:
        """Their languages, comma-separated ("en,es")."""
        return ",".join(self.language_list)

    @languages.setter
    def languages(self, codes: str) -> None:
        """Replace their languages, keeping their other skills."""
        others = [tag for tag in self.skill_list if len(tag) != 2]
        self.skills = ",".join([*(c.strip().lower() for c in codes.split(",") if c.strip()), *others])


class Call(Base):
    __tablename__ = "calls"
    __table_args__ = (
        Index("ix_calls_started", "started_at", "id"),
        Index("ix_calls_outcome_started", "outcome", "started_at"),
        Index("ix_calls_category_started", "category", "started_at"),
        Index("ix_calls_language_started", "language", "started_at"),
        Index("ix_calls_specialist_started", "specialist_id", "started_at"),
        # The nightly purge looks for calls not yet redacted (NULL) that started before the cutoff.
        Index("ix_calls_redacted_started", "redacted_at", "started_at"),
        Index("ix_calls_source_started", "source", "started_at"),
        # The reports' calls by level and share to a preferred specialist: a range of this index alone, whatever
        # the planner's statistics.
        Index("ix_calls_started_level", "started_at", "specialist_level", "to_preferred"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    call_sid: Mapped[str] = mapped_column(String(64), unique=True)
    from_number: Mapped[str] = mapped_column(String(32), default="", index=True)
    to_number: Mapped[str] = mapped_column(String(32), default="")
    # Twilio's ForwardedFrom: the number that forwarded the call to the line (often the 911 center), never the caller.
    forwarded_from: Mapped[str | None] = mapped_column(String(32))
    # Where the call came from (voice.line.calls.SOURCES): a 911 transfer, a dispatcher's handoff, the public line.
    source: Mapped[str] = mapped_column(String(16), default="911", server_default="911")
    # The 911 center's incident number (CAD) for this call, when dispatch gave one.
    incident_number: Mapped[str | None] = mapped_column(String(40), index=True)
    # Why it went back to 911 (voice.line.calls.RETURN_REASONS), written when it happened; None otherwise.
    escalation_reason: Mapped[str | None] = mapped_column(String(24))
    started_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    ended_at: Mapped[datetime | None] = mapped_column(DateTime)
    language: Mapped[str] = mapped_column(String(8), default="en")
    # The intake step the caller is on; None once the intake is over.
    step: Mapped[str | None] = mapped_column(String(32))
    category: Mapped[str | None] = mapped_column(String(32))
    caller_name: Mapped[str | None] = mapped_column(String(200), index=True)
    location: Mapped[str | None] = mapped_column(String(300))
    callback_number: Mapped[str | None] = mapped_column(String(20), index=True)
    description: Mapped[str | None] = mapped_column(Text)
    wants_callback: Mapped[bool] = mapped_column(Boolean, default=False)
    callback_window: Mapped[str | None] = mapped_column(String(16))
    outcome: Mapped[str] = mapped_column(String(24), default="in_intake")
    outcome_reason: Mapped[str | None] = mapped_column(String(200))
    specialist_id: Mapped[int | None] = mapped_column(ForeignKey("specialists.id"))
    # When the caller was first talking to a specialist (live or by callback).
    connected_at: Mapped[datetime | None] = mapped_column(DateTime)
    # The level (1 or 2) of the specialist who took the call, as it was then.
    specialist_level: Mapped[int | None] = mapped_column(Integer)
    # Whether routing preferred the specialist who took it (voice/line/preferences.py); None when it preferred nobody.
    to_preferred: Mapped[bool | None] = mapped_column(Boolean)
    recording_sid: Mapped[str | None] = mapped_column(String(64))
    recording_url: Mapped[str | None] = mapped_column(String(500))
    disposition: Mapped[str | None] = mapped_column(String(32))
    disposition_notes: Mapped[str | None] = mapped_column(Text)
    disposition_at: Mapped[datetime | None] = mapped_column(DateTime)
    disposition_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    # What happens next, as the specialist decided on the case page: none, callback or visit.
    follow_up: Mapped[str | None] = mapped_column(String(16))
    # When the purge removed the caller's personal data (voice/retention.py); None while it is kept.
    redacted_at: Mapped[datetime | None] = mapped_column(DateTime)
    # The case this call belongs to (voice/cases.py), and its place normalised for matching ("1200 salem ave").
    case_id: Mapped[int | None] = mapped_column(ForeignKey("cases.id"), index=True)
    location_key: Mapped[str | None] = mapped_column(String(120), index=True)
    # The area of the place, for the reports (voice/casework/addresses.py): its ZIP code and its street without a
    # house number ("w 3rd st"). The purge keeps the ZIP code and clears the street with the place.
    zip_code: Mapped[str | None] = mapped_column(String(10))
    street: Mapped[str | None] = mapped_column(String(80))

    specialist: Mapped[Specialist | None] = relationship(lazy="joined")
    # Read only: events are written by calls.record_event, and the database deletes them with their call.
    events: Mapped[list[CallEvent]] = relationship(order_by="CallEvent.id", viewonly=True)


# The dashboard's search by name: a case-insensitive prefix looked up in an index, not a scan.
Index("ix_calls_caller_name_lower", func.lower(Call.caller_name))


class CallEvent(Base):
    """One step on a call's timeline (an intake answer, a Dial result, a status callback)."""

    __tablename__ = "call_events"
    __table_args__ = (Index("ix_call_events_call", "call_id", "id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    call_id: Mapped[int] = mapped_column(ForeignKey("calls.id", ondelete="CASCADE"))
    at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    kind: Mapped[str] = mapped_column(String(40))
    # JSON text: the details of this step (input, status, specialist, ...).
    detail: Mapped[str] = mapped_column(Text, default="{}")

    call: Mapped[Call] = relationship(viewonly=True)


class CallbackRequest(Base):
    """A caller waiting to be called back; SQL is the truth, the RQ job only a pointer."""

    __tablename__ = "callback_requests"
    __table_args__ = (Index("ix_callbacks_status_due", "status", "due_at", "id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    call_id: Mapped[int] = mapped_column(ForeignKey("calls.id"), unique=True)
    callback_number: Mapped[str | None] = mapped_column(String(20))
    language: Mapped[str] = mapped_column(String(8), default="en")
    # pending, scheduled, in_progress, completed, unreachable, cancelled
    status: Mapped[str] = mapped_column(String(16), default="pending")
    window: Mapped[str | None] = mapped_column(String(16))
    # Not to be dialed before this time (a retry or the caller's chosen window).
    due_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_attempt_at: Mapped[datetime | None] = mapped_column(DateTime)
    # A coordinator may reassign a request to one specialist.
    specialist_id: Mapped[int | None] = mapped_column(ForeignKey("specialists.id"))
    attempt_call_sid: Mapped[str | None] = mapped_column(String(64))
    # Set before the REST call, so a worker killed mid-call can be recovered without calling twice.
    attempt_started_at: Mapped[datetime | None] = mapped_column(DateTime)
    # Who is on the phone for the attempt in progress (a reassignment uses specialist_id instead).
    attempt_specialist_id: Mapped[int | None] = mapped_column(Integer)
    # When that specialist pressed 1: from then on the Dial to the caller, not their leg, settles the attempt.
    attempt_accepted_at: Mapped[datetime | None] = mapped_column(DateTime)
    reason: Mapped[str | None] = mapped_column(String(300))
    # What became of the last text to the caller (queued, sent, delivered, undelivered, failed, opted_out,
    # not_sent), and Twilio's error code when it did not arrive: the coordinator sees a failed confirmation.
    text_status: Mapped[str | None] = mapped_column(String(16))
    text_error_code: Mapped[int | None] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    # When the caller first called: callbacks and held callers are served in this order together.
    arrived_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow, onupdate=utcnow)
    completed_at: Mapped[datetime | None] = mapped_column(DateTime)

    call: Mapped[Call] = relationship(lazy="joined")
    specialist: Mapped[Specialist | None] = relationship(lazy="joined")


class Hold(Base):
    """A caller waiting on the line for a specialist (see voice/holds.py for its states)."""

    __tablename__ = "holds"
    __table_args__ = (Index("ix_holds_status_arrived", "status", "arrived_at", "id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    call_id: Mapped[int] = mapped_column(ForeignKey("calls.id"), unique=True)
    language: Mapped[str] = mapped_column(String(8), default="en")
    # waiting, connecting, connected, done, left
    status: Mapped[str] = mapped_column(String(16), default="waiting")
    arrived_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    # When Twilio first asked for the hold music: from then on the caller is in the Twilio queue.
    enqueued_at: Mapped[datetime | None] = mapped_column(DateTime)
    specialist_id: Mapped[int | None] = mapped_column(ForeignKey("specialists.id"))
    connected_at: Mapped[datetime | None] = mapped_column(DateTime)
    ended_at: Mapped[datetime | None] = mapped_column(DateTime)
    # Why the caller left the queue: dispatch, callback, closing, hangup.
    leave_reason: Mapped[str | None] = mapped_column(String(16))
    # The questions already asked while waiting (comma-separated step names).
    asked: Mapped[str] = mapped_column(String(120), default="")
    last_announced_at: Mapped[datetime | None] = mapped_column(DateTime)
    # Twilio's queue for this caller (from the wait URL's QueueSid), deleted once the hold is over.
    queue_sid: Mapped[str | None] = mapped_column(String(34))
    # When the caller was sent into their conference (None while in the queue or the intake): one sender wins.
    conference_at: Mapped[datetime | None] = mapped_column(DateTime)
    updated_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow, onupdate=utcnow)

    call: Mapped[Call] = relationship(lazy="joined")
    specialist: Mapped[Specialist | None] = relationship(lazy="joined")


class ConferenceParticipant(Base):
    """One person's time in a call's conference (voice/line/conferences.py): who, from when to when, and why
    they left, as Twilio's participant status callbacks report it."""

    __tablename__ = "conference_participants"
    __table_args__ = (Index("ix_conference_participants_call", "call_id", "id"),
                      Index("ix_conference_participants_live", "left_at", "call_id"),
                      Index("ix_conference_participants_sid", "call_sid"))

    id: Mapped[int] = mapped_column(primary_key=True)
    call_id: Mapped[int] = mapped_column(ForeignKey("calls.id", ondelete="CASCADE"))
    # Empty until Twilio names the conference (a participant being dialed in has none yet).
    conference_sid: Mapped[str] = mapped_column(String(34), default="")
    # The participant's own call.
    call_sid: Mapped[str] = mapped_column(String(64))
    # caller, specialist, interpreter, supervisor-<user id>, transfer
    label: Mapped[str] = mapped_column(String(40))
    specialist_id: Mapped[int | None] = mapped_column(ForeignKey("specialists.id"))
    # Who asked for them from the dashboard (a coordinator listening, the specialist adding an interpreter).
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    # A supervisor's listen, coach or join; a transfer's directory entry; an interpreter's language.
    detail: Mapped[str | None] = mapped_column(String(80))
    added_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    joined_at: Mapped[datetime | None] = mapped_column(DateTime)
    left_at: Mapped[datetime | None] = mapped_column(DateTime)
    # Twilio's ReasonParticipantLeft, or ours (add failed, no answer).
    left_reason: Mapped[str | None] = mapped_column(String(40))
    on_hold: Mapped[bool] = mapped_column(Boolean, default=False)

    specialist: Mapped[Specialist | None] = relationship(lazy="joined")
    user: Mapped[User | None] = relationship(lazy="joined")


class User(Base):
    """A dashboard account: a coordinator, or a specialist linked to the roster."""

    __tablename__ = "users"

    id: Mapped[int] = mapped_column(primary_key=True)
    email: Mapped[str] = mapped_column(String(254), unique=True)
    password_hash: Mapped[str] = mapped_column(String(255))
    role: Mapped[str] = mapped_column(String(16))
    specialist_id: Mapped[int | None] = mapped_column(ForeignKey("specialists.id"))
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    # The phone the line dials when this coordinator listens to, coaches or joins a call (E.164).
    phone: Mapped[str | None] = mapped_column(String(20))
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    last_login_at: Mapped[datetime | None] = mapped_column(DateTime)
    # Part of every session's signed user id: a new token (sign out, password change, disabling) ends them all.
    session_token: Mapped[str] = mapped_column(String(64), default=new_session_token, server_default="")
    # Two-factor sign-in (voice/dashboard/two_factor.py): the TOTP secret, set at the password step of an
    # enrolment and in force once enrolled_at is set; the last time step a code was accepted for, never accepted again.
    totp_secret: Mapped[str | None] = mapped_column(String(64))
    totp_enrolled_at: Mapped[datetime | None] = mapped_column(DateTime)
    totp_last_step: Mapped[int | None] = mapped_column(Integer)

    specialist: Mapped[Specialist | None] = relationship(lazy="joined")


class RecoveryCode(Base):
    """A single-use code that stands in for an authenticator code; only its argon2 hash is kept."""

    __tablename__ = "recovery_codes"
    __table_args__ = (Index("ix_recovery_codes_user", "user_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    code_hash: Mapped[str] = mapped_column(String(255))
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    used_at: Mapped[datetime | None] = mapped_column(DateTime)


class AuditEntry(Base):
    """Who viewed or exported what, and when."""

    __tablename__ = "audit_log"
    __table_args__ = (Index("ix_audit_at", "at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    action: Mapped[str] = mapped_column(String(40))
    target: Mapped[str] = mapped_column(String(200), default="")
    ip: Mapped[str | None] = mapped_column(String(64))

    user: Mapped[User | None] = relationship(lazy="joined")


class CallNote(Base):
    """A note a specialist or coordinator adds to a call."""

    __tablename__ = "call_notes"
    __table_args__ = (Index("ix_call_notes_call", "call_id", "id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    call_id: Mapped[int] = mapped_column(ForeignKey("calls.id", ondelete="CASCADE"))
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    body: Mapped[str] = mapped_column(Text)

    user: Mapped[User | None] = relationship(lazy="joined")


class Case(Base):
    """One situation: the calls, visits, follow-ups and notes about it (states in voice/cases.py)."""

    __tablename__ = "cases"
    __table_args__ = (Index("ix_cases_status_opened", "status", "opened_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    opened_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    # open, closed, merged
    status: Mapped[str] = mapped_column(String(16), default="open")
    # How it ended: agreement_reached, resolved, referred, no_one_home, declined, resolved_by_phone, no_further_action
    outcome: Mapped[str | None] = mapped_column(String(32))
    # in_person or phone
    closed_how: Mapped[str | None] = mapped_column(String(16))
    closed_at: Mapped[datetime | None] = mapped_column(DateTime)
    merged_into_id: Mapped[int | None] = mapped_column(ForeignKey("cases.id"))
    # A follow-up call: when it comes due, what for, and the callback request that dials it.
    follow_up_due_at: Mapped[datetime | None] = mapped_column(DateTime)
    follow_up_note: Mapped[str | None] = mapped_column(String(300))
    # No foreign key: callback_requests -> calls -> cases would make a cycle the table order cannot break.
    follow_up_request_id: Mapped[int | None] = mapped_column(Integer)
    # The 911 center's incident number (CAD) of the call that opened it, when dispatch gave one.
    incident_number: Mapped[str | None] = mapped_column(String(40))
    updated_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow, onupdate=utcnow)


class CaseEvent(Base):
    """One step on a case's own timeline: linked, merged, split, a visit booked or moved, a note."""

    __tablename__ = "case_events"
    # By kind and time: the reports count one kind of step (a visit's call for police) over a range.
    __table_args__ = (Index("ix_case_events_case", "case_id", "id"), Index("ix_case_events_kind_at", "kind", "at"))

    id: Mapped[int] = mapped_column(primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id", ondelete="CASCADE"))
    at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    kind: Mapped[str] = mapped_column(String(40))
    detail: Mapped[str] = mapped_column(Text, default="{}")
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))

    user: Mapped[User | None] = relationship(lazy="joined")


class Visit(Base):
    """An in-person visit for a case (states in voice/visits.py)."""

    __tablename__ = "visits"
    __table_args__ = (Index("ix_visits_status_starts", "status", "starts_at"), Index("ix_visits_case", "case_id"),
                      Index("ix_visits_field_state", "field_state"))

    id: Mapped[int] = mapped_column(primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id"))
    starts_at: Mapped[datetime] = mapped_column(DateTime)
    ends_at: Mapped[datetime] = mapped_column(DateTime)
    address: Mapped[str] = mapped_column(String(300))
    # scheduled, done, cancelled
    status: Mapped[str] = mapped_column(String(16), default="scheduled")
    # Goes up by one at each reschedule: reminder jobs for an older version send nothing.
    version: Mapped[int] = mapped_column(Integer, default=1)
    language: Mapped[str] = mapped_column(String(8), default="en")
    # The caller's number for texts (None: no texts to the caller).
    contact_number: Mapped[str | None] = mapped_column(String(20))
    outcome: Mapped[str | None] = mapped_column(String(32))
    outcome_notes: Mapped[str | None] = mapped_column(Text)
    outcome_at: Mapped[datetime | None] = mapped_column(DateTime)
    cancel_reason: Mapped[str | None] = mapped_column(String(300))
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow, onupdate=utcnow)
    # Safety in the field (states in voice/casework/field_safety.py): None until checked in, then in_field,
    # escalating (an open safety alert) or out; when the team checked in and out, and when it is due back.
    field_state: Mapped[str | None] = mapped_column(String(16))
    checked_in_at: Mapped[datetime | None] = mapped_column(DateTime)
    expected_back_at: Mapped[datetime | None] = mapped_column(DateTime)
    checked_out_at: Mapped[datetime | None] = mapped_column(DateTime)

    team: Mapped[list[VisitMember]] = relationship(back_populates="visit", cascade="all, delete-orphan",
                                                   lazy="selectin")


class VisitMember(Base):
    """A specialist on a visit's team."""

    __tablename__ = "visit_members"
    __table_args__ = (UniqueConstraint("visit_id", "specialist_id"),
                      Index("ix_visit_members_specialist", "specialist_id"))

    id: Mapped[int] = mapped_column(primary_key=True)
    visit_id: Mapped[int] = mapped_column(ForeignKey("visits.id", ondelete="CASCADE"))
    specialist_id: Mapped[int] = mapped_column(ForeignKey("specialists.id"))

    visit: Mapped[Visit] = relationship(back_populates="team")
    specialist: Mapped[Specialist] = relationship(lazy="joined")


class VisitMessage(Base):
    """A text sent (or tried) about a visit; unique per visit, kind, version and recipient, so none goes twice."""

    __tablename__ = "visit_messages"
    __table_args__ = (UniqueConstraint("visit_id", "kind", "version", "recipient"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    visit_id: Mapped[int] = mapped_column(ForeignKey("visits.id", ondelete="CASCADE"))
    # confirm, changed, cancelled, day_before, hour_before
    kind: Mapped[str] = mapped_column(String(16))
    version: Mapped[int] = mapped_column(Integer)
    # "caller" or "specialist:<id>"
    recipient: Mapped[str] = mapped_column(String(32))
    at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    message_sid: Mapped[str | None] = mapped_column(String(64))
    # What Twilio last reported: queued, sent, delivered, undelivered, failed (the error says why).
    status: Mapped[str | None] = mapped_column(String(16))
    error: Mapped[str | None] = mapped_column(String(200))


class SafetyAlert(Base):
    """One escalation: a team gone quiet, or an SOS; its rung of the ladder (voice/casework/field_safety.py)."""

    __tablename__ = "safety_alerts"
    __table_args__ = (Index("ix_safety_alerts_open", "closed_at", "id"), Index("ix_safety_alerts_visit", "visit_id"))

    id: Mapped[int] = mapped_column(primary_key=True)
    # The visit it is about (for an SOS outside a visit: the specialist's last known visit, or None).
    visit_id: Mapped[int | None] = mapped_column(ForeignKey("visits.id"))
    # Who sent the SOS (None for a team gone quiet).
    specialist_id: Mapped[int | None] = mapped_column(ForeignKey("specialists.id"))
    # overdue, sos (from a visit), sos_away (outside a visit)
    reason: Mapped[str] = mapped_column(String(16))
    # team, coordinator, backups, dispatch: the last rung reached, and when
    rung: Mapped[str] = mapped_column(String(16))
    rung_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    opened_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    # Whoever pressed 1 first (e.g. "coordinator (937) 555-0300"): no rung after that.
    acknowledged_at: Mapped[datetime | None] = mapped_column(DateTime)
    acknowledged_by: Mapped[str | None] = mapped_column(String(80))
    dispatch_called_at: Mapped[datetime | None] = mapped_column(DateTime)
    closed_at: Mapped[datetime | None] = mapped_column(DateTime)
    # safe (OK), out (a late OUT), coordinator (ended on the board), sos (an SOS took over)
    closed_how: Mapped[str | None] = mapped_column(String(16))
    closed_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    close_note: Mapped[str | None] = mapped_column(Text)

    visit: Mapped[Visit | None] = relationship(lazy="joined")
    specialist: Mapped[Specialist | None] = relationship(lazy="joined")
    closed_by: Mapped[User | None] = relationship(lazy="joined")


class SafetyContact(Base):
    """A text or call the ladder makes: claimed here before it is sent, so a job run twice sends it once."""

    __tablename__ = "safety_contacts"
    __table_args__ = (UniqueConstraint("alert_id", "purpose"), Index("ix_safety_contacts_status", "status", "id"))

    id: Mapped[int] = mapped_column(primary_key=True)
    alert_id: Mapped[int] = mapped_column(ForeignKey("safety_alerts.id", ondelete="CASCADE"))
    # e.g. "team-text-0", "coordinator-call-1", "backup-call-0", "dispatch-call-0", "coordinator-clear-0"
    purpose: Mapped[str] = mapped_column(String(40))
    rung: Mapped[str] = mapped_column(String(16))
    # team, coordinator, backup, dispatch
    role: Mapped[str] = mapped_column(String(16))
    channel: Mapped[str] = mapped_column(String(8))  # text or call
    number: Mapped[str] = mapped_column(String(20))
    # waiting (a later backup), pending, sending, sent, placed, then the call's end (completed, no-answer,
    # busy, failed, canceled), failed, skipped (the alert moved on first)
    status: Mapped[str] = mapped_column(String(16), default="pending")
    sid: Mapped[str | None] = mapped_column(String(64))
    error: Mapped[str | None] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow, onupdate=utcnow)

    alert: Mapped[SafetyAlert] = relationship(lazy="joined")

    @property
    def kind(self) -> str:
        """What the purpose says it is: text, call, or clear (the all-clear, sent as a text)."""
        return self.purpose.split("-")[1]

    @property
    def position(self) -> int:
        """Its place among the rung's numbers (the purpose's last part)."""
        return int(self.purpose.rsplit("-", 1)[1])


class SafetyEvent(Base):
    """One step on a visit's safety timeline (checked in, texted, called, acknowledged, OK, SOS...): who, when."""

    __tablename__ = "safety_events"
    __table_args__ = (Index("ix_safety_events_visit", "visit_id", "id"), Index("ix_safety_events_alert", "alert_id", "id"))

    id: Mapped[int] = mapped_column(primary_key=True)
    visit_id: Mapped[int | None] = mapped_column(ForeignKey("visits.id", ondelete="CASCADE"))
    alert_id: Mapped[int | None] = mapped_column(ForeignKey("safety_alerts.id", ondelete="CASCADE"))
    at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    kind: Mapped[str] = mapped_column(String(40))
    # Who sent it: a specialist (by text or their visit page), a dashboard account, or a number that was called.
    specialist_id: Mapped[int | None] = mapped_column(ForeignKey("specialists.id"))
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    by: Mapped[str] = mapped_column(String(80), default="the line")
    # JSON text: the details of this step (minutes, rung, status, note...).
    detail: Mapped[str] = mapped_column(Text, default="{}")


class Shift(Base):
    """A specialist's time switched on for calls, from ON to OFF (the reports weigh calls against it)."""

    __tablename__ = "shifts"
    __table_args__ = (Index("ix_shifts_specialist_open", "specialist_id", "ended_at"),
                      Index("ix_shifts_started", "started_at"))

    id: Mapped[int] = mapped_column(primary_key=True)
    specialist_id: Mapped[int] = mapped_column(ForeignKey("specialists.id"))
    started_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    # None while they are still on.
    ended_at: Mapped[datetime | None] = mapped_column(DateTime)


class Service(Base):
    """A service the program refers callers to (housing, legal aid...): the coordinator's directory."""

    __tablename__ = "services"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(120), unique=True)
    # voice.casework.services.KINDS
    kind: Mapped[str] = mapped_column(String(24))
    # E.164, passed by the toll-fraud policy: a later feature puts callers through to it.
    phone: Mapped[str] = mapped_column(String(20))
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow, onupdate=utcnow)


class Referral(Base):
    """A service a specialist gave a caller on a call, and whether the caller accepted it."""

    __tablename__ = "referrals"
    __table_args__ = (UniqueConstraint("call_id", "service_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    call_id: Mapped[int] = mapped_column(ForeignKey("calls.id", ondelete="CASCADE"))
    service_id: Mapped[int] = mapped_column(ForeignKey("services.id"))
    accepted: Mapped[bool] = mapped_column(Boolean)
    given_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    given_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))

    service: Mapped[Service] = relationship(lazy="joined")


class OutcomeReport(Base):
    """What the 911 center is told when a call or case it sent us closes: one row per call or case and outcome,
    sent to OUTCOME_WEBHOOK_URL when it is set (voice/reporting/outcomes.py has its states)."""

    __tablename__ = "outcome_reports"
    __table_args__ = (UniqueConstraint("subject", "subject_id", "outcome"),
                      Index("ix_outcome_reports_status", "status", "last_attempt_at"),
                      Index("ix_outcome_reports_closed", "closed_at"))

    id: Mapped[int] = mapped_column(primary_key=True)
    # "call" or "case"
    subject: Mapped[str] = mapped_column(String(8))
    subject_id: Mapped[int] = mapped_column(Integer)
    outcome: Mapped[str] = mapped_column(String(32))
    closed_at: Mapped[datetime] = mapped_column(DateTime)
    incident_number: Mapped[str | None] = mapped_column(String(40))
    police_needed: Mapped[bool] = mapped_column(Boolean, default=False)
    # The JSON body exactly as it is sent, every time (its signature covers these bytes).
    body: Mapped[str] = mapped_column(Text)
    # kept (no webhook set), pending, sending, delivered, failed
    status: Mapped[str] = mapped_column(String(12))
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str | None] = mapped_column(String(200))
    last_attempt_at: Mapped[datetime | None] = mapped_column(DateTime)
    delivered_at: Mapped[datetime | None] = mapped_column(DateTime)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
