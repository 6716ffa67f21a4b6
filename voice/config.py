"""Every setting in one registry: its default, how it is read and checked, and one line of help.

Settings come from overrides (tests), else a non-empty environment variable (or `.env`), else the default.
`load_settings` reads them in the registry's order and stops at the first bad one with a ConfigError whose
message is one line naming it; `create_app` prints it as `mediation-line: setting X ...` and exits.
`.env.example` and `docs/settings.md` are written from this registry (`python scripts/settings_reference.py`),
and a test keeps them in step with it.
"""

from __future__ import annotations

import csv
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import phonenumbers

from voice import hours, languages, phones, twilio_rest
from voice.script import CATEGORIES

# The dashboard's account roles (voice/dashboard/auth.py uses these names).
ACCOUNT_ROLES = ("coordinator", "specialist")
REQUIRED = object()
_TRUE = {"true", "1", "yes", "on"}
_FALSE = {"false", "0", "no", "off"}


class ConfigError(Exception):
    """A setting is missing or invalid; the message is one line naming it."""


Reader = Callable[[str, object, Mapping], object]


@dataclass(frozen=True)
class Setting:
    """One setting: its name, default (REQUIRED if it has none), how its text is read, and its help."""

    name: str
    default: object
    read: Reader
    help: str
    group: str
    # What .env.example shows when it should not be the default (a required value's placeholder).
    example: str | None = None
    # Required only in some deployments: why, given the settings read before it (None or "" when not).
    required_if: Callable[[Mapping], str | None] | None = None


# --- readers: (name, raw value, the settings read so far) -> the value, or ConfigError ------------------------


def text(name: str, value: object, _settings: Mapping) -> str:
    return str(value or "").strip()


def whole_number(minimum: int = 1, maximum: int | None = None) -> Reader:
    def read(name: str, value: object, _settings: Mapping) -> int:
        try:
            number = int(value)
        except (TypeError, ValueError):
            raise ConfigError(f"setting {name} must be a whole number, got {value!r}") from None
        if number < minimum:
            words = "greater than zero" if minimum == 1 else f"at least {minimum}"
            raise ConfigError(f"setting {name} must be {words}, got {number}")
        if maximum is not None and number > maximum:
            raise ConfigError(f"setting {name} must be at most {maximum}, got {number}")
        return number
    return read


def choice(*allowed: str) -> Reader:
    """One of a fixed set of words (case as given in `allowed`)."""
    def read(name: str, value: object, _settings: Mapping) -> str:
        word = str(value or "").strip()
        if word not in allowed:
            raise ConfigError(f"setting {name} must be one of {', '.join(repr(a) for a in allowed)}, got {word!r}")
        return word
    return read


def speech_hints(name: str, value: object, _settings: Mapping) -> tuple[str, ...]:
    """Words or phrases separated by commas, as <Gather hints> takes them: each at most 100 characters, 500 in all.
    https://www.twilio.com/docs/voice/twiml/gather#hints"""
    hints = tuple(dict.fromkeys(" ".join(piece.split()) for piece in str(value or "").split(",") if piece.strip()))
    too_long = next((hint for hint in hints if len(hint) > 100), None)
    if too_long is not None:
        raise ConfigError(f"setting {name} has a hint longer than 100 characters: {too_long[:40]!r}...")
    if len(hints) > 500:
        raise ConfigError(f"setting {name} has {len(hints)} hints; Twilio takes at most 500")
    return hints


def boolean(name: str, value: object, _settings: Mapping) -> bool:
    """true/false, 1/0, yes/no, on/off in any case; anything else is a mistake, not false."""
    if isinstance(value, bool):
        return value
    word = str(value).strip().lower()
    if word in _TRUE:
        return True
    if word in _FALSE:
        return False
    raise ConfigError(f"setting {name} must be true or false (or 1/0, yes/no, on/off), got {value!r}")


