"""`flask --app voice specialist add|list|on|off`: the roster of mediation specialists."""

from __future__ import annotations

import click
from flask import current_app
from flask.cli import AppGroup
from sqlalchemy import select

from voice import db as database
from voice import phones
from voice.line import specialists
from voice.models import Specialist
from voice.redisdb import get_redis


def parse_phone(raw: str) -> str:
    """A roster number typed at the CLI, in E.164, if the line may dial it."""
    config = current_app.config
    check = phones.check_callable(raw, config["DEFAULT_REGION"], config["CALLBACK_COUNTRIES"])
    if check.number is None:
        raise click.BadParameter(f"{raw!r} {check.reason()}", param_hint="PHONE")
    return check.number


def roster_member(raw: str) -> Specialist:
    specialist = specialists.find_by_phone(database.session(), parse_phone(raw))
    if specialist is None:
        raise click.ClickException(f"no specialist with phone {raw}")
    return specialist


specialist_cli = AppGroup("specialist", help="The roster of mediation specialists.")


@specialist_cli.command("add")
@click.option("--name", required=True, help="Full name, as the coordinator knows them.")
@click.option("--phone", required=True, help="The phone their calls ring, any common format.")
@click.option("--language", "languages", multiple=True, default=("en",), show_default=True,
              help="A language they take calls in (en, es); repeat for several.")
def specialist_add(name: str, phone: str, languages: tuple[str, ...]):
    db = database.session()
    try:
        specialist = specialists.add_specialist(db, name, parse_phone(phone), list(languages))
    except specialists.RosterError as error:
        raise click.ClickException(str(error)) from None
    db.commit()
    click.echo(f"added {specialist.name} {specialist.phone} ({specialist.languages}); text ON to {current_app.config['TWILIO_PHONE_NUMBER']} to take calls")


@specialist_cli.command("list")
def specialist_list():
    db = database.session()
    r = get_redis()
    rows = db.scalars(select(Specialist).order_by(Specialist.name)).all()
    if not rows:
        click.echo("no specialists yet: flask --app voice specialist add --name NAME --phone PHONE")
        return
    for s in rows:
        state = "deactivated" if not s.active else specialists.state_of(r, s)
        click.echo(f"{s.phone:<16} {s.name:<28} {s.languages:<6} {state}")


def _switch(phone: str, on: bool):
    db = database.session()
    specialist = roster_member(phone)
    try:
        specialists.set_available(db, get_redis(), specialist, on)
    except specialists.RosterError as error:
        raise click.ClickException(str(error)) from None
    click.echo(f"{specialist.name} is {'ON' if on else 'OFF'}")


@specialist_cli.command("on")
@click.argument("phone")
def specialist_on(phone: str):
    _switch(phone, True)


@specialist_cli.command("off")
@click.argument("phone")
def specialist_off(phone: str):
    _switch(phone, False)
