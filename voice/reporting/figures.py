"""The figures a city council and evaluators ask for, each with the same figure for the period of the same length
just before and the percent change: service level, answer rate, abandonment, callbacks, where calls come from,
calls returned to 911 or police, case outcomes, referrals, people served, areas, and staffing.

Every figure is counted from the rows' own timestamps and codes (docs/reports.md defines each one and says which
evaluation measure it answers). A period is a few GROUP BY queries whatever its number of calls: one over the
calls with their hold and callback request that yields most figures, and one each for waits, people, areas,
cases, referrals, visits' calls for police, and shifts. "Inbound" calls are every call but the program's own
follow-up calls (source `follow_up`), which are the program calling out.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import and_, case, exists, func, or_, select
from sqlalchemy.orm import Session, aliased

from voice import phones
from voice.casework import cases, services, visits
from voice.clock import utcnow
from voice.line import callbacks, calls
from voice.models import Call, CallbackRequest, CaseEvent, Hold, Referral, Service, Shift, Visit
from voice.models import Case as CaseRow
from voice.reporting.areas import NOT_KNOWN, Areas
from voice.reporting.periods import (
    UTC,
    Period,
    for_reports,
    hour_bucket,
    local_hour,
    percent_change,
    percentile,
    seconds_between,
)

# A visit's team calling the program's dispatch line for safety writes this on the case (the visit safety ladder).
SAFETY_DISPATCH_EVENT = "safety_dispatch_called"
# How a call was answered, in the order the page shows them.
ANSWERS = {"live": "Answered live", "callback": "Called back", "returned_to_911": "Sent back to 911 first",
           "waiting": "Still waiting for a callback", "never": "Never answered"}
RETURN_WORDS = {calls.DANGER: "Danger at the greeting", calls.CALLER_ASKED: "The caller asked for 911",
                calls.NO_SAFETY_ANSWER: "No answer to the safety question",
                calls.HOLD_FAILED: "The hold failed (sent to a person at 911)",
                calls.SPECIALIST_TRANSFER: "The specialist transferred them", "other": "Other (before reasons were kept)"}
SOURCE_WORDS = {calls.FROM_911: "911 transfer", calls.HANDOFF: "Dispatcher's warm handoff",
                calls.PUBLIC: "The public line", calls.FOLLOW_UP: "The program's follow-up"}
OUTCOME_GROUPS = {"resolved_by_phone": "Resolved by phone", "resolved_in_person": "Resolved in person",
                  "referred": "Referred", "declined": "Declined", "no_contact": "No contact",
                  "no_further_action": "No further action", "open": "Still open"}
CALLBACK_WORDS = {"reached_first_try": "Reached on the first try", "reached_later": "Reached after more tries",
                  "unreachable": "Unreachable", "cancelled": "Cancelled", "open": "Still to call"}
WEEKDAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
SERVICE_LEVEL_SECONDS = (30, 60)
REPEAT_CALLS = 3


@dataclass
class Row:
    """One line of a figure: this period's value and the previous period's, with their shares when it has one."""

    key: str
    label: str
    unit: str
    value: float | None
    previous: float | None
    share: float | None = None
    previous_share: float | None = None
    # What the change compares: "value", or "share" when the share is the figure (a service level, a rate).
    measure: str = "value"

    @property
    def change(self) -> float | None:
        """Percent change on the previous period, of the share or the value as `measure` says."""
        if self.measure == "share":
            return percent_change(self.share, self.previous_share)
        return percent_change(self.value, self.previous)


@dataclass
class Section:
    key: str
    title: str
    rows: list[Row]
    note: str = ""


@dataclass
class AreaRow:
    area: str
    calls: int
    cases: int
    previous_calls: int
    previous_cases: int

    @property
    def change(self) -> float | None:
        return percent_change(self.calls, self.previous_calls)


@dataclass
class Tally:
    """The raw counts and values of one period, from which every figure's rows are made."""

    calls: int = 0
    inbound: int = 0
    by_source: Counter = field(default_factory=Counter)
    offered: int = 0
    within: Counter = field(default_factory=Counter)
    answers: Counter = field(default_factory=Counter)
    abandoned: Counter = field(default_factory=Counter)
    abandon_waits: dict[str, list[float]] = field(default_factory=lambda: {"before_hold": [], "during_hold": []})
    returned: Counter = field(default_factory=Counter)
    callbacks: Counter = field(default_factory=Counter)
    callback_waits: list[float] = field(default_factory=list)
    missed: int = 0
    # Missed calls by the UTC hour they started ("YYYY-MM-DD HH"), for the staffing heat table.
    missed_hours: Counter = field(default_factory=Counter)
    people: int = 0
    calls_from_people: int = 0
    frequent: int = 0
    outcomes: Counter = field(default_factory=Counter)
    referrals: Counter = field(default_factory=Counter)
    referred_calls: int = 0
    safety_dispatches: int = 0
    visits: int = 0
    areas: dict[str, list[int]] = field(default_factory=dict)
    specialist_hours: float = 0.0


