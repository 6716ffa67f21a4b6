"""Accounts: sign in and out, server-side session ending, password hashing, roles, the accounts page,
and the audit log of who looked at what.

Sign-in is one step, or two for an account that must use an authenticator (REQUIRE_2FA_FOR, or enrolled):
the password step leaves only a note in the session of who is half signed in (no page opens to it), and
the code step (or the enrolment, for an account that has none yet) signs them in.
"""

from __future__ import annotations

import hmac
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import wraps

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from flask import Blueprint, abort, current_app, flash, redirect, render_template, request, session, url_for
from flask_login import UserMixin, current_user, login_required, login_user, logout_user
from flask_wtf import FlaskForm
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session
from wtforms import EmailField, PasswordField, SelectField, StringField
from wtforms.fields.choices import SelectChoice
from wtforms.validators import DataRequired, EqualTo, Length

from voice import db as database
from voice.clock import utcnow
from voice.config import ACCOUNT_ROLES
from voice.dashboard import two_factor
from voice.dashboard.extensions import limiter, login_manager
from voice.models import AuditEntry, Specialist, User, new_session_token

bp = Blueprint("auth", __name__, url_prefix="/dashboard")

ROLES = ACCOUNT_ROLES
COORDINATOR, SPECIALIST = ROLES
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
        self.session_token = user.session_token

    def get_id(self) -> str:
        # What the signed session cookie carries: the account and the token its sessions were issued under.
        return f"{self.id}:{self.session_token}"

    @property
    def is_coordinator(self) -> bool:
        return self.role == COORDINATOR


@login_manager.user_loader
def load_account(session_id: str) -> Account | None:
    """The account a session belongs to, unless its sessions were ended (new token) or it was disabled."""
    user_id, _, token = session_id.partition(":")
    user = database.session().get(User, int(user_id)) if user_id.isdigit() and token else None
    if user is None or not user.active or not user.session_token:
        return None
    return Account(user) if hmac.compare_digest(user.session_token, token) else None


def end_sessions(user: User) -> None:
    """Every session this account has, in any browser, stops working at its next request."""
    user.session_token = new_session_token()


def set_password(user: User, password: str) -> None:
    """A new password ends every session signed in with the old one."""
    if len(password or "") < 10:
        raise AccountError("the password must be at least 10 characters")
    user.password_hash = _hasher.hash(password)
    end_sessions(user)


def reset_two_factor(db: Session, user: User) -> None:
    """Forget the account's authenticator and recovery codes and end its sessions (a lost or stolen phone)."""
    two_factor.forget(db, user)
    end_sessions(user)


def set_active(user: User, active: bool) -> None:
    """Enable or disable an account; disabling ends its sessions at once."""
    user.active = active
    if not active:
        end_sessions(user)


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


def record_change(action: str, target: str, message: str, url: str, then: Callable[[], object] | None = None):
    """How a change made from the dashboard ends: audited, committed, said, and on to `url`.

    `then` runs after the commit: jobs queued there must find the change in the database."""
    audit(action, target)
    database.session().commit()
    if then is not None:
        then()
    flash(message, "ok")
    return redirect(url)


def refuse(message: str, url: str):
    """How a change that cannot be made ends: said, nothing committed, and back to `url`."""
    flash(message, "error")
    return redirect(url)


@contextmanager
def refused_on(errors: type[Exception] | tuple[type[Exception], ...], url: str,
               say: Callable[[Exception], str] = str) -> Iterator[None]:
    """Around a change: one of `errors` ends the request as `refuse` does, in the error's words."""
    try:
        yield
    except errors as error:
        abort(refuse(say(error), url))


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
            next_url = _safe_next(request.args.get("next"))
            if two_factor.required(user, current_app.config["REQUIRE_2FA_FOR"]):
                return _begin_second_step(db, user, next_url)
            _sign_in(user)
            db.commit()
            return redirect(next_url)
        flash("That email and password do not match an account.", "error")
    return render_template("dashboard/login.html", form=form), 200 if request.method == "GET" else 401


