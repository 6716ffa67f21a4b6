"""Every `flask --app voice ...` command group, registered in one place."""

from __future__ import annotations

from flask import Flask

from voice.commands import accounts, database, export, provision, purge, queue, report, roster

COMMANDS = (roster.specialist_cli, export.calls_cli, queue.callbacks_cli, queue.queue_cli, provision.twilio_cli,
            purge.purge_command, accounts.user_cli, database.db_cli, report.report_cli)


def init_app(app: Flask) -> None:
    for command in COMMANDS:
        app.cli.add_command(command)
