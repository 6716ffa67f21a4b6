"""What feeds the council's figures, and where people see them: why a call went back to 911 (a code written as
it happens), specialists' shifts, the directory of services and referrals on the call page, areas from what
callers said and the city's district table, and the reports page's figures with their tables and CSV."""

from __future__ import annotations

import csv
import io
import re
from datetime import timedelta

import pytest
from alembic import command
from sqlalchemy import select, text
from sqlalchemy.orm import Session

from tests.support import CALLER, DISPATCH, LINE, PASSWORD, csrf, fresh_app, load_call, login, settings
from voice import clock, phones
from voice.casework import addresses, cases
from voice.dashboard.auth import create_user
from voice.db import Database, alembic_config
from voice.line import callbacks, specialists
from voice.models import AuditEntry, Call, Referral, Service, Shift
from voice.reporting.areas import Areas
from voice.simulator import ScriptedCaller


@pytest.fixture
def db(app):
    """A session of the test's own, outside any app context: the conftest one's context would be shared by the
    client's requests (and with it their CSRF token)."""
    with Session(app.extensions["db"].engine, expire_on_commit=False) as session:
        yield session


# --- why a call went back to 911 ---------------------------------------------------------------------------


@pytest.mark.parametrize(("inputs", "code"), [(["1"], "danger"), (["2", "0"], "caller_asked"),
                                              ([None, None], "no_safety_answer")])
def test_each_way_back_to_911_is_kept_as_a_code(line, inputs, code):
    line.add_specialist("Alice Mediator", "+19375550201")
    record = line.phone.call_line(CALLER, ScriptedCaller(inputs))
    line.settle()
    assert record.bridged_with == [DISPATCH]
    call = load_call(line.app, record.call_sid)
    assert (call.outcome, call.escalation_reason) == ("escalated", code)


def test_a_follow_up_call_is_marked_as_one(app, db):
    call = Call(call_sid="CA" + "1" * 32, from_number=CALLER, started_at=clock.utcnow())
    db.add(call)
    db.flush()
    with app.app_context():  # case linking reads the program's numbers (which numbers are not callers)
        case = cases.open_or_join(db, call, 30)
        request = callbacks.queue_follow_up(db, case, clock.utcnow() + timedelta(days=7), "check in", "America/New_York")
    db.commit()
    assert (request.call.source, call.source) == ("follow_up", "911")


# --- shifts -------------------------------------------------------------------------------------------------


def test_on_and_off_are_a_shift_and_leaving_the_roster_ends_it(app, db, r, monkeypatch):
    ana = specialists.add_specialist(db, "Ana Ruiz", "+19375550301", ["en"])
    db.commit()
    start = clock.utcnow().replace(microsecond=0)
    monkeypatch.setattr(clock, "now", lambda: start)
    specialists.set_available(db, r, ana, True)
    specialists.set_available(db, r, ana, True)  # already on: still one shift
    monkeypatch.setattr(clock, "now", lambda: start + timedelta(hours=3))
    specialists.set_available(db, r, ana, False)
    monkeypatch.setattr(clock, "now", lambda: start + timedelta(hours=4))
    specialists.set_available(db, r, ana, True)
    monkeypatch.setattr(clock, "now", lambda: start + timedelta(hours=5))
    specialists.update_specialist(db, r, ana, "Ana Ruiz", ana.phone, ["en"], active=False)
    db.commit()
    shifts = db.execute(select(Shift.started_at, Shift.ended_at).order_by(Shift.id)).all()
    assert shifts == [(start, start + timedelta(hours=3)), (start + timedelta(hours=4), start + timedelta(hours=5))]


# --- areas ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("said", "zip_code", "street"), [
    ("400 West Third Street 45402", "45402", "w 3rd st"),
    ("twelve hundred Salem Avenue, Dayton OH 45406-1234", "45406", "salem ave"),
    ("Salem Ave and Main St", None, "salem ave"),
    ("by the park", None, None),
    ("call me at 9375550123", None, None),
])
def test_the_area_of_what_a_caller_said(said, zip_code, street):
    place = addresses.place_of(said)
    assert (place.zip_code, place.street) == (zip_code, street)