def _sign_in(user: User) -> None:
    """The account is signed in: a new session, so nothing from before the sign-in carries over."""
    user.last_login_at = utcnow()
    session.clear()
    session.permanent = True
    login_user(Account(user))
    audit("login")


def _safe_next(target: str | None) -> str:
    # Only a path on this site, so a crafted link cannot send a coordinator elsewhere after login.
    if target and target.startswith("/") and not target.startswith("//") and "\\" not in target:
        return target
    return url_for("board.board")


# --- the second sign-in step ---------------------------------------------------------------------------

_HALF_SIGNED_IN = "two_factor"
# Long enough to find a phone and open the app; a half sign-in left on a shared machine dies soon after.
SECOND_STEP_SECONDS = 10 * 60
# Wrong codes in one half sign-in before the password is asked for again (each step is also throttled).
MAX_WRONG_CODES = 5


class CodeForm(FlaskForm):
    code = StringField("Code from your authenticator app", validators=[
        DataRequired("Enter the 6-digit code from your authenticator app."), Length(max=12)])


class RecoveryForm(FlaskForm):
    code = StringField("Recovery code", validators=[DataRequired("Enter one of your recovery codes."), Length(max=40)])


def _begin_second_step(db: Session, user: User, next_url: str):
    """Note who passed the password step, and send them to their code (or to enrol): they are not signed in."""
    session.clear()
    session.permanent = True
    session[_HALF_SIGNED_IN] = {"user": user.id, "token": user.session_token, "since": int(time.time()),
                                "next": next_url, "wrong": 0}
    if two_factor.enrolled(user):
        return redirect(url_for("auth.second_step"))
    two_factor.offer_secret(user)
    db.commit()
    return redirect(url_for("auth.enrol"))


def _half_signed_in() -> User | None:
    """The account whose password was just right, while that is recent and its sessions have not been ended."""
    state = session.get(_HALF_SIGNED_IN)
    if not isinstance(state, dict) or time.time() - state.get("since", 0) > SECOND_STEP_SECONDS:
        return None
    user = database.session().get(User, state.get("user"))
    if user is None or not user.active or not hmac.compare_digest(user.session_token, str(state.get("token"))):
        return None
    return user


def second_step_view(view):
    """For the pages between the password and being signed in; anyone else starts at the password."""

    @wraps(view)
    def wrapper(*args, **kwargs):
        if current_user.is_authenticated:
            # Signed in already (a reload of the recovery codes page, say): nothing to do here.
            return redirect(url_for("board.board"))
        user = _half_signed_in()
        if user is None:
            session.pop(_HALF_SIGNED_IN, None)
            flash("Sign in with your email and password first (a sign-in not finished within 10 minutes lapses).",
                  "error")
            return redirect(url_for("auth.login"))
        return view(user, *args, **kwargs)

    return wrapper


def _half_signed_in_key() -> str:
    state = session.get(_HALF_SIGNED_IN)
    return f"second-step:{state.get('user')}" if isinstance(state, dict) else request.remote_addr or ""


def _wrong_code(form: FlaskForm, message: str):
    """Count a wrong code; after too many the half sign-in ends and the password is asked for again."""
    state = dict(session[_HALF_SIGNED_IN], wrong=session[_HALF_SIGNED_IN].get("wrong", 0) + 1)
    if state["wrong"] >= MAX_WRONG_CODES:
        session.clear()
        flash("Too many wrong codes. Sign in again.", "error")
        return redirect(url_for("auth.login"))
    session[_HALF_SIGNED_IN] = state
    form.code.errors.append(message)
    return None


def _finish_second_step(user: User) -> str:
    next_url = session[_HALF_SIGNED_IN].get("next") or url_for("board.board")
    _sign_in(user)
    return _safe_next(next_url)


def _second_step_limits(view):
    # Per address, like the password step, and per account, so guessing from many addresses is slow too.
    view = limiter.limit(_login_limit, key_func=_half_signed_in_key, methods=["POST"])(view)
    return limiter.limit(_login_limit, methods=["POST"])(view)


