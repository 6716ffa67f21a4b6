"""`flask --app voice specialist add|edit|list|on|off`: the roster of mediation specialists."""

from __future__ import annotations

import click
from flask import current_app
from flask.cli import AppGroup
from sqlalchemy import select

from voice import db as database
from voice import languages, phones
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


def offered_languages(codes: tuple[str, ...]) -> list[str]:
    """--language values: languages the line offers callers (a language it does not offer is a --skill)."""
    offered = languages.catalogue().codes()
    for code in codes:
        if code.strip().lower() not in offered:
            raise click.BadParameter(f"unsupported language {code!r} (use one of: {', '.join(offered)})",
                                     param_hint="--language")
    return list(codes)


@specialist_cli.command("add")
@click.option("--name", required=True, help="Full name, as the coordinator knows them.")
@click.option("--phone", required=True, help="The phone their calls ring, any common format.")
@click.option("--language", "languages_", multiple=True, default=("en",), show_default=True,
              help="A language they take calls in (en, es, or one from LANGUAGE_FILES); repeat for several.")
@click.option("--level", type=click.Choice(["1", "2"]), default="1", show_default=True,
              help="Their level: routing prefers level 2 for complex callers.")
@click.option("--skill", "skills", multiple=True,
              help="A skill tag (supervisor, family, landlord-tenant; a language by its code); repeat for several.")
def specialist_add(name: str, phone: str, languages_: tuple[str, ...], level: str, skills: tuple[str, ...]):
    db = database.session()
    try:
        specialist = specialists.add_specialist(db, name, parse_phone(phone), offered_languages(languages_),
                                                skills=list(skills), level=level)
    except specialists.RosterError as error:
        raise click.ClickException(str(error)) from None
    db.commit()
    click.echo(f"added {specialist.name} {specialist.phone}, level {specialist.level} ({specialist.skills}); "
               f"text ON to {current_app.config['TWILIO_PHONE_NUMBER']} to take calls")


@specialist_cli.command("edit")
@click.argument("phone")
@click.option("--level", type=click.Choice(["1", "2"]), help="Their level.")
@click.option("--language", "languages_", multiple=True,
              help="A language they take calls in; repeat for several (replaces their languages).")
@click.option("--skill", "skills", multiple=True,
              help="A skill tag besides their languages; repeat for several (replaces those skills).")
@click.option("--no-skills", is_flag=True, help="Remove every skill besides their languages.")
def specialist_edit(phone: str, level: str | None, languages_: tuple[str, ...], skills: tuple[str, ...],
                    no_skills: bool):
    """Change a specialist's level, languages or skills; what is not given is kept."""
    db = database.session()
    specialist = roster_member(phone)
    try:
        specialists.update_specialist(
            db, get_redis(), specialist, specialist.name, specialist.phone,
            offered_languages(languages_) if languages_ else specialist.language_list, specialist.active,
            skills=[] if no_skills else (list(skills) if skills else None), level=level)
    except specialists.RosterError as error:
        raise click.ClickException(str(error)) from None
    db.commit()
    click.echo(f"{specialist.name}: level {specialist.level}, skills {specialist.skills}")


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
        click.echo(f"{s.phone:<16} {s.name:<28} L{s.level} {state:<12} {s.skills}")


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