def test_the_district_table_matches_streets_first_then_zip_codes():
    areas = Areas((("Salem Avenue", "North"), ("45402", "Downtown"), ("Third Street", "Downtown"),
                   ("45406", "West")))
    assert areas.area("45406", "salem ave") == "North"  # the street says more than the ZIP code
    assert areas.area("45406", "wayne ave") == "West"
    assert areas.area(None, "e 3rd st") == "Downtown"  # East or West Third Street
    assert areas.area("45499", "elm st") is None
    assert areas.area("9375550123", None) is None and areas.area("45402x", None) is None
    assert Areas(()).area("45402", "salem ave") == "45402" and Areas(()).area("4540", None) is None


def test_the_place_on_the_case_form_updates_the_area(app, db, client):
    ana = specialists.add_specialist(db, "Ana Ruiz", "+19375550301", ["en"])
    create_user(db, "ana@city.gov", PASSWORD, "specialist", ana.id)
    call = Call(call_sid="CA" + "2" * 32, from_number=CALLER, specialist_id=ana.id, connected_at=clock.utcnow())
    db.add(call)
    db.commit()
    login(client, "ana@city.gov")
    client.post(f"/dashboard/calls/{call.id}/case", data={
        "csrf_token": csrf(client, f"/dashboard/calls/{call.id}"), "location": "1200 Salem Ave 45406",
        "follow_up": "none"})
    db.expire_all()
    saved = db.get(Call, call.id)
    assert (saved.location_key, saved.zip_code, saved.street) == ("1200 salem ave", "45406", "salem ave")


def test_a_bad_district_table_stops_start_up_naming_it(redis_url, database_url, tmp_path, capsys):
    cases = {"missing.csv": None, "header.csv": "street,district\nMain St,North\n",
             "zip.csv": "street_or_zip,district\n4540,North\n",
             "twice.csv": "street_or_zip,district\nMain St,North\nmain st,South\n",
             "empty.csv": "street_or_zip,district\n", "half.csv": "street_or_zip,district\nMain St,\n"}
    for name, content in cases.items():
        path = tmp_path / name
        if content is not None:
            path.write_text(content)
        with pytest.raises(SystemExit), fresh_app(settings(redis_url, database_url, DISTRICTS_CSV=str(path))):
            pass
        error = capsys.readouterr().err.strip()
        assert error.startswith("mediation-line: setting DISTRICTS_CSV") and "\n" not in error, error


def test_a_good_district_table_is_read(redis_url, database_url, tmp_path):
    path = tmp_path / "districts.csv"
    path.write_text("\ufeffStreet_or_ZIP,District\n45402,Downtown\nSalem Avenue,North\n\n")
    with fresh_app(settings(redis_url, database_url, DISTRICTS_CSV=str(path))) as app:
        assert app.config["DISTRICTS_CSV"] == (("45402", "Downtown"), ("salem avenue", "North"))


# --- who is a caller -----------------------------------------------------------------------------------------


def test_withheld_ids_and_the_programs_own_lines_are_not_callers():
    config = {"TWILIO_PHONE_NUMBER": LINE, "DISPATCH_TRANSFER_NUMBER": DISPATCH, "HANDOFF_NUMBER": "",
              "PSAP_NUMBERS": ("+19375550900",), "PUBLIC_LINE_NUMBERS": ("+19375550444",)}
    assert phones.is_caller_number(CALLER, config)
    for number in ["+266696687", "+7378742833", "+86282452253", "+8656696", "+2562533", "+464", "anonymous",
                   "RESTRICTED", "", None, "+19375550900", LINE, DISPATCH, "+19375550444", "19375550123",
                   "+1937555012345678"]:
        assert not phones.is_caller_number(number, config), number


# --- the directory of services and referrals -----------------------------------------------------------------


@pytest.fixture
def people(app, db):
    ana = specialists.add_specialist(db, "Ana Ruiz", "+19375550301", ["en"])
    ben = specialists.add_specialist(db, "Ben Ode", "+19375550302", ["en"])
    create_user(db, "coord@city.gov", PASSWORD, "coordinator")
    create_user(db, "ana@city.gov", PASSWORD, "specialist", ana.id)
    create_user(db, "ben@city.gov", PASSWORD, "specialist", ben.id)
    call = Call(call_sid="CA" + "3" * 32, from_number=CALLER, specialist_id=ana.id, connected_at=clock.utcnow())
    db.add(call)
    db.commit()
    return {"call": call.id}


