"""Safety in the field: a visit's team checks in and out, and a ladder of texts and calls when it goes quiet.

A visit's field state (`visits.field_state`), and the one function that makes each move:

    (none)      --check_in (IN, "Arrived")-->          in_field    due back SAFETY_VISIT_MINUTES on (IN 30: 30)
    in_field    --check_in (IN 30)-->                  in_field    due back 30 minutes from now
    in_field    --check_out (OUT, "Done")-->           out
    in_field    --ask_team (timer: due back + SAFETY_GRACE_MINUTES)-->  escalating (an overdue alert opens)
    escalating  --confirm_safe (OK)-->                 in_field    the alert closes; due back again in the grace
    escalating  --check_in (IN 30)-->                  in_field    an overdue alert closes (an SOS stays open)
    escalating  --check_out (a late OUT)-->            out         the alert closes
    escalating  --end_alert (a coordinator, with a note)-->  in_field, or out if the team has left
    any         --raise_sos (the safety word; SOS on the visit page)-->  escalating (an SOS alert; an older one closes)

Read off the clock, not stored: in_field past its due-back time is "due back"; a scheduled visit not checked
into SAFETY_CHECKIN_LATE_MINUTES after its start is "not checked in" (flagged on the board; no ladder).

An alert's rung (`safety_alerts.rung`); a timer (an RQ job) makes each move once the rung's wait is over:

    team         ask_team: both team members texted "Reply OK if you are safe"
    coordinator  _coordinators_now (team + SAFETY_REPLY_MINUTES): the coordinator numbers texted and called
    backups      _backups_now (coordinator + SAFETY_ACK_MINUTES): the backup numbers called, one after another
    dispatch     _dispatch_now (backups + SAFETY_ACK_MINUTES): SAFETY_DISPATCH_NUMBER called, if set

`next_rung` makes every move after the first (LADDER).

An SOS (`raise_sos`) opens at `coordinator` with dispatch called at once; an SOS outside a visit calls no
dispatch (there is no address to send anyone to). Pressing 1 on any call (`acknowledge`) stops the climb.
OK, a late OUT, a coordinator's end or a newer SOS closes the alert (`close_alert`); a rung with nobody to
call passes on at once. A text or call that fails is on the timeline and the board and stops nothing.

Every step is a `safety_events` row: what, who and when. Each move is one conditional UPDATE, so two jobs (or
a job and the sweep) racing make it once. Texts and calls are `safety_contacts` rows, sent by RQ jobs after
the commit (workers/field_safety.py), each claimed before it goes. Timers are RQ scheduled jobs named for
the state they wait on; `rebuild_timers` (the sweep) queues again any that SQL says is owed and RQ no longer
holds, so a restarted worker or a flushed Redis loses no step.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import redis
from sqlalchemy import and_, or_, select, update
from sqlalchemy.orm import Session

from voice import phones, tasks
from voice.casework import cases, visits
from voice.clock import utcnow
from voice.models import Case, SafetyAlert, SafetyContact, SafetyEvent, Specialist, Visit, VisitMember

IN_FIELD, ESCALATING, OUT = "in_field", "escalating", "out"
TEAM, COORDINATOR, BACKUPS, DISPATCH = "team", "coordinator", "backups", "dispatch"
RUNGS = (TEAM, COORDINATOR, BACKUPS, DISPATCH)
OVERDUE, SOS, SOS_AWAY = "overdue", "sos", "sos_away"
# The longest a team may say it will stay (IN 240), and how far from a visit's start a text still finds it.
MAX_MINUTES = 240
NEAR = timedelta(hours=12)
# A contact claimed by a job that then died is sent again after this long (twice beats never, for safety).
STALE_SENDING = timedelta(minutes=2)
# How long a safety call rings (Twilio's default is 60 s); long enough to find a phone, short of most voicemail.
RING_SECONDS = 45


class SafetyError(ValueError):
    """A move that cannot be made as asked; the message says why. Nothing was changed."""


@dataclass(frozen=True)
class Actor:
    """Who made a move: a specialist (by text or their visit page), a dashboard account, or the line itself."""

    label: str = "the line"
    specialist_id: int | None = None
    user_id: int | None = None


LINE = Actor()


def by_text(specialist: Specialist) -> Actor:
    return Actor(f"{specialist.name} (text)", specialist_id=specialist.id)


# --- the timeline ---------------------------------------------------------------------------------------------


def record(db: Session, kind: str, actor: Actor = LINE, visit_id: int | None = None, alert_id: int | None = None,
           at: datetime | None = None, **detail: object) -> SafetyEvent:
    """Append one step to a visit's safety timeline; the only way safety events are written."""
    event = SafetyEvent(visit_id=visit_id, alert_id=alert_id, kind=kind, at=at or utcnow(), by=actor.label[:80],
                        specialist_id=actor.specialist_id, user_id=actor.user_id,
                        detail=json.dumps(detail, default=str, ensure_ascii=False))
    db.add(event)
    return event