def listing(item: Callable[[str], object], what: str, allow_empty: bool = False, kind: type = list) -> Reader:
    """A comma-separated setting (or a list given as an override) read item by item."""
    def read(name: str, value: object, _settings: Mapping) -> object:
        pieces = value if isinstance(value, list | tuple | set | frozenset) else str(value or "").split(",")
        items = [str(piece).strip() for piece in pieces if str(piece).strip()]
        if not items and not allow_empty:
            raise ConfigError(f"setting {name} must list {what}, got {value!r}")
        try:
            return kind(item(piece) for piece in items)
        except ValueError:
            raise ConfigError(f"setting {name} must list {what}, got {value!r}") from None
    return read


def _number_at_least(minimum: int) -> Callable[[str], int]:
    def read(piece: str) -> int:
        number = int(piece)
        if number < minimum:
            raise ValueError(piece)
        return number
    return read


def _region_code(piece: str) -> str:
    code = piece.upper()
    if code not in phonenumbers.SUPPORTED_REGIONS:
        raise ValueError(piece)
    return code


def _account_role(piece: str) -> str:
    role = piece.lower()
    if role not in ACCOUNT_ROLES:
        raise ValueError(piece)
    return role


def region(name: str, value: object, _settings: Mapping) -> str:
    code = str(value).strip().upper()
    if code not in phonenumbers.SUPPORTED_REGIONS:
        raise ConfigError(f"setting {name} is not a known region code: {code!r}")
    return code


def timezone(name: str, value: object, _settings: Mapping) -> str:
    zone = str(value).strip()
    try:
        ZoneInfo(zone)
    except (ZoneInfoNotFoundError, ValueError):
        raise ConfigError(f"setting {name} is not a known time zone: {zone!r}") from None
    return zone


def phone(name: str, value: object, settings: Mapping) -> str:
    """A phone number in any common form, kept in E.164 (a possible number: a test line is allowed)."""
    number = phones.to_e164(str(value), settings["DEFAULT_REGION"], strict=False)
    if number is None:
        raise ConfigError(f"setting {name} is not a phone number: {value!r}")
    return number


def optional_phone(name: str, value: object, settings: Mapping) -> str:
    return phone(name, value, settings) if str(value or "").strip() else ""


def phone_list(name: str, value: object, settings: Mapping) -> tuple[str, ...]:
    """Phone numbers separated by commas (may be empty), each in E.164."""
    pieces = value if isinstance(value, list | tuple) else str(value or "").split(",")
    return tuple(phone(name, piece, settings) for piece in (str(p).strip() for p in pieces) if piece)


def base_url(name: str, value: object, _settings: Mapping) -> str:
    url = str(value).strip().rstrip("/")
    if not url.startswith(("http://", "https://")):
        raise ConfigError(f"setting {name} must start with http:// or https://, got {url!r}")
    return url


def optional_url(name: str, value: object, settings: Mapping) -> str:
    return base_url(name, value, settings) if str(value or "").strip() else ""


def send_digits(name: str, value: object, _settings: Mapping) -> str:
    """Keys Twilio plays once a call connects: digits, * and #, and w for half a second's pause (at most 32)."""
    keys = "".join(str(value or "").split())
    if len(keys) > 32 or any(ch not in "0123456789*#wW" for ch in keys):
        raise ConfigError(f"setting {name} must be at most 32 of 0-9, *, # and w (a half-second pause), got {value!r}")
    return keys.lower()


def another_language_key(name: str, value: object, settings: Mapping) -> str:
    """The greeting's key for another language: one digit the greeting and hold do not use; it needs an interpreter."""
    key = str(value or "").strip()
    if not key:
        return ""
    if key not in languages.FREE_KEYS:
        raise ConfigError(f"setting {name} must be one of the keys 3 to 8 (0, 1, 2 and 9 are taken), got {value!r}")
    if not settings.get("INTERPRETER_NUMBER"):
        raise ConfigError(f"setting {name} needs INTERPRETER_NUMBER: the caller is bridged with an interpreter")
    return key


