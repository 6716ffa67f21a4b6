"""What the dashboard reads: the live board, the filtered call log (keyset pages), and the reports."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

import redis
from flask import current_app
from sqlalchemy import Select, case, func, or_, select
from sqlalchemy.orm import Session

from voice import clock, phones
from voice.casework import cases, field_safety, visits
from voice.clock import local_today, utcnow
from voice.line import callbacks, calls, conferences, holds, routing, specialists
from voice.models import Call, CallbackRequest, Case, Specialist, Visit, VisitMember
from voice.reporting.periods import (
    hour_bucket,
    local_hour,
    local_midnight_utc,
    percentile,
    seconds_between,
)

PAGE_SIZE = 50


def to_local(value: datetime | None, zone: str) -> datetime | None:
    return clock.to_local(value, zone) if value else None


# --- the live board -------------------------------------------------------------------------------


@dataclass
class SpecialistState:
    specialist: Specialist
    state: str  # off, available, ringing, on_call, calling_back, on_visit
    since: datetime | None
    today: int


def board(db: Session, r: redis.Redis, zone: str) -> dict:
    roster = db.scalars(select(Specialist).where(Specialist.active.is_(True)).order_by(Specialist.name)).all()
    holders = routing.lease_holders(r, [s.id for s in roster])
    today_start = local_midnight_utc(local_today(zone), zone)
    counts = dict(db.execute(
        select(Call.specialist_id, func.count(Call.id))
        .where(Call.started_at >= today_start, Call.specialist_id.is_not(None), Call.connected_at.is_not(None))
        .group_by(Call.specialist_id)
    ).all())
    live = {c.specialist_id: c for c in db.scalars(
        select(Call).where(Call.ended_at.is_(None), Call.connected_at.is_not(None),
                           Call.started_at >= utcnow() - timedelta(hours=12))
    )}
    away = visits.on_visit_ids(db)
    states = []
    for s in roster:
        state, since = specialists.state_from(s, holders.get(s.id)), s.available_since
        if state == "busy":
            call = live.get(s.id)
            state, since = ("on_call", call.connected_at) if call else ("ringing", None)
            if holders.get(s.id, "").startswith("callback:") and call is None:
                state = "calling_back"
        if s.id in away and state not in ("on_call", "calling_back"):
            state, since = "on_visit", None
        states.append(SpecialistState(s, state, since, counts.get(s.id, 0)))
    in_intake = db.scalars(
        select(Call).where(Call.outcome.in_(calls.OPEN_OUTCOMES), Call.ended_at.is_(None), Call.step.is_not(None),
                           Call.started_at >= utcnow() - timedelta(hours=2))
        .order_by(Call.started_at)
    ).all()
    holding = [(hold, holds.position(db, hold) if hold.status == holds.WAITING else None)
               for hold in holds.holding_now(db)]
    waiting = callbacks.open_requests(db, (callbacks.PENDING, callbacks.SCHEDULED, callbacks.IN_PROGRESS))
    return {"specialists": states, "in_intake": in_intake, "holding": holding, "waiting": waiting,
            "on_calls": conferences.on_calls_now(db),
            "hours": line_hours(zone), "overdue_visits": visits.overdue(db),
            "follow_ups_due": callbacks.follow_ups_due(db),
            "field": field_safety.field_board(db, current_app.config)}


def line_hours(zone: str) -> dict:
    """The program's hours for the board: open now or not, until or from when, and the next holiday."""
    open_hours = current_app.config["OPEN_HOURS"]
    now = utcnow()
    today = local_today(zone)
    is_open = open_hours.is_open(now)
    return {
        "open": is_open,
        "always": open_hours.always and not open_hours.holidays,
        "text": current_app.config["PROGRAM_HOURS"],
        "closes_at": open_hours.closes_at(now) if is_open else None,
        "opens_at": None if is_open else open_hours.next_opening(now),
        "next_holiday": open_hours.next_holiday(today),
    }


# --- the call log ---------------------------------------------------------------------------------