@dataclass
class CouncilReport:
    period: Period
    previous: Period
    sections: list[Section]
    areas: list[AreaRow]
    area_kind: str
    # Missed calls by local weekday (rows, Monday first) and hour (columns), this period.
    missed_heat: list[list[int]]
    # By local hour of the day, this period: calls, missed calls, specialist-hours on shift.
    hours: list[tuple[int, int, int, float]]

    def section(self, key: str) -> Section:
        return next(section for section in self.sections if section.key == key)


def _flag(condition):
    return case((condition, 1), else_=0)


def _inbound():
    return Call.source != calls.FOLLOW_UP


def _grouped(db: Session, inner) -> list:
    """GROUP BY every column of `inner` (a subquery), with a count: grouping a subquery's columns, not the
    expressions, keeps PostgreSQL from seeing two copies of an expression with its own parameters."""
    sub = inner.subquery()
    return db.execute(select(*sub.c, func.count().label("n")).group_by(*sub.c)).all()


# --- one period ---------------------------------------------------------------------------------------------


def tally(db: Session, period: Period, config: Mapping, areas: Areas, now: datetime | None = None) -> Tally:
    """Every count of one period."""
    now = now or utcnow()
    dialect = db.get_bind().dialect.name
    t = Tally()
    _calls(db, dialect, period, t)
    _abandoned(db, dialect, period, t)
    _callbacks(db, dialect, period, config, now, t)
    _people(db, period, config, t)
    _areas(db, period, areas, t)
    _outcomes(db, period, t)
    _referrals(db, period, t)
    _safety(db, period, t)
    t.specialist_hours = sum(hours for _, hours in _shift_hours(db, period, now))
    return t


def _calls(db: Session, dialect: str, period: Period, t: Tally) -> None:
    """The counts that need only the calls' own columns: one pass, one row of sums (no GROUP BY to sort)."""
    inbound = _inbound()
    connected = Call.connected_at.is_not(None)
    still_live = and_(Call.outcome.in_(calls.OPEN_OUTCOMES), Call.ended_at.is_(None))
    escalated = Call.outcome == calls.ESCALATED
    offered = and_(inbound, ~still_live, ~and_(escalated, ~connected))
    wait = seconds_between(dialect, Call.started_at, Call.connected_at)
    # The same rule as answer_of, for a whole period at once (the open-data export applies answer_of row by row).
    answered = {
        "callback": and_(inbound, Call.outcome == calls.CALLBACK_COMPLETED),
        "live": and_(inbound, Call.outcome != calls.CALLBACK_COMPLETED, connected),
        "returned_to_911": and_(inbound, escalated, ~connected),
        "waiting": and_(inbound, ~connected, Call.outcome.not_in((calls.CALLBACK_COMPLETED, calls.ESCALATED)),
                        or_(Call.outcome == calls.CALLBACK_QUEUED, still_live)),
    }
    sums = {"inbound": inbound, "offered": offered, "abandoned": and_(inbound, Call.outcome == calls.ABANDONED),
            **{f"within_{s}": and_(offered, wait <= s) for s in SERVICE_LEVEL_SECONDS},
            **{f"answer_{key}": condition for key, condition in answered.items()}}
    row = db.execute(select(*(func.coalesce(func.sum(_flag(condition)), 0).label(name)
                              for name, condition in sums.items()))
                     .where(*period.holds(Call.started_at))).one()._mapping
    t.inbound, t.offered = row["inbound"], row["offered"]
    for seconds in SERVICE_LEVEL_SECONDS:
        t.within[seconds] = row[f"within_{seconds}"]
    for key in answered:
        t.answers[key] = row[f"answer_{key}"]
    t.answers["never"] = t.inbound - sum(t.answers.values())
    t.missed += row["abandoned"]
    # Two counts the database answers from an index of their own: calls by source (source, started_at), and the
    # few calls sent back to 911 by reason (outcome, started_at).
    for source, n in db.execute(select(Call.source, func.count()).where(*period.holds(Call.started_at))
                                .group_by(Call.source)):
        t.calls += n
        t.by_source[source] += n
    for code, n in db.execute(select(Call.escalation_reason, func.count())
                              .where(*period.holds(Call.started_at), escalated, inbound)
                              .group_by(Call.escalation_reason)):
        t.returned[code if code in calls.RETURN_REASONS else "other"] += n


