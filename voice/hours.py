"""The program's opening hours: weekly shifts in local wall-clock time, closed on holidays.

`OPEN_HOURS` reads like `mon-fri 08:00-20:00; sat 10:00-16:00`: shifts separated by `;` (or new
lines), each a set of days (`mon`, `mon-fri`, `mon,wed`, `fri-mon` wraps past Sunday) and one or more
`HH:MM-HH:MM` ranges separated by commas. `24:00` ends a day. A shift never runs past midnight: write
`mon 22:00-24:00; tue 00:00-06:00` instead, and `closes_at` follows it into the next day. Empty text
means open at every hour; holidays close the line all day even then.

Times are wall-clock times in the program's zone, so a shift 08:00-20:00 keeps those local hours
across daylight-saving changes. Moments passed in are aware datetimes or naive UTC (how the database
stores them); moments returned are naive UTC.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from voice.clock import utcnow

DAY_NAMES = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
WHOLE_DAY = (0, 24 * 60)
_EXAMPLE = "e.g. mon-fri 08:00-20:00; sat 10:00-16:00"
_SHIFT = re.compile(r"^(?P<days>[a-z][a-z ,\-]*?)\s+(?P<times>\d.*)$")
_RANGE = re.compile(r"^(\d{1,2}):(\d{2})\s*-\s*(\d{1,2}):(\d{2})$")
# Enough days to pass any run of holidays; a year of them would be a configuration mistake.
_SEARCH_DAYS = 400

Shift = tuple[int, int]
"""Minutes after local midnight: (start, end), start < end <= 1440."""


@dataclass(frozen=True)
class Hours:
    """When the line is open: seven days (Monday first) of shifts, a time zone, and holidays."""

    week: tuple[tuple[Shift, ...], ...]
    timezone: str
    holidays: frozenset[date] = frozenset()
    always: bool = False

    def is_open(self, at: datetime) -> bool:
        """Whether the line is open at this moment."""
        local = self._local(at)
        if local.date() in self.holidays:
            return False
        second = local.hour * 3600 + local.minute * 60 + local.second + local.microsecond / 1e6
        return any(start * 60 <= second < end * 60 for start, end in self.week[local.weekday()])

    def next_opening(self, at: datetime) -> datetime:
        """The first moment at or after `at` when the line is open (naive UTC)."""
        moment = _utc(at)
        if self.is_open(moment):
            return moment
        today = self._local(moment).date()
        for offset in range(_SEARCH_DAYS):
            day = today + timedelta(days=offset)
            if day in self.holidays:
                continue
            for start, _end in self.week[day.weekday()]:
                for instant in _instants(day, start, self.zone):
                    # A shift that falls wholly inside a spring-forward gap never opens.
                    if instant > moment and self.is_open(instant):
                        return instant
        raise ValueError("the line never opens")  # parse_hours never builds such Hours

    def closes_at(self, at: datetime) -> datetime | None:
        """When the line next closes if it is open at `at` (naive UTC), following shifts that meet
        at midnight; None if it is closed now, or open with no end in sight (every hour, no holidays)."""
        moment = _utc(at)
        if not self.is_open(moment):
            return None
        for _ in range(_SEARCH_DAYS):
            end = self._end_of_shift(moment)
            # Clocks falling back can take the line out of a shift before the clock reads its end.
            jump = _offset_change(moment, end, self.zone)
            if jump is not None and not self.is_open(jump):
                return jump
            if not self.is_open(end):
                return end
            moment = end
        return None

    def next_holiday(self, today: date) -> date | None:
        """The first holiday on or after `today`, if any."""
        return min((day for day in self.holidays if day >= today), default=None)

    def describe(self, language: str = "en") -> str:
        """The hours as a sentence fragment for callers, in English or Spanish ("es")."""
        words = _SPANISH if language == "es" else _ENGLISH
        if self.always:
            return words["always"]
        groups: list[tuple[tuple[Shift, ...], list[int]]] = []
        for day, shifts in enumerate(self.week):
            if not shifts:
                continue
            for group_shifts, days in groups:
                if group_shifts == shifts:
                    days.append(day)
                    break
            else:
                groups.append((shifts, [day]))
        parts = [f"{_describe_days(days, words)}, {_describe_shifts(shifts, words)}" for shifts, days in groups]
        return "; ".join(parts)

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    def _local(self, at: datetime) -> datetime:
        return _utc(at).replace(tzinfo=UTC).astimezone(self.zone)

    def _end_of_shift(self, moment: datetime) -> datetime:
        local = self._local(moment)
        second = local.hour * 3600 + local.minute * 60 + local.second + local.microsecond / 1e6
        end = next(end for start, end in self.week[local.weekday()] if start * 60 <= second < end * 60)
        return next(instant for instant in _instants(local.date(), end, self.zone) if instant > moment)


def parse_hours(text: str, timezone: str, holidays: Iterable[date] = ()) -> Hours:
    """Read `OPEN_HOURS` text; ValueError with a one-line message if it cannot be read."""
    ZoneInfo(timezone)  # an unknown zone fails here, not at the first call
    week: list[list[Shift]] = [[] for _ in DAY_NAMES]
    entries = [entry.strip() for entry in re.split(r"[;\n]", (text or "").lower()) if entry.strip()]
    for entry in entries:
        match = _SHIFT.match(entry)
        if match is None:
            raise ValueError(f"{entry!r} is not days and times, {_EXAMPLE}")
        days = _parse_days(match["days"])
        for piece in match["times"].split(","):
            shift = _parse_range(piece.strip(), days)
            for day in days:
                week[day].append(shift)
    if not entries:
        week = [[WHOLE_DAY] for _ in DAY_NAMES]
    return Hours(tuple(_merged(shifts) for shifts in week), timezone, frozenset(holidays), always=not entries)


def parse_holidays(text: str) -> frozenset[date]:
    """Read `HOLIDAYS`: dates YYYY-MM-DD separated by commas or semicolons."""
    days = set()
    for piece in re.split(r"[,;]", text or ""):
        piece = piece.strip()
        if not piece:
            continue
        try:
            if not re.fullmatch(r"\d{4}-\d{2}-\d{2}", piece):
                raise ValueError(piece)
            days.add(date.fromisoformat(piece))
        except ValueError:
            raise ValueError(f"{piece!r} is not a date (YYYY-MM-DD)") from None
    return frozenset(days)


def _parse_days(text: str) -> list[int]:
    days: list[int] = []
    for piece in text.split(","):
        piece = piece.strip()
        first, _, last = (part.strip() for part in piece.partition("-"))
        start = _day_number(first)
        end = _day_number(last) if last else start
        count = (end - start) % 7 + 1
        days.extend((start + i) % 7 for i in range(count) if (start + i) % 7 not in days)
    return days


def _day_number(name: str) -> int:
    if len(name) >= 3:
        for number, full in enumerate(DAY_NAMES):
            if full.startswith(name):
                return number
    raise ValueError(f"{name!r} is not a day (mon, tue, wed, thu, fri, sat, sun)")


def _parse_range(text: str, days: list[int]) -> Shift:
    match = _RANGE.match(text)
    if match is None:
        raise ValueError(f"{text!r} is not a time range like 08:00-20:00")
    start_h, start_m, end_h, end_m = (int(group) for group in match.groups())
    if start_h > 23 or end_h > 24 or start_m > 59 or end_m > 59 or (end_h == 24 and end_m):
        raise ValueError(f"{text!r} is not a time range like 08:00-20:00 (hours 00-23, or 24:00 as an end)")
    start, end = start_h * 60 + start_m, end_h * 60 + end_m
    if end == 0:
        raise ValueError(f"{text!r} ends at midnight: write the end as 24:00")
    if end <= start:
        day, following = DAY_NAMES[days[0]][:3], DAY_NAMES[(days[0] + 1) % 7][:3]
        raise ValueError(f"{text!r} ends before it starts; a shift past midnight is two shifts, e.g. "
                         f"{day} {start_h:02d}:{start_m:02d}-24:00; {following} 00:00-{end_h:02d}:{end_m:02d}")
    return start, end


def _merged(shifts: list[Shift]) -> tuple[Shift, ...]:
    """Overlapping or touching shifts on one day become one."""
    out: list[Shift] = []
    for start, end in sorted(shifts):
        if out and start <= out[-1][1]:
            out[-1] = (out[-1][0], max(out[-1][1], end))
        else:
            out.append((start, end))
    return tuple(out)


def _utc(at: datetime) -> datetime:
    return at if at.tzinfo is None else at.astimezone(UTC).replace(tzinfo=None)


def _instants(day: date, minute: int, zone: ZoneInfo) -> list[datetime]:
    """The moments (naive UTC, earliest first) when the local clock reads `minute` on `day`: two when
    the clocks fall back, and when they spring forward over it, the moment they jump."""
    local = datetime.combine(day, time()) + timedelta(minutes=minute)  # 24:00 is the next midnight
    found = []
    for fold in (0, 1):
        instant = local.replace(tzinfo=zone, fold=fold).astimezone(UTC)
        if instant.astimezone(zone).replace(tzinfo=None) == local:
            found.append(instant.replace(tzinfo=None))
    if found:
        return sorted(set(found))
    # In the gap: fold=1 reads the clock before the jump; walk to the first minute past it.
    instant = local.replace(tzinfo=zone, fold=1).astimezone(UTC)
    while instant.astimezone(zone).replace(tzinfo=None) < local:
        instant += timedelta(minutes=1)
    return [instant.replace(tzinfo=None)]


def _offset_change(start: datetime, end: datetime, zone: ZoneInfo) -> datetime | None:
    """The moment in (start, end] (naive UTC, to the second) when the zone's UTC offset changes, if it does."""
    def offset(moment: datetime) -> timedelta | None:
        return moment.replace(tzinfo=UTC).astimezone(zone).utcoffset()

    before = offset(start)
    if offset(end) == before:
        return None
    low, high = 0, int((end - start).total_seconds()) + 1
    while high - low > 1:  # offset(start + low) == before != offset(start + high)
        middle = (low + high) // 2
        if offset(start + timedelta(seconds=middle)) == before:
            low = middle
        else:
            high = middle
    moment = start + timedelta(seconds=high)
    return moment - timedelta(microseconds=moment.microsecond)


