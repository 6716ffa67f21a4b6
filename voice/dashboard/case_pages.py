"""The case pages: a case's history and timeline, linking, merging and splitting, visits (book, move, cancel,
outcome), follow-ups, and each specialist's calendar feed. Views validate, call voice/cases.py and
voice/visits.py, audit, and redirect."""

from __future__ import annotations

import json
import secrets
from collections.abc import Callable
from datetime import timedelta
from typing import TypeVar

from flask import (
    Blueprint,
    Response,
    abort,
    current_app,
    flash,
    make_response,
    redirect,
    render_template,
    request,
    url_for,
)
from flask_login import current_user, login_required
from flask_wtf import FlaskForm
from sqlalchemy import or_, select
from wtforms import (
    BooleanField,
    DateField,
    IntegerField,
    RadioField,
    SelectMultipleField,
    StringField,
    TextAreaField,
    TimeField,
)
from wtforms.validators import InputRequired, Length, NumberRange, Optional
from wtforms.widgets import CheckboxInput, ListWidget

from voice import db as database
from voice import phones
from voice.casework import calendar_feed as feed
from voice.casework import cases, field_safety, visits
from voice.clock import local_today, to_local, utcnow
from voice.dashboard.auth import audit, coordinator_required, record_change, refuse, refused_on
from voice.line import callbacks, calls
from voice.models import Call, CallNote, Case, CaseEvent, Specialist, Visit, VisitMember
from voice.redisdb import get_redis
from voice.script import CATEGORY_LABELS
from voice.tasks import dispatch_at

T = TypeVar("T")

bp = Blueprint("case_pages", __name__, url_prefix="/dashboard")


class CheckboxesField(SelectMultipleField):
    widget = ListWidget(prefix_label=False)
    option_widget = CheckboxInput()


class VisitForm(FlaskForm):
    day = DateField("Date", validators=[InputRequired("Enter the date of the visit.")])
    time = TimeField("Time", validators=[InputRequired("Enter the time of the visit.")])
    address = StringField("Address", validators=[Optional(), Length(max=visits.ADDRESS_MAX)])
    team = CheckboxesField("Team", coerce=int, validate_choice=False)
    contact_number = StringField("Caller's number for texts", validators=[Optional(), Length(max=32)])
    confirm = BooleanField("Book it anyway")


class OutcomeForm(FlaskForm):
    outcome = RadioField("How it went", choices=list(cases.VISIT_OUTCOMES.items()),
                         validators=[InputRequired("Choose how the visit went.")])
    notes = TextAreaField("Notes", validators=[Optional(), Length(max=4000)])


class CancelForm(FlaskForm):
    reason = StringField("Reason", validators=[Optional(), Length(max=300)])


class FollowUpForm(FlaskForm):
    days = IntegerField("Call back in (days)", default=7,
                        validators=[InputRequired("Enter in how many days."), NumberRange(1, 90)])
    note = StringField("What for", validators=[Optional(), Length(max=300)])


class CloseForm(FlaskForm):
    outcome = RadioField("How the case ended", choices=list(cases.OUTCOMES.items()),
                         validators=[InputRequired("Choose how the case ended.")])


# --- who may see what ------------------------------------------------------------------------------------


def own_case_or_404(case_id: int) -> Case:
    """The case, if this user may see it: coordinators all; a specialist those with their call or visit."""
    db = database.session()
    case = db.get(Case, case_id) or abort(404)
    if current_user.is_coordinator:
        return case
    mine = current_user.specialist_id
    if mine is None:
        abort(404)
    took = db.scalar(select(Call.id).where(Call.case_id == case.id, Call.specialist_id == mine).limit(1))
    went = db.scalar(select(Visit.id).join(VisitMember, VisitMember.visit_id == Visit.id)
                     .where(Visit.case_id == case.id, VisitMember.specialist_id == mine).limit(1))
    if took is None and went is None:
        abort(404)
    return case


def _zone() -> str:
    return current_app.config["TIMEZONE"]


def _roster() -> list[Specialist]:
    return list(database.session().scalars(select(Specialist).where(Specialist.active.is_(True))
                                           .order_by(Specialist.name)))


