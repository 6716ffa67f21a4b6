"""Safety in the field on the dashboard: "Arrived", "Done" and SOS on a visit page, and a coordinator ending an
escalation from the board with a note. Views check who may, call voice/casework/field_safety.py, audit, redirect."""

from __future__ import annotations

import json
from datetime import datetime

from flask import Blueprint, abort, current_app, request, url_for
from flask_login import current_user, login_required

from voice import db as database
from voice.casework import field_safety as safety
from voice.casework.field_texts import clock, sos_calls
from voice.dashboard.auth import coordinator_required, record_change, refused_on
from voice.dashboard.case_pages import own_visit_or_404
from voice.line.calls import clean_text
from voice.models import SafetyAlert, SafetyContact, SafetyEvent, Specialist, Visit
from voice.redisdb import get_redis

bp = Blueprint("safety_pages", __name__, url_prefix="/dashboard")


def _actor() -> safety.Actor:
    """The signed-in person: a specialist by their name (from their visit page), a coordinator by their email."""
    specialist = database.session().get(Specialist, current_user.specialist_id or 0)
    label = f"{specialist.name} (visit page)" if specialist else current_user.email
    return safety.Actor(label, specialist_id=specialist.id if specialist else None, user_id=current_user.id)


@bp.app_template_global()
def on_team(visit: Visit) -> bool:
    """Whether the signed-in specialist is on the visit's team (the check-in, OUT and SOS buttons are theirs)."""
    return current_user.specialist_id is not None and current_user.specialist_id in {m.specialist_id for m in visit.team}


def _visit_url(visit: Visit) -> str:
    return url_for("case_pages.visit_page", visit_id=visit.id)


@bp.post("/visits/<int:visit_id>/arrived")
@login_required
def arrived(visit_id: int):
    visit = own_visit_or_404(visit_id)
    with refused_on(safety.SafetyError, _visit_url(visit)):
        safety.check_in(database.session(), get_redis(), current_app.config, visit, _actor())
    return record_change("safety_check_in", f"visit:{visit.id}",
                         f"Checked in. The team is due back by {clock(visit.expected_back_at, current_app.config)}.",
                         _visit_url(visit))


@bp.post("/visits/<int:visit_id>/done")
@login_required
def done(visit_id: int):
    visit = own_visit_or_404(visit_id)
    with refused_on(safety.SafetyError, _visit_url(visit)):
        safety.check_out(database.session(), get_redis(), current_app.config, visit, _actor())
    return record_change("safety_check_out", f"visit:{visit.id}", "Checked out. Welcome back.", _visit_url(visit))


@bp.post("/visits/<int:visit_id>/sos")
@login_required
def sos(visit_id: int):
    visit = own_visit_or_404(visit_id)
    if not on_team(visit):
        abort(403)  # an SOS comes from the team; a coordinator has the phone
    db = database.session()
    alert = safety.raise_sos(db, get_redis(), current_app.config, db.get(Specialist, current_user.specialist_id), visit,
                             _actor())
    calling = sos_calls(alert, current_app.config)
    said = (f"SOS sent: calling {' and '.join(calling)} now. Call 911 if you can." if calling else
            "SOS recorded, but the line has nobody set up to call. Call 911 now.")
    return record_change("safety_sos", f"visit:{visit.id} alert:{alert.id}", said, _visit_url(visit))


@bp.post("/safety/alerts/<int:alert_id>/end")
@coordinator_required
def end_alert(alert_id: int):
    db = database.session()
    alert = db.get(SafetyAlert, alert_id) or abort(404)
    back = url_for("board.board")
    note = clean_text(request.form.get("note", ""), 2000) or ""
    with refused_on(safety.SafetyError, back):
        safety.end_alert(db, get_redis(), current_app.config, alert, _actor(), note,
                         team_left=request.form.get("team_left") == "1")
    return record_change("safety_end_escalation", f"alert:{alert.id}", "Escalation ended; your note is on the visit.",
                         back)


# --- how the timeline reads --------------------------------------------------------------------------------


@bp.app_template_filter("safety_contact")
def contact_words(contact: SafetyContact) -> str:
    return safety.contact_label(contact, current_app.config)


HOW_CLOSED = {"safe": "the team replied OK", "out": "the team checked out", "coordinator": "ended by a coordinator",
              "sos": "an SOS took over"}


@bp.app_template_filter("safety_event")
def event_words(event: SafetyEvent) -> str:
    """One step of a visit's safety timeline, in words."""
    detail = json.loads(event.detail or "{}")
    config = current_app.config
    to, kind = detail.get("to", ""), event.kind
    words = {
        "checked_in": f"Checked in; due back by {clock(_when(detail.get('due_back')), config)}",
        "more_time": f"More time: due back by {clock(_when(detail.get('due_back')), config)}",
        "checked_out": "Checked out" + (" (never checked in)" if detail.get("never_checked_in") else "")
                       + (", late" if detail.get("late") else ""),
        "overdue": "Overdue: the team is asked to reply OK",
        "texted": f"Texted {to}",
        "calling": f"Calling {to}",
        "call_ended": f"Call to {to} ended: {str(detail.get('status', '')).replace('-', ' ')}",
        "text_failed": f"Text to {to} failed: {detail.get('error', '')}",
        "call_failed": f"Call to {to} failed: {detail.get('error', '')}",
        "rung_coordinator": "No reply: the coordinator's turn",
        "rung_backups": "Not acknowledged: the backup contacts' turn",
        "rung_dispatch": "Not acknowledged: the last rung",
        "acknowledged": "Acknowledged" + ("" if detail.get("first", True) else " (after someone else)"),
        "ok": "OK: safe",
        "sos": "SOS" + ("" if detail.get("on_visit", True) else " (outside a visit)"),
        "alert_closed": f"Alert ended: {HOW_CLOSED.get(detail.get('how'), detail.get('how'))}"
                        + (f" — {detail['note']}" if detail.get("note") else ""),
        "nobody_to_call": f"Nobody to call at this rung: {detail.get('setting')} is empty",
        "dispatch_already_called": "Dispatch was called already",
        "no_dispatch_outside_a_visit": "No dispatch call: not on a visit",
    }
    return words.get(kind, kind.replace("_", " ").capitalize())


def _when(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value else None
