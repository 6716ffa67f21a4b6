"""Retention: calls past RETENTION_DAYS lose their personal data and their recording; the counts stay.

Real SQL (migrated from empty), Twilio's REST API mocked with `responses`, the CLI as an operator runs it,
and the nightly job as `rq cron` queues it and a real RQ worker runs it.
"""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
import responses
from rq import SimpleWorker
from rq.cron import CronScheduler
from sqlalchemy import inspect, select, text

from tests.support import ACCOUNT_SID, LINE, fresh_app, settings
from voice.clock import utcnow
from voice.dashboard.queries import report
from voice.line import calls
from voice.models import AuditEntry, Call, CallbackRequest, CallEvent, CallNote, Specialist, User
from voice.tasks import FAILURE_TTL_SECONDS, RESULT_TTL_SECONDS
from voice.tasks import queue as job_queue

API = f"https://api.twilio.com/2010-04-01/Accounts/{ACCOUNT_SID}"
OLD_RECORDING = "RE" + "a" * 32
NEW_RECORDING = "RE" + "b" * 32
OTHER_RECORDING = "RE" + "c" * 32
PERSONAL = ("Dana Whitfield", "400 West Third Street", "The landlord shut off the heat", "+19375550123",
            "5550123", "Call her after 6", "Her brother was there")


def recording_url(sid: str) -> str:
    return f"{API}/Recordings/{sid}"


def make_call(db, days_ago: int, sid: str, recording: str | None = None, category: str = "landlord",
              outcome: str = calls.CALLBACK_COMPLETED) -> int:
    """A call as the line leaves it: intake answers, a callback request, a recording, notes, a timeline."""
    started = utcnow() - timedelta(days=days_ago)
    specialist = db.scalar(select(Specialist)) or Specialist(name="Ana Ruiz", phone="+19375550201", languages="en")
    user = db.scalar(select(User)) or User(email="coord@city.gov", password_hash="x", role="coordinator")
    call = Call(call_sid=sid, from_number="+19375550123", to_number="+19375550100", started_at=started,
                ended_at=started + timedelta(minutes=9), connected_at=started + timedelta(minutes=2),
                language="en", category=category, caller_name="Dana Whitfield", location="400 West Third Street",
                callback_number="+19375550123", description="The landlord shut off the heat", outcome=outcome,
                zip_code="45402", street="w 3rd st",
                outcome_reason="HTTP 400, error 21211: The 'To' number +19375550123 is not valid",
                specialist=specialist, recording_sid=recording,
                recording_url=recording_url(recording) if recording else None,
                disposition="resolved_by_phone", disposition_notes="Call her after 6", disposition_at=started)
    db.add_all([specialist, user, call])
    db.flush()
    call.disposition_by_id = user.id
    db.add(CallbackRequest(call_id=call.id, callback_number="+19375550123", status="completed",
                           reason="cancelled: she said to use 555-0123", created_at=started, arrived_at=started,
                           completed_at=started + timedelta(minutes=9)))
    db.add(CallNote(call_id=call.id, user_id=user.id, at=started, body="Her brother was there"))
    for kind, detail in [("call_started", {"from_number": "+19375550123"}),
                         ("intake_answer", {"step": "name", "speech": "Dana Whitfield"}),
                         ("intake_answer", {"step": "description", "speech": "The landlord shut off the heat"})]:
        calls.record_event(db, call, kind, at=started, **detail)
    db.commit()
    return call.id


def snapshot(db, call_id: int) -> dict:
    """Everything stored about a call, as plain values."""
    db.expire_all()
    call = db.get(Call, call_id)
    columns = {c.key: getattr(call, c.key) for c in inspect(Call).column_attrs}
    request = db.scalar(select(CallbackRequest).where(CallbackRequest.call_id == call_id))
    return {
        "call": columns,
        "request": {c.key: getattr(request, c.key) for c in inspect(CallbackRequest).column_attrs},
        "notes": [(n.at, n.user_id, n.body) for n in db.scalars(select(CallNote).where(CallNote.call_id == call_id))],
        "events": [(e.at, e.kind, e.detail) for e in db.scalars(select(CallEvent).where(CallEvent.call_id == call_id)
                                                                  .order_by(CallEvent.id))],
    }