def timeline(db: Session, visit: Visit) -> list[SafetyEvent]:
    return list(db.scalars(select(SafetyEvent).where(SafetyEvent.visit_id == visit.id).order_by(SafetyEvent.id)))


def _whole_seconds(moment: datetime) -> datetime:
    # Compared for equality after a round trip through SQL and a job's arguments: no microseconds to lose.
    return moment.replace(microsecond=0)


def _move_visit(db: Session, visit: Visit, state: str | None, due_back: datetime | None = None,
                **values: object) -> bool:
    """Change a visit's field state only if it is still `state` (and due back at `due_back`, if given): one
    conditional UPDATE; False if it moved meanwhile."""
    query = update(Visit).where(Visit.id == visit.id)
    query = query.where(Visit.field_state.is_(None) if state is None else Visit.field_state == state)
    if due_back is not None:
        query = query.where(Visit.expected_back_at == due_back)
    moved = db.execute(query.values(**values).execution_options(synchronize_session=False)).rowcount == 1
    db.refresh(visit)
    return moved


# --- check-in and check-out -----------------------------------------------------------------------------------


def check_in(db: Session, r: redis.Redis, config: Mapping, visit: Visit, actor: Actor, minutes: int | None = None,
             now: datetime | None = None) -> Visit:
    """The team is at the door (IN, "Arrived"), or needs more time (IN 30): due back `minutes` from now."""
    now = _whole_seconds(now or utcnow())
    if visit.status == visits.CANCELLED:
        raise SafetyError("That visit was cancelled, so there is nothing to check in to.")
    if visit.starts_at > now + NEAR:
        raise SafetyError("That visit is more than 12 hours away; check in when the team gets there.")
    minutes = minutes or config["SAFETY_VISIT_MINUTES"]
    if not 1 <= minutes <= MAX_MINUTES:
        raise SafetyError(f"Give the minutes as a number from 1 to {MAX_MINUTES}, e.g. IN 30.")
    due = now + timedelta(minutes=minutes)
    for _ in range(3):
        state = visit.field_state
        first = state in (None, OUT)
        values = {"field_state": IN_FIELD if state != ESCALATING else ESCALATING, "expected_back_at": due}
        if first:
            values.update(checked_in_at=now, checked_out_at=None)
        if _move_visit(db, visit, state, **values):
            break
    else:
        raise SafetyError("The visit changed meanwhile; try again.")
    record(db, "checked_in" if first else "more_time", actor, visit.id, minutes=minutes, due_back=due)
    if state == ESCALATING:
        # Someone on the team is answering: an overdue alert stops; an SOS stays until OK or a coordinator ends it.
        alert = open_alert(db, visit)
        if alert is not None and alert.reason == OVERDUE and close_alert(db, r, config, alert, "safe", actor, now=now):
            _move_visit(db, visit, ESCALATING, field_state=IN_FIELD)
    _time_due_back(db, r, config, visit)
    return visit


def check_out(db: Session, r: redis.Redis, config: Mapping, visit: Visit, actor: Actor,
              now: datetime | None = None) -> Visit:
    """The team has left (OUT, "Done"); a late OUT closes the alert and stops the ladder."""
    now = _whole_seconds(now or utcnow())
    for _ in range(3):
        state = visit.field_state
        if state == OUT:
            raise SafetyError("The team has already checked out of this visit.")
        if _move_visit(db, visit, state, field_state=OUT, checked_out_at=now):
            break
    else:
        raise SafetyError("The visit changed meanwhile; try again.")
    late = visit.expected_back_at is not None and now > visit.expected_back_at
    record(db, "checked_out", actor, visit.id, late=late, never_checked_in=state is None)
    alert = open_alert(db, visit)
    if alert is not None:
        close_alert(db, r, config, alert, "out", actor, now=now)
    return visit