@bp.route("/login/two-factor/enrol", methods=["GET", "POST"])
@_second_step_limits
@second_step_view
def enrol(user: User):
    """Set up an authenticator: scan the QR code (or type the key), then prove it with a code."""
    db = database.session()
    if two_factor.enrolled(user):
        return redirect(url_for("auth.second_step"))
    if not user.totp_secret:
        two_factor.offer_secret(user)
        db.commit()
    form = CodeForm()
    status = 200
    if form.validate_on_submit():
        if two_factor.accept_code(db, user, form.code.data):
            codes = two_factor.confirm_enrolment(db, user)
            next_url = _finish_second_step(user)
            audit("2fa_enrol", f"user:{user.id}")
            db.commit()
            return render_template("dashboard/recovery_codes.html", codes=codes, next_url=next_url)
        db.commit()
        wrong = _wrong_code(form, "That code is not right. Check that your phone's clock is set automatically, "
                                  "then type the newest code.")
        if wrong is not None:
            return wrong
    if request.method == "POST":
        status = 400
    uri = two_factor.provisioning_uri(user, current_app.config["PROGRAM_NAME"])
    secret = " ".join(user.totp_secret[i:i + 4] for i in range(0, len(user.totp_secret), 4))
    return render_template("dashboard/two_factor_enrol.html", form=form, qr=two_factor.qr_data_uri(uri),
                           secret=secret, email=user.email), status


@bp.route("/login/two-factor", methods=["GET", "POST"])
@_second_step_limits
@second_step_view
def second_step(user: User):
    """The 6-digit code from the authenticator the account enrolled."""
    if not two_factor.enrolled(user):
        return redirect(url_for("auth.enrol"))
    db = database.session()
    form = CodeForm()
    if form.validate_on_submit():
        if two_factor.accept_code(db, user, form.code.data):
            next_url = _finish_second_step(user)
            db.commit()
            return redirect(next_url)
        db.commit()
        wrong = _wrong_code(form, "That code is not right, or it was used already. Type the newest code "
                                  "from your authenticator app.")
        if wrong is not None:
            return wrong
    return render_template("dashboard/two_factor_code.html", form=form), 400 if request.method == "POST" else 200


@bp.route("/login/two-factor/recovery", methods=["GET", "POST"])
@_second_step_limits
@second_step_view
def recovery(user: User):
    """One of the recovery codes given at enrolment, for someone without their phone; each works once."""
    if not two_factor.enrolled(user):
        return redirect(url_for("auth.enrol"))
    db = database.session()
    form = RecoveryForm()
    if form.validate_on_submit():
        if two_factor.use_recovery_code(db, user, form.code.data):
            next_url = _finish_second_step(user)
            audit("2fa_recovery_code", f"user:{user.id}")
            left = two_factor.recovery_codes_left(db, user)
            db.commit()
            flash(f"You signed in with a recovery code; {left} left. If your phone is lost, ask a coordinator "
                  "to reset your two-factor sign-in.", "ok")
            return redirect(next_url)
        db.rollback()
        wrong = _wrong_code(form, "That recovery code is not right, or it was used already.")
        if wrong is not None:
            return wrong
    return render_template("dashboard/two_factor_recovery.html", form=form), 400 if request.method == "POST" else 200


@bp.post("/login/two-factor/cancel")
def cancel_second_step():
    session.clear()
    return redirect(url_for("auth.login"))


@bp.post("/logout")
@login_required
def logout():
    db = database.session()
    user = db.get(User, current_user.id)
    if user is not None:
        # A copy of this session's cookie (another tab, a shared machine, a stolen cookie) dies with it.
        end_sessions(user)
        audit("logout")
        db.commit()
    logout_user()
    session.clear()
    return redirect(url_for("auth.login"))


class PasswordForm(FlaskForm):
    current = PasswordField("Current password", validators=[DataRequired(), Length(max=200)])
    new = PasswordField("New password (10 characters or more)", validators=[DataRequired(), Length(min=10, max=200)])
    confirm = PasswordField("New password again", validators=[DataRequired(), EqualTo("new", "The two new passwords differ.")])