def personal_data_in(state: dict) -> list[str]:
    text = json.dumps(state, default=str)
    return [piece for piece in PERSONAL if piece in text]


# `responses`, not the fake Twilio: these need one recording's delete to fail with a 503 and every attempt counted.
@pytest.fixture
def twilio():
    """Twilio's REST API: deleting a recording answers 204; nothing else is mocked (anything else fails)."""
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        yield rsps


def deleted(rsps) -> list[str]:
    return [call.request.url.rsplit("/", 1)[-1].removesuffix(".json")
            for call in rsps.calls if call.request.method == "DELETE"]


def test_a_call_past_retention_loses_its_personal_data_and_its_recording_at_twilio(app, db, runner, twilio):
    twilio.add(responses.DELETE, f"{API}/Recordings/{OLD_RECORDING}.json", status=204)
    old = make_call(db, 400, "CA-old", recording=OLD_RECORDING)
    before = snapshot(db, old)
    assert len(personal_data_in(before)) == len(PERSONAL)

    result = runner.invoke(args=["purge"])
    assert result.exit_code == 0, result.output
    assert "1 calls redacted" in result.output

    assert deleted(twilio) == [OLD_RECORDING]
    after = snapshot(db, old)
    assert personal_data_in(after) == []
    call = after["call"]
    for name in ("caller_name", "location", "description", "callback_number", "outcome_reason",
                 "disposition_notes", "recording_sid", "recording_url", "street"):
        assert call[name] is None, name
    assert call["from_number"] == ""
    assert call["redacted_at"] is not None
    assert after["request"]["callback_number"] is None and after["request"]["reason"] is None
    assert [body for _, _, body in after["notes"]] == [""]
    # The timeline keeps each step's kind and time, without what was said or dialed.
    assert [(at, kind) for at, kind, _ in after["events"]] == [(at, kind) for at, kind, _ in before["events"]]
    assert {detail for _, _, detail in after["events"]} == {json.dumps({"redacted": True})}
    # What the reports count stays.
    for name in ("category", "outcome", "language", "started_at", "ended_at", "connected_at", "specialist_id",
                 "disposition", "disposition_at", "disposition_by_id", "call_sid", "zip_code"):
        assert call[name] == before["call"][name], name
    assert after["request"]["status"] == before["request"]["status"]


def test_a_recent_call_is_untouched_and_the_reports_still_count_both(app, db, runner, twilio):
    twilio.add(responses.DELETE, f"{API}/Recordings/{OLD_RECORDING}.json", status=204)
    old = make_call(db, 400, "CA-old", recording=OLD_RECORDING, category="noise", outcome=calls.BRIDGED)
    new = make_call(db, 10, "CA-new", recording=NEW_RECORDING)
    zone = app.config["TIMEZONE"]
    start, end = (utcnow() - timedelta(days=402)).date(), utcnow().date()
    counts_before = report(db, start, end, zone)
    kept = snapshot(db, new)

    assert runner.invoke(args=["purge"]).exit_code == 0

    assert deleted(twilio) == [OLD_RECORDING]
    assert snapshot(db, new) == kept
    assert snapshot(db, old)["call"]["redacted_at"] is not None
    counts = report(db, start, end, zone)
    assert counts["total"] == 2
    assert counts["by_category"] == {"noise": 1, "landlord": 1} == counts_before["by_category"]
    assert counts["by_outcome"] == {calls.BRIDGED: 1, calls.CALLBACK_COMPLETED: 1} == counts_before["by_outcome"]
    assert counts["by_language"] == {"en": 2}
    assert counts["live_median_s"] == counts_before["live_median_s"] == pytest.approx(120, abs=0.01)


