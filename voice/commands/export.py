"""`flask --app voice calls export`: the whole call log as CSV."""

from __future__ import annotations

import sys

from flask.cli import AppGroup

from voice import db as database
from voice.line import calls
from voice.models import AuditEntry

calls_cli = AppGroup("calls", help="The call log.")


@calls_cli.command("export")
def calls_export():
    """Write the whole call log as CSV to stdout."""
    db = database.session()
    # Every export is on the audit log, from the dashboard or from here.
    db.add(AuditEntry(user_id=None, action="export", target="cli calls export", ip="cli"))
    db.commit()
    calls.write_csv(db.execute(calls.export_query()), sys.stdout)
