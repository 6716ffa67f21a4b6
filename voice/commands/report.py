"""`flask --app voice report ...`: the council's figures, the exports (full, or open data), and the daily file of
outcomes sent back to 911. Each writes CSV to stdout (or --output) and an audit entry."""

from __future__ import annotations

from datetime import date, datetime

import click
from flask import current_app
from flask.cli import AppGroup

from voice import db as database
from voice.clock import local_today
from voice.line import calls
from voice.models import AuditEntry, Call
from voice.reporting import figures, open_data, outcomes
from voice.reporting.areas import areas_for
from voice.reporting.periods import Period

report_cli = AppGroup("report", help="The council's figures, the exports, and the outcomes sent back to 911.")

DAY = click.DateTime(formats=["%Y-%m-%d"])


def _period(start: datetime, end: datetime) -> Period:
    if end < start:
        raise click.BadParameter("--to is before --from")
    return Period(start.date(), end.date(), current_app.config["TIMEZONE"])


def _audited(action: str, target: str) -> None:
    db = database.session()
    db.add(AuditEntry(user_id=None, action=action, target=f"cli {target}"[:200], ip="cli"))
    db.commit()


def _write(chunks, output) -> None:
    for chunk in chunks:
        output.write(chunk)


@report_cli.command("export")
@click.option("--from", "start", type=DAY, required=True, help="First day (YYYY-MM-DD, the program's time zone).")
@click.option("--to", "end", type=DAY, required=True, help="Last day, included.")
@click.option("--open-data", "open_data_only", is_flag=True,
              help="One row per call with no personal information, to publish.")
@click.option("--output", "-o", type=click.File("w", encoding="utf-8"), default="-", help="A file (default stdout).")
def export(start: datetime, end: datetime, open_data_only: bool, output):
    """The calls of a date range as CSV: every column for coordinators, or --open-data to publish."""
    period = _period(start, end)
    db = database.session()
    config = current_app.config
    _audited("export_open_data" if open_data_only else "export", str(period))
    if open_data_only:
        _write(open_data.csv_chunks(db, period, config, areas_for(config["DISTRICTS_CSV"])), output)
        return
    _write(calls.csv_chunks(db.execute(calls.export_query(period.holds(Call.started_at)))), output)


@report_cli.command("figures")
@click.option("--from", "start", type=DAY, required=True, help="First day (YYYY-MM-DD, the program's time zone).")
@click.option("--to", "end", type=DAY, required=True, help="Last day, included.")
@click.option("--output", "-o", type=click.File("w", encoding="utf-8"), default="-", help="A file (default stdout).")
def figures_command(start: datetime, end: datetime, output):
    """Every council figure of a date range with the previous period and the change, as CSV."""
    period = _period(start, end)
    config = current_app.config
    _audited("export_report", str(period))
    report = figures.council_report(database.session(), period, config, areas_for(config["DISTRICTS_CSV"]))
    _write(calls.table_chunks(figures.CSV_COLUMNS, (dict(zip(figures.CSV_COLUMNS, row, strict=True))
                                                   for row in figures.report_rows(report))), output)


@report_cli.command("outcomes")
@click.option("--day", type=DAY, default=None, help="The day (YYYY-MM-DD, the program's time zone); default today.")
@click.option("--output", "-o", type=click.File("w", encoding="utf-8"), default="-", help="A file (default stdout).")
def outcomes_command(day: datetime | None, output):
    """The calls and cases from 911 that closed on a day, as the 911 center is told of them, as CSV."""
    zone = current_app.config["TIMEZONE"]
    which: date = day.date() if day else local_today(zone)
    _audited("export_outcomes", which.isoformat())
    _write(calls.table_chunks(outcomes.DAILY_COLUMNS, outcomes.daily_rows(database.session(), which, zone)), output)