def test_a_dry_run_lists_ids_and_dates_and_changes_nothing(app, db, runner, twilio):
    old = make_call(db, 400, "CA-old", recording=OLD_RECORDING)
    older = make_call(db, 800, "CA-older")
    new = make_call(db, 10, "CA-new")
    before = {call_id: snapshot(db, call_id) for call_id in (old, older, new)}

    result = runner.invoke(args=["purge", "--dry-run"])

    assert result.exit_code == 0, result.output
    assert "would redact 2 call(s) older than 365 days (1 with a recording)" in result.output
    listed = [line.split()[0] for line in result.output.splitlines() if line.startswith("#")]
    assert listed == [f"#{old}", f"#{older}"]
    assert f"{before[old]['call']['started_at']:%Y-%m-%d}" in result.output
    assert not [piece for piece in PERSONAL if piece in result.output]
    assert len(twilio.calls) == 0
    assert {call_id: snapshot(db, call_id) for call_id in (old, older, new)} == before
    assert db.scalars(select(AuditEntry)).all() == []


def test_a_transient_twilio_failure_leaves_that_call_for_the_next_night(app, db, runner, twilio):
    twilio.add(responses.DELETE, f"{API}/Recordings/{OLD_RECORDING}.json", status=503,
               json={"code": 20500, "message": "Service unavailable", "status": 503})
    twilio.add(responses.DELETE, f"{API}/Recordings/{OTHER_RECORDING}.json", status=204)
    stuck = make_call(db, 400, "CA-stuck", recording=OLD_RECORDING)
    other = make_call(db, 401, "CA-other", recording=OTHER_RECORDING)
    plain = make_call(db, 500, "CA-plain")

    result = runner.invoke(args=["purge"])

    assert result.exit_code == 0, result.output
    assert f"#{stuck}; the next run tries again" in result.output
    assert sorted(deleted(twilio)) == sorted([OLD_RECORDING, OTHER_RECORDING])
    left = snapshot(db, stuck)["call"]
    assert left["redacted_at"] is None
    assert left["recording_sid"] == OLD_RECORDING and left["recording_url"] == recording_url(OLD_RECORDING)
    # Its words and numbers go tonight all the same; only the recording's deletion waits.
    assert left["caller_name"] is None and left["from_number"] == "" and left["description"] is None
    for done in (other, plain):
        assert snapshot(db, done)["call"]["redacted_at"] is not None
        assert personal_data_in(snapshot(db, done)) == []

    # The next night Twilio answers: the recording goes and the call is marked.
    twilio.replace(responses.DELETE, f"{API}/Recordings/{OLD_RECORDING}.json", status=204)
    twilio.calls.reset()
    result = runner.invoke(args=["purge"])
    assert result.exit_code == 0 and "1 calls redacted" in result.output
    assert deleted(twilio) == [OLD_RECORDING]
    left = snapshot(db, stuck)
    assert left["call"]["redacted_at"] is not None and left["call"]["recording_sid"] is None
    assert personal_data_in(left) == []


def test_each_purge_run_writes_one_audit_entry(app, db, runner, twilio):
    make_call(db, 400, "CA-one")
    make_call(db, 400, "CA-two")

    assert runner.invoke(args=["purge"]).exit_code == 0
    assert runner.invoke(args=["purge"]).exit_code == 0

    db.expire_all()
    entries = db.scalars(select(AuditEntry).order_by(AuditEntry.id)).all()
    assert [(e.action, e.target, e.user_id) for e in entries] == [
        ("purge", "2 calls redacted", None), ("purge", "0 calls redacted", None)]