@bp.route("/account/password", methods=["GET", "POST"])
@login_required
@limiter.limit(_login_limit, methods=["POST"])
def change_password():
    """Change your own password; your other sessions end, this one carries on under the new token."""
    form = PasswordForm()
    db = database.session()
    if form.validate_on_submit():
        user = db.get(User, current_user.id)
        if not check_password(user, form.current.data):
            form.current.errors.append("That is not your current password.")
        else:
            set_password(user, form.new.data)
            audit("password_change", f"user:{user.id}")
            db.commit()
            login_user(Account(user))
            flash("Password changed. You were signed out everywhere else.", "ok")
            return redirect(url_for("board.board"))
    status = 400 if request.method == "POST" else 200
    return render_template("dashboard/password.html", form=form), status


# --- accounts (coordinator) -----------------------------------------------------------------------


class AccountForm(FlaskForm):
    email = EmailField("Email", validators=[DataRequired(), Length(max=254)])
    role = SelectField("Role", choices=[SelectChoice(COORDINATOR, "Coordinator"), SelectChoice(SPECIALIST, "Specialist")])
    specialist_id = SelectField("Specialist on the roster (for a specialist)", coerce=str, choices=[])
    password = PasswordField("First password (10 characters or more)", validators=[DataRequired(), Length(max=200)])


def _account_form(db: Session) -> AccountForm:
    form = AccountForm()
    roster = db.scalars(select(Specialist).where(Specialist.active.is_(True)).order_by(Specialist.name)).all()
    form.specialist_id.choices = [SelectChoice("", "None")] + [SelectChoice(str(s.id), s.name) for s in roster]
    return form


@bp.route("/users", methods=["GET", "POST"])
@coordinator_required
def users():
    db = database.session()
    form = _account_form(db)
    status = 200
    if form.validate_on_submit():
        linked = int(form.specialist_id.data) if form.specialist_id.data.isdigit() else None
        try:
            user = create_user(db, form.email.data, form.password.data, form.role.data,
                               linked if form.role.data == SPECIALIST else None)
            audit("user_create", f"user:{user.id}")
            db.commit()
        except AccountError as error:
            db.rollback()
            form.email.errors.append(f"{error}.")
        except IntegrityError:
            # Two posts of the same new account at once: the second finds the email taken only at the insert.
            db.rollback()
            form.email.errors.append(f"{form.email.data.strip().lower()} already has an account.")
        else:
            flash(f"Account {user.email} created.", "ok")
            return redirect(url_for("auth.users"))
    if request.method == "POST":
        status = 400
    rows = db.scalars(select(User).order_by(User.active.desc(), User.email)).all()
    return render_template("dashboard/users.html", rows=rows, form=form,
                           require_2fa_for=current_app.config["REQUIRE_2FA_FOR"]), status


@bp.post("/users/<int:user_id>/end-sessions")
@coordinator_required
def end_user_sessions(user_id: int):
    db = database.session()
    user = db.get(User, user_id) or abort(404)
    end_sessions(user)
    return record_change("end_sessions", f"user:{user.id}", f"Every session of {user.email} has ended.",
                         url_for("auth.users"))


@bp.post("/users/<int:user_id>/reset-2fa")
@coordinator_required
def reset_user_two_factor(user_id: int):
    db = database.session()
    user = db.get(User, user_id) or abort(404)
    reset_two_factor(db, user)
    return record_change("2fa_reset", f"user:{user.id}", f"Two-factor sign-in of {user.email} was reset and their "
                         "sessions ended; they set it up again at their next sign-in.", url_for("auth.users"))


@bp.post("/users/<int:user_id>/active")
@coordinator_required
def set_user_active(user_id: int):
    db = database.session()
    user = db.get(User, user_id) or abort(404)
    active = request.form.get("active") == "1"
    if not active and user.id == current_user.id:
        return refuse("You cannot disable your own account.", url_for("auth.users"))
    set_active(user, active)
    return record_change("user_enable" if active else "user_disable", f"user:{user.id}",
                         f"{user.email} {'enabled' if active else 'disabled and signed out'}.", url_for("auth.users"))
