"""In-person visits: a case's team of specialists at an address, at a time; the texts and reminders about it.

The states, and the one function that makes each move:

    (a case) --schedule-->      scheduled   (checked: team, time, address; the caller and team are texted)
    scheduled --reschedule-->   scheduled   (version + 1: reminders of the old version send nothing; texted)
    scheduled --cancel-->       cancelled   (texted)
    scheduled --record_outcome--> done      (once it has started; a non-"no one home" outcome closes the case)

A visit not done within a day of its end is overdue (`overdue`). While a visit runs (start to end), its
team is not rung for calls: routing asks `on_visit_now`. Reminders go the day before and an hour before
(workers/visits.py), each as an RQ job whose id names the visit, its version and the reminder, so it is
queued once; the job re-reads the visit and `visit_messages` keeps one row per text, so it is sent once.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import redis
from sqlalchemy import and_, select
from sqlalchemy.orm import Session

from voice import phones, tasks, twilio_rest
from voice.casework import cases
from voice.clock import to_local, utcnow
from voice.models import Case, Specialist, Visit, VisitMember, VisitMessage

SCHEDULED = "scheduled"
DONE = "done"
CANCELLED = "cancelled"
ADDRESS_MAX = 300
OVERDUE_AFTER = timedelta(days=1)
# When the reminders go, before the visit starts.
REMINDERS = {"day_before": timedelta(days=1), "hour_before": timedelta(hours=1)}


class VisitError(ValueError):
    """A visit that cannot be booked as asked; `field` names the form field at fault. Nothing was changed."""

    def __init__(self, message: str, field: str | None = None):
        super().__init__(message)
        self.field = field


class NeedsConfirmation(Exception):
    """A visit that may be booked, but only once someone confirms these warnings."""

    def __init__(self, warnings: list[str]):
        super().__init__("; ".join(warnings))
        self.warnings = warnings


@dataclasses.dataclass
class Plan:
    """What a visit should be: start (naive UTC), team, address, the caller's number and language."""

    starts_at: datetime
    team: list[int]
    address: str
    contact_number: str | None = None
    language: str = "en"


def local_to_utc(day: date, at: time, zone: str) -> datetime:
    """A date and time in the program's time zone as naive UTC."""
    local = datetime.combine(day, at, tzinfo=ZoneInfo(zone))
    return local.astimezone(ZoneInfo("UTC")).replace(tzinfo=None)


def check(db: Session, config: Mapping, plan: Plan, visit: Visit | None = None, confirmed: bool = False,
          now: datetime | None = None) -> None:
    """Raise VisitError for a visit that cannot be, NeedsConfirmation for one that needs a yes first."""
    now = now or utcnow()
    address = (plan.address or "").strip()
    if not address:
        raise VisitError("Enter the address of the visit.", "address")
    if len(address) > ADDRESS_MAX:
        raise VisitError(f"The address can be at most {ADDRESS_MAX} characters; this one is {len(address)}.",
                         "address")
    if plan.starts_at <= now:
        raise VisitError("That time has already passed. Choose a time in the future.", "day")
    size = config["VISIT_TEAM_SIZE"]
    team = list(dict.fromkeys(plan.team))
    roster = {s.id: s for s in db.scalars(select(Specialist).where(Specialist.id.in_(team or [0]),
                                                                   Specialist.active.is_(True)))}
    unknown = [i for i in team if i not in roster]
    if unknown:
        raise VisitError("A specialist chosen for the team is not on the roster.", "team")
    if len(team) != size:
        raise VisitError(f"Choose {size} specialist{'s' if size != 1 else ''} for the team; "
                         f"{len(team)} {'is' if len(team) == 1 else 'are'} chosen.", "team")
    ends_at = plan.starts_at + timedelta(minutes=config["VISIT_MINUTES"])
    travel = timedelta(minutes=config["VISIT_TRAVEL_MINUTES"])
    open_hours = config["OPEN_HOURS"]
    # The weekly shifts without the holidays: a holiday is a warning, a time nobody works is a refusal.
    shifts = dataclasses.replace(open_hours, holidays=frozenset())
    if not (shifts.is_open(plan.starts_at) and shifts.is_open(ends_at - timedelta(seconds=1))):
        names = ", ".join(roster[i].name for i in team)
        raise VisitError(f"{names} would be off shift then: visits must fall within the program's hours "
                         f"({config['PROGRAM_HOURS']}).", "time")
    for specialist_id in team:
        clash = booked(db, specialist_id, plan.starts_at - travel, ends_at + travel,
                       exclude=visit.id if visit else None)
        if clash is not None:
            raise VisitError(
                f"{roster[specialist_id].name} is already booked for a visit from "
                f"{to_local(clash.starts_at, config['TIMEZONE']):%-I:%M %p} to "
                f"{to_local(clash.ends_at, config['TIMEZONE']):%-I:%M %p} that day (with "
                f"{config['VISIT_TRAVEL_MINUTES']} minutes of travel before and after).", "team")
    warnings = []
    if to_local(plan.starts_at, config["TIMEZONE"]).date() in open_hours.holidays:
        warnings.append("That day is a holiday.")
    if not (shifts.is_open(plan.starts_at - travel) and shifts.is_open(ends_at + travel - timedelta(seconds=1))):
        warnings.append("The team would travel outside the program's hours.")
    if warnings and not confirmed:
        raise NeedsConfirmation(warnings)


