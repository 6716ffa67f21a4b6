"""Street addresses as callers say them, reduced to one key so "1200 Salem Ave" and "twelve hundred Salem
Avenue" match.

The rule: number words at the start become digits (`word2number`: "twelve hundred" -> 1200); `usaddress`
tags the parts; the key is the house number, the direction, the street name and the street type, lower case,
with directions and types in their USPS short forms and ordinal street names as "3rd". A place without a house
number and a street name (cross streets, "by the park") has no key, and is never matched.

For the reports a place also has an area (`place_of`): the ZIP code it names, and its street without the house
number ("w 3rd st"; the first street of a crossing). A district table (voice/reporting/areas.py) names its
streets the same way (`street_name`), so "West Third Street" there matches "400 W 3rd St" here.
"""

from __future__ import annotations

import re
from typing import NamedTuple

import usaddress
from word2number import w2n

_NUMBER_WORDS = {
    "zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten", "eleven", "twelve",
    "thirteen", "fourteen", "fifteen", "sixteen", "seventeen", "eighteen", "nineteen", "twenty", "thirty",
    "forty", "fifty", "sixty", "seventy", "eighty", "ninety", "hundred", "thousand", "and",
}
_ORDINALS = {
    "first": 1, "second": 2, "third": 3, "fourth": 4, "fifth": 5, "sixth": 6, "seventh": 7, "eighth": 8,
    "ninth": 9, "tenth": 10, "eleventh": 11, "twelfth": 12, "thirteenth": 13, "fourteenth": 14, "fifteenth": 15,
    "sixteenth": 16, "seventeenth": 17, "eighteenth": 18, "nineteenth": 19, "twentieth": 20,
}
_DIRECTIONS = {"north": "n", "south": "s", "east": "e", "west": "w", "northeast": "ne", "northwest": "nw",
               "southeast": "se", "southwest": "sw"}
# USPS Publication 28 abbreviations of the street types callers say most.
_TYPES = {
    "avenue": "ave", "av": "ave", "street": "st", "str": "st", "road": "rd", "drive": "dr", "boulevard": "blvd",
    "lane": "ln", "court": "ct", "place": "pl", "parkway": "pkwy", "terrace": "ter", "circle": "cir",
    "highway": "hwy", "way": "way", "trail": "trl", "square": "sq", "pike": "pike",
}
_WORD = re.compile(r"[a-z0-9]+")
_ZIP = re.compile(r"\b(\d{5})(?:\s*\d{4})?$")


class Place(NamedTuple):
    """What the reports and the case matching keep of a place: its matching key, ZIP code and street."""

    key: str | None
    zip_code: str | None
    street: str | None


def place_of(text: str | None) -> Place:
    """The key ("1200 salem ave", or None without a house number), ZIP code and street of a place as said."""
    words = _WORD.findall((text or "").lower())
    if not words:
        return Place(None, None, None)
    words = _number_words_to_digits(words)
    try:
        parts, _kind = usaddress.tag(" ".join(words))
    except usaddress.RepeatedLabelError:
        parts = {}
    found = _ZIP.search(parts.get("ZipCode", "")) or _ZIP.search(" ".join(words))
    zip_code = found.group(1) if found else None
    street = _street(parts)
    number = parts.get("AddressNumber", "")
    key = f"{number} {street}"[:120] if number.isdigit() and parts.get("StreetName") else None
    return Place(key, zip_code, street[:80] or None)


def address_key(text: str | None) -> str | None:
    """The matching key of an address ("1200 salem ave"), or None when it has no house number and street."""
    return place_of(text).key


def street_name(text: str | None) -> str | None:
    """A street on its own ("West Third Street") in the form `place_of` gives it ("w 3rd st")."""
    words = _WORD.findall((text or "").lower())
    if not words:
        return None
    try:
        parts, _kind = usaddress.tag(" ".join(words))
    except usaddress.RepeatedLabelError:
        parts = {}
    street = _street(parts)
    if not street:
        # A name usaddress cannot place ("Main"): the words themselves, in the same short forms.
        street = " ".join(_DIRECTIONS.get(word) or _TYPES.get(word) or _ordinal(word) for word in words)
    return street[:80] or None


def _street(parts: dict) -> str:
    """Direction, name and type of the (first) street in usaddress's parts, in USPS short forms; "" if none."""
    street = parts.get("StreetName", "")
    if not street:
        return ""
    direction = parts.get("StreetNamePreDirectional", "")
    kind = parts.get("StreetNamePostType", "")
    pieces = [_DIRECTIONS.get(direction, direction), " ".join(_ordinal(word) for word in street.split()),
              _TYPES.get(kind, kind)]
    return " ".join(piece for piece in pieces if piece)


def _number_words_to_digits(words: list[str]) -> list[str]:
    """A leading run of number words ("twelve hundred") becomes its digits ("1200")."""
    run = 0
    while run < len(words) and words[run] in _NUMBER_WORDS:
        run += 1
    if run == 0 or all(word == "and" for word in words[:run]):
        return words
    try:
        return [str(w2n.word_to_num(" ".join(words[:run])))] + words[run:]
    except ValueError:
        return words


def _ordinal(word: str) -> str:
    number = _ORDINALS.get(word)
    if number is None:
        return word
    suffix = "th" if 10 <= number % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(number % 10, "th")
    return f"{number}{suffix}"
