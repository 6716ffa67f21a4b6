"""Accounts: sign in and out, password hashing, roles, and the audit log of who looked at what."""

from __future__ import annotations

from functools import wraps

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from flask import Blueprint, abort, current_app, flash, redirect, render_template, request, session, url_for
from flask_login import UserMixin, current_user, login_required, login_user, logout_user
from flask_wtf import FlaskForm
from sqlalchemy import func, select
from sqlalchemy.orm import Session
from wtforms import EmailField, PasswordField
from wtforms.validators import DataRequired, Length

from voice import db as database
from voice.dashboard import limiter, login_manager
from voice.models import AuditEntry, User, utcnow

bp = Blueprint("auth", __name__, url_prefix="/dashboard")

COORDINATOR = "coordinator"
SPECIALIST = "specialist"
ROLES = (COORDINATOR, SPECIALIST)
_hasher = PasswordHasher()
# Checked against when the email is unknown, so a wrong email takes as long as a wrong password.
_DUMMY_HASH = _hasher.hash("not-a-real-password")


class Account(UserMixin):
    """The signed-in user as Flask-Login sees them (a plain copy, never a live database row)."""

    def __init__(self, user: User):
        self.id = user.id
        self.email = user.email
        self.role = user.role
        self.specialist_id = user.specialist_id

    @property
    def is_coordinator(self) -> bool:
        return self.role == COORDINATOR


@login_manager.user_loader
def load_account(user_id: str) -> Account | None:
    user = database.session().get(User, int(user_id)) if user_id.isdigit() else None
    return Account(user) if user is not None and user.active else None


class AccountError(ValueError):
    """An account cannot be created as asked; the message says why."""


def create_user(db: Session, email: str, password: str, role: str, specialist_id: int | None = None) -> User:
    """A dashboard account with an argon2 password hash."""
    email = (email or "").strip().lower()
    if "@" not in email or len(email) > 254:
        raise AccountError(f"{email!r} is not an email address")
    if role not in ROLES:
        raise AccountError(f"role must be one of {', '.join(ROLES)}")
    if len(password or "") < 10:
        raise AccountError("the password must be at least 10 characters")
    if db.scalar(select(User).where(func.lower(User.email) == email)):
        raise AccountError(f"{email} already has an account")
    user = User(email=email, password_hash=_hasher.hash(password), role=role, specialist_id=specialist_id)
    db.add(user)
    db.flush()
    return user


def check_password(user: User | None, password: str) -> bool:
    try:
        return _hasher.verify(user.password_hash if user else _DUMMY_HASH, password) and user is not None
    except (VerificationError, InvalidHashError):
        return False


def coordinator_required(view):
    """Coordinators only; a specialist who edits the URL gets 403."""

    @wraps(view)
    @login_required
    def wrapper(*args, **kwargs):
        if not current_user.is_coordinator:
            abort(403)
        return view(*args, **kwargs)

    return wrapper


def audit(action: str, target: str = "") -> None:
    """Write who did what to the audit log (committed with the request's other changes)."""
    database.session().add(AuditEntry(
        user_id=current_user.id if current_user.is_authenticated else None,
        action=action[:40], target=target[:200], ip=(request.remote_addr or "")[:64],
    ))


class LoginForm(FlaskForm):
    email = EmailField("Email", validators=[DataRequired(), Length(max=254)])
    password = PasswordField("Password", validators=[DataRequired(), Length(max=200)])


def _login_limit() -> str:
    return current_app.config["RATELIMIT_LOGIN"]


@bp.route("/login", methods=["GET", "POST"])
@limiter.limit(_login_limit, methods=["POST"])
def login():
    form = LoginForm()
    if form.validate_on_submit():
        db = database.session()
        user = db.scalar(select(User).where(func.lower(User.email) == form.email.data.strip().lower()))
        if check_password(user, form.password.data) and user.active:
            user.last_login_at = utcnow()
            session.clear()
            session.permanent = True
            login_user(Account(user))
            audit("login")
            db.commit()
            return redirect(_safe_next(request.args.get("next")))
        flash("That email and password do not match an account.", "error")
    return render_template("dashboard/login.html", form=form), 200 if request.method == "GET" else 401


def _safe_next(target: str | None) -> str:
    # Only a path on this site, so a crafted link cannot send a coordinator elsewhere after login.
    if target and target.startswith("/") and not target.startswith("//") and "\\" not in target:
        return target
    return url_for("pages.board")


@bp.post("/logout")
@login_required
def logout():
    logout_user()
    session.clear()
    return redirect(url_for("auth.login"))