@dataclass
class LogFilters:
    start: date | None = None
    end: date | None = None
    category: str = ""
    outcome: str = ""
    specialist_id: int | None = None
    language: str = ""
    q: str = ""
    errors: list[str] = field(default_factory=list)

    @classmethod
    def from_args(cls, args) -> LogFilters:
        f = cls(category=args.get("category", "")[:32], outcome=args.get("outcome", "")[:24],
                language=args.get("language", "")[:8], q=args.get("q", "").strip()[:100])
        for name in ("start", "end"):
            raw = args.get(name, "")
            if raw:
                try:
                    setattr(f, name, date.fromisoformat(raw))
                except ValueError:
                    f.errors.append(f"{name} date {raw!r} is not a date (YYYY-MM-DD)")
        raw = args.get("specialist", "")
        if raw:
            f.specialist_id = int(raw) if raw.isdigit() else None
        return f

    def as_args(self) -> dict:
        args = {"start": self.start.isoformat() if self.start else "", "end": self.end.isoformat() if self.end else "",
                "category": self.category, "outcome": self.outcome, "language": self.language, "q": self.q,
                "specialist": str(self.specialist_id or "")}
        return {k: v for k, v in args.items() if v}


# A name prefix that fewer calls than this share is looked up by name; a commoner one by date.
NAME_LOOKUP_LIMIT = 2000


def filtered(db: Session, f: LogFilters, zone: str, region: str, only_specialist: int | None = None) -> Select:
    """The call log query for these filters; every condition uses an indexed column."""
    query = select(Call)
    if f.start:
        query = query.where(Call.started_at >= local_midnight_utc(f.start, zone))
    if f.end:
        query = query.where(Call.started_at < local_midnight_utc(f.end + timedelta(days=1), zone))
    if f.category:
        query = query.where(Call.category == f.category)
    if f.outcome:
        query = query.where(Call.outcome == f.outcome)
    if f.language:
        query = query.where(Call.language == f.language)
    if f.specialist_id:
        query = query.where(Call.specialist_id == f.specialist_id)
    if only_specialist is not None:
        query = query.where(Call.specialist_id == only_specialist)
    if f.q:
        number = phones.to_e164(f.q, region) if sum(ch.isdigit() for ch in f.q) >= 7 else None
        # The 911 center's incident number, as dispatch keyed it (an indexed lookup too).
        incident = select(Call.id).where(Call.incident_number == f.q)
        if number:
            # A union of indexed lookups: an OR here would make the database walk the log by date.
            matches = select(Call.id).where(Call.from_number == number).union(
                select(Call.id).where(Call.callback_number == number), incident)
            query = query.where(Call.id.in_(matches))
        else:
            query = query.where(or_(_name_starts_with(db, f.q), Call.id.in_(incident)))
    return query


def _name_starts_with(db: Session, prefix: str):
    """Callers whose name starts with `prefix` (any case), found through the index on lower(caller_name)."""
    needle = prefix.lower()
    key = func.lower(Call.caller_name)
    # The range is what the index can seek; LIKE then keeps exactly the prefix whatever the collation.
    upper = needle[:-1] + chr(min(ord(needle[-1]) + 1, 0x10FFFF))
    matches = select(Call.id).where(key >= needle, key < upper, key.like(_escape_like(needle) + "%", escape="\\"))
    common = db.scalar(select(func.count()).select_from(matches.limit(NAME_LOOKUP_LIMIT).subquery()))
    if common >= NAME_LOOKUP_LIMIT:
        # Many calls match: walking the log newest first finds a page of them quickly.
        return key.like(_escape_like(needle) + "%", escape="\\")
    # Few match: fetch them by the name index, so a rare name does not walk a million rows.
    return Call.id.in_(matches)


def _escape_like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def page(db: Session, query: Select, after: str | None) -> tuple[list[Call], str | None]:
    """One page, newest first, continuing after the cursor "<started_at iso>_<id>"; and the next cursor."""
    if after:
        try:
            stamp, _, ident = after.partition("_")
            when, last_id = datetime.fromisoformat(stamp), int(ident)
            # The bare `<=` bound lets the database seek into the index; the OR alone makes it scan from the top.
            query = query.where(Call.started_at <= when,
                                or_(Call.started_at < when, (Call.started_at == when) & (Call.id < last_id)))
        except ValueError:
            pass
    rows = db.scalars(query.order_by(Call.started_at.desc(), Call.id.desc()).limit(PAGE_SIZE + 1)).all()
    more = len(rows) > PAGE_SIZE
    rows = rows[:PAGE_SIZE]
    cursor = f"{rows[-1].started_at.isoformat()}_{rows[-1].id}" if more and rows else None
    return rows, cursor


