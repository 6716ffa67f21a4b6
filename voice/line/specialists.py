"""The roster: who the specialists are, who is switched on, and their ON/OFF/STATUS texts."""

from __future__ import annotations

import redis
from sqlalchemy import select
from sqlalchemy.orm import Session

from voice.clock import utcnow
from voice.line import routing
from voice.models import Shift, Specialist
from voice.redisdb import LANGUAGES, Keys


class RosterError(ValueError):
    """A roster change that cannot be made; the message says why."""


def normalise_languages(languages: list[str] | tuple[str, ...] | str | None) -> str:
    if isinstance(languages, str):
        languages = languages.split(",")
    codes = []
    for code in languages or ["en"]:
        code = code.strip().lower()
        if code not in LANGUAGES:
            raise RosterError(f"unsupported language {code!r} (use one of: {', '.join(LANGUAGES)})")
        if code not in codes:
            codes.append(code)
    return ",".join(codes or ["en"])


def find_by_phone(db: Session, phone_e164: str | None) -> Specialist | None:
    if not phone_e164:
        return None
    return db.scalar(select(Specialist).where(Specialist.phone == phone_e164))


def add_specialist(db: Session, name: str, phone_e164: str, languages=None) -> Specialist:
    name = (name or "").strip()
    if not name:
        raise RosterError("a specialist needs a name")
    if find_by_phone(db, phone_e164) is not None:
        raise RosterError(f"{phone_e164} is already on the roster")
    specialist = Specialist(name=name[:120], phone=phone_e164, languages=normalise_languages(languages))
    db.add(specialist)
    db.flush()
    return specialist


def update_specialist(
    db: Session, r: redis.Redis, specialist: Specialist, name: str, phone_e164: str, languages, active: bool
) -> Specialist:
    """Edit a specialist; the idle queues follow their languages and active flag."""
    other = find_by_phone(db, phone_e164)
    if other is not None and other.id != specialist.id:
        raise RosterError(f"{phone_e164} belongs to {other.name}")
    specialist.name = (name or specialist.name).strip()[:120]
    specialist.phone = phone_e164
    specialist.languages = normalise_languages(languages)
    specialist.active = active
    if not active and specialist.available:
        specialist.available = False
        end_shift(db, specialist)
    db.flush()
    routing.set_idle_queue(r, specialist.id, [], on=False)
    if specialist.available and specialist.active:
        routing.set_idle_queue(r, specialist.id, specialist.language_list, on=True)
    return specialist


def set_available(db: Session, r: redis.Redis, specialist: Specialist, on: bool) -> None:
    """Switch a specialist on or off for calls (SQL first, then the idle queues)."""
    if on and not specialist.active:
        raise RosterError(f"{specialist.name} is deactivated on the roster")
    if specialist.available != on:
        specialist.available = on
        specialist.available_since = utcnow() if on else None
        if on:
            db.add(Shift(specialist_id=specialist.id, started_at=specialist.available_since))
        else:
            end_shift(db, specialist)
    db.commit()
    routing.set_idle_queue(r, specialist.id, specialist.language_list, on=on)
    if on:
        routing.specialist_freed.send(None, specialist_id=specialist.id)


def end_shift(db: Session, specialist: Specialist) -> None:
    """Close the specialist's open shift, if any (one from before shifts were kept has no row)."""
    now = utcnow()
    for shift in db.scalars(select(Shift).where(Shift.specialist_id == specialist.id, Shift.ended_at.is_(None))):
        shift.ended_at = now


def sync_idle_queues(db: Session, r: redis.Redis) -> int:
    """Rebuild the idle queues from SQL (after Redis was flushed or replaced); returns how many are on."""
    on = db.scalars(select(Specialist).where(Specialist.active.is_(True), Specialist.available.is_(True))).all()
    wanted = {language: {} for language in LANGUAGES}
    for specialist in on:
        since = (specialist.available_since or utcnow()).timestamp()
        for language in specialist.language_list:
            wanted[language][str(specialist.id)] = since
    pipe = r.pipeline()
    for language, members in wanted.items():
        current = {m.decode() for m in r.zrange(Keys.available(language), 0, -1)}
        stale = current - set(members)
        if stale:
            pipe.zrem(Keys.available(language), *stale)
        if members:
            # NX keeps the idle-since order of specialists already queued.
            pipe.zadd(Keys.available(language), members, nx=True)
    pipe.execute()
    return len(on)


def state_of(r: redis.Redis, specialist: Specialist) -> str:
    """'off', 'available' or 'busy', as the live board and STATUS show it."""
    on = specialist.active and specialist.available
    return state_from(specialist, routing.lease_holder(r, specialist.id) if on else None)


def state_from(specialist: Specialist, holder: str | None) -> str:
    """The same, from a lease holder already read (the board reads them all in one round trip)."""
    if not specialist.active or not specialist.available:
        return "off"
    return "busy" if holder else "available"


SMS_HELP = "Text ON to take calls, OFF to stop, STATUS to check."


def handle_text(db: Session, r: redis.Redis, from_e164: str | None, body: str, program: str) -> str:
    """A specialist's text message in, the reply text out."""
    specialist = find_by_phone(db, from_e164)
    if specialist is None or not specialist.active:
        return f"This is the {program} line. This number is not on our specialist roster, so nothing was changed."
    command = (body or "").strip().upper().rstrip(".!")
    if command in {"ON", "START", "AVAILABLE", "YES"}:
        set_available(db, r, specialist, True)
        return f"You are ON, {specialist.name}. Calls will ring this phone. Text OFF to stop."
    if command in {"OFF", "STOP", "BREAK", "UNAVAILABLE"}:
        set_available(db, r, specialist, False)
        return "You are OFF. No new calls will ring this phone. Text ON when you are ready."
    if command in {"STATUS", "?"}:
        state = state_of(r, specialist)
        words = {"off": "OFF", "available": "ON and waiting for a call", "busy": "ON and on a call"}[state]
        waiting = int(r.zcard(Keys.available(specialist.language_list[0]))) if specialist.language_list else 0
        return f"You are {words}. Specialists waiting for calls in your first language: {waiting}."
    return f"Sorry, I did not understand that. {SMS_HELP}"
