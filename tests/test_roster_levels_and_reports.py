"""Levels and skills on the roster (page, CLI, migration), and the reports of calls by level and to the preferred."""

from __future__ import annotations

import csv
import io
from datetime import date, datetime

import pytest
from sqlalchemy import select, text
from sqlalchemy.orm import Session

from tests.support import PASSWORD, csrf, login
from voice.dashboard import queries
from voice.dashboard.auth import create_user
from voice.line import specialists
from voice.models import AuditEntry, Call, Specialist
from voice.redisdb import Keys

ALICE = "+19375550201"
BRUNO = "+19375550202"
ZONE = "America/New_York"


@pytest.fixture
def coordinator(app):
    with Session(app.extensions["db"].engine) as db:
        create_user(db, "coord@city.gov", PASSWORD, "coordinator")
        db.commit()


# --- skills, as stored --------------------------------------------------------------------------------------------


def test_skills_are_tags_lower_cased_and_trimmed_with_languages_first_by_their_codes(app, db):
    alice = specialists.add_specialist(db, "Alice", ALICE, ["es", "EN "], [" Supervisor", "Landlord  Tenant",
                                                                             "family,supervisor", "ar"], level="2")
    assert alice.skills == "es,en,supervisor,landlord-tenant,family,ar"
    assert alice.language_list == ["es", "en", "ar"] and alice.level == 2
    assert alice.languages == "es,en,ar"


@pytest.mark.parametrize(("skills", "level", "refusal"), [
    (["english"], 1, "a language is a skill by its code: 'en' for English"),
    (["Spanish"], 1, "'es' for Spanish"),
    (["xx"], 1, "'xx' is not an ISO 639-1 code"),
    (["on call!"], 1, "use letters, digits and hyphens"),
    ([], 3, "level must be 1 or 2"),
])
def test_a_skill_or_level_the_roster_cannot_take_is_refused_saying_why(app, skills, level, refusal):
    with app.app_context():
        db = app.extensions["db"].session()
        with pytest.raises(specialists.RosterError, match=refusal):
            specialists.add_specialist(db, "Alice", ALICE, ["en"], skills, level)


def test_migration_0011_keeps_each_specialists_languages_as_their_skills(tmp_path):
    from alembic import command

    from voice.db import Database, alembic_config

    database = Database(f"sqlite:///{tmp_path}/old.db")
    database.upgrade("0010")
    with database.engine.begin() as conn:
        conn.execute(text("INSERT INTO specialists (name, phone, languages, active, available, created_at, updated_at) "
                          "VALUES ('Ana', '+19375550301', 'en,es', 1, 0, CURRENT_TIMESTAMP, CURRENT_TIMESTAMP)"))
    database.upgrade("0011")
    with database.engine.begin() as conn:
        assert conn.execute(text("SELECT skills, level FROM specialists")).one() == ("en,es", 1)
        conn.execute(text("UPDATE specialists SET skills = 'en,es,supervisor,fr', level = 2"))
    command.downgrade(alembic_config(database.url), "0010")
    with database.engine.begin() as conn:
        assert conn.execute(text("SELECT languages FROM specialists")).scalar() == "en,es,fr"
    database.dispose()


# --- the roster page and the CLI ----------------------------------------------------------------------------------


def test_the_roster_page_adds_and_edits_a_specialists_level_and_skills(client, coordinator, app, r):
    login(client, "coord@city.gov")
    page = client.get("/dashboard/roster").get_data(as_text=True)
    assert "<legend>Languages</legend>" in page and 'name="level"' in page and 'name="skills"' in page
    response = client.post("/dashboard/roster", data={
        "csrf_token": csrf(client, "/dashboard/roster"), "name": "Alice Mediator", "phone": "(937) 555-0201",
        "languages": ["en", "es"], "level": "2", "skills": "Supervisor, landlord tenant"})
    assert response.status_code == 302
    with Session(app.extensions["db"].engine) as db:
        alice = db.scalar(select(Specialist))
        assert (alice.level, alice.skills) == (2, "en,es,supervisor,landlord-tenant")
        specialists.set_available(db, r, alice, True)
        alice_id = alice.id
    page = client.get("/dashboard/roster").get_data(as_text=True)
    assert 'value="supervisor, landlord-tenant"' in page and 'aria-label="Level of Alice Mediator"' in page

    client.post(f"/dashboard/roster/{alice_id}", data={
        "csrf_token": csrf(client, "/dashboard/roster"), "name": "Alice Mediator", "phone": ALICE,
        "languages": ["en"], "level": "1", "skills": "family", "active": "1"})
    with Session(app.extensions["db"].engine) as db:
        alice = db.get(Specialist, alice_id)
        assert (alice.level, alice.skills) == (1, "en,family")
    assert r.zscore(Keys.available("es"), alice_id) is None and r.zscore(Keys.available("en"), alice_id) is not None

    refused = client.post(f"/dashboard/roster/{alice_id}", data={
        "csrf_token": csrf(client, "/dashboard/roster"), "name": "Alice Mediator", "phone": ALICE,
        "languages": ["en"], "level": "1", "skills": "Spanish", "active": "1"}, follow_redirects=True)
    assert "a language is a skill by its code: &#39;es&#39; for Spanish" in refused.get_data(as_text=True)


