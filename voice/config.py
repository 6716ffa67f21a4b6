"""Settings read from the environment (and `.env`), validated once at start-up.

Every default lives in DEFAULTS; a missing or invalid setting raises ConfigError with one line
naming it, which `create_app` prints as `mediation-line: setting X ...` before it stops.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from types import MappingProxyType
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import phonenumbers

from voice import hours, phones

REQUIRED = (
    "TWILIO_ACCOUNT_SID",
    "TWILIO_AUTH_TOKEN",
    "TWILIO_PHONE_NUMBER",
    "DISPATCH_TRANSFER_NUMBER",
    "PUBLIC_BASE_URL",
    "SECRET_KEY",
)

# Defaults other modules need as keyword defaults; import these rather than repeating them.
DEFAULT_TIMEZONE = "America/New_York"
DEFAULT_REGION = "US"
DEFAULT_VOICE_EN = "Polly.Joanna"
DEFAULT_VOICE_ES = "Polly.Lupe"
DEFAULT_VOICES = MappingProxyType({"en": DEFAULT_VOICE_EN, "es": DEFAULT_VOICE_ES})
DEFAULT_PROGRAM_HOURS = "Monday to Friday, 8 a.m. to 8 p.m."
DEFAULT_PROGRAM_HOURS_ES = "de lunes a viernes, de 8 de la mañana a 8 de la noche"
# The dashboard's account roles (voice/dashboard/auth.py uses these names).
ACCOUNT_ROLES = ("coordinator", "specialist")

DEFAULTS: dict[str, object] = {
    "REDIS_URL": "redis://127.0.0.1:6379/0",
    "DATABASE_URL": "",  # filled from the instance folder by create_app
    "TWILIO_API_BASE_URL": "",
    "PROGRAM_NAME": "Mediation Response Program",
    "PROGRAM_NAME_ES": "Programa de Respuesta de Mediación",
    # Told to callers; when OPEN_HOURS is set and these are not, they are written from it.
    "PROGRAM_HOURS": DEFAULT_PROGRAM_HOURS,
    "PROGRAM_HOURS_ES": DEFAULT_PROGRAM_HOURS_ES,
    "TIMEZONE": DEFAULT_TIMEZONE,
    "DEFAULT_REGION": DEFAULT_REGION,
    "VOICE_EN": DEFAULT_VOICE_EN,
    "VOICE_ES": DEFAULT_VOICE_ES,
    # Weekly shifts in TIMEZONE, e.g. "mon-fri 08:00-20:00; sat 10:00-16:00"; empty: always open.
    "OPEN_HOURS": "",
    # Dates the line is closed, YYYY-MM-DD separated by commas or semicolons.
    "HOLIDAYS": "",
    # How long a specialist's phone rings for one offer.
    "RING_TIMEOUT_SECONDS": 20,
    # How long a caller may hold before being offered a callback.
    "HOLD_MAX_MINUTES": 10,
    # What a held caller hears between announcements; use a clip of 30-60 s so the place in line comes round.
    "HOLD_MUSIC_URL": "http://com.twilio.sounds.music.s3.amazonaws.com/MARKOVICHAMP-Borghestral.mp3",
    # A claim not yet accepted expires quickly; an accepted call holds the
    # specialist for at most this long if Twilio's end-of-call request is lost.
    "RING_LEASE_SECONDS": 120,
    "CALL_LEASE_SECONDS": 4 * 3600,
    "CALLBACK_RETRY_MINUTES": "10,30,120",
    "CALLBACK_SMS": True,
    # Regions (ISO codes) whose ordinary landlines and mobiles the line will call back.
    "CALLBACK_COUNTRIES": "US",
    # Waits between tries when Twilio's REST API fails for a moment (5xx, 429, a timeout).
    "REST_RETRY_SECONDS": "5,30,120",
    # Waits between tries of a text message that Twilio could not accept for a moment.
    "SMS_RETRY_SECONDS": "30,120",
    # A callback attempt whose worker died before Twilio answered is recovered after this long.
    "STALE_ATTEMPT_SECONDS": 90,
    # The sweep asks Twilio about calls we think are live once they are this old (their end may have been lost).
    "RECONCILE_AFTER_SECONDS": 120,
    # While Twilio's REST API is unreachable, one request this often checks whether it is back.
    "TWILIO_PROBE_SECONDS": 30,
    "SESSION_IDLE_MINUTES": 30,
    "RATELIMIT_LOGIN": "10 per minute",
    # Days a call's personal data (names, numbers, places, words, recordings) is kept; required in production.
    "RETENTION_DAYS": 365,
    # Roles that must sign in with an authenticator code too, e.g. "coordinator"; empty: nobody has to.
    "REQUIRE_2FA_FOR": "",
    # A new call joins an open case from the same number (or is proposed for one at the same address) this recent.
    "CASE_LINK_DAYS": 30,
    # Specialists on each in-person visit; minutes a visit takes; minutes of travel kept free before and after it.
    "VISIT_TEAM_SIZE": 2,
    "VISIT_MINUTES": 60,
    "VISIT_TRAVEL_MINUTES": 30,
}

_INTS = (
    "RING_TIMEOUT_SECONDS",
    "HOLD_MAX_MINUTES",
    "RING_LEASE_SECONDS",
    "CALL_LEASE_SECONDS",
    "SESSION_IDLE_MINUTES",
    "STALE_ATTEMPT_SECONDS",
    "RECONCILE_AFTER_SECONDS",
    "TWILIO_PROBE_SECONDS",
    "RETENTION_DAYS",
    "CASE_LINK_DAYS",
    "VISIT_TEAM_SIZE",
    "VISIT_MINUTES",
    "VISIT_TRAVEL_MINUTES",
)
_BOOLS = ("CALLBACK_SMS",)
_PHONES = ("TWILIO_PHONE_NUMBER", "DISPATCH_TRANSFER_NUMBER")
_TRUE = {"true", "1", "yes", "on"}
_FALSE = {"false", "0", "no", "off"}


class ConfigError(Exception):
    """A setting is missing or invalid; the message is one line naming it."""


def load_settings(overrides: dict | None = None) -> dict:
    """Merge defaults, the environment and overrides, then validate and normalise."""
    settings, given = read_settings(overrides or {})
    check_required(settings)
    check_retention(settings, given)
    parse_ints(settings)
    parse_bools(settings)
    parse_lists(settings)
    parse_place(settings)
    parse_phones(settings)
    parse_urls(settings)
    parse_open_hours(settings, given)
    return settings


def read_settings(overrides: dict) -> tuple[dict, set[str]]:
    """Each setting from overrides, else a non-empty environment variable, else its default; and the
    names that were given rather than defaulted."""
    settings: dict = {}
    given: set[str] = set()
    for name in (*REQUIRED, *DEFAULTS):
        if name in overrides:
            settings[name] = overrides[name]
            given.add(name)
        elif os.environ.get(name, "") != "":
            settings[name] = os.environ[name]
            given.add(name)
        else:
            settings[name] = DEFAULTS.get(name, "")
    for name, value in overrides.items():
        settings.setdefault(name, value)
    return settings, given


def check_required(settings: dict) -> None:
    for name in REQUIRED:
        if not str(settings.get(name) or "").strip():
            raise ConfigError(f"missing required setting {name} (set it in the environment or .env)")


def check_retention(settings: dict, given: set[str]) -> None:
    """In production (an https PUBLIC_BASE_URL) the city must choose how long callers' personal data is kept."""
    chosen = "RETENTION_DAYS" in given and str(settings["RETENTION_DAYS"]).strip()
    if str(settings["PUBLIC_BASE_URL"]).strip().startswith("https://") and not chosen:
        raise ConfigError("missing required setting RETENTION_DAYS (days to keep callers' personal data; "
                          "required when PUBLIC_BASE_URL is https)")