def add_service(client, **form):
    data = {"name": "Legal Aid of the Valley", "kind": "legal_aid", "phone": "(937) 555-0142", **form}
    return client.post("/dashboard/services", data={"csrf_token": csrf(client, "/dashboard/services"), **data},
                       follow_redirects=True)


def test_the_coordinator_keeps_the_directory_numbers_checked_and_audited(client, people, db):
    login(client, "coord@city.gov")
    page = add_service(client).get_data(as_text=True)
    assert "Legal Aid of the Valley added to the directory." in page
    refused = add_service(client, name="Psychic Hotline", phone="+1 900 555 0100").get_data(as_text=True)
    assert "is not an ordinary landline or mobile number" in refused
    assert "Give the service a name." in add_service(client, name="  ").get_data(as_text=True)
    assert "Choose what kind of service it is." in add_service(client, name="X", kind="spa").get_data(as_text=True)
    assert "already in the directory" in add_service(client).get_data(as_text=True)
    service = db.scalar(select(Service))
    assert (service.name, service.kind, service.phone, service.active) == (
        "Legal Aid of the Valley", "legal_aid", "+19375550142", True)
    saved = client.post(f"/dashboard/services/{service.id}", data={
        "csrf_token": csrf(client, "/dashboard/services"), "name": "Legal Aid", "kind": "legal_aid",
        "phone": "937-555-0143", "active": "0"}, follow_redirects=True)
    assert "Legal Aid saved." in saved.get_data(as_text=True)
    db.expire_all()
    assert (db.get(Service, service.id).phone, db.get(Service, service.id).active) == ("+19375550143", False)
    assert db.scalars(select(AuditEntry.action).where(AuditEntry.action.like("service_%"))).all() == [
        "service_add", "service_edit"]


def test_a_specialist_cannot_keep_the_directory(client, people):
    login(client, "ana@city.gov")
    assert client.get("/dashboard/services").status_code == 403
    assert client.post("/dashboard/services", data={"csrf_token": csrf(client, "/dashboard/"), "name": "X",
                                                     "kind": "food", "phone": "9375550142"}).status_code == 403


def test_a_specialist_records_referrals_on_their_call(client, people, db):
    housing = Service(name="City Housing Help", kind="housing", phone="+19375550401")
    closed = Service(name="Old Shelter", kind="shelter", phone="+19375550402", active=False)
    db.add_all([housing, closed])
    db.commit()
    call_id = people["call"]
    login(client, "ana@city.gov")
    page = client.get(f"/dashboard/calls/{call_id}").get_data(as_text=True)
    assert "City Housing Help" in page and "Old Shelter" not in page and "No referrals on this call." in page

    def refer(service, accepted):
        return client.post(f"/dashboard/calls/{call_id}/referrals", data={
            "csrf_token": csrf(client, f"/dashboard/calls/{call_id}"), "service": str(service), "accepted": accepted},
            follow_redirects=True).get_data(as_text=True)

    assert "Referral to City Housing Help recorded." in refer(housing.id, "no")
    assert "Referral to City Housing Help recorded." in refer(housing.id, "yes")  # they changed their mind
    assert "no longer in the directory" in refer(closed.id, "yes")
    assert "Say whether the caller accepted" in refer(housing.id, "maybe")
    assert "Choose the service" in refer("nine", "yes")
    [referral] = db.scalars(select(Referral)).all()
    assert (referral.service_id, referral.accepted) == (housing.id, True)
    shown = client.get(f"/dashboard/calls/{call_id}").get_data(as_text=True)
    assert re.search(r"City Housing Help</th><td>Housing</td>\s*<td>accepted</td>", shown)
    client.post(f"/dashboard/calls/{call_id}/referrals/{referral.id}/withdraw",
                data={"csrf_token": csrf(client, f"/dashboard/calls/{call_id}")})
    assert db.scalars(select(Referral)).all() == []
    actions = db.scalars(select(AuditEntry.action).where(AuditEntry.action.like("%referral"))).all()
    assert actions == ["give_referral", "give_referral", "withdraw_referral"]


def test_another_specialist_cannot_record_on_a_call_they_did_not_take(client, people, db):
    housing = Service(name="City Housing Help", kind="housing", phone="+19375550401")
    db.add(housing)
    db.commit()
    login(client, "ben@city.gov")
    answer = client.post(f"/dashboard/calls/{people['call']}/referrals", data={
        "csrf_token": csrf(client, "/dashboard/"), "service": str(housing.id), "accepted": "yes"})
    assert answer.status_code == 404 and db.scalars(select(Referral)).all() == []