def confirm_safe(db: Session, r: redis.Redis, config: Mapping, visit: Visit, actor: Actor,
                 now: datetime | None = None) -> SafetyAlert | None:
    """OK: the team is safe. Closes the visit's open alert (the ladder stops); they are due back again in the grace."""
    now = _whole_seconds(now or utcnow())
    alert = open_alert(db, visit)
    record(db, "ok", actor, visit.id, alert.id if alert else None)
    if alert is None or not close_alert(db, r, config, alert, "safe", actor, now=now):
        return None
    if _move_visit(db, visit, ESCALATING, field_state=IN_FIELD,
                   expected_back_at=now + timedelta(minutes=config["SAFETY_GRACE_MINUTES"])):
        _time_due_back(db, r, config, visit)
    return alert


# --- the ladder -------------------------------------------------------------------------------------------------


def ask_team(db: Session, r: redis.Redis, config: Mapping, visit_id: int, due_back: datetime,
             now: datetime | None = None) -> SafetyAlert | None:
    """The team is past its due-back time and the grace: open an overdue alert and text them both."""
    now = now or utcnow()
    visit = db.get(Visit, visit_id)
    if visit is None or visit.field_state != IN_FIELD or visit.expected_back_at != due_back:
        return None  # checked out, extended or already escalating: this timer is stale
    if now < due_back + timedelta(minutes=config["SAFETY_GRACE_MINUTES"]):
        return None
    if not _move_visit(db, visit, IN_FIELD, due_back=due_back, field_state=ESCALATING):
        return None  # an IN 30 or an OUT got there first
    alert = SafetyAlert(visit_id=visit.id, reason=OVERDUE, rung=TEAM, rung_at=now, opened_at=now)
    db.add(alert)
    db.flush()
    record(db, "overdue", LINE, visit.id, alert.id, due_back=due_back)
    for position, member in enumerate(visit.team):
        _contact(db, r, config, alert, "team", "text", position, member.specialist.phone)
    _time_next_rung(db, r, config, alert)
    return alert


def raise_sos(db: Session, r: redis.Redis, config: Mapping, specialist: Specialist, visit: Visit | None,
              actor: Actor, now: datetime | None = None) -> SafetyAlert:
    """The safety word: the coordinators texted and called and dispatch called at once (outside a visit, no dispatch)."""
    now = _whole_seconds(now or utcnow())
    if visit is not None:
        older = open_alert(db, visit)
        if older is not None:
            close_alert(db, r, config, older, "sos", actor, now=now, clear=False)
        for _ in range(3):
            if _move_visit(db, visit, visit.field_state, field_state=ESCALATING):
                break
        alert = SafetyAlert(visit_id=visit.id, specialist_id=specialist.id, reason=SOS, rung=COORDINATOR,
                            rung_at=now, opened_at=now)
    else:
        last = last_known_visit(db, specialist.id, now)
        alert = SafetyAlert(visit_id=last.id if last else None, specialist_id=specialist.id, reason=SOS_AWAY,
                            rung=COORDINATOR, rung_at=now, opened_at=now)
    db.add(alert)
    db.flush()
    record(db, "sos", actor, alert.visit_id, alert.id, on_visit=visit is not None)
    _coordinators_now(db, r, config, alert)
    if alert.reason == SOS:
        _dispatch_now(db, r, config, alert, now)
    _time_next_rung(db, r, config, alert)
    return alert


def acknowledge(db: Session, contact: SafetyContact, config: Mapping, now: datetime | None = None) -> bool:
    """Someone pressed 1 on a safety call: the first one stops the climb; every one is on the timeline."""
    now = now or utcnow()
    alert = contact.alert
    label = contact_label(contact, config)
    first = db.execute(
        update(SafetyAlert).where(SafetyAlert.id == alert.id, SafetyAlert.acknowledged_at.is_(None),
                                  SafetyAlert.closed_at.is_(None))
        .values(acknowledged_at=now, acknowledged_by=label[:80]).execution_options(synchronize_session=False)
    ).rowcount == 1
    db.refresh(alert)
    record(db, "acknowledged", Actor(label), alert.visit_id, alert.id, first=first, rung=alert.rung)
    if first:
        _skip_waiting(db, alert)
    return first


