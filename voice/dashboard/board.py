"""The live board: who is on, who is holding or waiting for a callback, the calls in progress."""

from __future__ import annotations

from flask import Blueprint, abort, current_app, flash, g, redirect, render_template, request, url_for
from flask_login import current_user, login_required

from voice import db as database
from voice.dashboard import conference_pages, queries
from voice.dashboard.auth import audit, coordinator_required
from voice.line import specialists
from voice.models import Specialist, User
from voice.redisdb import get_redis
from voice.reporting import outcomes

bp = Blueprint("board", __name__, url_prefix="/dashboard")


def board_data() -> dict:
    """The board's panels, and what this user may do on a live call (listen, coach, join; add an interpreter)."""
    db = database.session()
    data = queries.board(db, get_redis(), current_app.config["TIMEZONE"])
    user = db.get(User, current_user.id)
    data.update(may_supervise=conference_pages.can_supervise(),
                my_phone=user.phone if user else None)
    return data


@bp.get("/")
@login_required
def board():
    # What the 911 center has not been told: the coordinator sees it here (and on the reports page).
    undelivered = outcomes.undelivered(database.session()) if current_user.is_coordinator else (0, None)
    return render_template("dashboard/board.html", undelivered=undelivered, **board_data())


@bp.get("/board/live")
@login_required
def board_live():
    """Just the board's panels, fetched every few seconds and swapped in place."""
    # The page's own polling is not activity: it must not keep an unattended session alive.
    g.passive_request = True
    return render_template("dashboard/_board.html", **board_data())


@bp.post("/specialists/<int:specialist_id>/availability")
@coordinator_required
def set_availability(specialist_id: int):
    db = database.session()
    specialist = db.get(Specialist, specialist_id) or abort(404)
    on = request.form.get("on") == "1"
    try:
        specialists.set_available(db, get_redis(), specialist, on)
    except specialists.RosterError as error:
        flash(str(error), "error")
    audit("specialist_on" if on else "specialist_off", f"specialist:{specialist.id}")
    db.commit()
    return redirect(url_for("board.board"))