# --- reports --------------------------------------------------------------------------------------


def _breakdowns(db: Session, dialect: str, in_range: tuple) -> tuple[Counter, Counter, Counter]:
    """Calls in the range by category, by outcome and by language."""
    columns = (Call.category, Call.outcome, Call.language)
    counters: tuple[Counter, Counter, Counter] = (Counter(), Counter(), Counter())
    if dialect == "sqlite":
        # SQLite answers each from its (column, started_at) index alone: 3 x ~15 ms for 3 months of a million.
        for column, counter in zip(columns, counters, strict=True):
            counter.update(dict(db.execute(select(column, func.count()).where(*in_range).group_by(column)).all()))
        return counters
    # PostgreSQL reads the table either way, so one pass (a few hundred groups) beats three: 165 ms vs 490 ms.
    for *keys, count in db.execute(select(*columns, func.count()).where(*in_range).group_by(*columns)):
        for key, counter in zip(keys, counters, strict=True):
            counter[key] += count
    return counters


def _by_hour(db: Session, dialect: str, in_range: tuple, zone: str) -> tuple[Counter, Counter, list, int]:
    """Calls per local day and week and the hour-of-week heat map, from one GROUP BY on the UTC hour."""
    bucket = hour_bucket(dialect, Call.started_at)
    hours = db.execute(select(bucket, func.count()).where(*in_range).group_by(bucket)).all()
    tz = ZoneInfo(zone)
    per_day: Counter[str] = Counter()
    per_week: Counter[str] = Counter()
    heat = [[0] * 24 for _ in range(7)]
    total = 0
    for hour, count in hours:
        local = local_hour(hour, tz)
        per_day[local.date().isoformat()] += count
        per_week[(local.date() - timedelta(days=local.weekday())).isoformat()] += count
        heat[local.weekday()][local.hour] += count
        total += count
    return per_day, per_week, heat, total


def _waits(db: Session, dialect: str, in_range: tuple) -> tuple[list[float], list[float]]:
    """Seconds to a specialist for calls answered live, and minutes to a completed callback."""
    live = [w for (w,) in db.execute(
        select(seconds_between(dialect, Call.started_at, Call.connected_at))
        .where(*in_range, Call.outcome == calls.BRIDGED, Call.connected_at.is_not(None))
    ) if w is not None]
    called_back = [w / 60 for (w,) in db.execute(
        select(seconds_between(dialect, CallbackRequest.created_at, CallbackRequest.completed_at)).join(Call)
        .where(*in_range, CallbackRequest.status == callbacks.COMPLETED)
    ) if w is not None]
    return live, called_back


def report(db: Session, start: date, end: date, zone: str) -> dict:
    """Everything the reports page charts, for calls that started in [start, end] (program time zone)."""
    dialect = db.get_bind().dialect.name
    since, until = local_midnight_utc(start, zone), local_midnight_utc(end + timedelta(days=1), zone)
    in_range = (Call.started_at >= since, Call.started_at < until)
    per_day, per_week, heat, total = _by_hour(db, dialect, in_range, zone)
    live_waits, callback_waits = _waits(db, dialect, in_range)
    by_category, by_outcome, by_language = _breakdowns(db, dialect, in_range)
    days = [(start + timedelta(days=n)).isoformat() for n in range((end - start).days + 1)]
    weeks = sorted(per_week)
    return {
        "total": total,
        "days": days,
        "per_day": [per_day.get(d, 0) for d in days],
        "weeks": weeks,
        "per_week": [per_week[w] for w in weeks],
        "by_category": {k or "not given": v for k, v in sorted(by_category.items(), key=lambda kv: -kv[1])},
        "by_outcome": {k: v for k, v in sorted(by_outcome.items(), key=lambda kv: -kv[1])},
        "by_language": {k: v for k, v in sorted(by_language.items(), key=lambda kv: -kv[1])},
        "how_handled": {
            "Answered live": by_outcome.get(calls.BRIDGED, 0),
            "Called back": by_outcome.get(calls.CALLBACK_COMPLETED, 0),
            "Waiting for a callback": by_outcome.get(calls.CALLBACK_QUEUED, 0),
            "Escalated to dispatch": by_outcome.get(calls.ESCALATED, 0),
            "Unreachable": by_outcome.get(calls.UNREACHABLE, 0),
            "Hung up": by_outcome.get(calls.ABANDONED, 0),
        },
        "live_median_s": percentile(live_waits, 50),
        "live_p90_s": percentile(live_waits, 90),
        "callback_median_min": percentile(callback_waits, 50),
        "callback_p90_min": percentile(callback_waits, 90),
        "heat": heat,
        "interpreter_minutes": conferences.interpreter_minutes(db, since, until),
    }