def close_alert(db: Session, r: redis.Redis, config: Mapping, alert: SafetyAlert, how: str, actor: Actor,
                note: str | None = None, now: datetime | None = None, clear: bool = True) -> bool:
    """End an alert (OK, OUT, a coordinator, a newer SOS): no more rungs; coordinators already alerted hear it."""
    now = now or utcnow()
    closed = db.execute(
        update(SafetyAlert).where(SafetyAlert.id == alert.id, SafetyAlert.closed_at.is_(None))
        .values(closed_at=now, closed_how=how, closed_by_id=actor.user_id, close_note=note)
        .execution_options(synchronize_session=False)
    ).rowcount == 1
    db.refresh(alert)
    if not closed:
        return False
    record(db, "alert_closed", actor, alert.visit_id, alert.id, how=how, note=note)
    _skip_waiting(db, alert, also_pending=True)
    if clear:
        alerted = db.scalars(select(SafetyContact).where(SafetyContact.alert_id == alert.id,
                                                         SafetyContact.role == "coordinator",
                                                         SafetyContact.channel == "text")).all()
        for contact in alerted:
            _contact(db, r, config, alert, "coordinator", "clear", contact.position, contact.number)
    return True


def end_alert(db: Session, r: redis.Redis, config: Mapping, alert: SafetyAlert, actor: Actor, note: str,
              team_left: bool = False, now: datetime | None = None) -> None:
    """A coordinator ends an escalation with a note; the team is checked out, or due back again in the grace."""
    now = _whole_seconds(now or utcnow())
    note = (note or "").strip()
    if not note:
        raise SafetyError("Write a note: what you found out and from whom.")
    if not close_alert(db, r, config, alert, "coordinator", actor, note=note[:2000], now=now):
        raise SafetyError("This escalation has already ended.")
    visit = alert.visit
    if visit is None or alert.reason == SOS_AWAY or visit.field_state != ESCALATING:
        return
    if team_left:
        if _move_visit(db, visit, ESCALATING, field_state=OUT, checked_out_at=now):
            record(db, "checked_out", actor, visit.id, late=True, never_checked_in=visit.checked_in_at is None)
    elif _move_visit(db, visit, ESCALATING, field_state=IN_FIELD,
                     expected_back_at=now + timedelta(minutes=config["SAFETY_GRACE_MINUTES"])):
        _time_due_back(db, r, config, visit)


def next_rung(db: Session, r: redis.Redis, config: Mapping, alert_id: int, rung: str,
              now: datetime | None = None) -> bool:
    """The timer of `rung`: climb to the next rung if its wait is over and the alert still waits there."""
    alert = db.get(SafetyAlert, alert_id)
    if alert is None or rung not in LADDER:
        return False
    to, act = LADDER[rung]
    now = now or utcnow()
    if not _climb(db, config, alert, rung, to, now):
        return False
    act(db, r, config, alert, now)
    _time_next_rung(db, r, config, alert)  # none from the top rung (rung_due)
    return True


def _climb(db: Session, config: Mapping, alert: SafetyAlert, rung: str, to: str, now: datetime | None) -> bool:
    """One rung up, if the alert is open, unacknowledged, still on `rung` and its wait is over."""
    now = now or utcnow()
    due = rung_due(alert, config)
    if alert.closed_at or alert.acknowledged_at or alert.rung != rung or due is None or now < due:
        return False
    climbed = db.execute(
        update(SafetyAlert).where(SafetyAlert.id == alert.id, SafetyAlert.rung == rung,
                                  SafetyAlert.closed_at.is_(None), SafetyAlert.acknowledged_at.is_(None))
        .values(rung=to, rung_at=now).execution_options(synchronize_session=False)
    ).rowcount == 1
    db.refresh(alert)
    if climbed:
        record(db, f"rung_{to}", LINE, alert.visit_id, alert.id)
    return climbed


def _numbers(db: Session, config: Mapping, alert: SafetyAlert, rung: str, setting: str) -> tuple[str, ...]:
    """The numbers `setting` gives a rung; none is on the timeline (the rung then passes on at once)."""
    numbers = config[setting]
    if not numbers:
        record(db, "nobody_to_call", LINE, alert.visit_id, alert.id, rung=rung, setting=setting)
    return numbers