def holidays(name: str, value: object, _settings: Mapping) -> frozenset:
    try:
        return hours.parse_holidays(str(value or ""))
    except ValueError as error:
        raise ConfigError(f"setting {name} is invalid: {_one_line(error)}") from None


def open_hours(name: str, value: object, settings: Mapping) -> hours.Hours:
    try:
        return hours.parse_hours(str(value or "").strip(), settings["TIMEZONE"], settings["HOLIDAYS"])
    except ValueError as error:
        raise ConfigError(f"setting {name} is invalid: {_one_line(error)}") from None


def _category_aliases() -> dict[str, str]:
    """Each kind of problem by its stored value, its English name, and the first word of either ("landlord")."""
    aliases: dict[str, set[str]] = {}
    for value, english, _spanish in CATEGORIES.values():
        for alias in (value, english, value.split("_")[0], english.split()[0]):
            aliases.setdefault(" ".join(alias.replace("_", " ").replace("-", " ").split()), set()).add(value)
    return {alias: values.pop() for alias, values in aliases.items() if len(values) == 1}


def _category(piece: str) -> str:
    value = _category_aliases().get(" ".join(piece.lower().replace("_", " ").replace("-", " ").split()))
    if value is None:
        raise ValueError(piece)
    return value


def language_files(name: str, value: object, settings: Mapping) -> tuple:
    """Language files (or directories of them) separated by commas, each checked whole; no key ANOTHER_LANGUAGE_KEY
    already offers."""
    pieces = value if isinstance(value, list | tuple) else str(value or "").split(",")
    try:
        loaded = languages.load_languages([str(p).strip() for p in pieces if str(p).strip()])
    except languages.LanguageFileError as error:
        raise ConfigError(f"setting {name}: {_one_line(error)}") from None
    another = settings.get("ANOTHER_LANGUAGE_KEY")
    for language in loaded:
        if another and language.key == another:
            raise ConfigError(f"setting {name}: the key {another} of {language.code} is ANOTHER_LANGUAGE_KEY's")
    return loaded


DISTRICTS_HEADER = ("street_or_zip", "district")
_ZIP_CODE = re.compile(r"\d{5}")


def district_table(name: str, value: object, _settings: Mapping) -> tuple[tuple[str, str], ...]:
    """A CSV file (header street_or_zip,district) naming the district of each street or 5-digit ZIP code, as
    (street or ZIP, district) pairs; empty: no districts (the reports' areas are ZIP codes)."""
    path = str(value or "").strip()
    if not path:
        return ()
    try:
        with open(path, newline="", encoding="utf-8-sig") as handle:
            rows = list(csv.reader(handle))
    except (OSError, UnicodeDecodeError, csv.Error) as error:
        raise ConfigError(f"setting {name}: cannot read {path!r} ({_one_line(error)})") from None
    if not rows or tuple(cell.strip().lower() for cell in rows[0]) != DISTRICTS_HEADER:
        raise ConfigError(f"setting {name}: {path!r} must start with the header line street_or_zip,district")
    pairs: dict[str, str] = {}
    for line, row in enumerate(rows[1:], start=2):
        cells = [cell.strip() for cell in row]
        if not any(cells):
            continue
        if len(cells) != 2 or not all(cells):
            raise ConfigError(f"setting {name}: {path!r} line {line} must be a street or ZIP code, then a district")
        match, district = cells
        if match.isdigit() and not _ZIP_CODE.fullmatch(match):
            raise ConfigError(f"setting {name}: {path!r} line {line}: a ZIP code has 5 digits, got {match!r}")
        if pairs.get(match.lower(), district) != district:
            raise ConfigError(f"setting {name}: {path!r} line {line} puts {match!r} in a second district")
        pairs[match.lower()] = district[:60]
    if not pairs:
        raise ConfigError(f"setting {name}: {path!r} names no street or ZIP code")
    return tuple(pairs.items())


def _one_line(error: Exception) -> str:
    return " ".join(str(error).split())


