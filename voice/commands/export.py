"""`flask --app voice calls export`: the whole call log as CSV."""

from __future__ import annotations

import sys

from flask.cli import AppGroup
from sqlalchemy import select

from voice import db as database
from voice.line import calls
from voice.models import AuditEntry, Call

calls_cli = AppGroup("calls", help="The call log.")


@calls_cli.command("export")
def calls_export():
    """Write the whole call log as CSV to stdout."""
    db = database.session()
    # Every export is on the audit log, from the dashboard or from here.
    db.add(AuditEntry(user_id=None, action="export", target="cli calls export", ip="cli"))
    db.commit()
    rows = db.scalars(select(Call).order_by(Call.started_at, Call.id).execution_options(yield_per=1000))
    calls.write_csv(rows, sys.stdout)