def test_the_nightly_job_is_registered_with_rq_cron_and_runs_in_a_worker(app, db, r, twilio):
    twilio.add(responses.DELETE, f"{API}/Recordings/{OLD_RECORDING}.json", status=204)
    old = make_call(db, 400, "CA-old", recording=OLD_RECORDING)

    scheduler = CronScheduler(connection=r)
    scheduler.load_config_from_file("workers.cron")
    nightly = [job for job in scheduler.get_jobs() if job.func_name == "workers.purge.purge_personal_data"]
    assert len(nightly) == 1
    assert nightly[0].cron == "30 3 * * *"
    assert nightly[0].job_options["result_ttl"] == RESULT_TTL_SECONDS
    assert nightly[0].job_options["failure_ttl"] == FAILURE_TTL_SECONDS

    job = nightly[0].enqueue(r)
    with app.app_context():
        SimpleWorker([job_queue(r)], connection=r).work(burst=True)
        app.extensions["db"].session.remove()

    job.refresh()
    assert job.get_status() == "finished", job.latest_result()
    assert job.return_value() == {"redacted": 1, "recordings_deleted": 1, "left_for_next_run": []}
    assert job.result_ttl == RESULT_TTL_SECONDS and job.failure_ttl == FAILURE_TTL_SECONDS
    assert deleted(twilio) == [OLD_RECORDING]
    assert snapshot(db, old)["call"]["redacted_at"] is not None


def test_the_migration_adds_redacted_at_to_an_empty_database(tmp_path, database_url):
    from alembic import command

    from voice.db import Database, alembic_config

    database = Database(f"sqlite:///{tmp_path}/empty.db")
    database.upgrade()
    names = "SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'calls'"
    with database.engine.connect() as conn:
        assert "ix_calls_caller_name_lower" in set(conn.scalars(text(names)))
    columns = {c["name"]: c for c in inspect(database.engine).get_columns("calls")}
    assert columns["redacted_at"]["nullable"]
    with pytest.warns(match="expression-based index"):  # ix_calls_caller_name_lower, checked above
        indexes = {i["name"]: i["column_names"] for i in inspect(database.engine).get_indexes("calls")}
    assert indexes["ix_calls_redacted_started"] == ["redacted_at", "started_at"]
    command.downgrade(alembic_config(database.url), "0003")
    assert "redacted_at" not in {c["name"] for c in inspect(database.engine).get_columns("calls")}
    with database.engine.connect() as conn:
        assert "ix_calls_caller_name_lower" in set(conn.scalars(text(names)))
    database.dispose()
    # The suite's own database (PostgreSQL in CI) was migrated from empty too.
    shared = Database(database_url)
    assert "redacted_at" in {c["name"] for c in inspect(shared.engine).get_columns("calls")}
    shared.dispose()


def test_the_purge_deletes_recordings_through_twilio_api_base_url(redis_url, database_url):
    """The demo's fake Twilio takes the purge's deletions as Twilio does (TWILIO_API_BASE_URL honoured)."""
    from voice.simulator.fake_twilio import FakeTwilio

    fake = FakeTwilio(None, ACCOUNT_SID, "test-auth-token", LINE)
    base = fake.start()
    try:
        with fresh_app(settings(redis_url, database_url, TWILIO_API_BASE_URL=base)) as app, app.app_context():
            db = app.extensions["db"].session()
            old = make_call(db, 400, "CA-old", recording=OLD_RECORDING)
            result = app.test_cli_runner().invoke(args=["purge"])
            assert result.exit_code == 0, result.output
            assert fake.deleted_recordings == [OLD_RECORDING]
            assert snapshot(db, old)["call"]["redacted_at"] is not None
    finally:
        fake.stop()


def test_every_job_rq_cron_queues_keeps_its_result_and_failure_days_not_a_year(r):
    scheduler = CronScheduler(connection=r)
    scheduler.load_config_from_file("workers.cron")
    jobs = scheduler.get_jobs()
    assert {job.func_name for job in jobs} == {"workers.cron.sweep_and_note_run",
                                              "workers.purge.purge_personal_data"}
    for job in jobs:
        assert job.job_options["result_ttl"] == RESULT_TTL_SECONDS
        assert job.job_options["failure_ttl"] == FAILURE_TTL_SECONDS