def _coordinators_now(db: Session, r: redis.Redis, config: Mapping, alert: SafetyAlert,
                      _now: datetime | None = None) -> None:
    """No OK from the team: text and call every coordinator number (press 1 to acknowledge)."""
    for position, number in enumerate(_numbers(db, config, alert, COORDINATOR, "SAFETY_COORDINATOR_NUMBERS")):
        _contact(db, r, config, alert, "coordinator", "text", position, number)
        _contact(db, r, config, alert, "coordinator", "call", position, number)


def _backups_now(db: Session, r: redis.Redis, config: Mapping, alert: SafetyAlert,
                 _now: datetime | None = None) -> None:
    """Nobody acknowledged: call the backup numbers in order, the next when the last call ends unacknowledged."""
    for position, number in enumerate(_numbers(db, config, alert, BACKUPS, "SAFETY_BACKUP_NUMBERS")):
        _contact(db, r, config, alert, "backup", "call", position, number, waiting=position > 0)


def _dispatch_now(db: Session, r: redis.Redis, config: Mapping, alert: SafetyAlert, now: datetime) -> None:
    """The last rung: call SAFETY_DISPATCH_NUMBER with the address and the team (unless an SOS already did)."""
    number = config["SAFETY_DISPATCH_NUMBER"]
    if alert.dispatch_called_at is not None:
        record(db, "dispatch_already_called", LINE, alert.visit_id, alert.id, called_at=alert.dispatch_called_at)
    elif alert.reason == SOS_AWAY:
        record(db, "no_dispatch_outside_a_visit", LINE, alert.visit_id, alert.id)
    elif not number:
        record(db, "nobody_to_call", LINE, alert.visit_id, alert.id, rung=DISPATCH, setting="SAFETY_DISPATCH_NUMBER")
    else:
        alert.dispatch_called_at = now
        _contact(db, r, config, alert, "dispatch", "call", 0, number)


# Each rung's timer: the rung it climbs to, and what is done on arriving there.
LADDER = {TEAM: (COORDINATOR, _coordinators_now), COORDINATOR: (BACKUPS, _backups_now),
          BACKUPS: (DISPATCH, _dispatch_now)}


def rung_due(alert: SafetyAlert, config: Mapping) -> datetime | None:
    """When the alert climbs from its rung (None at the top); at once when the rung had nobody to call."""
    if alert.rung == TEAM:
        return alert.rung_at + timedelta(minutes=config["SAFETY_REPLY_MINUTES"])
    numbers = {COORDINATOR: config["SAFETY_COORDINATOR_NUMBERS"], BACKUPS: config["SAFETY_BACKUP_NUMBERS"]}
    if alert.rung not in numbers:
        return None
    return alert.rung_at + (timedelta(minutes=config["SAFETY_ACK_MINUTES"]) if numbers[alert.rung] else timedelta())


# --- texts and calls --------------------------------------------------------------------------------------------


def _contact(db: Session, r: redis.Redis, config: Mapping, alert: SafetyAlert, role: str, channel: str,
             position: int | str, number: str, waiting: bool = False) -> SafetyContact:
    """A text or call the ladder owes: a row now, and (unless it waits its turn) a job once this commits."""
    kind = "text" if channel == "clear" else channel
    contact = SafetyContact(alert_id=alert.id, purpose=f"{role}-{channel}-{position}", rung=alert.rung, role=role,
                            channel=kind, number=number, status="waiting" if waiting else "pending")
    db.add(contact)
    db.flush()
    if not waiting:
        tasks.after_commit(db, queue_delivery, r, config, contact.id)
    return contact


def queue_delivery(r: redis.Redis, config: Mapping, contact_id: int) -> bool:
    """The job that sends one contact, retried as REST_RETRY_SECONDS says; queued once per contact."""
    return tasks.ensure_job(r, tasks.SAFETY_CONTACT, contact_id, job_id=contact_job_id(contact_id),
                            retry=tasks.rest_retry(config), on_failure=tasks.on_failure(tasks.SAFETY_CONTACT_FAILED))


def contact_job_id(contact_id: int) -> str:
    return f"safety-contact-{contact_id}"


def still_owed(contact: SafetyContact) -> bool:
    """Whether a contact should still go: nothing after the alert closed but the all-clear, no call after a 1."""
    alert = contact.alert
    if contact.kind == "clear":
        return True
    if alert.closed_at is not None:
        return False
    # Dispatch, once decided, is called even if someone acknowledges meanwhile (an SOS calls both at once).
    return not (contact.channel == "call" and contact.role != "dispatch" and alert.acknowledged_at is not None)


