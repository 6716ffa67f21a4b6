"""The one clock the line reads: now, in naive UTC, the form every timestamp is stored in (SQLite keeps no zone).

Everything the line stores or decides by (timestamps, hours, due times, report ranges) reads `utcnow`, so a test
moves time in one place: it replaces `now` (see `tests/support.py`'s `clock` fixture). Times compared with
another program's clock (RQ's heartbeats, Redis expiry, idle-since scores shared by processes) use
`time.time()` as that program does.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo


def system_now() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


# The seam: only tests replace it.
now: Callable[[], datetime] = system_now


def utcnow() -> datetime:
    """Now, in naive UTC."""
    return now()


def to_local(value: datetime, zone: str) -> datetime:
    """A stored (naive UTC) time as an aware datetime in `zone` (the program's TIMEZONE)."""
    return value.replace(tzinfo=UTC).astimezone(ZoneInfo(zone))


def local_now(zone: str) -> datetime:
    """Now, as an aware datetime in `zone` (the program's TIMEZONE)."""
    return to_local(utcnow(), zone)


def local_today(zone: str) -> date:
    """Today's date in `zone`."""
    return local_now(zone).date()
