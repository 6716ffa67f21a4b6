"""Phone numbers: every number that comes in is parsed with `phonenumbers` and kept in E.164.

Every function takes the region numbers are read in (the DEFAULT_REGION setting), or the settings mapping it is
passed; this module reads no settings itself.

Numbers the line will dial (a caller's callback number, a specialist's phone) must also pass the
toll-fraud policy in `check_callable`: anyone can key a number, and the city pays for the call.
A caller ID is a caller's own number only if `is_caller_number` says so: withheld IDs, the line's own
numbers, dispatch and the 911 center are never a caller (no case linked on them, no callback, no text).
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import lru_cache

import phonenumbers
from phonenumbers import NumberParseException, PhoneNumberFormat, PhoneNumberType

# Ordinary subscriber lines only: premium rate, shared cost, personal (+1 500/533...), pager, UAN,
# VoIP, toll-free and unclassified numbers can all be billed to the caller's benefit or our loss.
CALLABLE_TYPES = frozenset({PhoneNumberType.FIXED_LINE, PhoneNumberType.MOBILE,
                            PhoneNumberType.FIXED_LINE_OR_MOBILE})


# What Twilio puts in `From` when a caller withholds their number: the words spelled on a keypad, and +464 for
# no caller ID at all. https://help.twilio.com/articles/223179988-Why-am-I-getting-calls-from-these-strange-numbers-
# ("+7378742833 RESTRICTED, +2562533 BLOCKED, +8656696 UNKNOWN, +266696687 ANONYMOUS, +86282452253 UNAVAILABLE"),
# and https://www.twilio.com/en-us/changelog/upcoming-changes-to-withheld-caller-ids-behavior-for-dial-calls
# (Twilio "translates the alpha string into digits"; a <Dial> leg may now carry the word itself).
WITHHELD_CALLER_IDS = frozenset({"+7378742833", "+2562533", "+8656696", "+266696687", "+86282452253", "+464"})
# The same words, for a leg that carries them as letters.
WITHHELD_WORDS = frozenset({"restricted", "blocked", "unknown", "anonymous", "unavailable", "private"})


def not_caller_numbers(config: Mapping) -> frozenset[str]:
    """Numbers that never stand for a person calling: Twilio's withheld IDs and the program's own lines."""
    own = {config["TWILIO_PHONE_NUMBER"], config["DISPATCH_TRANSFER_NUMBER"], config["HANDOFF_NUMBER"],
           *config["PSAP_NUMBERS"], *config["PUBLIC_LINE_NUMBERS"]}
    return WITHHELD_CALLER_IDS | {number for number in own if number}


def is_caller_number(e164: str | None, config: Mapping) -> bool:
    """Whether a caller ID names a person: E.164, not withheld, not the 911 center's or the program's own line.

    Withheld IDs are Twilio's keypad spellings (see WITHHELD_CALLER_IDS and Twilio's page "Why am I getting calls
    from these strange numbers?", https://help.twilio.com/articles/223179988); a 911 center's trunk (PSAP_NUMBERS)
    is many callers at once, not one.
    """
    number = (e164 or "").strip()
    if number.lower() in WITHHELD_WORDS or not number.startswith("+") or not number[1:].isdigit():
        return False
    # E.164 has at most 15 digits; the shortest real numbers (a few small countries) have 8 with the code.
    return 8 <= len(number) - 1 <= 15 and number not in not_caller_numbers(config)


def to_e164(raw: str | None, region: str, strict: bool = True) -> str | None:
    """The E.164 form of a valid number, or None (blocked, anonymous, malformed, too short).

    For reading caller IDs and settings (`strict=False` accepts any possible number, e.g. a test line);
    a number the line will dial goes through `check_callable` instead."""
    if not raw:
        return None
    try:
        number = phonenumbers.parse(str(raw)[:40], region)
    except NumberParseException:
        return None
    valid = phonenumbers.is_valid_number(number) if strict else phonenumbers.is_possible_number(number)
    return phonenumbers.format_number(number, PhoneNumberFormat.E164) if valid else None


class Refusal(enum.Enum):
    """Why the line will not dial a number."""

    NOT_A_NUMBER = "is not a valid phone number"
    COUNTRY = "is in a country or region the line does not call"
    KIND = "is not an ordinary landline or mobile number (premium, toll-free, shared-cost and the like)"


@dataclass(frozen=True)
class NumberCheck:
    """The outcome of the toll-fraud policy: the E.164 number when it may be dialled, else why not."""

    number: str | None
    refusal: Refusal | None = None
    region: str | None = None

    @property
    def callable(self) -> bool:
        return self.refusal is None

    def reason(self) -> str:
        """An English sentence fragment for logs and the CLI, e.g. "is in ... (JM)"; empty if callable."""
        if self.refusal is Refusal.COUNTRY and self.region:
            return f"{self.refusal.value} ({self.region})"
        return self.refusal.value if self.refusal else ""


def check_callable(raw: str | None, region: str, countries: Iterable[str]) -> NumberCheck:
    """Apply the toll-fraud policy to a number someone typed or keyed, read in `region`."""
    if not raw:
        return NumberCheck(None, Refusal.NOT_A_NUMBER)
    try:
        number = phonenumbers.parse(str(raw)[:40], region)
    except NumberParseException:
        return NumberCheck(None, Refusal.NOT_A_NUMBER)
    if not phonenumbers.is_valid_number(number):
        return NumberCheck(None, Refusal.NOT_A_NUMBER)
    # By region, not country code: +1 876 is Jamaica, billed as an international call.
    number_region = phonenumbers.region_code_for_number(number)
    allowed = countries.split(",") if isinstance(countries, str) else countries
    if number_region not in {code.strip().upper() for code in allowed}:
        return NumberCheck(None, Refusal.COUNTRY, number_region)
    if phonenumbers.number_type(number) not in CALLABLE_TYPES:
        return NumberCheck(None, Refusal.KIND, number_region)
    return NumberCheck(phonenumbers.format_number(number, PhoneNumberFormat.E164), None, number_region)


def callable_number(raw: str | None, region: str, countries: Iterable[str]) -> str | None:
    """The E.164 form of a number the line may dial, or None (see `check_callable` for why)."""
    return check_callable(raw, region, countries).number


def textable_caller(number: str | None, config: Mapping) -> str | None:
    """A caller's number in E.164 if the line may call or text it (the toll-fraud policy, and a caller's own
    number: never the line's, dispatch's or the 911 center's), else None."""
    number = callable_number(number, config["DEFAULT_REGION"], config["CALLBACK_COUNTRIES"])
    return number if is_caller_number(number, config) else None


