"""`flask --app voice queue list` and `callbacks list | reconcile`: who is waiting, on hold or for a callback."""

from __future__ import annotations

import click
from flask import current_app
from flask.cli import AppGroup

from voice import db as database
from voice import durations, phones
from voice.line import callbacks, holds
from voice.redisdb import get_redis
from voice.tasks import dispatch_at, dispatch_soon

callbacks_cli = AppGroup("callbacks", help="Callers waiting to be called back.")


@callbacks_cli.command("list")
@click.option("--all", "show_all", is_flag=True, help="Include completed and cancelled requests.")
def callbacks_list(show_all: bool):
    """Pending, scheduled, in-progress and unreachable requests, oldest first."""
    statuses = callbacks.STATUSES if show_all else (*callbacks.OPEN_STATUSES, callbacks.UNREACHABLE)
    rows = callbacks.open_requests(database.session(), statuses)
    if not rows:
        click.echo("no callback requests waiting")
        return
    region = current_app.config["DEFAULT_REGION"]
    for req in rows:
        number = phones.display(req.callback_number, region) or "(no number: recorded message)"
        if req.status == callbacks.SCHEDULED:
            when = f"due {req.due_at:%Y-%m-%d %H:%M}Z"
        else:
            when = f"waiting since {callbacks.minutes_ago(req)}"
        click.echo(f"#{req.id:<5} {req.status:<12} {number:<16} {req.language:<3} {req.call.caller_name or '-':<24} "
                   f"tries {req.attempts}  {when}  {req.reason or ''}")


@callbacks_cli.command("reconcile")
def callbacks_reconcile():
    """Rebuild the Redis side (idle specialists, the job queue) from SQL, e.g. after Redis was flushed."""
    db = database.session()
    r = get_redis()
    summary = callbacks.reconcile(db, r)
    later = callbacks.scheduled_times(db)
    for due in later:
        dispatch_at(r, due)
    dispatch_soon(r)
    click.echo(f"{summary['specialists_on']} specialist(s) on; {summary['pending']} callback(s) waiting now, "
               f"{summary['promoted']} moved from scheduled, {len(later)} time(s) scheduled again; "
               "a worker will dial them")


queue_cli = AppGroup("queue", help="Callers holding on the line for a specialist.")


@queue_cli.command("list")
def queue_list():
    """Everyone on hold now, longest waiting first, with how long they have held."""
    db = database.session()
    rows = holds.holding_now(db)
    if not rows:
        click.echo("nobody is holding")
        return
    region = current_app.config["DEFAULT_REGION"]
    for hold in rows:
        call = hold.call
        state = "being connected" if hold.status == holds.CONNECTING else f"number {holds.position(db, hold)} in line"
        click.echo(f"{state:<18} held {durations.ago(hold.arrived_at):<10} {hold.language:<3} "
                   f"{phones.masked(call.from_number, region):<16} {call.category or '-':<18} {call.caller_name or '-'}")