def answer_of(outcome: str, connected: int, still_live: bool) -> str:
    """How a call was answered: one of ANSWERS."""
    if outcome == calls.CALLBACK_COMPLETED:
        return "callback"
    if connected:
        return "live"
    if outcome == calls.ESCALATED:
        return "returned_to_911"
    if outcome == calls.CALLBACK_QUEUED or still_live:
        return "waiting"
    return "never"


def callback_state(status: str, first_try: int) -> str:
    """Where a callback request stands: one of CALLBACK_WORDS."""
    if status == callbacks.COMPLETED:
        return "reached_first_try" if first_try else "reached_later"
    if status in (callbacks.UNREACHABLE, callbacks.CANCELLED):
        return status
    return "open"


def _abandoned(db: Session, dialect: str, period: Period, t: Tally) -> None:
    """Callers who hung up before reaching anyone: before or while holding, how long they waited, and when."""
    for hour, seconds, enqueued in db.execute(
            select(hour_bucket(dialect, Call.started_at), seconds_between(dialect, Call.started_at, Call.ended_at),
                   Hold.enqueued_at.is_not(None))
            .outerjoin(Hold, Hold.call_id == Call.id)
            .where(*period.holds(Call.started_at), _inbound(), Call.outcome == calls.ABANDONED)):
        part = "during_hold" if enqueued else "before_hold"
        t.abandoned[part] += 1
        if seconds is not None:
            # Whole seconds: SQLite's julianday arithmetic is a float a few microseconds off.
            t.abandon_waits[part].append(round(seconds))
        t.missed_hours[hour] += 1


def _callbacks(db: Session, dialect: str, period: Period, config: Mapping, now: datetime, t: Tally) -> None:
    """Each callback request of the period's calls: where it stands, how long it took, and whether it was missed
    (it waited, or has waited so far, more than HOLD_MAX_MINUTES when the caller had not chosen a later window)."""
    request = CallbackRequest
    waited = seconds_between(dialect, request.created_at, func.coalesce(request.completed_at, now))
    late_after = config["HOLD_MAX_MINUTES"] * 60
    for hour, status, attempts, window, seconds in db.execute(
            select(hour_bucket(dialect, Call.started_at), request.status, request.attempts, request.window, waited)
            .select_from(request).join(Call, Call.id == request.call_id)
            .where(*period.holds(Call.started_at), _inbound())):
        t.callbacks[callback_state(status, attempts == 1)] += 1
        if status == callbacks.COMPLETED and seconds is not None:
            t.callback_waits.append(round(seconds) / 60)
        if seconds is not None and seconds > late_after and window not in callbacks.WINDOW_HOURS:
            t.missed += 1
            t.missed_hours[hour] += 1
    t.callback_waits.sort()


def caller_numbers_only(column, config: Mapping):
    """SQL for `phones.is_caller_number` on a column of stored caller IDs (a test keeps the two in step)."""
    return and_(column.like("+%"), func.length(column).between(9, 16),
                column.not_in(sorted(phones.not_caller_numbers(config))))


def _people(db: Session, period: Period, config: Mapping, t: Tally) -> None:
    """Unique callers by number (withheld IDs and the 911 center's own lines left out) and their calls."""
    per_person = (select(Call.from_number, func.count().label("n"))
                  .where(*period.holds(Call.started_at), _inbound(), caller_numbers_only(Call.from_number, config))
                  .group_by(Call.from_number).subquery())
    people, their_calls, frequent = db.execute(select(
        func.count(), func.coalesce(func.sum(per_person.c.n), 0),
        func.coalesce(func.sum(case((per_person.c.n >= REPEAT_CALLS, 1), else_=0)), 0))).one()
    t.people, t.calls_from_people, t.frequent = people, int(their_calls), int(frequent)


