"""The open-data export: no name, number, address or free text survives, even hidden in fields that should hold
codes; times are hours; an area shows only where it has enough calls; both exports are audited and streamed."""

from __future__ import annotations

import csv
import io
import re
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from tests.support import PASSWORD, fresh_app, login, settings
from voice.dashboard.auth import create_user
from voice.line import calls, specialists
from voice.models import AuditEntry, Call, CallbackRequest, Hold, Referral, Service
from voice.models import Case as CaseRow
from voice.reporting import dictionary, open_data
from voice.reporting.areas import Areas
from voice.reporting.periods import Period

ZONE = "America/New_York"
NAME = "Dana Whitfield"
NUMBER = "+19375550123"
ADDRESS = "400 West Third Street"
WORDS = "Her landlord Marcus Oyelaran shut off the heat"
# Every way the caller's words could be tucked into a field that should hold a code.
HOSTILE = [NAME, NUMBER, "937-555-0123", "(937) 555-0123", ADDRESS, WORDS, "Marcus", "Oyelaran", "Whitfield",
           "=HYPERLINK(\"http://evil.example\")", "CAD 9375550123", "dana@example.com"]


def local(day: int, hour: int, minute: int = 0) -> datetime:
    return datetime(2026, 11, day, hour, minute, tzinfo=ZoneInfo(ZONE)).astimezone(ZoneInfo("UTC")).replace(tzinfo=None)


@pytest.fixture
def app(redis_url, database_url, tmp_path):
    table = tmp_path / "districts.csv"
    table.write_text("street_or_zip,district\n45402,Downtown\nSalem Avenue,North\n")
    with fresh_app(settings(redis_url, database_url, DISTRICTS_CSV=str(table), OPEN_DATA_MIN_CALLS=3)) as app:
        yield app


