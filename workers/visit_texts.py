"""The visit jobs: text the caller and the team when a visit is booked, moved or cancelled, and remind them
the day before and an hour before. Each job re-reads the visit and sends nothing for an older version or a
visit no longer on; each text is a row in `visit_messages` first, so a job run twice never texts twice."""

from __future__ import annotations

import logging
from datetime import datetime

from flask import current_app
from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError

from voice import db as database
from voice import phones, twilio_rest
from voice.casework import visits
from voice.clock import to_local, utcnow
from voice.models import Specialist, Visit, VisitMessage
from voice.twilio_rest import TwilioError
from voice.twiml import webhook_url
from workers.jobs import job_context

log = logging.getLogger("workers.visit_texts")


def send_change(visit_id: int, kind: str, version: int, also: list[int] | None = None) -> dict:
    """The text for a visit booked ("confirm"), moved ("changed") or cancelled, to the caller and the team."""
    with job_context():
        db = database.session()
        visit = db.get(Visit, visit_id)
        if visit is None or visit.version != version:
            return {}
        if kind != "cancelled" and visit.status != visits.SCHEDULED:
            return {}
        return _send_all(db, visit, kind, extra_team=also or [])


def send_reminder(visit_id: int, which: str, version: int, now: datetime | None = None) -> dict:
    """A reminder, if the visit is still on, at the time this version was booked for, and not yet sent."""
    with job_context():
        db = database.session()
        now = now or utcnow()
        visit = db.get(Visit, visit_id)
        if visit is None or visit.status != visits.SCHEDULED or visit.version != version or visit.starts_at <= now:
            return {}
        return _send_all(db, visit, which)


def _send_all(db, visit: Visit, kind: str, extra_team: list[int] | None = None) -> dict:
    sent = {}
    if visit.contact_number:
        sent["caller"] = _send_once(db, visit, kind, "caller", visit.contact_number,
                                    caller_text(visit, kind, visit.language))
    team = [m.specialist for m in visit.team]
    team += [s for s in db.scalars(select(Specialist).where(Specialist.id.in_(extra_team or [0])))]
    for specialist in team:
        sent[f"specialist:{specialist.id}"] = _send_once(db, visit, kind, f"specialist:{specialist.id}",
                                                         specialist.phone, team_text(visit, kind))
    return sent


def _send_once(db, visit: Visit, kind: str, recipient: str, number: str, body: str) -> str:
    """Claim the text's row, then send it; a transient failure gives the row back so RQ's retry can send it."""
    config = current_app.config
    row = VisitMessage(visit_id=visit.id, kind=kind, version=visit.version, recipient=recipient)
    db.add(row)
    try:
        db.commit()
    except IntegrityError:
        db.rollback()
        return "already sent"
    allowed = (phones.textable_caller(number, config) if recipient == "caller"
               else phones.callable_number(number, config["DEFAULT_REGION"], config["CALLBACK_COUNTRIES"]))
    if allowed is None:
        row.error = "number not allowed"
        db.commit()
        return "number not allowed"
    try:
        # Each later status (sent, delivered, undelivered, failed) comes to /sms/status for this row.
        row.message_sid = twilio_rest.send_sms(config, number, body,
                                               webhook_url("/sms/status", visit_message=row.id))
        row.status = "queued"
    except TwilioError as error:
        if not error.permanent:
            db.execute(delete(VisitMessage).where(VisitMessage.id == row.id))
            db.commit()
            raise
        log.warning("visit %s text %s to %s not sent: Twilio error %s", visit.id, kind, recipient, error.code)
        visits.text_refused(db, row, error.code)
    db.commit()
    return row.message_sid or row.error or ""


def _when(visit: Visit, language: str) -> str:
    local = to_local(visit.starts_at, current_app.config["TIMEZONE"])
    if language == "es":
        days = ["lunes", "martes", "miércoles", "jueves", "viernes", "sábado", "domingo"]
        return f"el {days[local.weekday()]} {local.day}/{local.month} a las {local:%H:%M}"
    return f"{local:%A %b %-d at %-I:%M %p}"


# The caller's texts, English and Spanish side by side; {name} is the program's name in that language.
CALLER_TEXTS: dict[str, dict[str, str]] = {
    "confirm": {
        "en": "{name}: mediation specialists will visit you {when} at {where}.",
        "es": "{name}: especialistas en mediación le visitarán {when} en {where}.",
    },
    "changed": {
        "en": "{name}: your visit has changed. It is now {when} at {where}.",
        "es": "{name}: su visita cambió. Ahora es {when} en {where}.",
    },
    "cancelled": {
        "en": "{name}: your visit at {where} is cancelled. We will call you to arrange another.",
        "es": "{name}: su visita en {where} fue cancelada. Le llamaremos para acordar otra.",
    },
    "day_before": {
        "en": "{name}: a reminder, we will visit you tomorrow, {when}, at {where}.",
        "es": "{name}: recordatorio, le visitaremos mañana, {when}, en {where}.",
    },
    "hour_before": {
        "en": "{name}: a reminder, we will visit you in an hour, {when}, at {where}.",
        "es": "{name}: recordatorio, le visitaremos en una hora, {when}, en {where}.",
    },
}


def caller_text(visit: Visit, kind: str, language: str) -> str:
    """The caller's text, in their language."""
    config = current_app.config
    spanish = language == "es"
    name = config["PROGRAM_NAME_ES"] if spanish else config["PROGRAM_NAME"]
    return CALLER_TEXTS[kind]["es" if spanish else "en"].format(name=name, when=_when(visit, language),
                                                                 where=visit.address)


def team_text(visit: Visit, kind: str) -> str:
    """The team's text (in English, the program's working language)."""
    when, where = _when(visit, "en"), visit.address
    names = ", ".join(m.specialist.name for m in visit.team)
    return {
        "confirm": f"Visit booked: {when}, {where}. Team: {names}.",
        "changed": f"Visit changed: now {when}, {where}. Team: {names}.",
        "cancelled": f"Visit cancelled: {when}, {where}.",
        "day_before": f"Visit tomorrow: {when}, {where}. Team: {names}.",
        "hour_before": f"Visit in an hour: {when}, {where}. Team: {names}.",
    }[kind]
