"""The field's text messages: IN, IN 30, OUT, OK and the safety word from a specialist's phone, and the texts
the safety ladder sends (to the team, to the coordinators, and the all-clear).

Only roster numbers count: a text from anyone else is not a field command here (the roster's own handler
answers it, and nothing starts). A specialist cannot be on two visits at once (booking checks), so a command
goes to the visit their team is checked into, else the one on now, else the nearest; the reply names it.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import datetime

import redis
from sqlalchemy import select
from sqlalchemy.orm import Session

from voice.casework import field_safety as safety
from voice.clock import to_local, utcnow
from voice.models import SafetyAlert, SafetyContact, Specialist

# IN, IN 30, in 30 min: the minutes are optional.
_IN = re.compile(r"^IN(?:\s+(\d{1,4})\s*(?:M|MIN|MINS|MINUTES)?)?$")


def parse(body: str, safety_word: str) -> tuple[str, int | None] | None:
    """The field command in a text, ("in", minutes or None), ("out"|"ok"|"sos", None); None if it is not one.

    IN, OUT and OK must be the whole text (an "out of battery" must not check a team out); the safety word
    only has to come first ("SOS 2nd floor"), since a text for help must never be missed.
    """
    text = " ".join((body or "").upper().split()).strip(" .!")
    first = text.split(" ", 1)[0].strip(".!,") if text else ""
    if first == safety_word:
        return "sos", None
    if text in ("OUT", "OK"):
        return text.lower(), None
    found = _IN.match(text)
    if found:
        return "in", int(found.group(1)) if found.group(1) else None
    return None


def handle_text(db: Session, r: redis.Redis, config: Mapping, from_e164: str | None, body: str,
                now: datetime | None = None) -> str | None:
    """A field command from a roster number: make the move, return the reply. None: not a field command here."""
    command = parse(body, config["SAFETY_WORD"])
    if command is None or not from_e164:
        return None
    specialist = db.scalar(select(Specialist).where(Specialist.phone == from_e164, Specialist.active.is_(True)))
    if specialist is None:
        return None  # a stranger: never a check-in, never an SOS
    now = now or utcnow()
    word, minutes = command
    actor = safety.by_text(specialist)
    try:
        if word == "sos":
            return _sos(db, r, config, specialist, actor, now)
        if word == "in":
            return _in(db, r, config, specialist, actor, minutes, now)
        if word == "out":
            return _out(db, r, config, specialist, actor, now)
        return _ok(db, r, config, specialist, actor, now)
    except safety.SafetyError as error:
        return f"{error} Nothing changed."


def _in(db, r, config, specialist: Specialist, actor, minutes: int | None, now: datetime) -> str:
    visit = safety.in_field_visit(db, specialist.id) or safety.visit_now_or_nearest(db, specialist.id, now)
    if visit is None:
        return "You have no visit within 12 hours to check in to, so nothing changed."
    again = visit.field_state is not None
    safety.check_in(db, r, config, visit, actor, minutes, now)
    back = clock(visit.expected_back_at, config)
    if again:
        return f"Noted: your team at {visit.address} is now due back by {back}. Text OUT when you leave."
    return (f"Checked in at {visit.address} (visit at {clock(visit.starts_at, config)}). Due back by {back}. "
            f"Text OUT when you leave, IN 30 for 30 more minutes, {config['SAFETY_WORD']} for help.")


def _out(db, r, config, specialist: Specialist, actor, now: datetime) -> str:
    visit = safety.in_field_visit(db, specialist.id) or safety.visit_now_or_nearest(db, specialist.id, now,
                                                                                     started=True)
    if visit is None:
        return "You are not checked in to a visit, so nothing changed."
    safety.check_out(db, r, config, visit, actor, now)
    return f"Checked out of {visit.address}. Thank you."


def _ok(db, r, config, specialist: Specialist, actor, now: datetime) -> str:
    visit = safety.in_field_visit(db, specialist.id)
    if visit is not None:
        alert = safety.confirm_safe(db, r, config, visit, actor, now)
        if alert is None:
            return f"Thanks. Your team at {visit.address} is due back by {clock(visit.expected_back_at, config)}."
        return (f"Thank you: the alert is stopped. You are due back by {clock(visit.expected_back_at, config)}; "
                "text OUT when you leave, IN 30 for more time.")
    away = db.scalar(select(SafetyAlert).where(SafetyAlert.specialist_id == specialist.id,
                                               SafetyAlert.reason == safety.SOS_AWAY, SafetyAlert.closed_at.is_(None))
                     .order_by(SafetyAlert.id.desc()).limit(1))
    if away is not None and safety.close_alert(db, r, config, away, "safe", actor, now=now):
        return "Thank you: your SOS is stopped, and the coordinator is told you are safe."
    return "Thanks. You are not checked in to a visit, so nothing changed."


def _sos(db, r, config, specialist: Specialist, actor, now: datetime) -> str:
    visit = safety.in_field_visit(db, specialist.id)
    if visit is None:
        on_now = safety.visit_now_or_nearest(db, specialist.id, now, started=True)
        visit = on_now if on_now is not None and on_now.ends_at > now else None
    alert = safety.raise_sos(db, r, config, specialist, visit, actor, now)
    calling = sos_calls(alert, config)
    if not calling:
        return "SOS received, but the line has nobody set up to call. Call 911 now."
    if visit is None:
        last = alert.visit
        where = f" We told them your last visit was at {last.address}." if last else ""
        return f"SOS received. You are not on a visit: we are calling {calling[0]} now.{where} Call 911 if you can."
    return f"SOS received for {visit.address}. We are calling {' and '.join(calling)} now. Call 911 if you can."


def sos_calls(alert: SafetyAlert, config: Mapping) -> list[str]:
    """Whom an SOS is calling now, for the reply: the coordinator (else the backups), and dispatch."""
    calling = [who for who, numbers in (("the coordinator", config["SAFETY_COORDINATOR_NUMBERS"]),
                                        ("the backup contacts", config["SAFETY_BACKUP_NUMBERS"])) if numbers][:1]
    return calling + (["dispatch"] if alert.dispatch_called_at else [])


# --- the texts the ladder sends -------------------------------------------------------------------------------


def clock(value: datetime | None, config: Mapping) -> str:
    """10:47 AM, in the program's time zone."""
    if value is None:
        return "an unknown time"
    return f"{to_local(value, config['TIMEZONE']):%-I:%M %p}"