# --- case reports ---------------------------------------------------------------------------------

# Follow-up rows (callbacks.queue_follow_up) are the program calling out, not the caller calling again.
FOLLOW_UP_SID = "followup-%"


def case_report(db: Session, start: date, end: date, zone: str) -> dict:
    """The case figures for cases opened in [start, end] (program time zone), merged ones left out: four
    GROUP BY queries, whatever the number of calls."""
    dialect = db.get_bind().dialect.name
    since, until = local_midnight_utc(start, zone), local_midnight_utc(end + timedelta(days=1), zone)
    # IN, not != merged: two ranges of the (status, opened_at) index instead of a walk of every case.
    in_range = (Case.status.in_((cases.OPEN, cases.CLOSED)), Case.opened_at >= since, Case.opened_at < until)
    by_outcome: Counter[str] = Counter()
    closed_how: Counter[str] = Counter()
    for status, outcome, how, count in db.execute(
            select(Case.status, Case.outcome, Case.closed_how, func.count())
            .where(*in_range).group_by(Case.status, Case.outcome, Case.closed_how)):
        # A reopened case keeps its old outcome in the row; it is counted as open.
        by_outcome[outcome if status == cases.CLOSED else "open"] += count
        if status == cases.CLOSED:
            closed_how[how or "phone"] += count
    per_case = (select(Call.case_id, func.count().label("n")).join(Case, Case.id == Call.case_id)
                .where(*in_range, Call.call_sid.not_like(FOLLOW_UP_SID)).group_by(Call.case_id).subquery())
    with_calls, repeat, call_total = db.execute(
        select(func.count(), func.coalesce(func.sum(case((per_case.c.n > 1, 1), else_=0)), 0),
               func.coalesce(func.sum(per_case.c.n), 0))).one()
    first_visit = (select(Visit.case_id, func.min(Visit.starts_at).label("at")).join(Case, Case.id == Visit.case_id)
                   .where(*in_range, Visit.status != visits.CANCELLED).group_by(Visit.case_id).subquery())
    # Whole seconds: SQLite's julianday arithmetic is a float a few microseconds off.
    to_visit = sorted(round(s) / 3600 for (s,) in db.execute(
        select(seconds_between(dialect, Case.opened_at, first_visit.c.at))
        .join(first_visit, first_visit.c.case_id == Case.id)) if s is not None)
    per_specialist: dict[str, dict[str, int]] = {}
    for _, name, status, count in db.execute(
            select(Specialist.id, Specialist.name, Visit.status, func.count())
            .select_from(VisitMember).join(Visit, Visit.id == VisitMember.visit_id)
            .join(Specialist, Specialist.id == VisitMember.specialist_id).join(Case, Case.id == Visit.case_id)
            .where(*in_range, Visit.status != visits.CANCELLED).group_by(Specialist.id, Specialist.name, Visit.status)):
        row = per_specialist.setdefault(name, {"done": 0, "scheduled": 0, "total": 0})
        row["done" if status == visits.DONE else "scheduled"] += count
        row["total"] += count
    joined = call_total - with_calls
    return {
        "cases": sum(by_outcome.values()),
        "by_outcome": {k: v for k, v in sorted(by_outcome.items(), key=lambda kv: (-kv[1], kv[0]))},
        "closed_how": {"in_person": closed_how.get("in_person", 0), "phone": closed_how.get("phone", 0)},
        "cases_with_calls": with_calls,
        "repeat_cases": repeat,
        "repeat_case_share": repeat / with_calls if with_calls else None,
        "calls": call_total,
        "joined_calls": joined,
        "joined_call_share": joined / call_total if call_total else None,
        "visited_cases": len(to_visit),
        "to_visit_median_h": percentile(to_visit, 50),
        "to_visit_p90_h": percentile(to_visit, 90),
        "visits_per_specialist": dict(sorted(per_specialist.items(), key=lambda kv: (-kv[1]["total"], kv[0]))),
    }


