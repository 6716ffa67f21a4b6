"""The council's figures on a seeded database: sixteen calls in ten days of November 2026 (New York time) and
four in the ten days before, each figure's value worked out by hand below from the rows as seeded."""

from __future__ import annotations

from collections import Counter
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from tests.support import fresh_app, settings
from voice import phones
from voice.line import specialists
from voice.models import Call, CallbackRequest, CaseEvent, Hold, Referral, Service, Shift, Visit
from voice.models import Case as CaseRow
from voice.reporting import figures, open_data
from voice.reporting.areas import Areas
from voice.reporting.periods import Period

ZONE = "America/New_York"
PSAP = "+19375550900"
HANDOFF = "+19375550999"
PERIOD = Period(date(2026, 11, 10), date(2026, 11, 19), ZONE)
NOW = datetime(2026, 11, 25, 12)
# Streets and ZIP codes to districts, as a program's DISTRICTS_CSV would give them.
DISTRICTS = (("salem avenue", "North"), ("45402", "Downtown"), ("Third Street", "Downtown"))


def local(day: int, hour: int, minute: int = 0, month: int = 11) -> datetime:
    """Naive UTC for a local time in New York in 2026."""
    moment = datetime(2026, month, day, hour, minute, tzinfo=ZoneInfo(ZONE))
    return moment.astimezone(ZoneInfo("UTC")).replace(tzinfo=None)


@pytest.fixture
def app(redis_url, database_url):
    with fresh_app(settings(redis_url, database_url, PSAP_NUMBERS=PSAP, HANDOFF_NUMBER=HANDOFF,
                            HOLD_MAX_MINUTES=10)) as app:
        yield app


