"""The area of a call for the reports: the city's district, when the program names its districts in a table
(DISTRICTS_CSV: streets and ZIP codes to districts), else the ZIP code parsed from the place the caller gave.

A street in the table matches a call's street as `addresses.street_name` writes both ("West Third Street" and
"400 W 3rd St" are "w 3rd st"), then without its direction ("3rd st" for "w 3rd st"); a street says more than a
ZIP code, so it is tried first. A call with neither is in no area ("not known").
"""

from __future__ import annotations

import re
from functools import lru_cache

from voice.casework import addresses

ZIP_CODE = re.compile(r"\d{5}")
NOT_KNOWN = "not known"
_DIRECTIONS = {"n", "s", "e", "w", "ne", "nw", "se", "sw"}


class Areas:
    """How calls are placed in areas: by a district table, or by ZIP code when there is none."""

    def __init__(self, table: tuple[tuple[str, str], ...]):
        self.by_zip: dict[str, str] = {}
        self.by_street: dict[str, str] = {}
        for match, district in table:
            if ZIP_CODE.fullmatch(match):
                self.by_zip[match] = district
            else:
                street = addresses.street_name(match)
                if street:
                    self.by_street.setdefault(street, district)
        self.districts = bool(table)

    @property
    def kind(self) -> str:
        """What an area is, in words: "district" or "ZIP code"."""
        return "district" if self.districts else "ZIP code"

    def area(self, zip_code: str | None, street: str | None) -> str | None:
        """The area of a call with this ZIP code and street, or None when it cannot be told."""
        zip_code = zip_code if zip_code and ZIP_CODE.fullmatch(zip_code) else None
        if not self.districts:
            return zip_code
        if street:
            found = self.by_street.get(street)
            first, _, rest = street.partition(" ")
            if found is None and first in _DIRECTIONS and rest:
                found = self.by_street.get(rest)
            if found is not None:
                return found
        return self.by_zip.get(zip_code) if zip_code else None


@lru_cache(maxsize=8)
def areas_for(table: tuple[tuple[str, str], ...]) -> Areas:
    """The areas of the DISTRICTS_CSV setting's table (built once: reading street names is not free)."""
    return Areas(table)
