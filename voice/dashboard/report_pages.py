"""The reports page for the city and its CSV, and the audit log of who saw and changed what."""

from __future__ import annotations

import csv
import io
from datetime import date, timedelta

from flask import Blueprint, Response, current_app, flash, render_template, request, stream_with_context
from sqlalchemy import select

from voice import db as database
from voice.clock import local_today
from voice.dashboard import queries
from voice.dashboard.auth import audit, coordinator_required
from voice.line import calls
from voice.models import AuditEntry
from voice.reporting import figures, open_data, outcomes
from voice.reporting.areas import areas_for
from voice.reporting.periods import Period, for_reports

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
    for_reports(database.session())
    data = queries.report(database.session(), start, end, zone)
    case_data = queries.case_report(database.session(), start, end, zone)
    levels = queries.level_report(database.session(), start, end, zone)
    period = Period(start, end, zone)
    council = figures.council_report(database.session(), period, current_app.config, _areas())
    sent = outcomes.delivery_counts(database.session(), period)
    return render_template("dashboard/reports.html", data=data, cases=case_data, start=start, end=end,
                           CASE_OUTCOME_WORDS=queries.CASE_OUTCOME_WORDS, CLOSED_HOW_WORDS=queries.CLOSED_HOW_WORDS,
                           council=council, council_charts=figures.chart_data(council), sent=sent,
                           WEEKDAYS=figures.WEEKDAYS, levels=levels)


def _areas():
    return areas_for(current_app.config["DISTRICTS_CSV"])


def _csv_download(chunks, name: str) -> Response:
    return Response(stream_with_context(chunks), mimetype="text/csv",
                    headers={"Content-Disposition": f'attachment; filename="{name}"'})


@bp.get("/reports/figures.csv")
@coordinator_required
def figures_csv():
    """Every council figure of the range with the previous period and the change."""
    start, end = _report_range()
    period = Period(start, end, current_app.config["TIMEZONE"])
    audit("export_report", str(period))
    database.session().commit()
    report = figures.council_report(database.session(), period, current_app.config, _areas())
    rows = (dict(zip(figures.CSV_COLUMNS, row, strict=True)) for row in figures.report_rows(report))
    return _csv_download(calls.table_chunks(figures.CSV_COLUMNS, rows), f"figures-{start}-{end}.csv")


@bp.get("/reports/open-data.csv")
@coordinator_required
def open_data_csv():
    """One row per call of the range with no personal information, for the city to publish."""
    start, end = _report_range()
    period = Period(start, end, current_app.config["TIMEZONE"])
    audit("export_open_data", str(period))
    database.session().commit()
    # The rows stream from the database inside the response, in the request's own session.
    chunks = open_data.csv_chunks(database.session(), period, current_app.config, _areas())
    return _csv_download(chunks, f"open-data-{start}-{end}.csv")


@bp.get("/reports/outcomes.csv")
@coordinator_required
def outcomes_csv():
    """The calls and cases from 911 that closed on a day, as the 911 center is told of them."""
    zone = current_app.config["TIMEZONE"]
    try:
        day = date.fromisoformat(request.args.get("day") or local_today(zone).isoformat())
    except ValueError:
        day = local_today(zone)
    audit("export_outcomes", day.isoformat())
    database.session().commit()
    return _csv_download(calls.table_chunks(outcomes.DAILY_COLUMNS, outcomes.daily_rows(database.session(), day, zone)),
                         f"outcomes-{day}.csv")


@bp.get("/reports/cases.csv")
@coordinator_required
def case_report_csv():
    start, end = _report_range()
    audit("export_case_report", f"{start.isoformat()}..{end.isoformat()}")
    database.session().commit()
    data = queries.case_report(database.session(), start, end, current_app.config["TIMEZONE"])
    return rows_csv(queries.case_report_rows(data, start, end), f"cases-{start.isoformat()}-{end.isoformat()}.csv")


def rows_csv(rows: list[tuple[str, str, object]], filename: str) -> Response:
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
    return rows_csv(queries.level_report_rows(data, start, end), f"levels-{start.isoformat()}-{end.isoformat()}.csv")


@bp.get("/audit")
@coordinator_required
def audit_log():
    rows = database.session().scalars(select(AuditEntry).order_by(AuditEntry.id.desc()).limit(500)).all()
    return render_template("dashboard/audit.html", rows=rows)
