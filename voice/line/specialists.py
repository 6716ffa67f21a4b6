"""The roster: who the specialists are, who is switched on, and their ON/OFF/STATUS texts."""

from __future__ import annotations

import re

import redis
from flask import current_app, has_app_context
from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from voice import languages as spoken_languages
from voice import phones, twilio_rest
from voice.clock import utcnow
from voice.line import routing
from voice.models import Call, Shift, Specialist
from voice.redisdb import Keys

LEVELS = (1, 2)
# Language names typed where a code belongs; the app's own languages (with their names) are added when known.
LANGUAGE_NAMES = {"english": "en", "spanish": "es", "español": "es", "espanol": "es"}
# A skill is a short tag of letters, digits, hyphens and underscores, lower-cased, its spaces turned into hyphens.
_SKILL = re.compile(r"^[^\W_][\w-]{0,39}$")


class RosterError(ValueError):
    """A roster change that cannot be made; the message says why."""


def _tags(value: list[str] | tuple[str, ...] | str | None) -> list[str]:
    pieces = value.split(",") if isinstance(value, str) else [p for item in value or () for p in str(item).split(",")]
    return ["-".join(piece.strip().lower().split()) for piece in pieces if piece.strip()]


def normalise_languages(languages: list[str] | tuple[str, ...] | str | None) -> list[str]:
    """Language codes (ISO 639-1), each once, in order; English when none is given."""
    codes: list[str] = []
    for code in _tags(languages) or ["en"]:
        if code not in spoken_languages.ISO_639_1:
            raise RosterError(f"{code!r} is not a language code (ISO 639-1, e.g. en, es, ar)")
        if code not in codes:
            codes.append(code)
    return codes


def normalise_skills(skills: list[str] | tuple[str, ...] | str | None) -> list[str]:
    """Skill tags lower-cased and trimmed ("Landlord Tenant" is landlord-tenant); two letters is a language."""
    names = dict(LANGUAGE_NAMES)
    if has_app_context():
        # The roster is also edited outside a request (scripts, tests): then only the names above are known.
        names.update({language.name.lower(): language.code for language in spoken_languages.catalogue().languages})
    tags: list[str] = []
    for tag in _tags(skills):
        if tag in names:
            raise RosterError(f"a language is a skill by its code: {names[tag]!r} for {tag.capitalize()}")
        if not _SKILL.match(tag):
            raise RosterError(f"skill {tag!r}: use letters, digits and hyphens, at most 40 (e.g. landlord-tenant)")
        if len(tag) == 2 and tag not in spoken_languages.ISO_639_1:
            raise RosterError(f"skill {tag!r}: a skill of two letters is a language, and {tag!r} is not an "
                              "ISO 639-1 code")
        if tag not in tags:
            tags.append(tag)
    return tags


def skills_text(languages, skills) -> str:
    """The stored skills: the languages first, then the other tags, each once."""
    tags = normalise_languages(languages)
    tags += [tag for tag in normalise_skills(skills) if tag not in tags]
    text = ",".join(tags)
    if len(text) > 400:
        raise RosterError("too many skills (400 characters in all)")
    return text


def other_skills(specialist: Specialist) -> list[str]:
    """Their skills besides the languages the line offers (a language it does not offer stays a plain skill)."""
    offered = spoken_languages.catalogue().codes()
    return [tag for tag in specialist.skill_list if tag not in offered]


def normalise_level(level: object) -> int:
    try:
        value = int(str(level).strip())
    except ValueError:
        value = 0
    if value not in LEVELS:
        raise RosterError(f"level must be 1 or 2, got {level!r}")
    return value


def find_by_phone(db: Session, phone_e164: str | None) -> Specialist | None:
    if not phone_e164:
        return None
    return db.scalar(select(Specialist).where(Specialist.phone == phone_e164))


def add_specialist(db: Session, name: str, phone_e164: str, languages=None, skills=None, level: object = 1
                   ) -> Specialist:
    """Put someone on the roster: their languages (codes the line offers) and other skills are all skills."""
    name = (name or "").strip()
    if not name:
        raise RosterError("a specialist needs a name")
    if find_by_phone(db, phone_e164) is not None:
        raise RosterError(f"{phone_e164} is already on the roster")
    specialist = Specialist(name=name[:120], phone=phone_e164, skills=skills_text(languages, skills),
                            level=normalise_level(level))
    db.add(specialist)
    db.flush()
    return specialist


def update_specialist(
    db: Session, r: redis.Redis, specialist: Specialist, name: str, phone_e164: str, languages, active: bool,
    skills=None, level: object | None = None,
) -> Specialist:
    """Edit a specialist; the idle queues follow their languages and active flag. `skills` (the tags besides their
    languages) and `level` are kept when not given."""
    other = find_by_phone(db, phone_e164)
    if other is not None and other.id != specialist.id:
        raise RosterError(f"{phone_e164} belongs to {other.name}")
    if skills is None:
        skills = [tag for tag in specialist.skill_list if len(tag) != 2]
    specialist.skills = skills_text(languages, skills)
    if level is not None:
        specialist.level = normalise_level(level)
    specialist.name = (name or specialist.name).strip()[:120]
    specialist.phone = phone_e164
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
    wanted: dict[str, dict[str, float]] = {language: {} for language in routing.language_queues(r)}
    for specialist in on:
        since = (specialist.available_since or utcnow()).timestamp()
        for language in specialist.language_list:
            wanted.setdefault(language, {})[str(specialist.id)] = since
    pipe = r.pipeline()
    if wanted:
        pipe.sadd(Keys.language_queues(), *wanted)
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


# --- Twilio's opt-out keywords (twilio_rest.OPT_OUT_KEYWORDS) -------------------------------------------------


def opt_out_keyword(body: str, opt_out_type: str | None = None) -> str | None:
    """STOP, START or HELP when Twilio treats the text as that keyword, else None."""
    if (opt_out_type or "").upper() in twilio_rest.OPT_OUT_KEYWORDS:
        return opt_out_type.upper()
    word = (body or "").strip().upper()
    return next((kind for kind, words in twilio_rest.OPT_OUT_KEYWORDS.items() if word in words), None)


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