# Words Twilio (and the carriers) answer themselves on a long code, and the line's own text commands: a safety
# word that is one of these would never start the ladder, or would switch a specialist off instead.
CARRIER_KEYWORDS = frozenset().union(*twilio_rest.OPT_OUT_KEYWORDS.values())
LINE_COMMANDS = frozenset({"ON", "OFF", "STATUS", "AVAILABLE", "UNAVAILABLE", "BREAK", "IN", "OUT", "OK"})


def safety_word(name: str, value: object, _settings: Mapping) -> str:
    """One word of letters or digits, kept in capitals; never a carrier keyword or one of the line's commands."""
    word = str(value or "").strip().upper()
    if not word.isalnum() or not word.isascii():
        raise ConfigError(f"setting {name} must be one word of letters or digits, e.g. SOS, got {value!r}")
    if word in CARRIER_KEYWORDS:
        raise ConfigError(f"setting {name} cannot be {word}: Twilio and the carriers answer {word} themselves, "
                          "so it would never reach the line (use e.g. SOS)")
    if word in LINE_COMMANDS:
        raise ConfigError(f"setting {name} cannot be {word}: the line already reads {word} as a specialist's "
                          "command (use e.g. SOS)")
    return word


# <Gather speechModel> values: https://www.twilio.com/docs/voice/twiml/gather#speechmodel (Google's V1 models, the
# V2 ones and Deepgram's).
SPEECH_MODELS = ("phone_call", "default", "numbers_and_commands", "experimental_conversations",
                 "experimental_utterances", "googlev2_telephony", "googlev2_telephony_short", "googlev2_long",
                 "googlev2_short", "deepgram_nova-2", "deepgram_nova-3")


# --- the registry ---------------------------------------------------------------------------------------------

_minutes = listing(_number_at_least(1), "positive minutes separated by commas, e.g. 10,30,120")


def _seconds(example: str) -> Reader:
    return listing(_number_at_least(0), f"seconds (0 or more) separated by commas, e.g. {example}")