def claim(db: Session, contact: SafetyContact, config: Mapping) -> bool:
    """Take a pending contact for sending (one job only); a call is on the timeline from here on, since
    Twilio may report its end before the job hears that it was placed."""
    claimed = db.execute(update(SafetyContact).where(SafetyContact.id == contact.id, SafetyContact.status == "pending")
                         .values(status="sending").execution_options(synchronize_session=False)).rowcount == 1
    db.refresh(contact)
    if claimed and contact.channel == "call":
        alert = contact.alert
        record(db, "calling", LINE, alert.visit_id, alert.id, to=contact_label(contact, config), purpose=contact.purpose)
    return claimed


def skip(db: Session, contact: SafetyContact) -> None:
    contact.status = "skipped"


def give_back(db: Session, contact: SafetyContact, error: str) -> None:
    """A send that may work on a retry: pending again, so the retry (or the sweep) can claim it."""
    contact.status, contact.error = "pending", error[:200]


def contact_sent(db: Session, contact: SafetyContact, sid: str, config: Mapping) -> None:
    """Twilio took the text or call; a call to dispatch is also on the case, as returned to police."""
    alert = contact.alert
    if contact.channel == "text":
        contact.status, contact.sid = "sent", sid
        record(db, "texted", LINE, alert.visit_id, alert.id, to=contact_label(contact, config), purpose=contact.purpose)
        return
    # The call's end may be in already (its status callback can beat Twilio's answer to us): keep that.
    db.execute(update(SafetyContact).where(SafetyContact.id == contact.id).values(sid=sid)
               .execution_options(synchronize_session=False))
    db.execute(update(SafetyContact).where(SafetyContact.id == contact.id, SafetyContact.status == "sending")
               .values(status="placed").execution_options(synchronize_session=False))
    db.refresh(contact)
    if contact.role == "dispatch" and alert.visit is not None:
        cases.record(db, db.get(Case, alert.visit.case_id), "safety_dispatch_called", visit_id=alert.visit_id,
                     alert_id=alert.id, reason=alert.reason)


def contact_failed(db: Session, r: redis.Redis, config: Mapping, contact: SafetyContact, error: str) -> None:
    """Twilio refused (or kept failing): on the timeline and the board; a backup's turn passes to the next."""
    contact.status, contact.error = "failed", error[:200]
    alert = contact.alert
    record(db, f"{contact.channel}_failed", LINE, alert.visit_id, alert.id, to=contact_label(contact, config),
           error=error[:200])
    if contact.role == "backup":
        _next_backup(db, r, config, alert)


def call_ended(db: Session, r: redis.Redis, config: Mapping, contact: SafetyContact, status: str) -> None:
    """A safety call's final status (Twilio's status callback); a backup who did not press 1 passes the turn on."""
    if contact.status not in ("placed", "sending"):
        return  # already settled (a repeated callback)
    contact.status = status[:16]
    alert = contact.alert
    record(db, "call_ended", LINE, alert.visit_id, alert.id, to=contact_label(contact, config), status=status)
    if contact.role == "backup":
        _next_backup(db, r, config, alert)


def _next_backup(db: Session, r: redis.Redis, config: Mapping, alert: SafetyAlert) -> None:
    if alert.closed_at or alert.acknowledged_at or alert.rung != BACKUPS:
        return
    following = db.scalar(select(SafetyContact).where(SafetyContact.alert_id == alert.id, SafetyContact.role == "backup",
                                                      SafetyContact.status == "waiting")
                          .order_by(SafetyContact.id).limit(1))
    if following is not None:
        following.status = "pending"
        tasks.after_commit(db, queue_delivery, r, config, following.id)


def _skip_waiting(db: Session, alert: SafetyAlert, also_pending: bool = False) -> None:
    statuses = ["waiting", "pending"] if also_pending else ["waiting"]
    db.execute(update(SafetyContact).where(SafetyContact.alert_id == alert.id, SafetyContact.status.in_(statuses),
                                           ~SafetyContact.purpose.like("%-clear-%"))
               .values(status="skipped").execution_options(synchronize_session=False))