def booked(db: Session, specialist_id: int, start: datetime, end: datetime, exclude: int | None = None) -> Visit | None:
    """A scheduled visit of this specialist's that overlaps [start, end)."""
    query = (select(Visit).join(VisitMember, VisitMember.visit_id == Visit.id)
             .where(VisitMember.specialist_id == specialist_id, Visit.status == SCHEDULED,
                    Visit.starts_at < end, Visit.ends_at > start))
    if exclude is not None:
        query = query.where(Visit.id != exclude)
    return db.scalar(query.limit(1))


def schedule(db: Session, r: redis.Redis, config: Mapping, case: Case, plan: Plan, user_id: int | None = None,
             confirmed: bool = False) -> Visit:
    """Book a visit for a case, after `check`; the texts and reminders are queued once it commits."""
    check(db, config, plan, confirmed=confirmed)
    visit = Visit(case_id=case.id, starts_at=plan.starts_at,
                  ends_at=plan.starts_at + timedelta(minutes=config["VISIT_MINUTES"]), address=plan.address.strip(),
                  status=SCHEDULED, version=1, language=plan.language,
                  contact_number=phones.textable_caller(plan.contact_number, config), created_by_id=user_id)
    visit.team = [VisitMember(specialist_id=i) for i in dict.fromkeys(plan.team)]
    db.add(visit)
    db.flush()
    cases.record(db, case, "visit_scheduled", user_id, visit_id=visit.id, starts_at=visit.starts_at,
                 team=[m.specialist_id for m in visit.team])
    _queue_texts(db, r, visit, "confirm")
    return visit


def reschedule(db: Session, r: redis.Redis, config: Mapping, visit: Visit, plan: Plan, user_id: int | None = None,
               confirmed: bool = False) -> None:
    """Move a scheduled visit (time, team or address); the old reminders lapse and everyone is told."""
    if visit.status != SCHEDULED:
        raise VisitError(f"This visit is {visit.status}; only a scheduled visit can be changed.")
    check(db, config, plan, visit=visit, confirmed=confirmed)
    team = list(dict.fromkeys(plan.team))
    old = {m.specialist_id for m in visit.team}
    visit.starts_at = plan.starts_at
    visit.ends_at = plan.starts_at + timedelta(minutes=config["VISIT_MINUTES"])
    visit.address = plan.address.strip()
    visit.contact_number = phones.textable_caller(plan.contact_number, config) if plan.contact_number else visit.contact_number
    visit.team = [m for m in visit.team if m.specialist_id in team] + [
        VisitMember(specialist_id=i) for i in team if i not in old]
    visit.version += 1
    db.flush()
    cases.record(db, db.get(Case, visit.case_id), "visit_rescheduled", user_id, visit_id=visit.id,
                 starts_at=visit.starts_at, team=team, version=visit.version)
    # Whoever left the team hears of the change too.
    _queue_texts(db, r, visit, "changed", also=sorted(old - set(team)))


def cancel(db: Session, r: redis.Redis, visit: Visit, reason: str | None, user_id: int | None = None) -> None:
    if visit.status != SCHEDULED:
        raise VisitError(f"This visit is {visit.status}; only a scheduled visit can be cancelled.")
    visit.status = CANCELLED
    visit.cancel_reason = (reason or "")[:300] or None
    cases.record(db, db.get(Case, visit.case_id), "visit_cancelled", user_id, visit_id=visit.id, reason=reason)
    tasks.enqueue_after_commit(db, r, tasks.TEXT_VISIT_CHANGE, visit.id, "cancelled", visit.version,
                               job_id=f"visit-{visit.id}-v{visit.version}-cancelled")


def record_outcome(db: Session, visit: Visit, outcome: str, notes: str | None, user_id: int | None = None,
                   now: datetime | None = None) -> None:
    """The team's word on how it went; an outcome other than "no one home" closes the case, in person."""
    now = now or utcnow()
    if outcome not in cases.VISIT_OUTCOMES:
        raise VisitError("Choose how the visit went.", "outcome")
    if visit.status == CANCELLED:
        raise VisitError("This visit was cancelled; there is no outcome to record.")
    if visit.starts_at > now:
        raise VisitError("The visit has not started yet; record its outcome afterwards.", "outcome")
    visit.status, visit.outcome, visit.outcome_notes, visit.outcome_at = DONE, outcome, notes, now
    case = db.get(Case, visit.case_id)
    cases.record(db, case, "visit_outcome", user_id, visit_id=visit.id, outcome=outcome)
    if outcome != "no_one_home" and case.status == cases.OPEN:
        cases.close(db, case, outcome, in_person=True, user_id=user_id)