def _visit_form(**data) -> VisitForm:
    form = VisitForm(**data)
    form.team.choices = [(s.id, s.name) for s in _roster()]
    return form


def _latest_call(db, case: Case) -> Call | None:
    return db.scalar(select(Call).where(Call.case_id == case.id).order_by(Call.started_at.desc()).limit(1))


# --- the case page ---------------------------------------------------------------------------------------


@bp.get("/cases/<int:case_id>")
@login_required
def case_page(case_id: int):
    case = own_case_or_404(case_id)
    if case.status == cases.MERGED:
        flash(f"Case {case.id} was merged into this one.", "ok")
        return redirect(url_for("case_pages.case_page", case_id=cases.resolve(database.session(), case).id))
    audit("view_case", f"case:{case.id}")
    database.session().commit()
    return render_case(case)


def render_case(case: Case, visit_form: VisitForm | None = None, follow_up_form: FollowUpForm | None = None,
                warnings: list[str] | None = None, status: int = 200):
    db = database.session()
    case_calls = cases.calls_of(db, case)
    latest = case_calls[-1] if case_calls else None
    link_days = cases.link_days()
    history = cases.history(db, latest, link_days) if latest else None
    category = CATEGORY_LABELS.get(history.category) if history and history.category else None
    case_visits = list(db.scalars(select(Visit).where(Visit.case_id == case.id).order_by(Visit.starts_at)))
    if visit_form is None:
        tomorrow = local_today(_zone()) + timedelta(days=1)
        visit_form = _visit_form(formdata=None, day=tomorrow, address=latest.location if latest else "",
                                 contact_number=phones.display(latest.callback_number or calls.caller_id(latest),
                                                               current_app.config["DEFAULT_REGION"])
                                 if latest else "")
    proposals = []
    if current_user.is_coordinator:
        for call in case_calls:
            proposals += [(call, other) for other in cases.proposals(db, call, link_days)]
    return render_template(
        "dashboard/case.html", case=case, calls=case_calls, history=history, category=category,
        history_sentence=history.sentence(category) if history else "", visits=case_visits,
        visit_form=visit_form, follow_up_form=follow_up_form or FollowUpForm(formdata=None),
        close_form=CloseForm(formdata=None), warnings=warnings or [], proposals=proposals,
        timeline=case_timeline(db, case, case_calls), OUTCOMES=cases.OUTCOMES, VISIT_OUTCOMES=cases.VISIT_OUTCOMES,
        team_size=current_app.config["VISIT_TEAM_SIZE"]), status


def case_timeline(db, case: Case, case_calls: list[Call]) -> list[tuple]:
    """Everything that happened in the case, oldest first: each call's events, notes, and the case's own steps."""
    ids = [c.id for c in case_calls]
    rows = [(e.at, f"Call {c.started_at:%m/%d}", e.kind, json.loads(e.detail or "{}")) for c in case_calls
            for e in c.events]
    for note in db.scalars(select(CallNote).where(CallNote.call_id.in_(ids or [0]))):
        rows.append((note.at, "Note", "note", {"by": note.user.email if note.user else None, "text": note.body}))
    for event in db.scalars(select(CaseEvent).where(CaseEvent.case_id == case.id)):
        detail = json.loads(event.detail or "{}")
        if event.user:
            detail["by"] = event.user.email
        rows.append((event.at, "Case", event.kind, detail))
    return sorted(rows, key=lambda row: row[0])


# --- linking, merging, splitting, closing -----------------------------------------------------------------


def _case_url(case_id: int) -> str:
    return url_for("case_pages.case_page", case_id=case_id)


def _sentence(error: Exception) -> str:
    return f"{str(error).capitalize()}."


@bp.post("/cases/<int:case_id>/link")
@coordinator_required
def link(case_id: int):
    db = database.session()
    case = db.get(Case, case_id) or abort(404)
    raw = request.form.get("call_id", "")
    call = db.get(Call, int(raw)) if raw.isdigit() else None
    if call is None:
        return refuse("Choose a call to link.", _case_url(case.id))
    with refused_on(cases.CaseError, _case_url(case.id), say=lambda error: f"{error}."):
        cases.link_call(db, call, case, current_user.id)
    return record_change("link_call", f"case:{case.id} call:{call.id}",
                         f"The call of {call.started_at:%b %-d} is now in case {case.id}.", _case_url(case.id))