# --- the reports page -------------------------------------------------------------------------------------


def test_the_reports_page_shows_each_council_figure_with_its_table(client, people, db):
    login(client, "coord@city.gov")
    html = client.get("/dashboard/reports").get_data(as_text=True)
    for title in ["Service level", "Answer rate", "Abandonment", "Callbacks", "Where calls come from",
                  "Returned to 911 or police", "Case outcomes", "Referrals", "People", "Staffing",
                  "Calls and cases by ZIP code", "Missed calls by hour", "Outcomes sent back to 911"]:
        assert title in html, title
    council = html[html.index('id="council"'):]
    charts = re.findall(r'<canvas id="(council-[a-z_]+-chart)" role="img" aria-label="[^"]+the table below it',
                        council)
    assert charts == ["council-answer-chart", "council-sources-chart", "council-returned-chart",
                      "council-outcomes-chart", "council-areas-chart", "council-staffing-chart"]
    for chart in charts:
        after = council[council.index(chart):]
        assert after.index("<table") < after.index("</section>"), chart  # its table, in its own card
    assert 'id="council-data"' in council


def test_the_figures_csv_is_for_coordinators_and_audited(client, people, db):
    login(client, "ana@city.gov")
    assert client.get("/dashboard/reports/figures.csv?start=2026-11-01&end=2026-11-30").status_code == 403
    client.post("/dashboard/logout", data={"csrf_token": csrf(client, "/dashboard/")})
    login(client, "coord@city.gov")
    response = client.get("/dashboard/reports/figures.csv?start=2026-11-01&end=2026-11-30")
    assert response.status_code == 200 and response.mimetype == "text/csv"
    rows = list(csv.reader(io.StringIO(response.get_data(as_text=True))))
    assert rows[0] == ["figure", "item", "unit", "value", "share", "previous", "previous_share", "change_percent",
                       "change_of"]
    assert rows[1] == ["period", "this", "dates", "2026-11-01..2026-11-30", "", "2026-10-02..2026-10-31", "", "", ""]
    assert db.scalars(select(AuditEntry.target).where(AuditEntry.action == "export_report")).all() == [
        "2026-11-01..2026-11-30"]


# --- the migration --------------------------------------------------------------------------------------------


def test_the_migration_gives_old_calls_their_codes_and_goes_back(tmp_path):
    database = Database(f"sqlite:///{tmp_path}/old.db")
    database.upgrade("0011")
    rows = [("CA1", "escalated", "danger reported"), ("CA2", "escalated", "caller asked for dispatch"),
            ("CA3", "escalated", "no answer to the safety question"),
            ("CA4", "escalated", "transferred to dispatch by the specialist"), ("CA5", "escalated", "hold ended: error"),
            ("CA6", "escalated", None), ("CA7", "bridged", "danger reported"), ("followup-1-ab", "callback_queued", None)]
    with database.engine.begin() as conn:
        for sid, outcome, reason in rows:
            conn.execute(text("INSERT INTO calls (call_sid, from_number, to_number, started_at, language, outcome, "
                              "outcome_reason, wants_callback) VALUES (:sid, '', '', '2026-01-01', 'en', :outcome, "
                              ":reason, 0)"), {"sid": sid, "outcome": outcome, "reason": reason})
    database.upgrade()
    with database.engine.connect() as conn:
        found = dict(conn.execute(text("SELECT call_sid, escalation_reason FROM calls")).all())
        sources = dict(conn.execute(text("SELECT call_sid, source FROM calls")).all())
    assert found == {"CA1": "danger", "CA2": "caller_asked", "CA3": "no_safety_answer", "CA4": "specialist_transfer",
                     "CA5": "hold_failed", "CA6": None, "CA7": None, "followup-1-ab": None}
    assert sources["followup-1-ab"] == "follow_up" and sources["CA1"] == "911"
    command.downgrade(alembic_config(database.url), "0011")
    with database.engine.connect() as conn:
        assert "escalation_reason" not in {row[1] for row in conn.execute(text("PRAGMA table_info(calls)"))}
        assert conn.execute(text("SELECT count(*) FROM sqlite_master WHERE name = 'ix_calls_caller_name_lower'")
                            ).scalar() == 1
    database.dispose()
