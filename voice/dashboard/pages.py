"""The dashboard's pages: board, call log and detail, roster, callbacks, reports, export, audit log."""

from __future__ import annotations

import csv
import io
import json
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from flask import (
    Blueprint,
    Response,
    abort,
    current_app,
    flash,
    g,
    redirect,
    render_template,
    request,
    stream_with_context,
    url_for,
)
from flask_login import current_user, login_required
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from voice import db as database
from voice import durations, phones, twilio_rest
from voice.casework import cases
from voice.dashboard import limiter, queries
from voice.dashboard.auth import audit, coordinator_required, record_change, refuse
from voice.line import callbacks, calls, specialists
from voice.models import AuditEntry, Call, CallbackRequest, CallNote, Specialist, utcnow
from voice.redisdb import get_redis
from voice.script import CATEGORY_LABELS
from voice.tasks import dispatch_soon

bp = Blueprint("pages", __name__, url_prefix="/dashboard", template_folder="templates", static_folder="static",
               static_url_path="/static")

DISPOSITIONS = {
    "resolved_by_phone": "Resolved by phone",
    "in_person_scheduled": "In-person mediation scheduled",
    "referred": "Referred elsewhere",
    "no_further_action": "No further action",
}
NOTE_MAX = 2000
OUTCOME_LABELS = {
    "in_intake": "In intake", "connecting": "Connecting", "bridged": "Answered live",
    "callback_queued": "Callback queued", "callback_completed": "Called back", "escalated": "Escalated to dispatch",
    "abandoned": "Hung up", "unreachable": "Unreachable", "failed": "Failed",
}


# Only our own scripts run; no plugins; pages cannot be framed; caller text can never load anything from elsewhere.
SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
                               "media-src 'self'; object-src 'none'; frame-ancestors 'none'; form-action 'self'; "
                               "base-uri 'none'",
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "same-origin",
    "Permissions-Policy": "camera=(), microphone=(), geolocation=(), payment=(), usb=()",
    "Cache-Control": "no-store",
}
HSTS = "max-age=31536000; includeSubDomains"


@bp.after_app_request
def security_headers(response: Response) -> Response:
    if request.path.startswith("/dashboard"):
        for name, value in SECURITY_HEADERS.items():
            response.headers.setdefault(name, value)
        # Only over https: a plain-http deployment sending HSTS would lock browsers out of it.
        if current_app.config["PUBLIC_BASE_URL"].startswith("https://"):
            response.headers.setdefault("Strict-Transport-Security", HSTS)
    return response


@bp.app_template_filter("local")
def local_time(value: datetime | None, fmt: str = "%b %-d, %-I:%M %p") -> str:
    local = queries.to_local(value, current_app.config["TIMEZONE"])
    return local.strftime(fmt) if local else ""


@bp.app_template_filter("ago")
def ago(value: datetime | None) -> str:
    return durations.ago(value)


@bp.app_template_filter("phone")
def phone_display(value: str | None) -> str:
    return phones.display(value, current_app.config["DEFAULT_REGION"])


@bp.app_template_filter("masked")
def phone_masked(value: str | None) -> str:
    return phones.masked(value, current_app.config["DEFAULT_REGION"])


@bp.app_context_processor
def labels() -> dict:
    return {"CATEGORY_LABELS": CATEGORY_LABELS, "OUTCOME_LABELS": OUTCOME_LABELS, "DISPOSITIONS": DISPOSITIONS,
            "program_name": current_app.config["PROGRAM_NAME"]}


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


# --- the live board -------------------------------------------------------------------------------


@bp.get("/")
@login_required
def board():
    data = queries.board(database.session(), get_redis(), current_app.config["TIMEZONE"])
    return render_template("dashboard/board.html", **data)


@bp.get("/board/live")
@login_required
def board_live():
    """Just the board's panels, fetched every few seconds and swapped in place."""
    # The page's own polling is not activity: it must not keep an unattended session alive.
    g.passive_request = True
    data = queries.board(database.session(), get_redis(), current_app.config["TIMEZONE"])
    return render_template("dashboard/_board.html", **data)


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
    return redirect(url_for("pages.board"))


# --- the call log ---------------------------------------------------------------------------------


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
        rows = database.session().scalars(query.order_by(Call.started_at, Call.id).execution_options(yield_per=1000))
        yield from calls.csv_chunks(rows)

    stamp = datetime.now(ZoneInfo(current_app.config["TIMEZONE"])).strftime("%Y%m%d-%H%M")
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
    from voice.dashboard.call_pages import FOLLOW_UPS, CaseForm

    db = database.session()
    timeline = [(event, json.loads(event.detail or "{}")) for event in call.events]
    notes = db.scalars(select(CallNote).where(CallNote.call_id == call.id).order_by(CallNote.id)).all()
    callback = db.scalar(select(CallbackRequest).where(CallbackRequest.call_id == call.id))
    if case_form is None:
        case_form = CaseForm(formdata=None, caller_name=call.caller_name, location=call.location,
                             description=call.description, follow_up=call.follow_up or "none")
    live = call.connected_at is not None and call.ended_at is None
    history = cases.history(db, call, cases.link_days())
    category = CATEGORY_LABELS.get(history.category) if history.category else None
    return render_template("dashboard/call.html", call=call, case_history=history.sentence(category).capitalize(), timeline=timeline, notes=notes, callback=callback,
                           note_body=note_body, note_error=note_error, NOTE_MAX=NOTE_MAX, case_form=case_form,
                           FOLLOW_UPS=FOLLOW_UPS, live=live), status