@bp.post("/cases/<int:case_id>/merge")
@coordinator_required
def merge(case_id: int):
    db = database.session()
    source = db.get(Case, case_id) or abort(404)
    raw = (request.form.get("into") or "").strip().lstrip("#")
    target = db.get(Case, int(raw)) if raw.isdigit() else None
    if target is None:
        return refuse(f"There is no case {raw!r} to merge into." if raw else
                      "Enter the number of the case to merge into.", _case_url(source.id))
    with refused_on(cases.CaseError, _case_url(source.id), say=_sentence):
        cases.merge(db, source, target, current_user.id)
    return record_change("merge_cases", f"case:{source.id} into case:{target.id}",
                         f"Case {source.id} merged into case {target.id}.", _case_url(target.id))


@bp.post("/calls/<int:call_id>/split")
@coordinator_required
def split(call_id: int):
    db = database.session()
    call = db.get(Call, call_id) or abort(404)
    back = _case_url(call.case_id) if call.case_id else url_for("call_pages.call_log")
    with refused_on(cases.CaseError, back, say=_sentence):
        case = cases.split_call(db, call, current_user.id)
    return record_change("split_call", f"call:{call.id} to case:{case.id}",
                         f"The call is now case {case.id} of its own.", _case_url(case.id))


@bp.post("/cases/<int:case_id>/close")
@login_required
def close(case_id: int):
    db = database.session()
    case = own_case_or_404(case_id)
    form = CloseForm()
    if not form.validate():
        return refuse("Choose how the case ended.", _case_url(case.id))
    in_person = db.scalar(select(Visit.id).where(Visit.case_id == case.id, Visit.status == visits.DONE)
                          .limit(1)) is not None
    with refused_on(cases.CaseError, _case_url(case.id), say=_sentence):
        cases.close(db, case, form.outcome.data, in_person=in_person, user_id=current_user.id)
    return record_change("close_case", f"case:{case.id}", "Case closed.", _case_url(case.id))


@bp.post("/cases/<int:case_id>/reopen")
@login_required
def reopen(case_id: int):
    case = own_case_or_404(case_id)
    with refused_on(cases.CaseError, _case_url(case.id), say=_sentence):
        cases.reopen(database.session(), case, current_user.id)
    return record_change("reopen_case", f"case:{case.id}", "Case reopened.", _case_url(case.id))


# --- visits ------------------------------------------------------------------------------------------------


def _plan(form: VisitForm, case: Case) -> visits.Plan:
    latest = _latest_call(database.session(), case)
    number = phones.to_e164(form.contact_number.data or "", current_app.config["DEFAULT_REGION"])
    return visits.Plan(starts_at=visits.local_to_utc(form.day.data, form.time.data, _zone()),
                       team=list(form.team.data or []), address=calls.clean_text(form.address.data, 10_000) or "",
                       contact_number=number, language=latest.language if latest else "en")


def _apply_error(form: VisitForm, error: visits.VisitError) -> None:
    field = getattr(form, error.field or "day", form.day)
    field.errors = [*field.errors, str(error)] if isinstance(field.errors, list) else [str(error)]


def _form_change(form: FlaskForm, render: Callable[..., tuple], change: Callable[[], T],
                 errors: type[Exception], show: Callable[[Exception], None]) -> T:
    """Validate `form` and make `change`; a problem ends the request with `render(form, ...)`: the form with
    its errors (400, `show` puts a refusal of `errors` on its field), or a visit's warnings to confirm (409)."""
    db = database.session()
    if not form.validate():
        abort(make_response(render(form, status=400)))
    try:
        return change()
    except errors as error:
        db.rollback()
        show(error)
        abort(make_response(render(form, status=400)))
    except visits.NeedsConfirmation as warning:
        db.rollback()
        abort(make_response(render(form, warnings=warning.warnings, status=409)))