@pytest.fixture
def seeded(app):
    db = Session(app.extensions["db"].engine, expire_on_commit=False)
    ana = specialists.add_specialist(db, "Ana Ruiz", "+19375550301", ["en"])
    ben = specialists.add_specialist(db, "Ben Ode", "+19375550302", ["en"])
    sids = iter(range(1000))

    def call(name, start, source="911", outcome="bridged", number="+19375550001", connected=None, ended=60,
             reason=None, zip_code=None, street=None, enqueued=False):
        """Call `name` (as the tests below call it): a specialist `connected` seconds after its start (None: never),
        ended `ended` seconds after (None: live)."""
        row = Call(call_sid=f"CA{next(sids):032d}", from_number=number, to_number="+19375550100", source=source,
                   started_at=start, outcome=outcome, escalation_reason=reason, zip_code=zip_code, street=street,
                   connected_at=start + timedelta(seconds=connected) if connected is not None else None,
                   ended_at=start + timedelta(seconds=ended) if ended is not None else None)
        db.add(row)
        db.flush()
        if enqueued:
            db.add(Hold(call_id=row.id, arrived_at=start, enqueued_at=start + timedelta(seconds=8), status="left"))
        return row

    def callback(row, status, attempts, minutes=None, window=None):
        """Requested a minute after the call started; completed (or given up) `minutes` after the request."""
        created = row.started_at + timedelta(seconds=60)
        done = created + timedelta(minutes=minutes) if minutes is not None else None
        db.add(CallbackRequest(call_id=row.id, callback_number=row.from_number, status=status, attempts=attempts,
                               created_at=created, arrived_at=row.started_at, due_at=created, window=window,
                               completed_at=done))
        if status == "completed":
            row.connected_at = done

    def case(opened_by, status="open", outcome=None, how=None, more=()):
        row = CaseRow(opened_at=opened_by.started_at, status=status, outcome=outcome, closed_how=how)
        db.add(row)
        db.flush()
        for member in (opened_by, *more):
            member.case_id = row.id
        return row

    # This period: Tuesday November 10 to Thursday November 19.
    c1 = call("c1", local(10, 9), connected=20, zip_code="45406", street="salem ave")
    c2 = call("c2", local(10, 9, 30), connected=45, enqueued=True, street="salem ave")
    c3 = call("c3", local(11, 10), source="public", connected=90, zip_code="45402", street="main st")
    call("c4", local(11, 14), outcome="escalated", reason="danger", number="+19375550002", street="e 3rd st")
    c5 = call("c5", local(12, 9, 15), outcome="escalated", reason="specialist_transfer", number="+19375550003",
              connected=25)
    c6 = call("c6", local(12, 18), outcome="abandoned", number="+266696687", ended=12, zip_code="45499",
              street="elm st")
    c7 = call("c7", local(13, 18, 30), outcome="abandoned", number="+19375550004", ended=200, enqueued=True)
    call("c8", local(13, 19), source="handoff", outcome="abandoned", number=PSAP, ended=100, enqueued=True)
    c9 = call("c9", local(16, 9), outcome="callback_completed", number="+19375550005")
    callback(c9, "completed", 1, minutes=30)
    c10 = call("c10", local(16, 9, 20), outcome="callback_completed", number="+19375550006")
    callback(c10, "completed", 3, minutes=150)
    c11 = call("c11", local(17, 22), outcome="unreachable", number="anonymous")
    callback(c11, "unreachable", 4, minutes=240)
    c12 = call("c12", local(18, 8), outcome="callback_queued", number="+19375550007")
    callback(c12, "pending", 0)
    c13 = call("c13", local(18, 8, 10), outcome="callback_queued", number="+19375550008")
    callback(c13, "scheduled", 0, window="evening")
    follow_up = call("c14", local(18, 12), source="follow_up", outcome="callback_completed")
    callback(follow_up, "completed", 1, minutes=5)
    call("c15", local(19, 23, 50), outcome="in_intake", number="+19375550009", ended=None)
    call("c16", local(19, 11), outcome="escalated", reason="caller_asked", number="+19375550002")
    # The ten days before: Saturday October 31 to Monday November 9.
    call("p1", local(2, 10), connected=10)
    call("p2", local(3, 10), outcome="abandoned", number="+19375550010", ended=30)
    call("p3", local(4, 10), outcome="escalated", reason="danger", number="+19375550011")
    call("p4", local(5, 10), source="public", connected=50, number="+19375550012")
    # Outside both: the day after the period.
    call("later", local(20, 9), connected=5)

    case(c1, "closed", "resolved_by_phone", "phone", more=(c2, c3))
    k2 = case(c5, "closed", "agreement_reached", "in_person")
    case(c6)  # open, nobody reached: no contact
    case(c9, "closed", "referred", "phone")
    case(c10, "closed", "declined", "phone")
    case(c7, "closed", "no_one_home", "in_person")
    k7 = case(c12)  # open, but a visit was done: someone reached them
    case(c11, "closed", "no_further_action", "phone")
    db.add(CaseRow(opened_at=local(15, 9), status="merged"))
    for starts, status, where in ((local(13, 10), "done", k2), (local(14, 10), "done", k7),
                                  (local(15, 10), "cancelled", k7), (local(3, 10), "done", k2)):
        db.add(Visit(case_id=where.id, starts_at=starts, ends_at=starts + timedelta(hours=1), address="1 Main St",
                     status=status))
    db.add(CaseEvent(case_id=k2.id, kind="safety_dispatch_called", at=local(13, 10, 20)))

    housing = Service(name="City Housing Help", kind="housing", phone="+19375550401")
    legal = Service(name="Legal Aid of the Valley", kind="legal_aid", phone="+19375550402")
    db.add_all([housing, legal])
    db.flush()
    db.add_all([Referral(call_id=c1.id, service_id=housing.id, accepted=True),
                Referral(call_id=c1.id, service_id=legal.id, accepted=False),
                Referral(call_id=c2.id, service_id=housing.id, accepted=True),
                Referral(call_id=c5.id, service_id=legal.id, accepted=True)])

    db.add_all([Shift(specialist_id=ana.id, started_at=local(10, 8), ended_at=local(10, 12)),
                Shift(specialist_id=ben.id, started_at=local(16, 8, 30), ended_at=local(16, 10)),
                Shift(specialist_id=ana.id, started_at=local(19, 22), ended_at=None),  # still on
                Shift(specialist_id=ben.id, started_at=local(9, 23), ended_at=local(10, 1)),  # began the day before
                Shift(specialist_id=ana.id, started_at=local(2, 9), ended_at=local(2, 11))])
    db.commit()
    yield db
    db.close()