def _areas(db: Session, period: Period, areas: Areas, t: Tally) -> None:
    """Calls by area, and cases by the area of the call that opened them (the call that started when it opened)."""
    opened = _flag(and_(CaseRow.opened_at == Call.started_at, CaseRow.status != cases.MERGED))
    inner = (select(Call.zip_code, Call.street, opened.label("opened"))
             .outerjoin(CaseRow, CaseRow.id == Call.case_id).where(*period.holds(Call.started_at), _inbound()))
    for zip_code, street, was_opened, n in _grouped(db, inner):
        counts = t.areas.setdefault(areas.area(zip_code, street) or NOT_KNOWN, [0, 0])
        counts[0] += n
        counts[1] += n * was_opened


def outcome_group(status: str, outcome: str | None, closed_how: str | None, reached: bool) -> str:
    """How a case ended, in the council's words (OUTCOME_GROUPS)."""
    if status != cases.CLOSED:
        # Nobody has talked with the caller yet (every call unanswered, no visit done): no contact, until someone does.
        return "open" if reached else "no_contact"
    if outcome in ("referred", "declined", "no_further_action"):
        return outcome
    if outcome == "no_one_home":
        return "no_contact"
    return "resolved_in_person" if closed_how == "in_person" else "resolved_by_phone"


def reached_flag():
    """SQL, 1 or 0: someone talked with an open case's caller (a call reached a specialist, or a visit was done);
    1 for a closed case, whose outcome says what happened (see `outcome_group`)."""
    # Its own alias of calls, so it is not correlated with a query that reads calls itself.
    any_call = aliased(Call)
    reached = (exists().where(any_call.case_id == CaseRow.id, any_call.connected_at.is_not(None))
               | exists().where(Visit.case_id == CaseRow.id, Visit.status == visits.DONE))
    # Only an open case is looked into: the CASE stops there for the others.
    return case((CaseRow.status == cases.OPEN, _flag(reached)), else_=1)


def _outcomes(db: Session, period: Period, t: Tally) -> None:
    inner = (select(CaseRow.status, CaseRow.outcome, CaseRow.closed_how, reached_flag().label("reached"))
             .where(*period.holds(CaseRow.opened_at), CaseRow.status != cases.MERGED))
    for status, outcome, how, reached, n in _grouped(db, inner):
        t.outcomes[outcome_group(status, outcome, how, bool(reached))] += n


def _referrals(db: Session, period: Period, t: Tally) -> None:
    """Referrals given on the period's calls, read from the referrals (few) rather than the calls (many)."""
    referred: set[int] = set()
    for kind, accepted, call_id in db.execute(
            select(Service.kind, Referral.accepted, Referral.call_id).select_from(Referral)
            .join(Service, Service.id == Referral.service_id).join(Call, Call.id == Referral.call_id)
            .where(*period.holds(Call.started_at))):
        t.referrals[(kind, bool(accepted))] += 1
        referred.add(call_id)
    t.referred_calls = len(referred)


def _safety(db: Session, period: Period, t: Tally) -> None:
    t.safety_dispatches = db.scalar(select(func.count()).select_from(CaseEvent).where(
        CaseEvent.kind == SAFETY_DISPATCH_EVENT, *period.holds(CaseEvent.at))) or 0
    t.visits = db.scalar(select(func.count()).select_from(Visit).where(
        Visit.status != visits.CANCELLED, *period.holds(Visit.starts_at))) or 0


def _shift_hours(db: Session, period: Period, now: datetime) -> Iterable[tuple[datetime, float]]:
    """(local start of each hour, specialist-hours on shift in it) for every slice of a shift in the period."""
    until = min(period.until, now)
    zone = ZoneInfo(period.zone)
    for started, ended in db.execute(select(Shift.started_at, Shift.ended_at).where(
            Shift.started_at < until, func.coalesce(Shift.ended_at, now) > period.since)):
        start, end = max(started, period.since), min(ended or now, until)
        while start < end:
            edge = min(start.replace(minute=0, second=0, microsecond=0) + timedelta(hours=1), end)
            yield start.replace(tzinfo=UTC).astimezone(zone), (edge - start).total_seconds() / 3600
            start = edge


# --- the report -------------------------------------------------------------------------------------------