@bp.post("/cases/<int:case_id>/visits")
@login_required
def schedule_visit(case_id: int):
    db = database.session()
    case = own_case_or_404(case_id)
    form = _visit_form()
    visit = _form_change(form, lambda form, **shown: render_case(case, visit_form=form, **shown),
                         lambda: visits.schedule(db, get_redis(), current_app.config, case, _plan(form, case),
                                                 current_user.id, confirmed=form.confirm.data),
                         visits.VisitError, lambda error: _apply_error(form, error))
    return record_change("schedule_visit", f"case:{case.id} visit:{visit.id}",
                         "Visit booked. The caller and the team are being texted.", _visit_url(visit.id))


def _visit_url(visit_id: int) -> str:
    return url_for("case_pages.visit_page", visit_id=visit_id)


def own_visit_or_404(visit_id: int) -> Visit:
    visit = database.session().get(Visit, visit_id) or abort(404)
    own_case_or_404(visit.case_id)
    return visit


def render_visit(visit: Visit, form: VisitForm | None = None, outcome_form: OutcomeForm | None = None,
                 warnings: list[str] | None = None, status: int = 200):
    if form is None:
        local = to_local(visit.starts_at, _zone())
        form = _visit_form(formdata=None, day=local.date(), time=local.time().replace(tzinfo=None),
                           address=visit.address, team=[m.specialist_id for m in visit.team],
                           contact_number=phones.display(visit.contact_number, current_app.config["DEFAULT_REGION"])
                           if visit.contact_number else "")
    now = utcnow()
    db = database.session()
    return render_template("dashboard/visit.html", visit=visit, case=db.get(Case, visit.case_id),
                           safety_events=field_safety.timeline(db, visit), safety_alert=field_safety.open_alert(db, visit),
                           form=form, outcome_form=outcome_form or OutcomeForm(formdata=None),
                           cancel_form=CancelForm(formdata=None), warnings=warnings or [],
                           started=visit.starts_at <= now,
                           overdue=visit.status == visits.SCHEDULED and visit.ends_at <= now - visits.OVERDUE_AFTER,
                           VISIT_OUTCOMES=cases.VISIT_OUTCOMES, team_size=current_app.config["VISIT_TEAM_SIZE"]), status


@bp.get("/visits/<int:visit_id>")
@login_required
def visit_page(visit_id: int):
    return render_visit(own_visit_or_404(visit_id))


@bp.post("/visits/<int:visit_id>")
@login_required
def reschedule_visit(visit_id: int):
    db = database.session()
    visit = own_visit_or_404(visit_id)
    form = _visit_form()
    # After a rollback the visit is read again, as it stands in the database.
    _form_change(form, lambda form, **shown: render_visit(db.get(Visit, visit_id), form=form, **shown),
                 lambda: visits.reschedule(db, get_redis(), current_app.config, visit,
                                           _plan(form, db.get(Case, visit.case_id)), current_user.id,
                                           confirmed=form.confirm.data),
                 visits.VisitError, lambda error: _apply_error(form, error))
    return record_change("reschedule_visit", f"visit:{visit.id}",
                         "Visit changed. The caller and the team are being texted.", _visit_url(visit.id))


@bp.post("/visits/<int:visit_id>/cancel")
@login_required
def cancel_visit(visit_id: int):
    db = database.session()
    visit = own_visit_or_404(visit_id)
    form = CancelForm()
    if not form.validate():
        return refuse("The reason can be at most 300 characters.", _visit_url(visit.id))
    with refused_on(visits.VisitError, _visit_url(visit.id)):
        visits.cancel(db, get_redis(), visit, calls.clean_text(form.reason.data, 300), current_user.id)
    return record_change("cancel_visit", f"visit:{visit.id}",
                         "Visit cancelled. The caller and the team are being texted.", _visit_url(visit.id))


@bp.post("/visits/<int:visit_id>/outcome")
@login_required
def visit_outcome(visit_id: int):
    db = database.session()
    visit = own_visit_or_404(visit_id)
    form = OutcomeForm()
    _form_change(form, lambda form, **shown: render_visit(db.get(Visit, visit_id), outcome_form=form, **shown),
                 lambda: visits.record_outcome(db, visit, form.outcome.data, calls.clean_text(form.notes.data, 4000),
                                               current_user.id),
                 visits.VisitError, lambda error: setattr(form.outcome, "errors", [str(error)]))
    return record_change("visit_outcome", f"visit:{visit.id}", "Outcome recorded.", _visit_url(visit.id))