def contact_label(contact: SafetyContact, config: Mapping) -> str:
    """Who a contact reached, as the timeline and the board say it: "coordinator (937) 555-0300", a name."""
    shown = phones.display(contact.number, config["DEFAULT_REGION"])
    if contact.role == "team":
        visit = contact.alert.visit
        names = {m.specialist.phone: m.specialist.name for m in visit.team} if visit else {}
        return names.get(contact.number, shown)
    position = contact.position
    role = f"backup {position + 1}" if contact.role == "backup" else contact.role
    return f"{role} {shown}"


# --- timers ---------------------------------------------------------------------------------------------------


def due_job_id(visit: Visit) -> str:
    return f"safety-due-{visit.id}-{visit.expected_back_at:%Y%m%d%H%M%S}"


def rung_job_id(alert: SafetyAlert) -> str:
    return f"safety-alert-{alert.id}-{alert.rung}"


def _time_due_back(db: Session, r: redis.Redis, config: Mapping, visit: Visit) -> None:
    tasks.after_commit(db, _queue_due_back, r, config, visit.id, visit.expected_back_at, due_job_id(visit))


def _queue_due_back(r: redis.Redis, config: Mapping, visit_id: int, due_back: datetime, job_id: str) -> bool:
    at = due_back + timedelta(minutes=config["SAFETY_GRACE_MINUTES"])
    return tasks.ensure_job(r, tasks.SAFETY_DUE, visit_id, due_back.isoformat(), job_id=job_id, at=_later(at))


def _time_next_rung(db: Session, r: redis.Redis, config: Mapping, alert: SafetyAlert) -> None:
    due = rung_due(alert, config)
    if due is not None:
        tasks.after_commit(db, _queue_rung, r, alert.id, alert.rung, due, rung_job_id(alert))


def _queue_rung(r: redis.Redis, alert_id: int, rung: str, due: datetime, job_id: str) -> bool:
    return tasks.ensure_job(r, tasks.SAFETY_RUNG, alert_id, rung, job_id=job_id, at=_later(due))


def _later(at: datetime) -> datetime | None:
    """`at` if it is still to come, else None (queue it now)."""
    return at if at > utcnow() else None


def rebuild_timers(db: Session, r: redis.Redis, config: Mapping, now: datetime | None = None) -> int:
    """The sweep: queue every timer and contact SQL says is owed and RQ no longer holds; returns how many."""
    now = now or utcnow()
    queued = 0
    for visit in db.scalars(select(Visit).where(Visit.field_state == IN_FIELD)):
        queued += _queue_due_back(r, config, visit.id, visit.expected_back_at, due_job_id(visit))
    for alert in db.scalars(select(SafetyAlert).where(SafetyAlert.closed_at.is_(None),
                                                      SafetyAlert.acknowledged_at.is_(None))):
        due = rung_due(alert, config)
        if due is not None:
            queued += _queue_rung(r, alert.id, alert.rung, due, rung_job_id(alert))
    stale = db.scalars(select(SafetyContact).where(SafetyContact.status == "sending",
                                                   SafetyContact.updated_at < now - STALE_SENDING)).all()
    for contact in stale:
        if not tasks.job_held(r, contact_job_id(contact.id)):
            contact.status = "pending"  # its job died mid-send: send it again
    db.commit()
    for contact_id in db.scalars(select(SafetyContact.id).where(SafetyContact.status == "pending")):
        queued += queue_delivery(r, config, contact_id)
    return queued


# --- what texts, calls and pages read ----------------------------------------------------------------------------


def open_alert(db: Session, visit: Visit) -> SafetyAlert | None:
    """The visit's open alert (overdue or SOS from the visit), if any."""
    return db.scalar(select(SafetyAlert).where(SafetyAlert.visit_id == visit.id, SafetyAlert.closed_at.is_(None),
                                               SafetyAlert.reason != SOS_AWAY)
                     .order_by(SafetyAlert.id.desc()).limit(1))


def in_field_visit(db: Session, specialist_id: int) -> Visit | None:
    """The visit this specialist's team is checked into (the latest check-in, should there be two)."""
    return db.scalar(_of(specialist_id).where(Visit.field_state.in_((IN_FIELD, ESCALATING)))
                     .order_by(Visit.checked_in_at.desc().nullslast(), Visit.id.desc()).limit(1))


