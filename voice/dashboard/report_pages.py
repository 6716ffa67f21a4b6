"""The reports page for the city and its CSV, and the audit log of who saw and changed what."""

from __future__ import annotations

import csv
import io
from datetime import date, timedelta

from flask import Blueprint, Response, current_app, flash, render_template, request
from sqlalchemy import select

from voice import db as database
from voice.clock import local_today
from voice.dashboard import queries
from voice.dashboard.auth import audit, coordinator_required
from voice.line import calls
from voice.models import AuditEntry

bp = Blueprint("report_pages", __name__, url_prefix="/dashboard")


def _report_range() -> tuple[date, date]:
    """The reports' dates from the query string: this month by default, at most two years."""
    today = local_today(current_app.config["TIMEZONE"])
    try:
        start = date.fromisoformat(request.args.get("start") or today.replace(day=1).isoformat())
        end = date.fromisoformat(request.args.get("end") or today.isoformat())
    except ValueError:
        flash("Dates must look like 2026-11-01.", "error")
        start, end = today.replace(day=1), today
    if end < start:
        start, end = end, start
    return start, min(end, start + timedelta(days=366 * 2))


@bp.get("/reports")
@coordinator_required
def reports():
    start, end = _report_range()
    zone = current_app.config["TIMEZONE"]
    data = queries.report(database.session(), start, end, zone)
    case_data = queries.case_report(database.session(), start, end, zone)
    levels = queries.level_report(database.session(), start, end, zone)
    return render_template("dashboard/reports.html", data=data, cases=case_data, start=start, end=end,
                           CASE_OUTCOME_WORDS=queries.CASE_OUTCOME_WORDS, CLOSED_HOW_WORDS=queries.CLOSED_HOW_WORDS,
                           levels=levels)


@bp.get("/reports/cases.csv")
@coordinator_required
def case_report_csv():
    start, end = _report_range()
    audit("export_case_report", f"{start.isoformat()}..{end.isoformat()}")
    database.session().commit()
    data = queries.case_report(database.session(), start, end, current_app.config["TIMEZONE"])
    return figures_csv(queries.case_report_rows(data, start, end), f"cases-{start.isoformat()}-{end.isoformat()}.csv")


def figures_csv(rows: list[tuple[str, str, object]], filename: str) -> Response:
    """A report's (figure, item, value) rows as a CSV download; items (names) made safe for a spreadsheet."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(["figure", "item", "value"])
    for figure, item, value in rows:
        writer.writerow([figure, calls.csv_safe(str(item)), value])
    return Response(buffer.getvalue(), mimetype="text/csv",
                    headers={"Content-Disposition": f'attachment; filename="{filename}"'})


@bp.get("/reports/levels.csv")
@coordinator_required
def level_report_csv():
    """Calls by the level of the specialist who took them, and the share routed to a preferred specialist."""
    start, end = _report_range()
    audit("export_level_report", f"{start.isoformat()}..{end.isoformat()}")
    database.session().commit()
    data = queries.level_report(database.session(), start, end, current_app.config["TIMEZONE"])
    return figures_csv(queries.level_report_rows(data, start, end), f"levels-{start.isoformat()}-{end.isoformat()}.csv")


@bp.get("/audit")
@coordinator_required
def audit_log():
    rows = database.session().scalars(select(AuditEntry).order_by(AuditEntry.id.desc()).limit(500)).all()
    return render_template("dashboard/audit.html", rows=rows)
