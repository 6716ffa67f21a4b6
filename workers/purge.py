"""The nightly purge of callers' personal data past RETENTION_DAYS (see voice/retention.py)."""

from __future__ import annotations

from flask import current_app

from voice import db as database
from voice.casework import retention
from workers.jobs import job_context


def purge_personal_data() -> dict:
    """Redact the calls past their retention; safe to run twice (a redacted call is never picked again)."""
    with job_context():
        result = retention.purge(database.session(), current_app.config)
        # Counts and ids only: RQ keeps a job's result in Redis.
        return {"redacted": len(result.redacted), "recordings_deleted": result.recordings_deleted,
                "left_for_next_run": result.left_for_next_run}
