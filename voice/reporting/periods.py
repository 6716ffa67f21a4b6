"""Date ranges for the reports: days in the program's time zone, the period of the same length just before,
percent change, percentiles, and the SQL that buckets and measures times alike on SQLite and PostgreSQL."""

from __future__ import annotations

import statistics
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import func, text
from sqlalchemy.orm import Session

UTC = ZoneInfo("UTC")


def local_midnight_utc(day: date, zone: str) -> datetime:
    """Naive UTC for the start of `day` in the program's time zone."""
    return datetime(day.year, day.month, day.day, tzinfo=ZoneInfo(zone)).astimezone(UTC).replace(tzinfo=None)


@dataclass(frozen=True)
class Period:
    """The days `start` to `end`, both included, in the time zone `zone`."""

    start: date
    end: date
    zone: str

    @property
    def since(self) -> datetime:
        return local_midnight_utc(self.start, self.zone)

    @property
    def until(self) -> datetime:
        return local_midnight_utc(self.end + timedelta(days=1), self.zone)

    @property
    def days(self) -> int:
        return (self.end - self.start).days + 1

    def previous(self) -> Period:
        """The period of as many days that ends the day before this one starts."""
        return Period(self.start - timedelta(days=self.days), self.start - timedelta(days=1), self.zone)

    def holds(self, column) -> tuple:
        """SQL conditions: `column` (naive UTC) falls in this period."""
        return column >= self.since, column < self.until

    def __str__(self) -> str:
        return f"{self.start.isoformat()}..{self.end.isoformat()}"


def for_reports(db: Session) -> None:
    """Tune this transaction for reading a year of rows (PostgreSQL; SQLite has nothing to tune).

    PostgreSQL compiles a query whose estimated cost is high (https://www.postgresql.org/docs/current/jit-decision.html):
    a year of calls costs every report query ~60 ms of JIT, and one with a subquery per case half a second, more than
    the query itself. And their sorts outgrow the default work_mem and spill to disk. SET LOCAL ends with the
    transaction.
    """
    if db.get_bind().dialect.name == "postgresql":
        db.execute(text("SET LOCAL jit = off"))
        db.execute(text("SET LOCAL work_mem = '32MB'"))


def percent_change(value: float | None, previous: float | None) -> float | None:
    """How much `value` is up (or down, negative) on `previous`, in percent; None when there is nothing to compare."""
    if value is None or previous is None or previous == 0:
        return None
    return (value - previous) / abs(previous) * 100


def percentile(values: list[float], q: float) -> float | None:
    """The q-th percentile, interpolated between the values either side (None for no values)."""
    if not values:
        return None
    if len(values) == 1:
        return values[0]
    return statistics.quantiles(values, n=100, method="inclusive")[int(q) - 1]


def hour_bucket(dialect: str, column):
    """'YYYY-MM-DD HH' of a naive UTC column, grouped in the database so a year of calls is a few thousand rows."""
    if dialect == "postgresql":
        return func.to_char(func.date_trunc("hour", column), "YYYY-MM-DD HH24")
    # SQLAlchemy stores a SQLite DateTime as "YYYY-MM-DD HH:MM:SS.ffffff": its first 13 characters are the hour, and
    # cutting them costs half of what strftime's parsing does.
    return func.substr(column, 1, 13)


def local_hour(hour: str, zone: ZoneInfo) -> datetime:
    """An `hour_bucket` ('YYYY-MM-DD HH', UTC) as that hour in `zone`."""
    return datetime.strptime(hour, "%Y-%m-%d %H").replace(tzinfo=UTC).astimezone(zone)


def seconds_between(dialect: str, start, end):
    """The seconds from `start` to `end` (NULL when either is), in SQL."""
    if dialect == "postgresql":
        # date_part gives a float; extract gives a numeric, read into Python as a slower Decimal.
        return func.date_part("epoch", end - start)
    return (func.julianday(end) - func.julianday(start)) * 86400.0
