"""The specialist's case page: their current case, what they complete during or after the call, the transfer."""

from __future__ import annotations

from datetime import timedelta

from flask import Blueprint, flash, redirect, render_template, url_for
from flask_login import current_user, login_required
from flask_wtf import FlaskForm
from sqlalchemy import select
from wtforms import RadioField, StringField, TextAreaField
from wtforms.validators import Length, Optional

from voice import db as database
from voice.dashboard.auth import audit
from voice.dashboard.pages import call_page, own_call_or_404
from voice.line import calls
from voice.line import offers as bridge
from voice.models import Call, utcnow
from voice.twilio_rest import TwilioError

bp = Blueprint("cases", __name__, url_prefix="/dashboard")

FOLLOW_UPS = {"none": "None", "callback": "Call them back", "visit": "An in-person visit"}
# A call this recent still counts as the specialist's current case after it ends (to finish the write-up).
CURRENT_FOR = timedelta(hours=2)


class CaseForm(FlaskForm):
    """What a specialist completes on the case page (the IVR asked bridged callers none of it)."""

    caller_name = StringField("Caller's name", validators=[Optional(), Length(max=200)])
    location = StringField("Where it is happening", validators=[Optional(), Length(max=300)])
    description = TextAreaField("What is going on", validators=[Optional(), Length(max=2000)])
    follow_up = RadioField("Follow-up", choices=list(FOLLOW_UPS.items()), default="none")


def current_case() -> Call | None:
    """The call this specialist is on now, or the last one they took in the past two hours."""
    if current_user.specialist_id is None:
        return None
    return database.session().scalar(
        select(Call).where(Call.specialist_id == current_user.specialist_id, Call.connected_at.is_not(None),
                           Call.started_at >= utcnow() - CURRENT_FOR)
        .order_by(Call.ended_at.is_not(None), Call.connected_at.desc()).limit(1)
    )


@bp.get("/case")
@login_required
def case():
    """A specialist's current case; a coordinator sees every case in the call log."""
    call = current_case()
    if call is None:
        return render_template("dashboard/no_case.html")
    return redirect(url_for("pages.call_detail", call_id=call.id))


@bp.post("/calls/<int:call_id>/case")
@login_required
def save_case(call_id: int):
    call = own_call_or_404(call_id)
    form = CaseForm()
    if not form.validate():
        return call_page(call, case_form=form, status=400)
    db = database.session()
    changed = {}
    for field in ("caller_name", "location", "description"):
        value = calls.clean_text(getattr(form, field).data, {"caller_name": 200, "location": 300}.get(field, 2000))
        if value != getattr(call, field):
            setattr(call, field, value)
            changed[field] = True
    if form.follow_up.data != (call.follow_up or "none"):
        call.follow_up = form.follow_up.data
        changed["follow_up"] = form.follow_up.data
    if changed:
        # The timeline says what changed and who changed it, never the caller's words again.
        calls.record_event(db, call, "case_updated", by=current_user.email, **changed)
        audit("update_case", call.call_sid)
    db.commit()
    flash("Case saved." if changed else "Nothing changed.", "ok")
    return redirect(url_for("pages.call_detail", call_id=call.id))


@bp.post("/calls/<int:call_id>/transfer")
@login_required
def transfer(call_id: int):
    """Send the caller on this live call back to 911 dispatch (a REST update of their call)."""
    call = own_call_or_404(call_id)
    if call.ended_at is not None or call.connected_at is None:
        flash("This call is not live, so there is no one to transfer.", "error")
        return redirect(url_for("pages.call_detail", call_id=call.id))
    db = database.session()
    try:
        bridge.request_transfer(db, call, by=current_user.email)
    except TwilioError as error:
        flash(f"The transfer did not go through ({error}). The caller is still on the line with you.", "error")
        return redirect(url_for("pages.call_detail", call_id=call.id))
    audit("transfer_to_dispatch", call.call_sid)
    db.commit()
    flash("The caller is being put through to 911 dispatch.", "ok")
    return redirect(url_for("pages.call_detail", call_id=call.id))


def init_app(app) -> None:
    app.register_blueprint(bp)