_ENGLISH = {
    "days": ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"),
    "every day": "every day", "range": "{} to {}", "and": "and", "shift": "{} to {}",
    "all day": "all day", "always": "every day, at any hour",
}
_SPANISH = {
    "days": ("lunes", "martes", "miércoles", "jueves", "viernes", "sábado", "domingo"),
    "every day": "todos los días", "range": "de {} a {}", "and": "y", "shift": "de {} a {}",
    "all day": "todo el día", "always": "todos los días, a cualquier hora",
}


def _describe_days(days: list[int], words: dict) -> str:
    if len(days) == 7:
        return words["every day"]
    runs: list[list[int]] = []
    for day in days:
        if runs and day == runs[-1][-1] + 1:
            runs[-1].append(day)
        else:
            runs.append([day])
    names = words["days"]
    pieces: list[str] = []
    for run in runs:
        if len(run) >= 3:
            pieces.append(words["range"].format(names[run[0]], names[run[-1]]))
        else:
            pieces.extend(names[day] for day in run)
    return _joined(pieces, words)


def _describe_shifts(shifts: tuple[Shift, ...], words: dict) -> str:
    if shifts == (WHOLE_DAY,):
        return words["all day"]
    clock = _spanish_clock if words is _SPANISH else _english_clock
    return _joined([words["shift"].format(clock(start), clock(end)) for start, end in shifts], words)