def test_the_cli_sets_level_and_skills_and_lists_them(app, runner):
    added = runner.invoke(args=["specialist", "add", "--name", "Alice Mediator", "--phone", ALICE, "--level", "2",
                                "--skill", "Supervisor", "--skill", "landlord tenant"])
    assert added.exit_code == 0, added.output
    assert "level 2 (en,supervisor,landlord-tenant)" in added.output
    edited = runner.invoke(args=["specialist", "edit", ALICE, "--level", "1", "--language", "es", "--skill", "family"])
    assert edited.exit_code == 0, edited.output
    assert "level 1, skills es,family" in edited.output
    kept = runner.invoke(args=["specialist", "edit", ALICE, "--level", "2"])
    assert "level 2, skills es,family" in kept.output
    listing = runner.invoke(args=["specialist", "list"]).output
    assert "Alice Mediator" in listing and "L2" in listing and "es,family" in listing
    bad = runner.invoke(args=["specialist", "edit", ALICE, "--skill", "Spanish"])
    assert bad.exit_code != 0 and "'es' for Spanish" in bad.output
    assert runner.invoke(args=["specialist", "edit", ALICE, "--level", "3"]).exit_code != 0


# --- the reports ------------------------------------------------------------------------------------------------


@pytest.fixture
def taken_calls(app, coordinator):
    """November 2026 (New York): calls taken at level 1 and 2, some by the specialist routing preferred."""
    with Session(app.extensions["db"].engine) as db:
        rows = [  # (level, to_preferred): None is a caller nobody was preferred for
            (2, True), (2, True), (2, False), (1, False), (1, None), (1, None), (1, True), (None, None)]
        for n, (level, preferred) in enumerate(rows):
            db.add(Call(call_sid=f"CA{n:032d}", from_number="+19375550123", started_at=datetime(2026, 11, 3 + n, 15),
                        outcome="bridged" if level else "escalated", specialist_level=level, to_preferred=preferred))
        # Before the range (23:00 on October 31 in New York).
        db.add(Call(call_sid="CA" + "9" * 32, from_number="+19375550123", started_at=datetime(2026, 11, 1, 3),
                    outcome="bridged", specialist_level=2, to_preferred=True))
        db.commit()


def test_calls_by_level_and_the_share_to_a_preferred_specialist(app, taken_calls):
    with Session(app.extensions["db"].engine) as db:
        data = queries.level_report(db, date(2026, 11, 1), date(2026, 11, 30), ZONE)
    assert data["by_level"] == {1: {"taken": 4, "complex": 2, "to_preferred": 1},
                                2: {"taken": 3, "complex": 3, "to_preferred": 2}}
    assert data["all"] == {"taken": 7, "complex": 5, "to_preferred": 3}
    assert data["preferred_share"] == pytest.approx(0.6)


def test_the_reports_page_and_its_csv_show_calls_by_level(client, taken_calls, app):
    login(client, "coord@city.gov")
    html = client.get("/dashboard/reports?start=2026-11-01&end=2026-11-30").get_data(as_text=True)
    section = " ".join(html[html.index('id="levels-title"'):html.index('id="report-data"')].split())
    assert '60%</span> <span class="muted">of complex callers reached a preferred specialist (3 of 5)' in section
    assert '<th scope="row">Level 1</th><td>4</td><td>2</td><td>1</td>' in section
    assert '<th scope="row">Level 2</th><td>3</td><td>3</td><td>2</td>' in section
    assert "/dashboard/reports/levels.csv?start=2026-11-01&amp;end=2026-11-30" in section

    response = client.get("/dashboard/reports/levels.csv?start=2026-11-01&end=2026-11-30")
    assert response.status_code == 200 and response.mimetype == "text/csv"
    rows = list(csv.reader(io.StringIO(response.get_data(as_text=True))))
    assert ["calls taken by level", "level 2", "3"] in rows
    assert ["to a preferred specialist by level", "level 1", "1"] in rows
    assert ["to a preferred specialist", "share of complex callers", "0.600"] in rows
    with Session(app.extensions["db"].engine) as db:
        assert db.scalar(select(AuditEntry.target).where(AuditEntry.action == "export_level_report")) == \
            "2026-11-01..2026-11-30"