CASE_OUTCOME_WORDS = {**cases.OUTCOMES, "open": "still open"}
CLOSED_HOW_WORDS = {"in_person": "in person", "phone": "by phone"}


def case_report_rows(data: dict, start: date, end: date) -> list[tuple[str, str, object]]:
    """The case report as (figure, item, value) rows, for the CSV download."""
    def share(value):
        return "" if value is None else f"{value:.3f}"

    def hours(value):
        return "" if value is None else f"{value:.1f}"

    rows: list[tuple[str, str, object]] = [("range", "start", start.isoformat()), ("range", "end", end.isoformat()),
                                           ("cases", "opened in range", data["cases"])]
    rows += [("cases by outcome", CASE_OUTCOME_WORDS.get(k, k), v) for k, v in data["by_outcome"].items()]
    rows += [("cases closed", CLOSED_HOW_WORDS[k], v) for k, v in data["closed_how"].items()]
    rows += [("repeat calls", "cases with calls", data["cases_with_calls"]),
             ("repeat calls", "cases with more than one call", data["repeat_cases"]),
             ("repeat calls", "share of cases with more than one call", share(data["repeat_case_share"])),
             ("repeat calls", "calls", data["calls"]),
             ("repeat calls", "calls that joined an existing case", data["joined_calls"]),
             ("repeat calls", "share of calls that joined an existing case", share(data["joined_call_share"])),
             ("first call to visit", "cases with a visit", data["visited_cases"]),
             ("first call to visit", "median hours", hours(data["to_visit_median_h"])),
             ("first call to visit", "90th percentile hours", hours(data["to_visit_p90_h"]))]
    rows += [("visits per specialist", name, counts["total"]) for name, counts in data["visits_per_specialist"].items()]
    return rows


# --- who took the calls: specialist levels and routing's preference (docs/routing.md) -----------------------------

LEVELS = (1, 2)


def level_report(db: Session, start: date, end: date, zone: str) -> dict:
    """Calls started in [start, end] that a specialist took (live or called back), by that specialist's level, and
    how many of the complex callers among them went to a specialist routing preferred: one GROUP BY."""
    since, until = local_midnight_utc(start, zone), local_midnight_utc(end + timedelta(days=1), zone)
    rows = db.execute(
        select(Call.specialist_level, Call.to_preferred, func.count())
        .where(Call.specialist_level.is_not(None), Call.started_at >= since, Call.started_at < until)
        .group_by(Call.specialist_level, Call.to_preferred)).all()
    levels = {level: {"taken": 0, "complex": 0, "to_preferred": 0} for level in LEVELS}
    for level, to_preferred, count in rows:
        row = levels.setdefault(level, {"taken": 0, "complex": 0, "to_preferred": 0})
        row["taken"] += count
        if to_preferred is not None:
            row["complex"] += count
            row["to_preferred"] += count if to_preferred else 0
    total = {key: sum(row[key] for row in levels.values()) for key in ("taken", "complex", "to_preferred")}
    return {"by_level": levels, "all": total,
            "preferred_share": total["to_preferred"] / total["complex"] if total["complex"] else None}


def level_report_rows(data: dict, start: date, end: date) -> list[tuple[str, str, object]]:
    """The level report as (figure, item, value) rows, for the CSV download."""
    rows: list[tuple[str, str, object]] = [("range", "start", start.isoformat()), ("range", "end", end.isoformat())]
    for level, row in data["by_level"].items():
        rows += [("calls taken by level", f"level {level}", row["taken"]),
                 ("complex callers by level", f"level {level}", row["complex"]),
                 ("to a preferred specialist by level", f"level {level}", row["to_preferred"])]
    share = data["preferred_share"]
    rows += [("calls taken", "all levels", data["all"]["taken"]),
             ("complex callers", "all levels", data["all"]["complex"]),
             ("to a preferred specialist", "all levels", data["all"]["to_preferred"]),
             ("to a preferred specialist", "share of complex callers", "" if share is None else f"{share:.3f}")]
    return rows
