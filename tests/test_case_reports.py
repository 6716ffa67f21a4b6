"""The case reports: each figure for a known set of cases, calls and visits; the CSV and who may download it."""

from __future__ import annotations

import csv
import io
from datetime import date, datetime, timedelta

import pytest

from tests.support import PASSWORD, login
from voice.dashboard import queries
from voice.dashboard.auth import create_user
from voice.line import specialists
from voice.models import AuditEntry, Call, Case, Visit, VisitMember

ZONE = "America/New_York"
NOVEMBER = (date(2026, 11, 1), date(2026, 11, 30))


@pytest.fixture
def casework(app):
    """Seven cases, five of them opened in November 2026 (New York time) and not merged. Times are naive UTC."""
    from sqlalchemy.orm import Session

    db = Session(app.extensions["db"].engine, expire_on_commit=False)
    ana = specialists.add_specialist(db, "Ana Ruiz", "+19375550301", ["en"])
    ben = specialists.add_specialist(db, "Ben Ode", "+19375550302", ["en"])
    cy = specialists.add_specialist(db, "=Cy Hall", "+19375550303", ["en"])  # a name a spreadsheet would run
    db.flush()
    create_user(db, "coord@city.gov", PASSWORD, "coordinator")
    create_user(db, "ana@city.gov", PASSWORD, "specialist", ana.id)
    sids = iter(range(1000))

    def new_case(opened: datetime, calls: int, status="open", outcome=None, how=None) -> Case:
        case = Case(opened_at=opened, status=status, outcome=outcome, closed_how=how)
        db.add(case)
        db.flush()
        for n in range(calls):
            db.add(Call(call_sid=f"CA{next(sids):032d}", from_number="+19375550123", case_id=case.id,
                        started_at=opened + timedelta(days=n), outcome="bridged"))
        return case

    def visit(case: Case, starts: datetime, status: str, team: list) -> None:
        row = Visit(case_id=case.id, starts_at=starts, ends_at=starts + timedelta(hours=1), address="1 Main St",
                    status=status)
        row.team = [VisitMember(specialist_id=s.id) for s in team]
        db.add(row)

    a = new_case(datetime(2026, 11, 2, 14), 3, "closed", "agreement_reached", "in_person")
    # A follow-up is the program calling out, not a repeat call.
    db.add(Call(call_sid="followup-1-abc", from_number="+19375550123", case_id=a.id,
                started_at=datetime(2026, 11, 9), outcome="callback_queued"))
    visit(a, datetime(2026, 11, 4, 14), "done", [ana, ben])  # 48 hours after the first call
    new_case(datetime(2026, 11, 3, 10), 1, "closed", "resolved_by_phone", "phone")
    c = new_case(datetime(2026, 11, 5, 9), 2)
    visit(c, datetime(2026, 11, 5, 12), "cancelled", [ben, cy])  # a cancelled visit counts nowhere
    visit(c, datetime(2026, 11, 6, 9), "scheduled", [ana, cy])  # 24 hours
    d = new_case(datetime(2026, 11, 10, 12), 1, "closed", "resolved", "in_person")
    visit(d, datetime(2026, 11, 20, 12), "done", [ben, cy])  # 240 hours: the first visit is the one timed
    visit(d, datetime(2026, 11, 25, 12), "done", [ana, ben])
    # Reopened: the old outcome stays in the row, but the case is open.
    new_case(datetime(2026, 11, 12, 8), 1, "open", "declined", None)
    # 23:00 on October 31 in New York: outside the range.
    early = new_case(datetime(2026, 11, 1, 3), 2, "closed", "referred", "phone")
    visit(early, datetime(2026, 11, 2, 3), "done", [ana, ben])
    # Merged into another case: a pointer, not a case of its own.
    new_case(datetime(2026, 11, 2, 15), 0, "merged").merged_into_id = a.id
    db.commit()
    yield db
    db.close()


