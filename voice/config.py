"""Settings read from the environment (and `.env`), validated once at start-up."""

from __future__ import annotations

import os
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import phonenumbers

REQUIRED = (
    "TWILIO_ACCOUNT_SID",
    "TWILIO_AUTH_TOKEN",
    "TWILIO_PHONE_NUMBER",
    "DISPATCH_TRANSFER_NUMBER",
    "PUBLIC_BASE_URL",
    "SECRET_KEY",
)

DEFAULTS: dict[str, object] = {
    "REDIS_URL": "redis://127.0.0.1:6379/0",
    "DATABASE_URL": "",  # filled from the instance folder by create_app
    "TWILIO_API_BASE_URL": "",
    "PROGRAM_NAME": "Mediation Response Program",
    "PROGRAM_NAME_ES": "Programa de Respuesta de Mediación",
    "PROGRAM_HOURS": "Monday to Friday, 8 a.m. to 8 p.m.",
    "PROGRAM_HOURS_ES": "de lunes a viernes, de 8 de la mañana a 8 de la noche",
    "TIMEZONE": "America/New_York",
    "DEFAULT_REGION": "US",
    "VOICE_EN": "Polly.Joanna",
    "VOICE_ES": "Polly.Lupe",
    # How long a specialist's phone rings before we try the next one.
    "RING_TIMEOUT_SECONDS": 20,
    # Specialists offered one live call before it becomes a callback.
    "MAX_SPECIALIST_TRIES": 3,
    # A claim not yet accepted expires quickly; an accepted call holds the
    # specialist for at most this long if Twilio's end-of-call request is lost.
    "RING_LEASE_SECONDS": 120,
    "CALL_LEASE_SECONDS": 4 * 3600,
    "CALLBACK_RETRY_MINUTES": "10,30,120",
    "CALLBACK_SMS": True,
    # Waits between tries when Twilio's REST API fails for a moment (5xx, 429, a timeout).
    "REST_RETRY_SECONDS": "5,30,120",
    # A callback attempt whose worker died before Twilio answered is recovered after this long.
    "STALE_ATTEMPT_SECONDS": 90,
    "SESSION_IDLE_MINUTES": 30,
    "RATELIMIT_LOGIN": "10 per minute",
}

_INTS = {
    "RING_TIMEOUT_SECONDS",
    "MAX_SPECIALIST_TRIES",
    "RING_LEASE_SECONDS",
    "CALL_LEASE_SECONDS",
    "SESSION_IDLE_MINUTES",
    "STALE_ATTEMPT_SECONDS",
}
_BOOLS = {"CALLBACK_SMS"}
_PHONES = {"TWILIO_PHONE_NUMBER", "DISPATCH_TRANSFER_NUMBER"}


class ConfigError(Exception):
    """A setting is missing or invalid; the message is one line naming it."""


def load_settings(overrides: dict | None = None) -> dict:
    """Merge defaults, the environment and overrides, then validate and normalise."""
    overrides = overrides or {}
    settings: dict = {}
    for name in (*REQUIRED, *DEFAULTS):
        if name in overrides:
            settings[name] = overrides[name]
        elif os.environ.get(name, "") != "":
            settings[name] = os.environ[name]
        else:
            settings[name] = DEFAULTS.get(name, "")
    for name, value in overrides.items():
        settings.setdefault(name, value)

    for name in REQUIRED:
        if not str(settings.get(name) or "").strip():
            raise ConfigError(f"missing required setting {name} (set it in the environment or .env)")
    for name in _INTS:
        try:
            settings[name] = int(settings[name])
        except (TypeError, ValueError):
            raise ConfigError(f"setting {name} must be a whole number, got {settings[name]!r}") from None
        if settings[name] <= 0:
            raise ConfigError(f"setting {name} must be greater than zero, got {settings[name]}")
    for name in _BOOLS:
        value = settings[name]
        if isinstance(value, str):
            settings[name] = value.strip().lower() in {"1", "true", "yes", "on"}
    try:
        ZoneInfo(str(settings["TIMEZONE"]))
    except (ZoneInfoNotFoundError, ValueError):
        raise ConfigError(f"setting TIMEZONE is not a known time zone: {settings['TIMEZONE']!r}") from None
    region = str(settings["DEFAULT_REGION"]).upper()
    if region not in phonenumbers.SUPPORTED_REGIONS:
        raise ConfigError(f"setting DEFAULT_REGION is not a known region code: {region!r}")
    settings["DEFAULT_REGION"] = region
    for name in _PHONES:
        settings[name] = _e164_setting(name, str(settings[name]), region)
    base = str(settings["PUBLIC_BASE_URL"]).strip().rstrip("/")
    if not base.startswith(("http://", "https://")):
        raise ConfigError(f"setting PUBLIC_BASE_URL must start with http:// or https://, got {base!r}")
    settings["PUBLIC_BASE_URL"] = base
    settings["TWILIO_API_BASE_URL"] = str(settings["TWILIO_API_BASE_URL"] or "").strip().rstrip("/")
    try:
        retry = [int(x) for x in str(settings["CALLBACK_RETRY_MINUTES"]).split(",") if x.strip()]
    except ValueError:
        raise ConfigError("setting CALLBACK_RETRY_MINUTES must be minutes separated by commas, e.g. 10,30,120") from None
    if not retry or min(retry) <= 0:
        raise ConfigError("setting CALLBACK_RETRY_MINUTES must list at least one positive number of minutes")
    settings["CALLBACK_RETRY_MINUTES"] = retry
    try:
        rest_retry = [int(x) for x in str(settings["REST_RETRY_SECONDS"]).split(",") if x.strip()]
    except ValueError:
        raise ConfigError("setting REST_RETRY_SECONDS must be seconds separated by commas, e.g. 5,30,120") from None
    if not rest_retry or min(rest_retry) < 0:
        raise ConfigError("setting REST_RETRY_SECONDS must list at least one number of seconds (0 or more)")
    settings["REST_RETRY_SECONDS"] = rest_retry
    return settings


def _e164_setting(name: str, value: str, region: str) -> str:
    try:
        number = phonenumbers.parse(value, region)
    except phonenumbers.NumberParseException:
        number = None
    if number is None or not phonenumbers.is_possible_number(number):
        raise ConfigError(f"setting {name} is not a phone number: {value!r}")
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


SETTING_NAMES: tuple[str, ...] = (*REQUIRED, *DEFAULTS)