@pytest.fixture
def report(app, seeded):
    return figures.council_report(seeded, PERIOD, app.config, Areas(DISTRICTS), now=NOW)


def rows(report, section: str) -> dict[str, figures.Row]:
    return {row.key: row for row in report.section(section).rows}


def test_service_level_counts_from_the_calls_own_timestamps(report):
    service = rows(report, "service_level")
    # 15 calls to the line (c14 is the program's follow-up); c15 is still in the intake; c4 and c16 went back to 911
    # before anyone answered: 12 offered. Answered within 30 s: c1 (20 s), c5 (25 s); within 60 s also c2 (45 s).
    assert (service["offered"].value, service["offered"].previous) == (12, 3)
    assert (service["within_30s"].value, service["within_30s"].share) == (2, pytest.approx(2 / 12))
    assert (service["within_60s"].value, service["within_60s"].share) == (3, 0.25)
    # The ten days before: 3 offered (p3 went back to 911), p1 in 10 s, p4 in 50 s.
    assert service["within_30s"].previous_share == pytest.approx(1 / 3)
    assert service["within_60s"].previous_share == pytest.approx(2 / 3)
    # The change is the share's: 1/6 against 1/3 is half.
    assert service["within_30s"].change == pytest.approx(-50)
    assert service["within_60s"].change == pytest.approx((0.25 - 2 / 3) / (2 / 3) * 100)


def test_answer_rate_live_by_callback_or_never(report):
    answer = rows(report, "answer")
    # Live: c1, c2, c3, c5. Called back: c9, c10. Sent to 911 first: c4, c16. Waiting: c12, c13, c15. Never: c6,
    # c7, c8, c11.
    assert {key: row.value for key, row in answer.items()} == {
        "live": 4, "callback": 2, "returned_to_911": 2, "waiting": 3, "never": 4}
    assert answer["live"].share == pytest.approx(4 / 15)
    assert {key: row.previous for key, row in answer.items()} == {
        "live": 2, "callback": 0, "returned_to_911": 1, "waiting": 0, "never": 1}


def test_abandonment_before_and_during_hold_and_the_wait_before_giving_up(report):
    gone = rows(report, "abandonment")
    assert (gone["abandoned"].value, gone["abandoned"].share) == (3, 0.2)
    assert (gone["before_hold"].value, gone["during_hold"].value) == (1, 2)
    # c6 hung up after 12 s before holding; c7 after 200 s and c8 after 100 s while holding.
    assert gone["median_wait_s"].value == 100
    assert gone["median_wait_before_hold_s"].value == 12
    assert gone["median_wait_during_hold_s"].value == 150
    assert (gone["abandoned"].previous, gone["median_wait_s"].previous) == (1, 30)


def test_callbacks_time_to_reach_first_try_and_unreachable(report):
    back = rows(report, "callbacks")
    # Requests of c9 (first try), c10 (third), c11 (unreachable), c12 (pending), c13 (scheduled); not c14's.
    assert back["requests"].value == 5
    assert (back["reached_first_try"].value, back["reached_first_try"].share) == (1, 0.2)
    assert back["reached_later"].value == 1
    assert (back["unreachable"].value, back["unreachable"].share) == (1, 0.2)
    assert (back["cancelled"].value, back["open"].value) == (0, 2)
    # 30 and 150 minutes from request to reaching the caller.
    assert back["wait_p50_min"].value == 90
    assert back["wait_p90_min"].value == pytest.approx(30 + 0.9 * 120)
    assert back["wait_p50_min"].previous is None and back["wait_p50_min"].change is None