def test_each_case_figure_for_a_known_month(app, casework):
    data = queries.case_report(casework, *NOVEMBER, ZONE)
    assert data["cases"] == 5
    assert data["by_outcome"] == {"open": 2, "agreement_reached": 1, "resolved": 1, "resolved_by_phone": 1}
    assert data["closed_how"] == {"in_person": 2, "phone": 1}
    # Calls per case 3, 1, 2, 1, 1: two cases of five had more than one; three calls of eight joined a case.
    assert (data["cases_with_calls"], data["repeat_cases"], data["repeat_case_share"]) == (5, 2, 0.4)
    assert (data["calls"], data["joined_calls"], data["joined_call_share"]) == (8, 3, 0.375)
    # First call to first visit not cancelled: 24, 48 and 240 hours.
    assert data["visited_cases"] == 3
    assert data["to_visit_median_h"] == 48.0
    assert data["to_visit_p90_h"] == pytest.approx(201.6)
    assert data["visits_per_specialist"] == {
        "Ana Ruiz": {"done": 2, "scheduled": 1, "total": 3},
        "Ben Ode": {"done": 3, "scheduled": 0, "total": 3},
        "=Cy Hall": {"done": 1, "scheduled": 1, "total": 2},
    }


def test_the_range_is_read_in_the_program_time_zone(app, casework):
    data = queries.case_report(casework, date(2026, 10, 31), date(2026, 10, 31), ZONE)
    assert data["cases"] == 1 and data["by_outcome"] == {"referred": 1}
    assert data["closed_how"] == {"in_person": 0, "phone": 1}
    assert data["visited_cases"] == 1 and data["to_visit_median_h"] == 24.0
    empty = queries.case_report(casework, date(2025, 1, 1), date(2025, 1, 31), ZONE)
    assert empty["cases"] == 0 and empty["repeat_case_share"] is None and empty["to_visit_median_h"] is None
    assert empty["visits_per_specialist"] == {}


def test_the_reports_page_shows_the_case_figures_with_their_tables(client, casework):
    login(client, "coord@city.gov")
    html = client.get("/dashboard/reports?start=2026-11-01&end=2026-11-30").get_data(as_text=True)
    for text in ["Cases by outcome", "Cases closed in person and by phone", "Visits per specialist",
                 "agreement reached", "still open", "40%", "38%", "2.0 days", "=Cy Hall",
                 'id="case-data"', "/dashboard/reports/cases.csv?start=2026-11-01&amp;end=2026-11-30"]:
        assert text in html


def test_the_case_csv_has_every_figure_safe_for_a_spreadsheet_and_is_audited(client, casework):
    login(client, "coord@city.gov")
    response = client.get("/dashboard/reports/cases.csv?start=2026-11-01&end=2026-11-30")
    assert response.status_code == 200 and response.mimetype == "text/csv"
    assert 'filename="cases-2026-11-01-2026-11-30.csv"' in response.headers["Content-Disposition"]
    rows = list(csv.reader(io.StringIO(response.get_data(as_text=True))))
    assert rows == [
        ["figure", "item", "value"],
        ["range", "start", "2026-11-01"],
        ["range", "end", "2026-11-30"],
        ["cases", "opened in range", "5"],
        ["cases by outcome", "still open", "2"],
        ["cases by outcome", "agreement reached", "1"],
        ["cases by outcome", "resolved", "1"],
        ["cases by outcome", "resolved by phone", "1"],
        ["cases closed", "in person", "2"],
        ["cases closed", "by phone", "1"],
        ["repeat calls", "cases with calls", "5"],
        ["repeat calls", "cases with more than one call", "2"],
        ["repeat calls", "share of cases with more than one call", "0.400"],
        ["repeat calls", "calls", "8"],
        ["repeat calls", "calls that joined an existing case", "3"],
        ["repeat calls", "share of calls that joined an existing case", "0.375"],
        ["first call to visit", "cases with a visit", "3"],
        ["first call to visit", "median hours", "48.0"],
        ["first call to visit", "90th percentile hours", "201.6"],
        ["visits per specialist", "Ana Ruiz", "3"],
        ["visits per specialist", "Ben Ode", "3"],
        ["visits per specialist", "'=Cy Hall", "2"],
    ]
    audited = casework.query(AuditEntry).filter_by(action="export_case_report").one()
    assert audited.target == "2026-11-01..2026-11-30"


def test_a_specialist_cannot_download_the_case_figures(client, casework):
    login(client, "ana@city.gov")
    assert client.get("/dashboard/reports/cases.csv?start=2026-11-01&end=2026-11-30").status_code == 403
    assert casework.query(AuditEntry).filter_by(action="export_case_report").count() == 0