def _joined(pieces: list[str], words: dict) -> str:
    if len(pieces) == 1:
        return pieces[0]
    return f"{', '.join(pieces[:-1])} {words['and']} {pieces[-1]}"


def _english_clock(minute: int) -> str:
    hour, rest = divmod(minute % (24 * 60), 60)
    if rest == 0 and hour in (0, 12):
        return "midnight" if hour == 0 else "noon"
    suffix = "a.m." if hour < 12 else "p.m."
    shown = hour % 12 or 12
    return f"{shown} {suffix}" if rest == 0 else f"{shown}:{rest:02d} {suffix}"


def _spanish_clock(minute: int) -> str:
    hour, rest = divmod(minute % (24 * 60), 60)
    if rest == 0 and hour == 0:
        return "medianoche"
    if hour == 12:
        part = "del mediodía"
    elif 6 <= hour < 12:
        part = "de la mañana"
    elif 12 < hour < 20:
        part = "de la tarde"
    elif hour >= 20:
        part = "de la noche"
    else:
        part = "de la madrugada"
    shown = hour % 12 or 12
    return f"{shown} {part}" if rest == 0 else f"{shown}:{rest:02d} {part}"


def line_open(config: Mapping, at: datetime | None = None) -> bool:
    """Whether the line takes calls now (or at `at`), from the app's OPEN_HOURS and HOLIDAYS."""
    return config["OPEN_HOURS"].is_open(at or utcnow())


def next_opening_after(config: Mapping, at: datetime) -> datetime | None:
    """When the line next opens, if it is closed at `at` (naive UTC); None while it is open."""
    open_hours = config["OPEN_HOURS"]
    return None if open_hours.is_open(at) else open_hours.next_opening(at)