def parse_ints(settings: dict) -> None:
    for name in _INTS:
        try:
            settings[name] = int(settings[name])
        except (TypeError, ValueError):
            raise ConfigError(f"setting {name} must be a whole number, got {settings[name]!r}") from None
        if settings[name] <= 0:
            raise ConfigError(f"setting {name} must be greater than zero, got {settings[name]}")


def parse_bools(settings: dict) -> None:
    for name in _BOOLS:
        settings[name] = parse_bool(name, settings[name])


def parse_bool(name: str, value: object) -> bool:
    """true/false, 1/0, yes/no, on/off in any case; anything else is a mistake, not false."""
    if isinstance(value, bool):
        return value
    word = str(value).strip().lower()
    if word in _TRUE:
        return True
    if word in _FALSE:
        return False
    raise ConfigError(f"setting {name} must be true or false (or 1/0, yes/no, on/off), got {value!r}")


def parse_lists(settings: dict) -> None:
    settings["CALLBACK_RETRY_MINUTES"] = parse_list(
        "CALLBACK_RETRY_MINUTES", settings["CALLBACK_RETRY_MINUTES"],
        _whole_number(minimum=1), "positive minutes separated by commas, e.g. 10,30,120")
    for name, example in (("REST_RETRY_SECONDS", "5,30,120"), ("SMS_RETRY_SECONDS", "30,120")):
        settings[name] = parse_list(name, settings[name], _whole_number(minimum=0),
                                    f"seconds (0 or more) separated by commas, e.g. {example}")
    settings["CALLBACK_COUNTRIES"] = tuple(parse_list(
        "CALLBACK_COUNTRIES", settings["CALLBACK_COUNTRIES"], _region_code,
        "region codes separated by commas, e.g. US,CA"))
    roles = settings["REQUIRE_2FA_FOR"]
    given = any(str(role).strip() for role in roles) if isinstance(roles, list | tuple) else str(roles or "").strip(", ")
    # Empty is allowed here (nobody has to), unlike the lists above.
    settings["REQUIRE_2FA_FOR"] = tuple(parse_list(
        "REQUIRE_2FA_FOR", roles, _account_role, f"roles ({' or '.join(ACCOUNT_ROLES)}) separated by commas, "
        "e.g. coordinator")) if given else ()


