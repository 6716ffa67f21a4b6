"""The roster: who the specialists are, who is switched on, and their ON/OFF/STATUS texts."""

from __future__ import annotations

import redis
from flask import current_app
from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from voice import phones
from voice.clock import utcnow
from voice.line import routing
from voice.models import Call, Specialist
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
    if not active:
        specialist.available = False
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
    db.commit()
    routing.set_idle_queue(r, specialist.id, specialist.language_list, on=on)
    if on:
        routing.specialist_freed.send(None, specialist_id=specialist.id)


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
# STOP is Twilio's, not ours: it blocks every text from the line, OFF included, until START.
OPT_OUT_HELP = "STOP blocks every text from this line (visit reminders too); START undoes it."


def handle_text(db: Session, r: redis.Redis, from_e164: str | None, body: str, program: str,
                opt_out_type: str | None = None) -> str:
    """A specialist's text message in, the reply text out ("" for no reply)."""
    specialist = find_by_phone(db, from_e164)
    if (keyword := opt_out_keyword(body, opt_out_type)) is not None:
        return opt_out_reply(db, r, specialist, keyword, from_e164)
    if specialist is None or not specialist.active:
        return reply_to_stranger(db, from_e164)
    command = (body or "").strip().upper().rstrip(".!")
    if command in {"ON", "AVAILABLE"}:
        set_available(db, r, specialist, True)
        return f"You are ON, {specialist.name}. Calls will ring this phone. Text OFF to stop."
    if command in {"OFF", "BREAK", "UNAVAILABLE"}:
        set_available(db, r, specialist, False)
        return "You are OFF. No new calls will ring this phone. Text ON when you are ready."
    if command in {"STATUS", "?"}:
        state = state_of(r, specialist)
        words = {"off": "OFF", "available": "ON and waiting for a call", "busy": "ON and on a call"}[state]
        waiting = int(r.zcard(Keys.available(specialist.language_list[0]))) if specialist.language_list else 0
        return (f"You are {words}. Specialists waiting for calls in your first language: {waiting}. "
                f"{OPT_OUT_HELP}")
    return f"Sorry, I did not understand that. {SMS_HELP}"


# --- Twilio's opt-out keywords ---------------------------------------------------------------------------------
# https://help.twilio.com/articles/223134027-Twilio-support-for-opt-out-keywords-SMS-STOP-filtering-: on a long
# code Twilio itself answers STOP, STOPALL, UNSUBSCRIBE, CANCEL, END, QUIT (and REVOKE, OPTOUT) and then refuses
# every text from the line to that phone (error 21610) until it texts START, YES or UNSTOP; HELP and INFO get
# Twilio's help reply. The text still reaches us, with OptOutType (STOP, START, HELP) when Advanced Opt-Out is on
# (https://www.twilio.com/docs/messaging/tutorials/advanced-opt-out).
OPT_OUT_KEYWORDS = {
    "STOP": {"STOP", "STOPALL", "UNSUBSCRIBE", "CANCEL", "END", "QUIT", "REVOKE", "OPTOUT"},
    "START": {"START", "YES", "UNSTOP"},
    "HELP": {"HELP", "INFO"},
}


def opt_out_keyword(body: str, opt_out_type: str | None = None) -> str | None:
    """STOP, START or HELP when Twilio treats the text as that keyword, else None."""
    if (opt_out_type or "").upper() in OPT_OUT_KEYWORDS:
        return opt_out_type.upper()
    word = (body or "").strip().upper()
    return next((kind for kind, words in OPT_OUT_KEYWORDS.items() if word in words), None)


def opt_out_reply(db: Session, r: redis.Redis, specialist: Specialist | None, keyword: str,
                  from_e164: str | None) -> str:
    """Note a specialist's opt-out or opt-in (it does not switch them ON or OFF); the reply, if any.

    After STOP Twilio has answered and would refuse ours (21610): no reply. After START Twilio sends its own
    confirmation too; ours says where they stand.
    """
    if keyword == "HELP":
        return f"{SMS_HELP} {OPT_OUT_HELP}" if specialist is not None else reply_to_stranger(db, from_e164)
    if specialist is None:
        return ""
    if keyword == "STOP":
        specialist.texts_opted_out_at = specialist.texts_opted_out_at or utcnow()
        db.commit()
        return ""
    specialist.texts_opted_out_at = None
    db.commit()
    words = "ON" if state_of(r, specialist) != "off" else "OFF"
    return f"Texts from this line are back on. You are {words} for calls. {SMS_HELP}"


def reply_to_stranger(db: Session, from_e164: str | None) -> str:
    """A text from a number not on the roster (a caller answering their confirmation): who we are, how to reach
    a specialist, and 911 for an emergency, in the language of their last call."""
    config = current_app.config
    line = phones.display(config["TWILIO_PHONE_NUMBER"], config["DEFAULT_REGION"])
    language = db.scalar(select(Call.language).where(or_(Call.from_number == from_e164,
                                                         Call.callback_number == from_e164))
                         .order_by(Call.started_at.desc()).limit(1)) if from_e164 else None
    if language == "es":
        return (f"{config['PROGRAM_NAME_ES']}: no leemos mensajes de texto en este número. Para hablar con un "
                f"especialista en mediación, llame al {line}. En una emergencia, llame al 911.")
    return (f"{config['PROGRAM_NAME']}: texts to this number are not read. To talk with a mediation specialist, "
            f"call {line}. In an emergency, call 911.")
