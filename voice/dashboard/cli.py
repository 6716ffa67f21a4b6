"""`flask --app voice user create EMAIL --role coordinator|specialist` (the password is prompted, never an argument)."""

from __future__ import annotations

import click
from flask import current_app
from flask.cli import AppGroup

from voice import db as database
from voice import phones, specialists
from voice.dashboard.auth import ROLES, SPECIALIST, AccountError, create_user

user_cli = AppGroup("user", help="Dashboard accounts.")


@user_cli.command("create")
@click.argument("email")
@click.option("--role", type=click.Choice(ROLES), required=True, help="coordinator: everything; specialist: their calls.")
@click.option("--phone", help="For a specialist: the roster phone number their account belongs to.")
def create(email: str, role: str, phone: str | None):
    """Create an account; the password is typed at a hidden prompt (twice), never passed on the command line."""
    db = database.session()
    specialist_id = None
    if role == SPECIALIST:
        number = phones.to_e164(phone or "", current_app.config["DEFAULT_REGION"])
        specialist = specialists.find_by_phone(db, number) if number else None
        if specialist is None:
            raise click.ClickException("a specialist account needs --phone of someone on the roster "
                                       "(flask --app voice specialist add ...)")
        specialist_id = specialist.id
    password = click.prompt("Password (10 characters or more)", hide_input=True, confirmation_prompt=True)
    try:
        user = create_user(db, email, password, role, specialist_id)
    except AccountError as error:
        raise click.ClickException(str(error)) from None
    db.commit()
    click.echo(f"created {role} account {user.email}")
