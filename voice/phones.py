"""Phone numbers: every number that comes in is parsed with `phonenumbers` and kept in E.164."""

from __future__ import annotations

import phonenumbers
from phonenumbers import NumberParseException, PhoneNumberFormat


def to_e164(raw: str | None, region: str = "US") -> str | None:
    """The E.164 form of a valid number, or None (blocked, anonymous, malformed, too short)."""
    if not raw:
        return None
    try:
        number = phonenumbers.parse(str(raw)[:40], region)
    except NumberParseException:
        return None
    if not phonenumbers.is_valid_number(number):
        return None
    return phonenumbers.format_number(number, PhoneNumberFormat.E164)


def display(e164: str | None, region: str = "US") -> str:
    """A number as people in the program's region write it."""
    if not e164:
        return ""
    try:
        number = phonenumbers.parse(e164, region)
    except NumberParseException:
        return e164
    if phonenumbers.region_code_for_number(number) == region:
        return phonenumbers.format_number(number, PhoneNumberFormat.NATIONAL)
    return phonenumbers.format_number(number, PhoneNumberFormat.INTERNATIONAL)


def masked(e164: str | None, region: str = "US") -> str:
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


def spoken(e164: str | None, region: str = "US") -> str:
    """Digits grouped for text-to-speech: '9 3 7, 5 5 5, 0 1 2 3'."""
    if not e164:
        return ""
    try:
        number = phonenumbers.parse(e164, region)
    except NumberParseException:
        return ""
    national = str(number.national_number)
    groups = [national[:3], national[3:6], national[6:]] if len(national) == 10 else [national]
    return ", ".join(" ".join(group) for group in groups)