SETTINGS: tuple[Setting, ...] = (
    # Twilio and the app's address (required)
    Setting("TWILIO_ACCOUNT_SID", REQUIRED, text, "Your Twilio account's SID (starts with AC).", "Twilio",
            example="ACxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"),
    Setting("TWILIO_AUTH_TOKEN", REQUIRED, text, "Your Twilio auth token: signs every webhook Twilio sends us.",
            "Twilio", example="your-auth-token"),
    Setting("DEFAULT_REGION", "US", region,
            "The region (ISO code) phone numbers are read in when they have no country code.", "Twilio"),
    Setting("TWILIO_PHONE_NUMBER", REQUIRED, phone,
            "The mediation line itself: 911 transfers reach it, and it is the caller ID of every call we place.",
            "Twilio", example="+19375550100"),
    Setting("DISPATCH_TRANSFER_NUMBER", REQUIRED, phone,
            "911 dispatch: anyone in danger, and any caller the line cannot serve, is put through here.", "Twilio",
            example="+19375550911"),
    Setting("PUBLIC_BASE_URL", REQUIRED, base_url,
            "The https address Twilio reaches this app at; webhook signatures are checked against it.", "Twilio",
            example="https://mediation-line.example.gov"),
    Setting("SECRET_KEY", REQUIRED, text,
            "Signs dashboard sessions and CSRF tokens; a long random string: python -c \"import secrets; print(secrets.token_hex(32))\".",
            "Twilio", example="change-me"),
    # Services
    Setting("REDIS_URL", "redis://127.0.0.1:6379/0", text,
            "Redis: who is free, leases, the replay guard and RQ's queues; the web app, the worker and cron all read it.", "Services"),
    Setting("DATABASE_URL", "", text,
            "Empty: a SQLite file under instance/ (WAL, synchronous=NORMAL: a commit survives a crash of the app, not a power "
            "cut). Production: postgresql+psycopg2://user:pass@host/dbname.",
            "Services"),
    Setting("TWILIO_API_BASE_URL", "", optional_url,
            "Only for local simulation: send every Twilio REST request here instead of api.twilio.com.", "Services"),
    # The program: what callers hear
    Setting("PROGRAM_NAME", "Mediation Response Program", text, "The program's name, as callers hear it.",
            "The program"),
    Setting("PROGRAM_NAME_ES", "Programa de Respuesta de Mediación", text, "The program's name in Spanish.",
            "The program"),
    Setting("TIMEZONE", "America/New_York", timezone, "The city's time zone: hours, reports, the dashboard.",
            "The program"),
    Setting("HOLIDAYS", "", holidays, "Dates the line is closed, YYYY-MM-DD separated by commas or semicolons.",
            "The program"),
    Setting("OPEN_HOURS", "", open_hours,
            "Weekly shifts in TIMEZONE, e.g. \"mon-fri 08:00-20:00; sat 10:00-16:00\"; empty: always open.",
            "The program"),
    Setting("PROGRAM_HOURS", "Monday to Friday, 8 a.m. to 8 p.m.", text,
            "The hours as callers hear them; written from OPEN_HOURS when that is set and this is not.",
            "The program"),
    Setting("PROGRAM_HOURS_ES", "de lunes a viernes, de 8 de la mañana a 8 de la noche", text,
            "The hours in Spanish; written from OPEN_HOURS when that is set and this is not.", "The program"),
    Setting("VOICE_EN", "Polly.Joanna", text, "Twilio's text-to-speech voice for English.", "The program"),
    Setting("VOICE_ES", "Polly.Lupe", text, "Twilio's text-to-speech voice for Spanish.", "The program"),
    Setting("HOLD_MUSIC_URL", "http://com.twilio.sounds.music.s3.amazonaws.com/MARKOVICHAMP-Borghestral.mp3",
            text, "What a held caller hears between announcements: a clip of 30-60 s, so their place comes round.",
            "The program"),
    # Routing and callbacks
    Setting("RING_TIMEOUT_SECONDS", 20, whole_number(), "How long a specialist's phone rings for one offer.",
            "Routing"),
    Setting("HOLD_MAX_MINUTES", 10, whole_number(), "How long a caller may hold before being offered a callback.",
            "Routing"),
    Setting("RING_LEASE_SECONDS", 120, whole_number(),
            "How long a specialist stays held for an offer they have not accepted, if its end is lost.", "Routing"),
    Setting("CALL_LEASE_SECONDS", 4 * 3600, whole_number(),
            "How long an accepted call holds a specialist at most, if Twilio's end-of-call request is lost.",
            "Routing"),
    Setting("CALLBACK_RETRY_MINUTES", "10,30,120", _minutes,
            "Minutes between tries to call back a caller who did not answer; after the last, unreachable.",
            "Routing"),
    Setting("CALLBACK_SMS", True, boolean, "Text callers to confirm their callback request (true or false).",
            "Routing"),
    Setting("CALLBACK_COUNTRIES", "US", listing(_region_code, "region codes separated by commas, e.g. US,CA",
                                                kind=tuple),
            "Regions (ISO codes) whose ordinary landlines and mobiles the line will call back.", "Routing"),
    Setting("REST_RETRY_SECONDS", "5,30,120", _seconds("5,30,120"),
            "Waits between tries when Twilio's REST API fails for a moment (5xx, 429, a timeout).", "Routing"),
    Setting("SMS_RETRY_SECONDS", "30,120", _seconds("30,120"),
            "Waits between tries of a text message Twilio could not accept for a moment.", "Routing"),
    Setting("STALE_ATTEMPT_SECONDS", 90, whole_number(),
            "A callback attempt whose worker died before Twilio answered is recovered after this long.", "Routing"),
    Setting("RECONCILE_AFTER_SECONDS", 120, whole_number(),
            "The sweep asks Twilio about calls we think are live once they are this old.", "Routing"),
    Setting("TWILIO_PROBE_SECONDS", 30, whole_number(),
            "While Twilio's REST API is unreachable, one request this often checks whether it is back.", "Routing"),
    # Where calls come from: the numbers that tell a 911 transfer, a dispatcher's handoff and the public apart
    Setting("PSAP_NUMBERS", "", phone_list,
            "The 911 center's own numbers (trunks, main line), comma-separated: a call from one is never a caller's "
            "number (no case, no callback to it).", "Where calls come from"),
    Setting("HANDOFF_NUMBER", "", optional_phone,
            "A second Twilio number given only to the 911 center for warm handoffs; calls to it skip the caller's "
            "questions.", "Where calls come from"),
    Setting("PUBLIC_LINE_NUMBERS", "", phone_list,
            "Twilio numbers the program publishes for the public to call directly (not through 911), comma-separated.",
            "Where calls come from"),
    # (issue 21: conferences, interpreters, warm transfers) settings go here
    Setting("HANDOFF_RING_SECONDS", 30, whole_number(),
            "A dispatcher's warm handoff (HANDOFF_NUMBER) waits this long for a specialist before being told nobody "
            "is free.", "Conferences"),
    Setting("INTERPRETER_NUMBER", "", optional_phone,
            "A telephone interpreting service (e.g. LanguageLine) a specialist or the coordinator can add to a call; "
            "empty: none.", "Conferences"),
    Setting("INTERPRETER_DIGITS", "", send_digits,
            "Keys sent once the interpreter service answers: the account PIN, with w for half-second pauses, e.g. "
            "ww123456#; the service's own prompt may then ask the language.", "Conferences"),
    Setting("ANOTHER_LANGUAGE_KEY", "", another_language_key,
            "A key (3-8) the greeting offers for another language: the caller goes to an English-speaking specialist "
            "with the interpreter dialed in at once. Empty: not offered (the greeting stays as short).", "Conferences"),
    # (issue 19: real phones and networks) settings go here
    Setting("VOICE_FALLBACK_URL", "", optional_url,
            "A TwiML Bin (or static TwiML on another host) that puts callers through to dispatch when this app "
            "cannot answer; `flask --app voice twilio fallback-twiml` prints its TwiML, `twilio provision` sets it.",
            "Real phones"),
    Setting("SPEECH_PAUSE_SECONDS", 2, whole_number(1, 5),
            "Seconds of silence that end a spoken name, place or description (Gather speechTimeout): a caller may "
            "pause this long mid-answer; every caller pays it at each of those questions.", "Real phones"),
    Setting("SPEECH_MODEL", "phone_call", choice(*SPEECH_MODELS),
            "Twilio's speech model for spoken names, places and descriptions (Gather speechModel): phone_call suits "
            "phone audio.", "Real phones"),
    Setting("STREET_HINTS", "", speech_hints,
            "The city's street and place names, comma-separated: hints for recognising the place a caller says.",
            "Real phones"),
    # (issue 22: field safety, levels and skills) settings go here
    # issue 22, field safety: check-in and check-out of visits, and the ladder when a team goes quiet
    Setting("SAFETY_VISIT_MINUTES", 45, whole_number(),
            "Minutes a team is expected in a home after it checks in (IN); IN 30 sets 30 instead.", "Field safety"),
    Setting("SAFETY_CHECKIN_LATE_MINUTES", 15, whole_number(),
            "A visit not checked into this many minutes after its start is flagged on the board.", "Field safety"),
    Setting("SAFETY_GRACE_MINUTES", 10, whole_number(),
            "Minutes past the expected end before both team members are texted \"Reply OK if you are safe\".",
            "Field safety"),
    Setting("SAFETY_REPLY_MINUTES", 5, whole_number(),
            "Minutes the team has to reply OK before the coordinator is texted and called.", "Field safety"),
    Setting("SAFETY_ACK_MINUTES", 5, whole_number(),
            "Minutes a rung of calls has for someone to press 1 before the next rung (backups, then dispatch).",
            "Field safety"),
    Setting("SAFETY_COORDINATOR_NUMBERS", "", phone_list,
            "The coordinator's or on-call supervisor's phones, comma-separated: texted and called when a team "
            "goes quiet or sends SOS. Empty: the ladder reaches nobody beyond the team (the board says so).",
            "Field safety"),
    Setting("SAFETY_BACKUP_NUMBERS", "", phone_list,
            "Backup contacts, comma-separated, called one after another in this order when no coordinator "
            "acknowledges.", "Field safety"),
    Setting("SAFETY_DISPATCH_NUMBER", "", optional_phone,
            "The non-emergency or dispatch line called last (and at once on SOS) with the address and the team; "
            "agree it with the 911 center first (docs/field-safety.md). Empty: never called.", "Field safety"),
    Setting("SAFETY_WORD", "SOS", safety_word,
            "The word a team member texts for help at once (any case); not HELP, INFO, STOP or START, which "
            "carriers answer themselves.", "Field safety"),
    Setting("COMPLEX_CATEGORIES", "", listing(
        _category, "kinds of problem (voice/script.py's categories or their names), e.g. family,landlord",
        allow_empty=True, kind=frozenset),
            "Kinds of problem whose callers are complex: a level 2 specialist is rung first, e.g. family,landlord.",
            "Levels, skills and languages"),
    Setting("PREFER_SECONDS", 0, whole_number(minimum=0),
            "How long the preferred specialists ring alone for a complex caller before everyone free is rung; "
            "0: everyone at once, the preferred placed first.", "Levels, skills and languages"),
    Setting("LANGUAGE_FILES", "", language_files,
            "Languages beyond English and Spanish: TOML files (or directories of them) separated by commas, "
            "e.g. languages/ar.toml; see docs/routing.md.", "Levels, skills and languages"),
    # (issue 23: the council's numbers, open data, outcomes to 911) settings go here
    Setting("DISTRICTS_CSV", "", district_table,
            "A CSV file of the city's districts (header street_or_zip,district; a street name or a 5-digit ZIP code "
            "on each line): the reports' areas are these districts; empty: the areas are ZIP codes.",
            "Reports and open data"),
    Setting("OPEN_DATA_MIN_CALLS", 10, whole_number(),
            "The open-data export names a call's area only when the area has at least this many calls in the "
            "export; fewer could point at a household.", "Reports and open data"),
    Setting("OUTCOME_WEBHOOK_URL", "", optional_url,
            "Where to POST how each call or case the 911 center sent us ended (JSON, signed); empty: nothing is "
            "sent, and the daily CSV still has it.", "Reports and open data"),
    Setting("OUTCOME_WEBHOOK_SECRET", "", text,
            "The shared secret that signs each outcome POST (HMAC-SHA256; see docs/reports.md); required when "
            "OUTCOME_WEBHOOK_URL is set.", "Reports and open data",
            required_if=lambda settings: bool(settings["OUTCOME_WEBHOOK_URL"]) and (
                "the key that signs each outcome POST; required when OUTCOME_WEBHOOK_URL is set")),
    Setting("OUTCOME_RETRY_SECONDS", "30,120,600,1800", _seconds("30,120,600,1800"),
            "Waits between tries of an outcome POST the 911 center's receiver did not take; after the last, the "
            "once-a-minute sweep tries again every hour.", "Reports and open data"),
    # Cases and visits
    Setting("CASE_LINK_DAYS", 30, whole_number(),
            "A new call joins an open case from the same number (or is proposed for one at the same address) "
            "this many days recent.", "Cases and visits"),
    Setting("VISIT_TEAM_SIZE", 2, whole_number(), "Specialists on each in-person visit.", "Cases and visits"),
    Setting("VISIT_MINUTES", 60, whole_number(), "Minutes a visit is booked for.", "Cases and visits"),
    Setting("VISIT_TRAVEL_MINUTES", 30, whole_number(), "Minutes of travel kept free before and after a visit.",
            "Cases and visits"),
    # Personal data
    Setting("RETENTION_DAYS", 365, whole_number(),
            "Days a call's personal data (names, numbers, places, words, recordings) is kept before the nightly "
            "purge redacts it; required when PUBLIC_BASE_URL is https.", "Personal data", example="365",
            required_if=lambda settings: settings["PUBLIC_BASE_URL"].startswith("https://") and (
                "days to keep callers' personal data; required when PUBLIC_BASE_URL is https")),
    # The dashboard
    Setting("SESSION_IDLE_MINUTES", 30, whole_number(), "A dashboard session ends after this long without use.",
            "Dashboard"),
    Setting("RATELIMIT_LOGIN", "10 per minute", text, "Sign-in attempts allowed per address (each sign-in step counted apart).", "Dashboard"),
    Setting("RATELIMIT_NOTES", "30 per 10 minutes", text,
            "Notes one account may add: enough for a busy shift, not for a stuck key to bury a call.", "Dashboard"),
    Setting("BOARD_REFRESH_MS", 3000, whole_number(), "How often the live board refreshes, in milliseconds.",
            "Dashboard"),
    Setting("REQUIRE_2FA_FOR", "", listing(_account_role, f"roles ({' or '.join(ACCOUNT_ROLES)}) separated by "
                                                          "commas, e.g. coordinator", allow_empty=True, kind=tuple),
            "Roles that must also type an authenticator code, e.g. coordinator; empty: nobody has to.",
            "Dashboard"),
    # Health
    Setting("HEALTH_CRON_SECONDS", 180, whole_number(),
            "The dashboard warns when the once-a-minute sweep (rq cron) has not run for this long.", "Health"),
)