def caller_number(from_number: str | None, forwarded_from: str | None, config: Mapping) -> str | None:
    """A call's caller ID in E.164 when it is the caller's own number, else None.

    Twilio's ForwardedFrom is the number that forwarded the call to the line (a 911 center's transfer shows the
    center), never the caller: a caller ID equal to it is the forwarder's, not the caller's.
    https://www.twilio.com/docs/usage/webhooks/voice-webhooks ("ForwardedFrom ... set only when Twilio receives a
    forwarded call, but its value depends on the caller's carrier")
    """
    if not is_caller_number(from_number, config):
        return None
    number = to_e164(from_number, config["DEFAULT_REGION"])
    forwarder = to_e164(forwarded_from, config["DEFAULT_REGION"], strict=False) if forwarded_from else None
    return None if number == forwarder else number


def _read_back(e164: str | None, region: str) -> phonenumbers.PhoneNumber | None:
    """A stored number parsed for showing or saying, or None when there is none or it does not parse."""
    if not e164:
        return None
    try:
        return phonenumbers.parse(e164, region)
    except NumberParseException:
        return None


@lru_cache(maxsize=4096)
def display(e164: str | None, region: str) -> str:
    """A number as people in the program's region write it."""
    number = _read_back(e164, region)
    if number is None:
        return e164 or ""
    if phonenumbers.region_code_for_number(number) == region:
        return phonenumbers.format_number(number, PhoneNumberFormat.NATIONAL)
    return phonenumbers.format_number(number, PhoneNumberFormat.INTERNATIONAL)


def masked(e164: str | None, region: str) -> str:
    """A number with all but its last four digits hidden, for lists."""
    text = display(e164, region)
    total = sum(ch.isdigit() for ch in text)
    seen = 0
    out = []
    for ch in text:
        if ch.isdigit():
            seen += 1
            out.append(ch if seen > total - 4 else "•")
        else:
            out.append(ch)
    return "".join(out)


@lru_cache(maxsize=4096)  # said in prompts on every request; parsing a number costs more than the rest of a prompt
def spoken(e164: str | None, region: str) -> str:
    """Digits grouped for text-to-speech: '9 3 7, 5 5 5, 0 1 2 3'."""
    number = _read_back(e164, region)
    if number is None:
        return ""
    national = str(number.national_number)
    groups = [national[:3], national[3:6], national[6:]] if len(national) == 10 else [national]
    return ", ".join(" ".join(group) for group in groups)