def test_source_of_calls_counts_every_call(report):
    source = rows(report, "sources")
    assert {key: row.value for key, row in source.items()} == {"911": 13, "handoff": 1, "public": 1, "follow_up": 1}
    assert source["911"].share == pytest.approx(13 / 16)
    assert (source["911"].previous, source["public"].previous) == (3, 1)
    assert source["911"].change == pytest.approx((13 - 3) / 3 * 100)


def test_returned_to_911_or_police_by_reason(report):
    back = rows(report, "returned")
    assert (back["calls"].value, back["calls"].share) == (3, 0.2)
    assert (back["danger"].value, back["caller_asked"].value, back["specialist_transfer"].value) == (1, 1, 1)
    assert back["no_safety_answer"].value == 0 and "other" not in back
    # One call for police from a visit; two visits in the period (the cancelled one is not a visit).
    assert (back["safety_dispatch"].value, back["safety_dispatch"].share) == (1, 0.5)
    assert (back["danger"].previous, back["safety_dispatch"].previous) == (1, 0)


def test_case_outcomes(report):
    outcome = rows(report, "outcomes")
    assert outcome["cases"].value == 8  # the merged case is not a case
    assert {key: row.value for key, row in outcome.items() if key != "cases"} == {
        "resolved_by_phone": 1, "resolved_in_person": 1, "referred": 1, "declined": 1, "no_contact": 2,
        "no_further_action": 1, "open": 1}
    assert outcome["no_contact"].share == 0.25


def test_referrals_given_and_accepted(report):
    given = rows(report, "referrals")
    assert (given["given"].value, given["accepted"].value, given["declined"].value) == (4, 3, 1)
    assert given["accepted"].share == 0.75
    assert (given["calls"].value, given["calls"].share) == (3, 0.2)
    assert (given["kind_housing"].value, given["kind_housing_accepted"].value) == (2, 2)
    assert (given["kind_legal_aid"].value, given["kind_legal_aid_accepted"].value) == (2, 1)
    assert "kind_food" not in given


def test_people_by_number_leaving_out_withheld_and_911s_own_lines(report):
    people = rows(report, "people")
    # Numbers ...0001 (c1, c2, c3), ...0002 (c4, c16), and one call each from ...0003 to ...0009; c6 withheld,
    # c8 from the 911 center's own line, c11 "anonymous".
    assert people["people"].value == 9
    assert people["calls_per_person"].value == pytest.approx(12 / 9)
    assert people["frequent"].value == 1
    assert people["withheld"].value == 3
    assert (people["people"].previous, people["calls_per_person"].previous) == (4, 1.0)


def test_the_sql_filter_agrees_with_is_caller_number(app, seeded):
    values = ["+19375550123", "+266696687", "+7378742833", "+86282452253", "+8656696", "+2562533", "+464",
              "anonymous", "Restricted", "", PSAP, HANDOFF, "+19375550100", "+19375550911", "+4420", "+1937555012345678"]
    for n, number in enumerate(values):
        seeded.add(Call(call_sid=f"CAsql{n}", from_number=number, started_at=NOW))
    seeded.commit()
    kept = set(seeded.scalars(select(Call.from_number).where(
        Call.call_sid.like("CAsql%"), figures.caller_numbers_only(Call.from_number, app.config))))
    assert kept == {number for number in values if phones.is_caller_number(number, app.config)} == {"+19375550123"}


def test_calls_and_cases_by_district(report):
    by_area = {row.area: (row.calls, row.cases, row.previous_calls) for row in report.areas}
    # c1 and c2 on Salem Avenue: North. c3 in 45402 and c4 on E 3rd St (Third Street, whichever side): Downtown.
    # c1 opened its case; c3 joined one. The rest (c6's 45499 and Elm St are in no district) are not known.
    assert by_area == {"North": (2, 1, 0), "Downtown": (2, 0, 0), "not known": (11, 7, 4)}
    assert [row.area for row in report.areas][-1] == "not known"
    assert report.area_kind == "district"


def test_without_districts_the_area_is_the_zip_code(app, seeded):
    report = figures.council_report(seeded, PERIOD, app.config, Areas(()), now=NOW)
    by_area = {row.area: row.calls for row in report.areas}
    assert by_area == {"45406": 1, "45402": 1, "45499": 1, "not known": 12}
    assert report.area_kind == "ZIP code"