def council_report(db: Session, period: Period, config: Mapping, areas: Areas,
                   now: datetime | None = None) -> CouncilReport:
    """Every figure for `period`, each with the period of the same length before it."""
    now = now or utcnow()
    for_reports(db)
    previous = period.previous()
    this, last = tally(db, period, config, areas, now), tally(db, previous, config, areas, now)
    heat, hours = _staffing(db, period, this.missed_hours, now)
    return CouncilReport(period, previous, _sections(this, last, config), _area_rows(this, last), areas.kind,
                         heat, hours)


def _share(part: float, whole: float) -> float | None:
    return part / whole if whole else None


def _counted(key: str, label: str, unit: str, this: float, last: float, this_whole: float,
             last_whole: float, measure: str = "share") -> Row:
    return Row(key, label, unit, this, last, _share(this, this_whole), _share(last, last_whole), measure)


def _sections(this: Tally, last: Tally, config: Mapping) -> list[Section]:
    def breakdown(words: Mapping[str, str], pick, whole, unit="calls", keys: Iterable[str] | None = None,
                  measure="share") -> list[Row]:
        return [_counted(key, words[key], unit, pick(this)[key], pick(last)[key], whole(this), whole(last), measure)
                for key in (keys or words)]

    service = [Row("offered", "Calls offered (not sent back to 911 first)", "calls", this.offered, last.offered)]
    service += [_counted(f"within_{s}s", f"Talked with a person within {s} s", "calls", this.within[s],
                         last.within[s], this.offered, last.offered) for s in SERVICE_LEVEL_SECONDS]
    abandoned_all = sum(this.abandoned.values()), sum(last.abandoned.values())
    this_waits = this.abandon_waits["before_hold"] + this.abandon_waits["during_hold"]
    last_waits = last.abandon_waits["before_hold"] + last.abandon_waits["during_hold"]
    abandonment = [
        _counted("abandoned", "Hung up before reaching anyone", "calls", *abandoned_all, this.inbound, last.inbound),
        _counted("before_hold", "…before holding", "calls", this.abandoned["before_hold"],
                 last.abandoned["before_hold"], this.inbound, last.inbound),
        _counted("during_hold", "…while holding", "calls", this.abandoned["during_hold"],
                 last.abandoned["during_hold"], this.inbound, last.inbound),
        Row("median_wait_s", "Median wait before hanging up", "seconds", percentile(sorted(this_waits), 50),
            percentile(sorted(last_waits), 50)),
        Row("median_wait_before_hold_s", "…before holding", "seconds",
            percentile(sorted(this.abandon_waits["before_hold"]), 50),
            percentile(sorted(last.abandon_waits["before_hold"]), 50)),
        Row("median_wait_during_hold_s", "…while holding", "seconds",
            percentile(sorted(this.abandon_waits["during_hold"]), 50),
            percentile(sorted(last.abandon_waits["during_hold"]), 50)),
    ]
    requests = sum(this.callbacks.values()), sum(last.callbacks.values())
    callback_rows = [Row("requests", "Callback requests", "calls", *requests)]
    callback_rows += breakdown(CALLBACK_WORDS, lambda t: t.callbacks, lambda t: sum(t.callbacks.values()))
    callback_rows += [Row("wait_p50_min", "Request to reaching the caller, median", "minutes",
                          percentile(this.callback_waits, 50), percentile(last.callback_waits, 50)),
                      Row("wait_p90_min", "Request to reaching the caller, 90th percentile", "minutes",
                          percentile(this.callback_waits, 90), percentile(last.callback_waits, 90))]
    sources = [key for key in SOURCE_WORDS
               if key != calls.HANDOFF or config["HANDOFF_NUMBER"] or this.by_source[key] or last.by_source[key]]
    returned = sum(this.returned.values()), sum(last.returned.values())
    return_keys = [*calls.RETURN_REASONS] + (["other"] if this.returned["other"] or last.returned["other"] else [])
    returned_rows = [_counted("calls", "Calls sent back to 911", "calls", *returned, this.inbound, last.inbound)]
    returned_rows += breakdown(RETURN_WORDS, lambda t: t.returned, lambda t: t.inbound, keys=return_keys)
    returned_rows.append(_counted("safety_dispatch", "A visit's team called for police", "visits",
                                  this.safety_dispatches, last.safety_dispatches, this.visits, last.visits))
    cases_opened = sum(this.outcomes.values()), sum(last.outcomes.values())
    given = sum(this.referrals.values()), sum(last.referrals.values())
    accepted = (sum(n for (_, ok), n in this.referrals.items() if ok),
                sum(n for (_, ok), n in last.referrals.items() if ok))
    referral_rows = [Row("given", "Referrals given", "referrals", *given),
                     _counted("accepted", "…accepted", "referrals", *accepted, *given),
                     _counted("declined", "…declined", "referrals", given[0] - accepted[0], given[1] - accepted[1],
                              *given),
                     _counted("calls", "Calls with a referral", "calls", this.referred_calls, last.referred_calls,
                              this.inbound, last.inbound)]
    for kind, words in services.KINDS.items():
        kind_given = (this.referrals[(kind, True)] + this.referrals[(kind, False)],
                      last.referrals[(kind, True)] + last.referrals[(kind, False)])
        if any(kind_given):
            referral_rows.append(_counted(f"kind_{kind}", f"{words}: given", "referrals", *kind_given, *given,
                                          measure="value"))
            referral_rows.append(_counted(f"kind_{kind}_accepted", f"{words}: accepted", "referrals",
                                          this.referrals[(kind, True)], last.referrals[(kind, True)], *kind_given))
    per_person = (_share(this.calls_from_people, this.people), _share(last.calls_from_people, last.people))
    hours = this.specialist_hours, last.specialist_hours
    return [
        Section("service_level", "Service level", service,
                "Share of calls offered in which the caller talked with a specialist within 30 s and 60 s of the "
                "call's start."),
        Section("answer", "Answer rate", breakdown(ANSWERS, lambda t: t.answers, lambda t: t.inbound),
                "Every call to the line (the program's own follow-up calls left out)."),
        Section("abandonment", "Abandonment", abandonment,
                "Callers who hung up before reaching anyone; holding means in the queue after the kind of problem."),
        Section("callbacks", "Callbacks", callback_rows, "Callback requests of the calls in the period."),
        Section("sources", "Where calls come from",
                breakdown(SOURCE_WORDS, lambda t: t.by_source, lambda t: t.calls, keys=sources, measure="value"),
                "Every call, by the number it reached (PSAP_NUMBERS, HANDOFF_NUMBER, PUBLIC_LINE_NUMBERS)."),
        Section("returned", "Returned to 911 or police", returned_rows,
                "Shares of calls to the line; a visit's call for police is a share of the visits in the period."),
        Section("outcomes", "Case outcomes",
                [Row("cases", "Cases opened", "cases", *cases_opened)]
                + breakdown(OUTCOME_GROUPS, lambda t: t.outcomes, lambda t: sum(t.outcomes.values()), "cases"),
                "Cases opened in the period, by how they ended so far."),
        Section("referrals", "Referrals", referral_rows, "Referrals given on the period's calls."),
        Section("people", "People", [
            Row("people", "Unique callers (by number)", "people", this.people, last.people),
            Row("calls_per_person", "Calls per person", "ratio", *per_person),
            _counted("frequent", f"People with {REPEAT_CALLS} or more calls", "people", this.frequent, last.frequent,
                     this.people, last.people),
            _counted("withheld", "Calls with no caller number (withheld, or from 911's own lines)", "calls",
                     this.inbound - this.calls_from_people, last.inbound - last.calls_from_people,
                     this.inbound, last.inbound)],
            "Callers told apart by the number they called from."),
        Section("staffing", "Staffing", [
            _counted("missed", "Missed calls (hung up, or a callback later than HOLD_MAX_MINUTES)", "calls",
                     this.missed, last.missed, this.inbound, last.inbound),
            Row("specialist_hours", "Specialist-hours on shift", "hours", *hours),
            Row("calls_per_specialist_hour", "Calls per specialist-hour", "ratio",
                _share(this.inbound, hours[0]), _share(last.inbound, hours[1]))],
            f"Missed: callers who hung up, and callbacks that waited more than {config['HOLD_MAX_MINUTES']} minutes "
            "when the caller had not chosen a later time."),
    ]