@bp.post("/calls/<int:call_id>/disposition")
@login_required
def set_disposition(call_id: int):
    call = own_call_or_404(call_id)
    choice = request.form.get("disposition", "")
    if choice not in DISPOSITIONS:
        return refuse("Choose how the case ended.", url_for("pages.call_detail", call_id=call.id))
    db = database.session()
    call.disposition = choice
    call.disposition_notes = calls.clean_text(request.form.get("notes"), 4000)
    call.disposition_at = utcnow()
    call.disposition_by_id = current_user.id
    calls.record_event(db, call, "disposition", disposition=choice, by=current_user.email)
    return record_change("set_disposition", call.call_sid, "Disposition saved.",
                         url_for("pages.call_detail", call_id=call.id))


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
    return redirect(url_for("pages.call_detail", call_id=call.id) + "#notes")


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


# --- roster ---------------------------------------------------------------------------------------


@bp.get("/roster")
@coordinator_required
def roster():
    rows = database.session().scalars(select(Specialist).order_by(Specialist.active.desc(), Specialist.name)).all()
    return render_template("dashboard/roster.html", rows=rows)


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
        return redirect(url_for("pages.roster"))
    name = (request.form.get("name") or "").strip()[:120]
    languages = request.form.getlist("languages") or ["en"]
    specialist = _save_roster(lambda db: specialists.add_specialist(db, name, number, languages), "roster_add",
                              f"{phone_display(number)} is already on the roster.")
    if specialist is not None:
        flash(f"{specialist.name} added. They text ON to the line to take calls.", "ok")
    return redirect(url_for("pages.roster"))


@bp.post("/roster/<int:specialist_id>")
@coordinator_required
def roster_edit(specialist_id: int):
    specialist = database.session().get(Specialist, specialist_id) or abort(404)
    number = _form_phone()
    if number is None:
        return redirect(url_for("pages.roster"))

    def change(db):
        return specialists.update_specialist(
            db, get_redis(), specialist, name=(request.form.get("name") or "").strip()[:120], phone_e164=number,
            languages=request.form.getlist("languages") or ["en"], active=request.form.get("active") == "1")

    if _save_roster(change, "roster_edit", f"{phone_display(number)} already belongs to someone else on the roster."):
        flash(f"{specialist.name} saved.", "ok")
    return redirect(url_for("pages.roster"))


# --- callbacks ------------------------------------------------------------------------------------


@bp.get("/callbacks")
@coordinator_required
def callbacks_page():
    db = database.session()
    rows = callbacks.open_requests(db)
    roster = db.scalars(select(Specialist).where(Specialist.active.is_(True)).order_by(Specialist.name)).all()
    return render_template("dashboard/callbacks.html", rows=rows, roster=roster)


@bp.post("/callbacks/<int:request_id>/<action>")
@coordinator_required
def callback_action(request_id: int, action: str):
    db = database.session()
    row = db.get(CallbackRequest, request_id) or abort(404)
    if action == "retry":
        callbacks.retry_now(db, row)
    elif action == "cancel":
        callbacks.cancel(db, row, calls.clean_text(request.form.get("reason"), 300) or "cancelled by the coordinator")
    elif action == "reassign":
        raw = request.form.get("specialist_id", "")
        callbacks.reassign(db, row, int(raw) if raw.isdigit() else None)
    else:
        abort(404)
    return record_change(f"callback_{action}", f"callback:{row.id}", "Callback updated.",
                         url_for("pages.callbacks_page"), then=lambda: dispatch_soon(get_redis()))


# --- reports and the audit log --------------------------------------------------------------------


def _report_range() -> tuple[date, date]:
    """The reports' dates from the query string: this month by default, at most two years."""
    today = datetime.now(ZoneInfo(current_app.config["TIMEZONE"])).date()
    try:
        start = date.fromisoformat(request.args.get("start") or today.replace(day=1).isoformat())
        end = date.fromisoformat(request.args.get("end") or today.isoformat())
    except ValueError:
        flash("Dates must look like 2026-11-01.", "error")
        start, end = today.replace(day=1), today
    if end < start:
        start, end = end, start
    return start, min(end, start + timedelta(days=366 * 2))


@bp.get("/reports")
@coordinator_required
def reports():
    start, end = _report_range()
    zone = current_app.config["TIMEZONE"]
    data = queries.report(database.session(), start, end, zone)
    case_data = queries.case_report(database.session(), start, end, zone)
    return render_template("dashboard/reports.html", data=data, cases=case_data, start=start, end=end,
                           CASE_OUTCOME_WORDS=queries.CASE_OUTCOME_WORDS, CLOSED_HOW_WORDS=queries.CLOSED_HOW_WORDS)


@bp.get("/reports/cases.csv")
@coordinator_required
def case_report_csv():
    start, end = _report_range()
    audit("export_case_report", f"{start.isoformat()}..{end.isoformat()}")
    database.session().commit()
    data = queries.case_report(database.session(), start, end, current_app.config["TIMEZONE"])
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(["figure", "item", "value"])
    for figure, item, value in queries.case_report_rows(data, start, end):
        writer.writerow([figure, calls.csv_safe(str(item)), value])
    return Response(buffer.getvalue(), mimetype="text/csv", headers={
        "Content-Disposition": f'attachment; filename="cases-{start.isoformat()}-{end.isoformat()}.csv"'})


@bp.get("/audit")
@coordinator_required
def audit_log():
    rows = database.session().scalars(select(AuditEntry).order_by(AuditEntry.id.desc()).limit(500)).all()
    return render_template("dashboard/audit.html", rows=rows)
