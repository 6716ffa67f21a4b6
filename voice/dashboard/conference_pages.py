"""A live call's conference from the dashboard: add an interpreter, listen to, coach or join a call (coordinators,
and specialists marked supervisor), and a specialist's warm transfer. Every use is audited: who, which call, when."""

from __future__ import annotations

from flask import Blueprint, abort, current_app, request, url_for
from flask_login import current_user, login_required

from voice import db as database
from voice import phones
from voice.dashboard.auth import record_change, refuse, refused_on
from voice.dashboard.call_pages import own_call_or_404
from voice.line import calls, conferences, third_parties
from voice.models import Call, ConferenceParticipant, Specialist, User
from voice.redisdb import get_redis
from voice.twilio_rest import TwilioError

bp = Blueprint("conference_pages", __name__, url_prefix="/dashboard")


@bp.app_template_filter("participant")
def participant(person: ConferenceParticipant) -> str:
    """Who someone in a call's conference is, as the board and the call's page name them."""
    return conferences.who(person)


def back(call: Call) -> str:
    """Where the form was: the board, or the call's page."""
    if request.form.get("from") == "board":
        return url_for("board.board")
    return url_for("call_pages.call_detail", call_id=call.id)


def attempt(call: Call, action: str, make, done: str):
    """Run one change to a live call (`make(db)`), audited; what Twilio or the call's state refused is said plainly
    (nothing is committed then)."""
    url = back(call)
    with refused_on(third_parties.NotLive, url), refused_on(
            TwilioError, url, say=lambda error: f"That did not go through ({error}). The call is as it was."):
        make(database.session())
    return record_change(action, call.call_sid, done, url)


def can_supervise() -> bool:
    """Coordinators may listen, coach and join; so may a specialist with the skill supervisor."""
    return current_user.is_coordinator or bool(supervisor_entry())


def supervisor_entry() -> Specialist | None:
    """The user's roster entry when it has the skill supervisor."""
    specialist = database.session().get(Specialist, current_user.specialist_id or 0)
    return specialist if specialist is not None and specialist.supervisor else None


def may_supervise() -> Specialist | None:
    """None for a coordinator, the roster entry of a supervising specialist; anyone else is refused (403)."""
    if current_user.is_coordinator:
        return None
    return supervisor_entry() or abort(403)


@bp.post("/calls/<int:call_id>/supervise")
@login_required
def supervise(call_id: int):
    """Listen (muted), coach (the specialist alone hears them) or join: the line dials their own phone."""
    specialist = may_supervise()
    call = database.session().get(Call, call_id) or abort(404)
    mode = request.form.get("mode", "")
    if mode not in third_parties.SUPERVISOR_MODES:
        return refuse("Choose listen, coach or join.", back(call))
    db = database.session()
    user = db.get(User, current_user.id)
    config = current_app.config
    if specialist is not None:
        phone = specialist.phone
    else:
        check = phones.check_callable(request.form.get("phone") or user.phone or "", config["DEFAULT_REGION"],
                                      config["CALLBACK_COUNTRIES"])
        if check.number is None:
            return refuse(f"The line needs your phone number to dial you in: that one {check.reason()}.", back(call))
        phone = user.phone = check.number
    words = {"listen": "Your phone is ringing: you will hear the call, muted.",
             "coach": "Your phone is ringing: only the specialist will hear you.",
             "join": "Your phone is ringing: you will join the call."}[mode]
    return attempt(call, f"supervise_{mode}",
                   lambda db: third_parties.supervise(db, get_redis(), call, user.id, user.email, phone, mode), words)


@bp.post("/calls/<int:call_id>/interpreter")
@login_required
def add_interpreter(call_id: int):
    call = own_call_or_404(call_id)
    language = calls.clean_text(request.form.get("language"), 40)
    return attempt(call, "add_interpreter",
                   lambda db: third_parties.add_interpreter(db, get_redis(), call, current_user.id, language,
                                                            by=current_user.email),
                   "The interpreter service is being dialed into the call.")


@bp.post("/calls/<int:call_id>/hold")
@login_required
def hold(call_id: int):
    call = own_call_or_404(call_id)
    held = request.form.get("held") == "1"
    return attempt(call, "hold_caller" if held else "unhold_caller",
                   lambda db: third_parties.hold_caller(db, get_redis(), call, held, by=current_user.email),
                   "The caller hears hold music." if held else "The caller is back with you.")


@bp.post("/calls/<int:call_id>/warm-transfer")
@login_required
def warm_transfer(call_id: int):
    """Dial dispatch or a directory service into the call (put the caller on hold first to speak privately)."""
    call = own_call_or_404(call_id)
    choice = request.form.get("to", "")
    return attempt(call, "warm_transfer",
                   lambda db: third_parties.add_third_party(db, get_redis(), call, choice, by=current_user.email),
                   "Dialing. Speak with them, then bring the caller back and leave the call.")


@bp.post("/calls/<int:call_id>/hand-over")
@login_required
def hand_over(call_id: int):
    call = own_call_or_404(call_id)
    return attempt(call, "hand_over",
                   lambda db: third_parties.specialist_leaves(db, get_redis(), call, by=current_user.email),
                   "You have left the call; the caller is with the service you transferred them to.")
