"""`flask --app voice db upgrade`: migrate the database (the Procfile's release step)."""

from __future__ import annotations

import click
from flask import current_app
from flask.cli import AppGroup


@click.group("db", cls=AppGroup, help="Database migrations.")
def db_cli():
    pass


@db_cli.command("upgrade", help="Migrate the database to the newest schema (safe to run on every release).")
def upgrade_command():
    current_app.extensions["db"].upgrade()
    click.echo("database is at the newest schema")
