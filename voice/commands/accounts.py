"""`flask --app voice user create|set-password|disable|reset-2fa EMAIL` (passwords are prompted, never arguments)."""

from __future__ import annotations

from collections.abc import Callable

import click
from flask import current_app
from flask.cli import AppGroup
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from voice import db as database
from voice import phones
from voice.dashboard.auth import (
    ROLES,
    SPECIALIST,
    AccountError,
    create_user,
    reset_two_factor,
    set_active,
    set_password,
)
from voice.line import specialists
from voice.models import AuditEntry, User

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
        db.commit()
    except AccountError as error:
        raise click.ClickException(str(error)) from None
    except IntegrityError:
        # Created by someone else between our check and our insert.
        db.rollback()
        raise click.ClickException(f"{email.strip().lower()} already has an account") from None
    click.echo(f"created {role} account {user.email}")


def _account(db, email: str) -> User:
    user = db.scalar(select(User).where(func.lower(User.email) == email.strip().lower()))
    if user is None:
        raise click.ClickException(f"no account {email}")
    return user


def _change_account(email: str, change: Callable[[Session, User], None], done: str) -> None:
    """Find the account, make the change, commit, and say `done` (formatted with the account's email)."""
    db = database.session()
    user = _account(db, email)
    change(db, user)
    db.commit()
    click.echo(done.format(email=user.email))


def _new_password(db: Session, user: User) -> None:
    password = click.prompt("New password (10 characters or more)", hide_input=True, confirmation_prompt=True)
    try:
        set_password(user, password)
    except AccountError as error:
        raise click.ClickException(str(error)) from None


def _reset_two_factor(db: Session, user: User) -> None:
    reset_two_factor(db, user)
    # No one is signed in at a terminal: the log says it came from the command line.
    db.add(AuditEntry(user_id=None, action="2fa_reset", target=f"user:{user.id}", ip="cli"))


@user_cli.command("set-password")
@click.argument("email")
def set_password_command(email: str):
    """Give an account a new password (prompted); every session signed in with the old one ends."""
    _change_account(email, _new_password, "new password set for {email}; their sessions have ended")


@user_cli.command("disable")
@click.argument("email")
def disable_command(email: str):
    """Disable an account and end its sessions at once."""
    _change_account(email, lambda db, user: set_active(user, False), "disabled {email}; their sessions have ended")


@user_cli.command("reset-2fa")
@click.argument("email")
def reset_two_factor_command(email: str):
    """Forget an account's authenticator and recovery codes (a lost phone) and end its sessions."""
    _change_account(email, _reset_two_factor, "two-factor sign-in reset for {email}; their sessions have ended and "
                    "they set it up again at their next sign-in if their role needs it")