BY_NAME: Mapping[str, Setting] = {setting.name: setting for setting in SETTINGS}
SETTING_NAMES: tuple[str, ...] = tuple(BY_NAME)


def defaults() -> dict[str, object]:
    """Each setting's default (empty for the required ones)."""
    return {s.name: ("" if s.default is REQUIRED else s.default) for s in SETTINGS}


def load_settings(overrides: dict | None = None) -> dict:
    """Read every setting (overrides, else the environment, else its default), checked in the registry's order."""
    overrides = overrides or {}
    settings: dict = {}
    given: set[str] = set()
    raw_text: dict[str, object] = {}
    for setting in SETTINGS:
        if setting.name in overrides:
            raw, found = overrides[setting.name], True
        elif os.environ.get(setting.name, "") != "":
            raw, found = os.environ[setting.name], True
        else:
            raw, found = setting.default, False
        needed = "" if setting.default is REQUIRED else (setting.required_if(settings) if setting.required_if else "")
        if (setting.default is REQUIRED or needed) and not str(raw if found else "").strip():
            raise ConfigError(f"missing required setting {setting.name} ({needed or 'set it in the environment or .env'})")
        if found:
            given.add(setting.name)
        raw_text[setting.name] = raw
        settings[setting.name] = setting.read(setting.name, raw, settings)
    for name, value in overrides.items():
        settings.setdefault(name, value)  # Flask's own (TESTING, WTF_CSRF_ENABLED...) pass through
    describe_hours(settings, given, str(raw_text["OPEN_HOURS"] or "").strip())
    # Built last: English and Spanish take their voices, names and hours from the settings above.
    settings["LANGUAGES"] = languages.build_catalogue(settings, settings["LANGUAGE_FILES"])
    return settings


def describe_hours(settings: dict, given: set[str], text: str) -> None:
    """PROGRAM_HOURS(_ES) describe OPEN_HOURS unless given; OPEN_HOURS_TEXT keeps what was set."""
    settings["OPEN_HOURS_TEXT"] = text
    if text:
        for name, language in (("PROGRAM_HOURS", "en"), ("PROGRAM_HOURS_ES", "es")):
            if name not in given:
                settings[name] = settings["OPEN_HOURS"].describe(language)