def _area_rows(this: Tally, last: Tally) -> list[AreaRow]:
    names = set(this.areas) | set(last.areas)
    rows = [AreaRow(name, *this.areas.get(name, [0, 0]), *last.areas.get(name, [0, 0])) for name in names]
    # Busiest first; "not known" last, whatever its count.
    return sorted(rows, key=lambda row: (row.area == NOT_KNOWN, -row.calls, -row.previous_calls, row.area))


def _staffing(db: Session, period: Period, missed: Counter, now: datetime) -> tuple[list[list[int]], list]:
    """Missed calls by local weekday and hour; calls, missed calls and specialist-hours by local hour of the day.
    `missed` counts the period's missed calls by UTC hour (from its tally)."""
    dialect = db.get_bind().dialect.name
    zone = ZoneInfo(period.zone)
    bucket = hour_bucket(dialect, Call.started_at)
    heat = [[0] * 24 for _ in range(7)]
    by_hour = [[0, 0, 0.0] for _ in range(24)]

    for hour, n in db.execute(select(bucket, func.count()).where(*period.holds(Call.started_at), _inbound())
                              .group_by(bucket)):
        by_hour[local_hour(hour, zone).hour][0] += n
    for hour, n in missed.items():
        moment = local_hour(hour, zone)
        by_hour[moment.hour][1] += n
        heat[moment.weekday()][moment.hour] += n
    for start, hours in _shift_hours(db, period, now):
        by_hour[start.hour][2] += hours
    return heat, [(hour, calls_in, missed_in, round(hours, 2)) for hour, (calls_in, missed_in, hours)
                  in enumerate(by_hour)]


