"""The roster pages: add specialists, change their numbers, languages, level and skills, retire them."""

from __future__ import annotations

from flask import Blueprint, abort, current_app, flash, redirect, render_template, request, url_for
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from voice import db as database
from voice import phones
from voice.dashboard.auth import audit, coordinator_required
from voice.dashboard.site import phone_display
from voice.line import specialists
from voice.models import Specialist
from voice.redisdb import get_redis

bp = Blueprint("roster_pages", __name__, url_prefix="/dashboard")


@bp.get("/roster")
@coordinator_required
def roster():
    rows = database.session().scalars(select(Specialist).order_by(Specialist.active.desc(), Specialist.name)).all()
    return render_template("dashboard/roster.html", rows=rows, other_skills=specialists.other_skills,
                           line_number=current_app.config["TWILIO_PHONE_NUMBER"])


def _form_phone() -> str | None:
    """The form's phone number in E.164, or None after telling the coordinator why the line will not call it."""
    config = current_app.config
    raw = request.form.get("phone", "")
    check = phones.check_callable(raw, config["DEFAULT_REGION"], config["CALLBACK_COUNTRIES"])
    if check.number is None:
        flash(f"{raw!r} {check.reason()}.", "error")
    return check.number


def _save_roster(change, action: str, duplicate: str):
    """Run one roster change (returns the specialist), audited; a clash of numbers is a form error, not a 500."""
    db = database.session()
    try:
        specialist = change(db)
        audit(action, f"specialist:{specialist.id}")
        db.commit()
    except specialists.RosterError as error:
        flash(str(error), "error")
        return None
    except IntegrityError:
        # A double click, or someone else saving this number between our check and our write.
        db.rollback()
        flash(duplicate, "error")
        return None
    return specialist


@bp.post("/roster")
@coordinator_required
def roster_add():
    number = _form_phone()
    if number is None:
        return redirect(url_for("roster_pages.roster"))
    name = (request.form.get("name") or "").strip()[:120]
    languages = request.form.getlist("languages") or ["en"]
    skills, level = request.form.get("skills", ""), request.form.get("level", "1")
    specialist = _save_roster(lambda db: specialists.add_specialist(db, name, number, languages, skills, level),
                              "roster_add", f"{phone_display(number)} is already on the roster.")
    if specialist is not None:
        flash(f"{specialist.name} added. They text ON to the line to take calls.", "ok")
    return redirect(url_for("roster_pages.roster"))


@bp.post("/roster/<int:specialist_id>")
@coordinator_required
def roster_edit(specialist_id: int):
    specialist = database.session().get(Specialist, specialist_id) or abort(404)
    number = _form_phone()
    if number is None:
        return redirect(url_for("roster_pages.roster"))

    def change(db):
        changed = specialists.update_specialist(
            db, get_redis(), specialist, name=(request.form.get("name") or "").strip()[:120], phone_e164=number,
            languages=request.form.getlist("languages") or ["en"], active=request.form.get("active") == "1",
            skills=request.form.get("skills", ""), level=request.form.get("level", specialist.level))
        return changed

    if _save_roster(change, "roster_edit", f"{phone_display(number)} already belongs to someone else on the roster."):
        flash(f"{specialist.name} saved.", "ok")
    return redirect(url_for("roster_pages.roster"))