def test_staffing_missed_calls_by_weekday_and_hour_and_specialist_hours(report):
    staffing = rows(report, "staffing")
    # Hung up: c6, c7, c8. Callbacks later than 10 minutes: c9 (30 min), c10, c11, c12 (still waiting on the 25th);
    # c13 chose the evening, so its wait is not a miss.
    assert (staffing["missed"].value, staffing["missed"].previous) == (7, 1)
    heat = {(figures.WEEKDAYS[day], hour): n for day, row in enumerate(report.missed_heat)
            for hour, n in enumerate(row) if n}
    assert heat == {("Thu", 18): 1, ("Fri", 18): 1, ("Fri", 19): 1, ("Mon", 9): 2, ("Tue", 22): 1, ("Wed", 8): 1}
    # Ana 8-12 on the 10th, Ben 8:30-10 on the 16th, Ana from 22:00 on the 19th (on still, counted to the period's
    # end), Ben's hour after midnight on the 10th: 4 + 1.5 + 2 + 1. Before: Ana's 2 hours on the 2nd and Ben's hour
    # before midnight on the 9th.
    assert (staffing["specialist_hours"].value, staffing["specialist_hours"].previous) == (8.5, 3)
    assert staffing["calls_per_specialist_hour"].value == pytest.approx(15 / 8.5)
    by_hour = {hour: (calls_in, missed_in, hours) for hour, calls_in, missed_in, hours in report.hours
               if calls_in or hours}
    assert by_hour == {0: (0, 0, 1), 8: (2, 1, 1.5), 9: (5, 2, 2), 10: (1, 0, 1), 11: (1, 0, 1), 14: (1, 0, 0),
                       18: (2, 2, 0), 19: (1, 1, 0), 22: (1, 1, 1), 23: (1, 0, 1)}


def test_the_previous_period_is_as_long_and_ends_the_day_before():
    assert PERIOD.previous() == Period(date(2026, 10, 31), date(2026, 11, 9), ZONE)
    assert Period(date(2026, 2, 1), date(2026, 2, 28), ZONE).previous().start == date(2026, 1, 4)


def test_the_csv_rows_carry_every_figure_with_its_previous_and_change(report):
    lines = list(figures.report_rows(report))
    assert lines[0] == ("period", "this", "dates", "2026-11-10..2026-11-19", "", "2026-10-31..2026-11-09", "", "",
                        "")
    assert ("Service level", "Talked with a person within 30 s", "calls", "2", "0.167", "1", "0.333", "-50",
            "share") in lines
    assert ("Where calls come from", "911 transfer", "calls", "13", "0.812", "3", "0.75", "333.333", "value") in lines
    assert ("calls by district", "North", "calls", 2, "", 0, "", "", "value") in lines
    assert ("missed calls by weekday and hour", "Mon 09:00", "calls", 2, "", "", "", "", "") in lines


def test_the_open_data_rows_add_up_to_the_figures(app, seeded, report):
    """The figures count a period in SQL; the open-data export classes each call in Python: they agree."""
    rows = [row for row in open_data.rows(seeded, PERIOD, app.config, Areas(DISTRICTS)) if row["source"] != "follow_up"]
    assert Counter(row["answered"] for row in rows) == {key: row.value for key, row in rows_of(report, "answer")}
    assert Counter(row["abandoned"] for row in rows if row["abandoned"]) == {"before_hold": 1, "during_hold": 2}
    assert Counter(row["returned_to_911"] for row in rows if row["returned_to_911"]) == {
        key: row.value for key, row in rows_of(report, "returned") if key in ("danger", "caller_asked",
                                                                               "specialist_transfer")}
    assert Counter(row["callback"] for row in rows if row["callback"]) == {
        key: row.value for key, row in rows_of(report, "callbacks") if key in figures.CALLBACK_WORDS and row.value}


def rows_of(report, section: str):
    return [(row.key, row) for row in report.section(section).rows]