# --- for the page's charts and the CSV -------------------------------------------------------------------------

# Rows that are a total of the others (or counted in visits, not calls) are in the tables, not the bar charts.
NOT_CHARTED = {"returned": {"calls", "safety_dispatch"}, "outcomes": {"cases"}}
CHARTED = ("answer", "sources", "returned", "outcomes")


def chart_data(report: CouncilReport) -> dict:
    """What the page's charts draw, as plain lists: each is a picture of a table on the page."""
    charts = {}
    for key in CHARTED:
        shown = [row for row in report.section(key).rows if row.key not in NOT_CHARTED.get(key, ())]
        charts[key] = {"labels": [row.label for row in shown], "this": [row.value for row in shown],
                       "previous": [row.previous for row in shown]}
    charts["areas"] = {"labels": [row.area for row in report.areas], "this": [row.calls for row in report.areas],
                       "previous": [row.previous_calls for row in report.areas],
                       "cases": [row.cases for row in report.areas]}
    charts["hours"] = {"labels": [f"{hour:02d}" for hour, *_ in report.hours],
                       "calls": [row[1] for row in report.hours], "missed": [row[2] for row in report.hours],
                       "specialist_hours": [row[3] for row in report.hours]}
    return charts



CSV_COLUMNS = ("figure", "item", "unit", "value", "share", "previous", "previous_share", "change_percent",
               "change_of")


def report_rows(report: CouncilReport) -> Iterable[tuple]:
    """The report as CSV rows (CSV_COLUMNS): every figure, the areas, the staffing hours and the missed heat."""
    def number(value) -> str:
        if value is None:
            return ""
        return str(value) if isinstance(value, int) else f"{value:.3f}".rstrip("0").rstrip(".")

    yield ("period", "this", "dates", str(report.period), "", str(report.previous), "", "", "")
    for section in report.sections:
        for row in section.rows:
            yield (section.title, row.label, row.unit, number(row.value), number(row.share), number(row.previous),
                   number(row.previous_share), number(row.change), row.measure)
    for row in report.areas:
        yield (f"calls by {report.area_kind}", row.area, "calls", row.calls, "", row.previous_calls, "",
               number(row.change), "value")
        yield (f"cases by {report.area_kind}", row.area, "cases", row.cases, "", row.previous_cases, "",
               number(percent_change(row.cases, row.previous_cases)), "value")
    for hour, calls_in, missed_in, hours in report.hours:
        yield ("staffing by hour", f"{hour:02d}:00", "calls", calls_in, "", "", "", "", "")
        yield ("staffing by hour", f"{hour:02d}:00", "missed calls", missed_in, "", "", "", "", "")
        yield ("staffing by hour", f"{hour:02d}:00", "specialist-hours", number(hours), "", "", "", "", "")
    for day, row in zip(WEEKDAYS, report.missed_heat, strict=True):
        for hour, count in enumerate(row):
            yield ("missed calls by weekday and hour", f"{day} {hour:02d}:00", "calls", count, "", "", "", "", "")
