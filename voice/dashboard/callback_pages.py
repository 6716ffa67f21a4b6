"""The callbacks page: who is waiting to be called back, and the coordinator's retry, cancel and reassign."""

from __future__ import annotations

from flask import Blueprint, abort, render_template, request, url_for
from sqlalchemy import select

from voice import db as database
from voice.dashboard.auth import coordinator_required, record_change
from voice.line import callbacks, calls
from voice.models import CallbackRequest, Specialist
from voice.redisdb import get_redis
from voice.tasks import dispatch_soon

bp = Blueprint("callback_pages", __name__, url_prefix="/dashboard")


@bp.get("/callbacks")
@coordinator_required
def callbacks_page():
    db = database.session()
    rows = callbacks.open_requests(db)
    roster = db.scalars(select(Specialist).where(Specialist.active.is_(True)).order_by(Specialist.name)).all()
    return render_template("dashboard/callbacks.html", rows=rows, roster=roster, text_problem=callbacks.text_problem)


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
                         url_for("callback_pages.callbacks_page"), then=lambda: dispatch_soon(get_redis()))