@pytest.fixture
def hostile(app):
    """Calls whose every text field holds a caller's name, number, address or words; and some ordinary ones."""
    db = Session(app.extensions["db"].engine, expire_on_commit=False)
    ana = specialists.add_specialist(db, NAME, "+19375550301", ["en"])
    service = Service(name=f"{NAME}'s legal aid", kind="legal_aid", phone="+19375550401")
    db.add(service)
    create_user(db, "coord@city.gov", PASSWORD, "coordinator")
    create_user(db, "ana@city.gov", PASSWORD, "specialist", ana.id)
    db.flush()
    poison = iter(HOSTILE * 3)
    made = []
    for n in range(12):
        text = next(poison)
        started = local(10 + n // 4, 8 + n, 17)  # in order of n
        call = Call(call_sid=f"CA{n:032d}", from_number=NUMBER, to_number="+19375550100", started_at=started,
                    caller_name=NAME, location=ADDRESS, description=WORDS, callback_number=NUMBER,
                    outcome_reason=f"{NAME} said call {NUMBER}", disposition_notes=WORDS, incident_number=text[:40],
                    specialist_id=ana.id, connected_at=started + timedelta(seconds=40),
                    ended_at=started + timedelta(minutes=5),
                    # The coded fields: the first six hold a caller's text instead of a code.
                    source=text[:16] if n < 6 else "911", language=text[:8] if n < 6 else "es",
                    category=text[:32] if n < 6 else "noise", outcome=text[:24] if n < 6 else calls.BRIDGED,
                    escalation_reason=text[:24], disposition=text[:32], callback_window=text[:16],
                    zip_code=text[:10] if n < 4 else "45402", street=text[:80].lower())
        db.add(call)
        made.append(call)
    db.flush()
    db.add(Hold(call_id=made[0].id, arrived_at=made[0].started_at, enqueued_at=made[0].started_at,
                status="left", leave_reason=NAME[:16]))
    db.add(CallbackRequest(call_id=made[1].id, callback_number=NUMBER, status=NAME[:16], reason=WORDS[:300],
                           arrived_at=made[1].started_at, window=NAME[:16]))
    db.add(CallbackRequest(call_id=made[7].id, callback_number=NUMBER, status="completed", attempts=2,
                           arrived_at=made[7].started_at, completed_at=made[7].started_at + timedelta(hours=1)))
    case = CaseRow(opened_at=made[6].started_at, status="closed", outcome=NAME[:32], closed_how=NAME[:16],
                   incident_number=NUMBER, follow_up_note=WORDS[:300])
    db.add(case)
    db.flush()
    for call in made[6:9]:
        call.case_id = case.id
    made[10].outcome, made[10].escalation_reason, made[10].connected_at = calls.ESCALATED, calls.DANGER, None
    made[11].outcome, made[11].ended_at, made[11].connected_at = calls.ABANDONED, made[11].started_at + timedelta(
        seconds=75), None
    db.add_all([Referral(call_id=made[6].id, service_id=service.id, accepted=True)])
    db.commit()
    yield db
    db.close()


def exported(app, db) -> tuple[str, list[dict]]:
    text = "".join(open_data.csv_chunks(db, Period(date(2026, 11, 1), date(2026, 11, 30), ZONE), app.config,
                                        Areas(app.config["DISTRICTS_CSV"])))
    return text, list(csv.DictReader(io.StringIO(text)))


def test_no_name_number_address_or_free_text_survives_in_any_field(app, hostile):
    text, rows = exported(app, hostile)
    assert len(rows) == 12
    for secret in HOSTILE + ["Dana", "Marcus", "555", "0123", "third", "Third", "landlord", "legal aid", "@"]:
        assert secret not in text, secret
    # No run of digits as long as a phone number, nor a phone number's shape, anywhere.
    assert not re.search(r"\d{6,}", text)
    assert not re.search(r"\d{3}\D{0,2}\d{3}\D?\d{4}", text)
    # Every field holds only what the dictionary allows.
    assert list(rows[0]) == [field.name for field in dictionary.OPEN_DATA]
    for field in dictionary.OPEN_DATA:
        for row in rows:
            value = row[field.name]
            if not value:
                continue
            if field.allowed is not None:
                assert value in field.allowed, (field.name, value)
            elif field.type == "integer":
                assert value.isdigit(), (field.name, value)
            elif field.type == "datetime":
                assert re.fullmatch(r"2026-11-\d\dT\d\d:00-05:00", value), value
            else:
                assert value in ("Downtown", "North"), (field.name, value)  # the one text field: an area


def test_codes_that_are_codes_come_through_and_times_are_hours(app, hostile):
    _, rows = exported(app, hostile)
    first_hostile, ordinary = rows[0], rows[6]
    assert (first_hostile["source"], first_hostile["language"], first_hostile["category"],
            first_hostile["outcome"]) == ("", "", "", "")
    # The call started at 8:17 on November 10 (New York): the hour, with its offset.
    assert first_hostile["started_hour"] == "2026-11-10T08:00-05:00"
    assert (ordinary["source"], ordinary["language"], ordinary["category"], ordinary["outcome"]) == (
        "911", "es", "noise", "bridged")
    assert (ordinary["answered"], ordinary["seconds_to_person"]) == ("live", "40")
    assert (ordinary["referrals_given"], ordinary["referrals_accepted"]) == ("1", "1")
    # Its case holds a name as its outcome: whatever the row says, the field is one of the allowed groups.
    assert ordinary["case_outcome"] in dictionary.CASE_OUTCOMES and ordinary["repeat_call"] == "false"
    assert rows[7]["repeat_call"] == "true" and rows[7]["callback"] == "reached_later"
    assert rows[1]["callback"] == ""  # a status that is not a status
    assert (rows[10]["returned_to_911"], rows[10]["answered"]) == ("danger", "returned_to_911")
    assert (rows[11]["abandoned"], rows[11]["seconds_before_hangup"]) == ("before_hold", "75")
    assert rows[0]["returned_to_911"] == ""  # escalation_reason holds a name, but the call was not sent back


def test_an_area_is_named_only_where_enough_calls_share_it(app, hostile):
    _, rows = exported(app, hostile)
    # Eight calls in 45402 (Downtown); the first four have ZIP codes that are not ZIP codes, and their streets are a
    # caller's text: no area. North would be one call (none here).
    assert [row["area"] for row in rows] == [""] * 4 + ["Downtown"] * 8
    app.config["OPEN_DATA_MIN_CALLS"] = 9
    _, rows = exported(app, hostile)
    assert {row["area"] for row in rows} == {""}


def test_the_command_writes_either_export_and_audits_it(app, hostile, tmp_path):
    runner = app.test_cli_runner()
    result = runner.invoke(args=["report", "export", "--from", "2026-11-01", "--to", "2026-11-30", "--open-data"])
    assert result.exit_code == 0, result.output
    assert NAME not in result.output and len(list(csv.DictReader(io.StringIO(result.output)))) == 12
    target = tmp_path / "calls.csv"
    result = runner.invoke(args=["report", "export", "--from", "2026-11-12", "--to", "2026-11-12", "-o", str(target)])
    assert result.exit_code == 0, result.output
    full = list(csv.DictReader(io.StringIO(target.read_text())))
    assert [row["name"] for row in full] == [NAME] * 4  # the coordinators' export has everything
    assert list(full[0]) == list(calls.EXPORT_COLUMNS)
    # 16:17 in New York on the 12th; connected 40 s later; the specialist's name from the roster.
    assert (full[0]["started_at"], full[0]["connected_at"], full[0]["specialist_name"]) == (
        "2026-11-12T21:17:00Z", "2026-11-12T21:17:40Z", NAME)
    bad = runner.invoke(args=["report", "export", "--from", "2026-11-30", "--to", "2026-11-01"])
    assert bad.exit_code != 0 and "--to is before --from" in bad.output
    with app.app_context():
        entries = app.extensions["db"].session().execute(
            select(AuditEntry.action, AuditEntry.target).order_by(AuditEntry.id)).all()
    assert entries == [("export_open_data", "cli 2026-11-01..2026-11-30"), ("export", "cli 2026-11-12..2026-11-12")]


def test_coordinators_download_it_audited_and_specialists_cannot(app, hostile):
    client = app.test_client()
    login(client, "ana@city.gov")
    assert client.get("/dashboard/reports/open-data.csv?start=2026-11-01&end=2026-11-30").status_code == 403
    client = app.test_client()
    login(client, "coord@city.gov")
    response = client.get("/dashboard/reports/open-data.csv?start=2026-11-01&end=2026-11-30")
    assert response.status_code == 200 and response.mimetype == "text/csv"
    assert 'filename="open-data-2026-11-01-2026-11-30.csv"' in response.headers["Content-Disposition"]
    text = response.get_data(as_text=True)
    assert len(list(csv.DictReader(io.StringIO(text)))) == 12 and NAME not in text
    audited = hostile.scalars(select(AuditEntry.target).where(AuditEntry.action == "export_open_data")).all()
    assert audited == ["2026-11-01..2026-11-30"]


def test_the_rows_are_read_a_batch_at_a_time():
    """yield_per: the database hands over BATCH rows at a time (a server-side cursor on PostgreSQL), never all."""
    query = open_data._query(Period(date(2026, 11, 1), date(2026, 11, 30), ZONE), "sqlite")
    assert query.get_execution_options()["yield_per"] == open_data.BATCH
