"""The directory of services the program refers callers to: the coordinator adds, edits and retires them."""

from __future__ import annotations

from flask import Blueprint, abort, current_app, render_template, request, url_for
from sqlalchemy.exc import IntegrityError

from voice import db as database
from voice.casework import services
from voice.dashboard.auth import coordinator_required, record_change, refuse
from voice.models import Service

bp = Blueprint("service_pages", __name__, url_prefix="/dashboard")


@bp.get("/services")
@coordinator_required
def directory():
    return render_template("dashboard/services.html", rows=services.directory(database.session()),
                           KINDS=services.KINDS)


def _checked() -> tuple[str, str, str]:
    config = current_app.config
    return services.checked(request.form.get("name", ""), request.form.get("kind", ""), request.form.get("phone", ""),
                            config["DEFAULT_REGION"], config["CALLBACK_COUNTRIES"])


def _saved(change, action: str, message: str):
    """Run one directory change, audited; a refusal or a clash of names is said, never a 500."""
    back = url_for("service_pages.directory")
    db = database.session()
    try:
        service = change(db)
        db.flush()
    except services.ServiceError as error:
        db.rollback()
        return refuse(str(error), back)
    except IntegrityError:
        # A double click, or someone else saving the same name between our check and our write.
        db.rollback()
        return refuse("A service by that name is already in the directory.", back)
    return record_change(action, f"service:{service.id}", message.format(name=service.name), back)


@bp.post("/services")
@coordinator_required
def add():
    try:
        name, kind, phone = _checked()
    except services.ServiceError as error:
        return refuse(str(error), url_for("service_pages.directory"))
    return _saved(lambda db: services.add(db, name, kind, phone), "service_add", "{name} added to the directory.")


@bp.post("/services/<int:service_id>")
@coordinator_required
def edit(service_id: int):
    service = database.session().get(Service, service_id) or abort(404)
    try:
        name, kind, phone = _checked()
    except services.ServiceError as error:
        return refuse(str(error), url_for("service_pages.directory"))
    active = request.form.get("active") == "1"
    return _saved(lambda db: services.update(db, service, name, kind, phone, active), "service_edit",
                  "{name} saved.")