def parse_list(name: str, value: object, item: Callable[[str], object], what: str) -> list:
    """A comma-separated setting (or a list given as an override) read item by item; at least one."""
    pieces = value if isinstance(value, list | tuple) else str(value).split(",")
    items = [str(piece).strip() for piece in pieces if str(piece).strip()]
    if not items:
        raise ConfigError(f"setting {name} must list {what}, got {value!r}")
    try:
        return [item(piece) for piece in items]
    except ValueError:
        raise ConfigError(f"setting {name} must list {what}, got {value!r}") from None


def _whole_number(minimum: int) -> Callable[[str], int]:
    def read(text: str) -> int:
        number = int(text)
        if number < minimum:
            raise ValueError(text)
        return number
    return read


def _region_code(text: str) -> str:
    code = text.upper()
    if code not in phonenumbers.SUPPORTED_REGIONS:
        raise ValueError(text)
    return code


def _account_role(text: str) -> str:
    role = text.lower()
    if role not in ACCOUNT_ROLES:
        raise ValueError(text)
    return role


def parse_place(settings: dict) -> None:
    """TIMEZONE and DEFAULT_REGION, which the phone numbers and the hours are read in."""
    try:
        ZoneInfo(str(settings["TIMEZONE"]))
    except (ZoneInfoNotFoundError, ValueError):
        raise ConfigError(f"setting TIMEZONE is not a known time zone: {settings['TIMEZONE']!r}") from None
    region = str(settings["DEFAULT_REGION"]).upper()
    if region not in phonenumbers.SUPPORTED_REGIONS:
        raise ConfigError(f"setting DEFAULT_REGION is not a known region code: {region!r}")
    settings["DEFAULT_REGION"] = region


def parse_phones(settings: dict) -> None:
    for name in _PHONES:
        settings[name] = _e164_setting(name, str(settings[name]), settings["DEFAULT_REGION"])


def _e164_setting(name: str, value: str, region: str) -> str:
    number = phones.to_e164(value, region, strict=False)
    if number is None:
        raise ConfigError(f"setting {name} is not a phone number: {value!r}")
    return number


def parse_urls(settings: dict) -> None:
    base = str(settings["PUBLIC_BASE_URL"]).strip().rstrip("/")
    if not base.startswith(("http://", "https://")):
        raise ConfigError(f"setting PUBLIC_BASE_URL must start with http:// or https://, got {base!r}")
    settings["PUBLIC_BASE_URL"] = base
    settings["TWILIO_API_BASE_URL"] = str(settings["TWILIO_API_BASE_URL"] or "").strip().rstrip("/")


def parse_open_hours(settings: dict, given: set[str]) -> None:
    """OPEN_HOURS and HOLIDAYS become one `hours.Hours`; PROGRAM_HOURS(_ES) describe it unless given."""
    try:
        holidays = hours.parse_holidays(str(settings["HOLIDAYS"] or ""))
    except ValueError as error:
        raise ConfigError(f"setting HOLIDAYS is invalid: {_one_line(error)}") from None
    text = str(settings["OPEN_HOURS"] or "").strip()
    try:
        open_hours = hours.parse_hours(text, str(settings["TIMEZONE"]), holidays)
    except ValueError as error:
        raise ConfigError(f"setting OPEN_HOURS is invalid: {_one_line(error)}") from None
    settings["HOLIDAYS"] = holidays
    settings["OPEN_HOURS"] = open_hours
    settings["OPEN_HOURS_TEXT"] = text
    if text:
        for name, language in (("PROGRAM_HOURS", "en"), ("PROGRAM_HOURS_ES", "es")):
            if name not in given:
                settings[name] = open_hours.describe(language)


def _one_line(error: Exception) -> str:
    return " ".join(str(error).split())


SETTING_NAMES: tuple[str, ...] = (*REQUIRED, *DEFAULTS)
