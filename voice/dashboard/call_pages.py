"""A call's pages: the call log (filters, keyset pages, CSV), a call's detail with its case form, notes,
disposition and recording, the specialist's current case, and their transfer of a live caller to dispatch."""

from __future__ import annotations

import json
from datetime import timedelta

from flask import (
    Blueprint,
    Response,
    abort,
    current_app,
    flash,
    redirect,
    render_template,
    request,
    stream_with_context,
    url_for,
)
from flask_login import current_user, login_required
from flask_wtf import FlaskForm
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from wtforms import RadioField, StringField, TextAreaField
from wtforms.validators import Length, Optional

from voice import db as database
from voice import twilio_rest
from voice.casework import cases, services
from voice.clock import local_now, utcnow
from voice.dashboard import queries
from voice.dashboard.auth import audit, record_change, refuse
from voice.dashboard.extensions import limiter
from voice.dashboard.site import DISPOSITIONS
from voice.line import callbacks, calls, conferences, endings, third_parties
from voice.models import Call, CallbackRequest, CallNote, Referral, Service, Specialist
from voice.script import CATEGORY_LABELS
from voice.twilio_rest import TwilioError

bp = Blueprint("call_pages", __name__, url_prefix="/dashboard")

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
    return redirect(url_for("call_pages.call_detail", call_id=call.id))


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
    if "location" in changed:
        cases.note_location(call)
    if form.follow_up.data != (call.follow_up or "none"):
        call.follow_up = form.follow_up.data
        changed["follow_up"] = form.follow_up.data
    if changed:
        # The timeline says what changed and who changed it, never the caller's words again.
        calls.record_event(db, call, "case_updated", by=current_user.email, **changed)
        audit("update_case", call.call_sid)
    db.commit()
    flash("Case saved." if changed else "Nothing changed.", "ok")
    return redirect(url_for("call_pages.call_detail", call_id=call.id))


@bp.post("/calls/<int:call_id>/transfer")
@login_required
def transfer(call_id: int):
    """Send the caller on this live call back to 911 dispatch (a REST update of their call)."""
    call = own_call_or_404(call_id)
    if not endings.is_live(database.session(), call):
        flash("This call is not live, so there is no one to transfer.", "error")
        return redirect(url_for("call_pages.call_detail", call_id=call.id))
    db = database.session()
    try:
        endings.request_transfer(db, call, by=current_user.email)
    except TwilioError as error:
        flash(f"The transfer did not go through ({error}). The caller is still on the line with you.", "error")
        return redirect(url_for("call_pages.call_detail", call_id=call.id))
    audit("transfer_to_dispatch", call.call_sid)
    db.commit()
    flash("The caller is being put through to 911 dispatch.", "ok")
    return redirect(url_for("call_pages.call_detail", call_id=call.id))


@bp.post("/calls/<int:call_id>/referrals")
@login_required
def give_referral(call_id: int):
    """The specialist referred the caller to a service from the directory; the caller accepted it or not."""
    call = own_call_or_404(call_id)
    back = url_for("call_pages.call_detail", call_id=call.id) + "#referrals"
    raw, answer = request.form.get("service", ""), request.form.get("accepted", "")
    db = database.session()
    service = db.get(Service, int(raw)) if raw.isdigit() else None
    if service is None:
        return refuse("Choose the service the caller was referred to.", back)
    if answer not in ("yes", "no"):
        return refuse("Say whether the caller accepted the referral.", back)
    try:
        services.give(db, call.id, service, answer == "yes", current_user.id)
    except services.ServiceError as error:
        db.rollback()
        return refuse(str(error), back)
    except IntegrityError:
        # A double click: the first one recorded it.
        db.rollback()
        return refuse(f"The referral to {service.name} is already recorded.", back)
    calls.record_event(db, call, "referral", service=service.name, accepted=answer == "yes", by=current_user.email)
    return record_change("give_referral", f"{call.call_sid} service:{service.id}",
                         f"Referral to {service.name} recorded.", back)


@bp.post("/calls/<int:call_id>/referrals/<int:referral_id>/withdraw")
@login_required
def withdraw_referral(call_id: int, referral_id: int):
    call = own_call_or_404(call_id)
    db = database.session()
    referral = db.get(Referral, referral_id)
    if referral is None or referral.call_id != call.id:
        abort(404)
    name = referral.service.name
    services.withdraw(db, referral)
    calls.record_event(db, call, "referral_withdrawn", service=name, by=current_user.email)
    return record_change("withdraw_referral", f"{call.call_sid} service:{referral.service_id}",
                         f"Referral to {name} taken off this call.",
                         url_for("call_pages.call_detail", call_id=call.id) + "#referrals")


NOTE_MAX = 2000


def own_call_or_404(call_id: int) -> Call:
    """The call, if this user may see it: coordinators all, specialists only the calls they handled."""
    call = database.session().get(Call, call_id)
    if call is None:
        abort(404)
    # A specialist account not linked to a roster entry sees no calls (not the unassigned ones).
    if not current_user.is_coordinator and (current_user.specialist_id is None
                                            or call.specialist_id != current_user.specialist_id):
        abort(404)
    return call


def _log_query():
    config = current_app.config
    filters = queries.LogFilters.from_args(request.args)
    only = None if current_user.is_coordinator else (current_user.specialist_id or -1)
    return filters, queries.filtered(database.session(), filters, config["TIMEZONE"], config["DEFAULT_REGION"], only_specialist=only)