def visit_now_or_nearest(db: Session, specialist_id: int, now: datetime, started: bool = False) -> Visit | None:
    """A visit of theirs not yet checked into: the one on now, else the nearest within NEAR (started: begun)."""
    query = _of(specialist_id).where(Visit.status == visits.SCHEDULED, Visit.field_state.is_(None),
                                     Visit.starts_at <= now + (timedelta() if started else NEAR),
                                     Visit.starts_at >= now - NEAR)
    found = db.scalars(query).all()
    on_now = [v for v in found if v.starts_at <= now < v.ends_at]
    if on_now:
        return on_now[0]
    return min(found, key=lambda v: abs((v.starts_at - now).total_seconds()), default=None)


def last_known_visit(db: Session, specialist_id: int, now: datetime) -> Visit | None:
    """Where they were last: their latest visit that has begun (checked in or not), not cancelled."""
    return db.scalar(_of(specialist_id).where(Visit.status != visits.CANCELLED, Visit.starts_at <= now)
                     .order_by(Visit.starts_at.desc()).limit(1))


def _of(specialist_id: int):
    return select(Visit).join(VisitMember, VisitMember.visit_id == Visit.id).where(
        VisitMember.specialist_id == specialist_id)


def team_names(visit: Visit | None) -> str:
    """The team as one phrase: "Ana Ruiz and Ben Cole"."""
    names = [m.specialist.name for m in visit.team] if visit else []
    return " and ".join([", ".join(names[:-1]), names[-1]]) if len(names) > 1 else "".join(names)


@dataclass
class FieldRow:
    """One line of the board's field panel: a team out (or due, or never checked in), or an SOS outside a visit."""

    key: str
    visit: Visit | None
    alert: SafetyAlert | None
    status: str  # in_field, due_back, overdue, escalating, sos, not_checked_in
    team: str
    contacts: list[SafetyContact] = field(default_factory=list)

    @property
    def failed(self) -> list[SafetyContact]:
        return [c for c in self.contacts if c.status in ("failed", "busy", "no-answer", "canceled")]


def field_board(db: Session, config: Mapping, now: datetime | None = None) -> list[FieldRow]:
    """The teams in the field for the board, most urgent first: SOS, escalating, overdue, due, late, out there."""
    now = now or utcnow()
    late = timedelta(minutes=config["SAFETY_CHECKIN_LATE_MINUTES"])
    alerts = {a.visit_id if a.reason != SOS_AWAY else f"away-{a.id}": a
              for a in db.scalars(select(SafetyAlert).where(SafetyAlert.closed_at.is_(None)).order_by(SafetyAlert.id))}
    out_there = db.scalars(select(Visit).where(or_(
        Visit.field_state.in_((IN_FIELD, ESCALATING)),
        and_(Visit.field_state.is_(None), Visit.status == visits.SCHEDULED, Visit.starts_at <= now - late,
             Visit.ends_at > now - visits.OVERDUE_AFTER)))).all()
    contacts: dict[int, list[SafetyContact]] = {}
    if alerts:
        for contact in db.scalars(select(SafetyContact).where(
                SafetyContact.alert_id.in_([a.id for a in alerts.values()])).order_by(SafetyContact.id)):
            contacts.setdefault(contact.alert_id, []).append(contact)
    rows = []
    for visit in out_there:
        alert = alerts.pop(visit.id, None)
        if alert is not None:
            status = "sos" if alert.reason == SOS else ("overdue" if alert.rung == TEAM else "escalating")
        elif visit.field_state is None:
            status = "not_checked_in"
        else:
            status = "due_back" if visit.expected_back_at and now >= visit.expected_back_at else "in_field"
        rows.append(FieldRow(f"visit-{visit.id}", visit, alert, status, team_names(visit),
                             contacts.get(alert.id, []) if alert else []))
    for alert in alerts.values():
        # An SOS outside a visit, or an alert whose visit is no longer out (checked out by a coordinator's hand).
        rows.append(FieldRow(f"alert-{alert.id}", alert.visit, alert, "sos" if alert.reason != OVERDUE else "escalating",
                             alert.specialist.name if alert.specialist else team_names(alert.visit),
                             contacts.get(alert.id, [])))
    order = ["sos", "escalating", "overdue", "due_back", "not_checked_in", "in_field"]
    return sorted(rows, key=lambda row: (order.index(row.status), row.visit.starts_at if row.visit else now))
