"""`flask --app voice purge [--dry-run]`: redact callers' personal data past RETENTION_DAYS."""

from __future__ import annotations

import click
from flask import current_app

from voice import db as database
from voice.casework.retention import calls_due, cutoff, purge, recording_sid


@click.command("purge")
@click.option("--dry-run", is_flag=True, help="List the calls that would be redacted; change nothing.")
def purge_command(dry_run: bool):
    """Redact the personal data of calls older than RETENTION_DAYS and delete their recordings."""
    config = current_app.config
    db = database.session()
    days = config["RETENTION_DAYS"]
    if dry_run:
        due = calls_due(db, cutoff(days))
        recordings = sum(1 for call in due if recording_sid(call) is not None)
        click.echo(f"would redact {len(due)} call(s) older than {days} days ({recordings} with a recording); "
                   "nothing was changed")
        # Ids and dates only: a dry run must not print the personal data it is about to remove.
        for call in due:
            click.echo(f"#{call.id:<7} started {call.started_at:%Y-%m-%d %H:%M}Z"
                       f"{'  recording' if recording_sid(call) else ''}")
        return
    result = purge(db, config)
    click.echo(f"{result.summary()}; {result.recordings_deleted} recording(s) deleted at Twilio")
    if result.left_for_next_run:
        ids = ", ".join(f"#{call_id}" for call_id in result.left_for_next_run)
        click.echo(f"Twilio could not delete the recordings of {ids}; the next run tries again")