@bp.get("/calls")
@login_required
def call_log():
    filters, query = _log_query()
    rows, cursor = queries.page(database.session(), query, request.args.get("after"))
    roster = database.session().scalars(select(Specialist).order_by(Specialist.name)).all()
    return render_template("dashboard/calls.html", rows=rows, cursor=cursor, filters=filters, roster=roster,
                           args=filters.as_args(), paged=bool(request.args.get("after")))


@bp.get("/calls.csv")
@login_required
def export_csv():
    filters, query = _log_query()
    audit("export", json.dumps(filters.as_args())[:200])
    database.session().commit()

    def generate():
        # The query runs inside the stream, in the session of the request that the stream keeps open.
        where = [] if query.whereclause is None else [query.whereclause]
        yield from calls.csv_chunks(database.session().execute(calls.export_query(where)))

    stamp = local_now(current_app.config["TIMEZONE"]).strftime("%Y%m%d-%H%M")
    return Response(stream_with_context(generate()), mimetype="text/csv",
                    headers={"Content-Disposition": f'attachment; filename="calls-{stamp}.csv"'})


@bp.get("/calls/<int:call_id>")
@login_required
def call_detail(call_id: int):
    call = own_call_or_404(call_id)
    audit("view_call", call.call_sid)
    database.session().commit()
    return call_page(call)


def call_page(call: Call, note_body: str = "", note_error: str | None = None, case_form=None, status: int = 200):
    """A call's page: what the caller told us, the case form, disposition, notes, and the timeline."""
    db = database.session()
    timeline = [(event, json.loads(event.detail or "{}")) for event in call.events]
    notes = db.scalars(select(CallNote).where(CallNote.call_id == call.id).order_by(CallNote.id)).all()
    callback = db.scalar(select(CallbackRequest).where(CallbackRequest.call_id == call.id))
    if case_form is None:
        case_form = CaseForm(formdata=None, caller_name=call.caller_name, location=call.location,
                             description=call.description, follow_up=call.follow_up or "none")
    live = endings.is_live(db, call)
    history = cases.history(db, call, cases.link_days())
    category = CATEGORY_LABELS.get(history.category) if history.category else None
    people = conferences.present(db, call) if live else []
    return render_template("dashboard/call.html", call=call, case_history=history.sentence(category).capitalize(), timeline=timeline, notes=notes, callback=callback,
                           note_body=note_body, note_error=note_error, NOTE_MAX=NOTE_MAX, case_form=case_form,
                           FOLLOW_UPS=FOLLOW_UPS, live=live, text_problem=callbacks.text_problem,
                           referrals=services.referrals_of(db, call.id),
                           service_choices=services.directory(db, only_active=True),
                           SERVICE_KINDS=services.KINDS, people=people,
                           caller_held=any(p.label == conferences.CALLER and p.on_hold for p in people),
                           directory=third_parties.directory(db, current_app.config)), status


@bp.post("/calls/<int:call_id>/disposition")
@login_required
def set_disposition(call_id: int):
    call = own_call_or_404(call_id)
    choice = request.form.get("disposition", "")
    if choice not in DISPOSITIONS:
        return refuse("Choose how the case ended.", url_for("call_pages.call_detail", call_id=call.id))
    db = database.session()
    call.disposition = choice
    call.disposition_notes = calls.clean_text(request.form.get("notes"), 4000)
    call.disposition_at = utcnow()
    call.disposition_by_id = current_user.id
    calls.record_event(db, call, "disposition", disposition=choice, by=current_user.email)
    return record_change("set_disposition", call.call_sid, "Disposition saved.",
                         url_for("call_pages.call_detail", call_id=call.id))


def _note_limit() -> str:
    return current_app.config["RATELIMIT_NOTES"]


def _per_user() -> str:
    return f"user:{current_user.id}" if current_user.is_authenticated else request.remote_addr or ""


@bp.post("/calls/<int:call_id>/notes")
@login_required
@limiter.limit(_note_limit, key_func=_per_user)
def add_note(call_id: int):
    call = own_call_or_404(call_id)
    body = (request.form.get("body") or "").strip()
    if not body:
        return call_page(call, note_error="Write the note before adding it.", status=400)
    if len(body) > NOTE_MAX:
        return call_page(call, note_body=body, status=400,
                          note_error=f"A note can be at most {NOTE_MAX:,} characters; this one is {len(body):,}.")
    db = database.session()
    db.add(CallNote(call_id=call.id, user_id=current_user.id, body=body))
    db.commit()
    return redirect(url_for("call_pages.call_detail", call_id=call.id) + "#notes")


@bp.get("/calls/<int:call_id>/recording")
@login_required
def recording(call_id: int):
    """The caller's message, fetched from Twilio with our credentials; the browser never sees Twilio's URL."""
    call = own_call_or_404(call_id)
    if not call.recording_url:
        abort(404)
    config = current_app.config
    audit("play_recording", call.call_sid)
    database.session().commit()
    try:
        audio = twilio_rest.recording_audio(config, call.recording_url)
    except twilio_rest.TwilioError:
        abort(502)
    return Response(stream_with_context(audio), mimetype="audio/mpeg",
                    headers={"Cache-Control": "private, no-store"})