# --- follow-ups --------------------------------------------------------------------------------------------


@bp.post("/cases/<int:case_id>/follow-up")
@login_required
def follow_up(case_id: int):
    db = database.session()
    case = own_case_or_404(case_id)
    form = FollowUpForm()
    request_row = _form_change(
        form, lambda form, **shown: render_case(case, follow_up_form=form, **shown),
        lambda: callbacks.queue_follow_up(db, case, utcnow() + timedelta(days=form.days.data),
                                          calls.clean_text(form.note.data, 300), _zone()),
        callbacks.FollowUpError, lambda error: setattr(form.days, "errors", [str(error)]))
    return record_change("schedule_follow_up", f"case:{case.id}",
                         f"Follow-up call set for {form.days.data} days from now.", _case_url(case.id),
                         then=lambda: dispatch_at(get_redis(), request_row.due_at))


# --- calendar feeds ----------------------------------------------------------------------------------------


def _may_manage_feed(specialist_id: int) -> Specialist:
    specialist = database.session().get(Specialist, specialist_id) or abort(404)
    if not current_user.is_coordinator and current_user.specialist_id != specialist.id:
        abort(404)
    return specialist


@bp.get("/specialists/<int:specialist_id>/calendar")
@login_required
def calendar_page(specialist_id: int):
    specialist = _may_manage_feed(specialist_id)
    url = (current_app.config["PUBLIC_BASE_URL"] + url_for("case_pages.calendar_feed", token=specialist.calendar_token)
           if specialist.calendar_token else None)
    upcoming = visits.of_specialist(database.session(), specialist.id, utcnow() - timedelta(days=1))
    return render_template("dashboard/calendar.html", specialist=specialist, url=url, upcoming=upcoming)


@bp.post("/specialists/<int:specialist_id>/calendar")
@login_required
def calendar_token(specialist_id: int):
    db = database.session()
    specialist = _may_manage_feed(specialist_id)
    revoke = request.form.get("action") == "revoke"
    specialist.calendar_token = None if revoke else secrets.token_urlsafe(24)
    audit("calendar_revoke" if revoke else "calendar_new_link", f"specialist:{specialist.id}")
    db.commit()
    flash("The calendar link is turned off." if revoke else
          "A new calendar link is ready; any older link stopped working.", "ok")
    return redirect(url_for("case_pages.calendar_page", specialist_id=specialist.id))


@bp.get("/feeds/<token>.ics")
def calendar_feed(token: str):
    """A specialist's visits as iCalendar, at a secret URL (calendar apps cannot sign in)."""
    db = database.session()
    specialist = db.scalar(select(Specialist).where(Specialist.calendar_token == token)) if len(token) >= 20 else None
    if specialist is None:
        abort(404)
    body = feed.ics(specialist, visits.of_specialist(db, specialist.id, utcnow() - timedelta(days=30)),
                    current_app.config)
    return Response(body, mimetype="text/calendar", headers={"Cache-Control": "private, no-store"})


# --- the list of open cases ---------------------------------------------------------------------------------


@bp.get("/cases")
@login_required
def case_list():
    db = database.session()
    query = select(Case).where(Case.status == cases.OPEN).order_by(Case.opened_at.desc()).limit(200)
    if not current_user.is_coordinator:
        mine = current_user.specialist_id or -1
        query = query.where(or_(
            Case.id.in_(select(Call.case_id).where(Call.specialist_id == mine)),
            Case.id.in_(select(Visit.case_id).join(VisitMember, VisitMember.visit_id == Visit.id)
                        .where(VisitMember.specialist_id == mine))))
    rows = list(db.scalars(query))
    return render_template("dashboard/cases.html", rows=rows, upcoming=visits.upcoming(db),
                           overdue=visits.overdue(db))


def init_app(app) -> None:
    app.register_blueprint(bp)
