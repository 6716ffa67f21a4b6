"""The open-data export: one row per call that a city can publish, with no personal information.

No field carries text anyone typed or said, nor a number, name or address: each is a value from a fixed list
(checked against it, so a stored value outside the list becomes empty), a count, a whole number of seconds, a
time rounded down to the hour, or an area named only when at least OPEN_DATA_MIN_CALLS calls of the export share
it. The fields are in voice/reporting/dictionary.py and docs/data-dictionary.md. Rows stream from the database
(`yield_per`), so memory stays flat however many calls a range holds.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator, Mapping
from zoneinfo import ZoneInfo

from sqlalchemy import case, func, select
from sqlalchemy.orm import Session

from voice.line import calls
from voice.models import Call, CallbackRequest, Hold, Referral
from voice.models import Case as CaseRow
from voice.reporting import dictionary, figures
from voice.reporting.areas import Areas
from voice.reporting.periods import Period, for_reports, hour_bucket, local_hour, seconds_between

COLUMNS = tuple(field.name for field in dictionary.OPEN_DATA)
ALLOWED = {field.name: frozenset(field.allowed) for field in dictionary.OPEN_DATA if field.allowed is not None}
BATCH = 1000


def area_counts(db: Session, period: Period, areas: Areas) -> Counter:
    """How many of the period's calls each area has (one GROUP BY, before the rows stream)."""
    counts: Counter = Counter()
    for zip_code, street, n in db.execute(
            select(Call.zip_code, Call.street, func.count()).where(*period.holds(Call.started_at))
            .group_by(Call.zip_code, Call.street)):
        counts[areas.area(zip_code, street)] += n
    return counts


def _query(period: Period, dialect: str):
    """Each call's published facts, worked out in SQL (seconds, the hour, flags), so no row's times are parsed."""
    given = (select(Referral.call_id, func.count().label("given"),
                    func.sum(case((Referral.accepted.is_(True), 1), else_=0)).label("accepted"))
             .join(Call, Call.id == Referral.call_id).where(*period.holds(Call.started_at))
             .group_by(Referral.call_id).subquery())
    return (select(hour_bucket(dialect, Call.started_at).label("hour"), Call.source, Call.language, Call.category,
                   Call.outcome, Call.escalation_reason, Call.zip_code, Call.street,
                   Call.connected_at.is_not(None).label("connected"), Call.ended_at.is_(None).label("live"),
                   seconds_between(dialect, Call.started_at, Call.connected_at).label("to_person"),
                   seconds_between(dialect, Call.started_at, Call.ended_at).label("to_end"),
                   Hold.enqueued_at.is_not(None).label("enqueued"),
                   CallbackRequest.status.label("request"), CallbackRequest.attempts,
                   CaseRow.status.label("case_status"), CaseRow.outcome.label("case_outcome"), CaseRow.closed_how,
                   (CaseRow.opened_at < Call.started_at).label("joined"), figures.reached_flag().label("reached"),
                   given.c.given, given.c.accepted)
            .outerjoin(Hold, Hold.call_id == Call.id).outerjoin(CallbackRequest, CallbackRequest.call_id == Call.id)
            .outerjoin(CaseRow, CaseRow.id == Call.case_id).outerjoin(given, given.c.call_id == Call.id)
            .where(*period.holds(Call.started_at)).order_by(Call.started_at, Call.id)
            .execution_options(yield_per=BATCH))


def rows(db: Session, period: Period, config: Mapping, areas: Areas) -> Iterator[dict[str, object]]:
    """The open-data rows of the period's calls, oldest first."""
    for_reports(db)
    counts = area_counts(db, period, areas)
    named = {area for area, n in counts.items() if area is not None and n >= config["OPEN_DATA_MIN_CALLS"]}
    hours = LocalHours(period.zone)
    for row in db.execute(_query(period, db.get_bind().dialect.name)):
        yield open_row(row, hours, areas, named)


class LocalHours:
    """"YYYY-MM-DD HH" in UTC to the local hour in ISO 8601 with its offset; a year has at most 8,784 of them."""

    def __init__(self, zone: str):
        self.zone = ZoneInfo(zone)
        self.seen: dict[str, str] = {}

    def __call__(self, hour: str) -> str:
        if hour not in self.seen:
            moment = local_hour(hour, self.zone)
            self.seen[hour] = moment.isoformat(timespec="minutes")
        return self.seen[hour]


def _listed(field: str, value: object) -> str:
    """The value if it is one the dictionary allows for `field`, else empty: nothing stored slips through."""
    return value if isinstance(value, str) and value in ALLOWED[field] else ""


def _seconds(value: float | None) -> int | str:
    return max(0, round(value)) if value is not None else ""


def open_row(row, hours: LocalHours, areas: Areas, named: set) -> dict[str, object]:
    """One call (a row of `_query`) as published: every field from a fixed list, a count, seconds, the hour, or a
    common area."""
    # Unpacked once: a row's fields by name cost more than the rest of the row's work.
    (hour, source, language, category, outcome, reason, zip_code, street, connected, live, to_person, to_end,
     enqueued, request, attempts, case_status, case_outcome, closed_how, joined, reached, given, accepted) = row
    outcome = _listed("outcome", outcome)
    abandoned = outcome == calls.ABANDONED
    returned = ""
    if outcome == calls.ESCALATED:
        returned = reason if reason in calls.RETURN_REASONS else "other"
    request = request if isinstance(request, str) and request in dictionary.CALLBACK_STATUSES else ""
    area = areas.area(zip_code, street)
    return {
        "started_hour": hours(hour),
        "source": _listed("source", source),
        "language": _listed("language", language),
        "category": _listed("category", category),
        "outcome": outcome,
        "answered": figures.answer_of(outcome, bool(connected), outcome in calls.OPEN_OUTCOMES and bool(live)),
        "seconds_to_person": _seconds(to_person),
        "abandoned": ("during_hold" if enqueued else "before_hold") if abandoned else "",
        "seconds_before_hangup": _seconds(to_end) if abandoned else "",
        "returned_to_911": returned,
        "callback": figures.callback_state(request, attempts == 1) if request else "",
        "referrals_given": int(given or 0),
        "referrals_accepted": int(accepted or 0),
        "case_outcome": figures.outcome_group(case_status, case_outcome, closed_how, bool(reached))
        if case_status is not None else "",
        "repeat_call": "true" if case_status is not None and joined else "false",
        "area": area if area in named else "",
    }


def csv_chunks(db: Session, period: Period, config: Mapping, areas: Areas) -> Iterator[str]:
    """The open-data export as CSV text in chunks, for a download or a file."""
    return calls.table_chunks(COLUMNS, rows(db, period, config, areas))