def _queue_texts(db: Session, r: redis.Redis, visit: Visit, kind: str, also: list[int] | None = None) -> None:
    """The confirmation (or change) text now, and the reminders at their times, once this commits."""
    tasks.enqueue_after_commit(db, r, tasks.TEXT_VISIT_CHANGE, visit.id, kind, visit.version, also or [],
                               job_id=f"visit-{visit.id}-v{visit.version}-{kind}")
    now = utcnow()
    for which, before in REMINDERS.items():
        at = visit.starts_at - before
        if at > now:
            tasks.enqueue_after_commit(db, r, tasks.TEXT_VISIT_REMINDER, visit.id, which, visit.version, at=at,
                                       job_id=reminder_job_id(visit, which))


def reminder_job_id(visit: Visit, which: str) -> str:
    return f"visit-{visit.id}-v{visit.version}-{which}"


# --- what routing, the board and the feed read ------------------------------------------------------------


def on_visit_now(db: Session, specialist_id: int, now: datetime | None = None) -> Visit | None:
    """The visit this specialist is on right now (its start to its end), if any: do not ring them."""
    now = now or utcnow()
    return db.scalar(select(Visit).join(VisitMember, VisitMember.visit_id == Visit.id)
                     .where(VisitMember.specialist_id == specialist_id, Visit.status == SCHEDULED,
                            Visit.starts_at <= now, Visit.ends_at > now).limit(1))


def on_visit_ids(db: Session, now: datetime | None = None) -> set[int]:
    """Everyone on a visit right now, in one query (for the live board)."""
    now = now or utcnow()
    return set(db.scalars(select(VisitMember.specialist_id).join(Visit, Visit.id == VisitMember.visit_id)
                          .where(Visit.status == SCHEDULED, Visit.starts_at <= now, Visit.ends_at > now)))


def overdue(db: Session, now: datetime | None = None) -> list[Visit]:
    """Visits whose outcome is still not recorded a day after they ended."""
    now = now or utcnow()
    return list(db.scalars(select(Visit).where(Visit.status == SCHEDULED, Visit.ends_at <= now - OVERDUE_AFTER)
                           .order_by(Visit.ends_at)))


def upcoming(db: Session, now: datetime | None = None, limit: int = 20) -> list[Visit]:
    now = now or utcnow()
    return list(db.scalars(select(Visit).where(Visit.status == SCHEDULED, Visit.ends_at > now)
                           .order_by(Visit.starts_at).limit(limit)))


def of_specialist(db: Session, specialist_id: int, since: datetime) -> list[Visit]:
    """A specialist's visits (not cancelled) from `since` on, for their calendar feed."""
    return list(db.scalars(select(Visit).join(VisitMember, and_(VisitMember.visit_id == Visit.id,
                                                                VisitMember.specialist_id == specialist_id))
                           .where(Visit.status != CANCELLED, Visit.ends_at >= since).order_by(Visit.starts_at)))


# --- what became of the texts about a visit (their status callbacks) ---------------------------------------------


def text_refused(db: Session, message: VisitMessage, code: int | None) -> None:
    """Twilio would not send a visit text: the recipient opted out (21610), or the number takes no texts."""
    message.status = twilio_rest.refused_status(code)
    message.error = f"Twilio error {code}"
    if code == twilio_rest.OPTED_OUT and message.recipient.startswith("specialist:"):
        specialist = db.get(Specialist, int(message.recipient.split(":", 1)[1]))
        if specialist is not None and specialist.texts_opted_out_at is None:
            specialist.texts_opted_out_at = utcnow()
    _text_event(db, message, message.status, code)


def text_status(db: Session, message: VisitMessage, status: str, code: int | None) -> None:
    """A status callback for a visit text: on the row (a later status never gives way to an earlier one) and the
    case's timeline."""
    if twilio_rest.status_advances(message.status, status):
        message.status = status
        if code:
            message.error = f"Twilio error {code}"
    _text_event(db, message, status, code)


def _text_event(db: Session, message: VisitMessage, status: str, code: int | None) -> None:
    visit = db.get(Visit, message.visit_id)
    if visit is not None:
        cases.record(db, db.get(Case, visit.case_id), "visit_text_status", visit_id=visit.id, text=message.kind,
                     recipient=message.recipient, status=status, code=code)