def outgoing(contact: SafetyContact, config: Mapping) -> str:
    """The body of a text the ladder sends, from the alert as it stands now."""
    alert = contact.alert
    visit = alert.visit
    program = config["PROGRAM_NAME"]
    kind = contact.kind
    if contact.role == "team":
        return (f"{program}: your visit at {visit.address} was due back at {clock(visit.expected_back_at, config)}. "
                f"Reply OK if you are safe, OUT if you have left, or {config['SAFETY_WORD']} for help.")
    if kind == "clear":
        return f"All clear ({program}): {situation_short(alert, config)}: {closed_words(alert, config)}."
    return (f"SAFETY ALERT ({program}): {situation_short(alert, config)}. We are calling you now: press 1 to "
            f"acknowledge. Board: {config['PUBLIC_BASE_URL']}/dashboard/")


def situation_short(alert: SafetyAlert, config: Mapping) -> str:
    """What the alert is about, in a line of a text."""
    visit = alert.visit
    if alert.reason == safety.OVERDUE:
        return (f"{safety.team_names(visit)} at {visit.address} have not answered (checked in "
                f"{clock(visit.checked_in_at, config)}, due back {clock(visit.expected_back_at, config)})")
    name = alert.specialist.name if alert.specialist else "A team member"
    if alert.reason == safety.SOS:
        dispatch = "; dispatch is being called" if alert.dispatch_called_at else ""
        return f"{name} sent SOS from the visit at {visit.address}{dispatch}"
    last = f"; last visit {visit.address} at {clock(visit.starts_at, config)}" if visit else "; no visit on record"
    return f"{name} sent SOS and is not on a visit{last}"


def closed_words(alert: SafetyAlert, config: Mapping) -> str:
    how = {"safe": "the team replied OK", "out": "the team checked out",
           "coordinator": f"ended on the board by {alert.closed_by.email if alert.closed_by else 'a coordinator'}"}
    return f"{how.get(alert.closed_how, 'ended')} at {clock(alert.closed_at, config)}"
