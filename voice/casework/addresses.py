"""Street addresses as callers say them, reduced to one key so "1200 Salem Ave" and "twelve hundred Salem
Avenue" match.

The rule: number words at the start become digits (`word2number`: "twelve hundred" -> 1200); `usaddress`
tags the parts; the key is the house number, the direction, the street name and the street type, lower case,
with directions and types in their USPS short forms and ordinal street names as "3rd". A place without a house
number and a street name (cross streets, "by the park") has no key, and is never matched.
"""

from __future__ import annotations

import re

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


def address_key(text: str | None) -> str | None:
    """The matching key of an address ("1200 salem ave"), or None when it has no house number and street."""
    words = _WORD.findall((text or "").lower())
    if not words:
        return None
    words = _number_words_to_digits(words)
    try:
        parts, _kind = usaddress.tag(" ".join(words))
    except usaddress.RepeatedLabelError:
        return None
    number = parts.get("AddressNumber", "")
    street = parts.get("StreetName", "")
    if not number.isdigit() or not street:
        return None
    direction = _DIRECTIONS.get(parts.get("StreetNamePreDirectional", ""), parts.get("StreetNamePreDirectional", ""))
    kind = parts.get("StreetNamePostType", "")
    pieces = [number, direction, " ".join(_ordinal(word) for word in street.split()), _TYPES.get(kind, kind)]
    return " ".join(piece for piece in pieces if piece)[:120]


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
