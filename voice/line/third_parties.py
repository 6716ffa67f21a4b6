"""People added to a live call's conference: an interpreter, a supervisor who listens, coaches or joins, and a warm
transfer's third party (dispatch, or a service from the directory).

Each is dialed through Twilio's REST API into the call's conference (`conferences`), startConferenceOnEnter true,
endConferenceOnExit false and no beep (https://www.twilio.com/docs/voice/api/conference-participant-resource):
none of them can end the caller's call by leaving, and nobody hears that someone joined. A supervisor listening is
muted (heard by nobody); coaching, they are heard by the specialist only (Coaching with CallSidToCoach); joining,
by everyone. The interpreter is a call of its own (Calls API), because the service wants its PIN keyed once it
answers (SendDigits), and then joins the conference by TwiML.

A warm transfer, move by move (each the specialist's button, each on the timeline):
    hold the caller (music) -> dial the third party -> talk with them -> bring the caller back -> leave.
The caller is never alone: while held they hear music with the specialist still there; the specialist may leave
only once the third party is in, and leaving unholds the caller first; a third party who never answers or hangs up
leaves the caller with the specialist; if the specialist's line drops mid-transfer the caller is unheld, with the
third party if they are in, else back to the front of the line (`offers.specialist_gone`).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping

import redis
from flask import current_app
from sqlalchemy.orm import Session
from twilio.twiml.voice_response import VoiceResponse

from voice import tasks, twilio_rest
from voice.casework import services
from voice.clock import utcnow
from voice.line import calls, conferences
from voice.models import Call, ConferenceParticipant
from voice.twiml import webhook_url

log = logging.getLogger("voice.line.third_parties")

SUPERVISOR_MODES = ("listen", "coach", "join")
DISPATCH = "911 dispatch"
# How long a third party's phone rings before the transfer gives up on them.
THIRD_PARTY_RING_SECONDS = 30


class NotLive(Exception):
    """The call has no conference with the caller in it now; the message says what to do instead."""


def live_conference(db: Session, call: Call) -> str:
    """The SID of the call's conference while the caller is in it; NotLive otherwise."""
    sid = conferences.conference_sid(db, call)
    if sid is None or conferences.in_now(db, call, conferences.CALLER) is None:
        raise NotLive("This call is not in a conference with the caller right now.")
    return sid


# --- the interpreter ----------------------------------------------------------------------------------------


def interpreter_twiml(call: Call) -> str:
    """The interpreter service answered (its PIN sent): into the call's conference."""
    response = VoiceResponse()
    conferences.join(response, call, conferences.INTERPRETER, webhook_url("/voice/conference/added-left",
                                                                          call=call.call_sid),
                     start=True, end=False)
    return str(response)


def interpreter_urls(call: Call) -> tuple[str, str]:
    return (webhook_url("/voice/conference/interpreter", call=call.call_sid),
            webhook_url("/voice/conference/added-status", call=call.call_sid, label=conferences.INTERPRETER))


def add_interpreter(db: Session, r: redis.Redis, call: Call, user_id: int | None, language: str | None,
                    by: str) -> str:
    """Dial the interpreter service into the call's conference now (a REST call: TwilioError if Twilio says no)."""
    config = current_app.config
    if not config["INTERPRETER_NUMBER"]:
        raise NotLive("No interpreter service is set up (INTERPRETER_NUMBER).")
    if any(p.label == conferences.INTERPRETER for p in conferences.present(db, call)):
        raise NotLive("An interpreter is already on this call.")
    url, status = interpreter_urls(call)
    calls.record_event(db, call, "interpreter_added", by=by, language=language or None)
    row = conferences.dialing(db, call, conferences.INTERPRETER, user_id=user_id,
                              detail=(language or "")[:80] or None)
    return place(db, row, lambda: twilio_rest.noting_health(
        r, twilio_rest.place_call, dict(config), config["INTERPRETER_NUMBER"], url, status, THIRD_PARTY_RING_SECONDS,
        config["INTERPRETER_DIGITS"] or None))


def place(db: Session, row: ConferenceParticipant, request) -> str:
    """Make the REST request that dials a participant already on the call (`conferences.dialing`)."""
    try:
        sid = request()
    except twilio_rest.TwilioError:
        conferences.dialed(db, row, None)
        db.commit()
        raise
    conferences.dialed(db, row, sid)
    return sid


def interpreter_at_once(db: Session, r: redis.Redis, call: Call) -> None:
    """The caller asked for another language at the greeting: dial the interpreter as soon as this commits."""
    config = dict(current_app.config)
    url, status = interpreter_urls(call)
    call_id = call.id

    def place() -> None:
        # The interpreter is on the board from their first conference event (the participant row is made then).
        try:
            twilio_rest.noting_health(r, twilio_rest.place_call, config, config["INTERPRETER_NUMBER"], url, status,
                                      THIRD_PARTY_RING_SECONDS, config["INTERPRETER_DIGITS"] or None)
        except twilio_rest.TwilioError as error:
            log.warning("could not dial the interpreter for call %s: %s", call_id, error)

    calls.record_event(db, call, "interpreter_added", by="the caller (another language)")
    tasks.after_commit(db, place)


def added_leg_status(db: Session, call: Call, label: str, form: dict) -> None:
    """A dialed-in participant's own call ended: if it never joined (no answer, busy), say so on the timeline."""
    status = form.get("CallStatus", "")
    sid = (form.get("CallSid") or "")[:64]
    if status not in twilio_rest.TERMINAL_STATUSES:
        return
    row = next((p for p in conferences.participants(db, call) if p.call_sid == sid), None)
    if row is not None and row.joined_at is None and row.left_at is None:
        row.left_at, row.left_reason = utcnow(), status[:40]
    if row is None or row.joined_at is None:
        calls.record_event(db, call, "participant_not_reached", label=label, status=status)


# --- supervisors: listen, coach, join ----------------------------------------------------------------------


def supervisor_label(user_id: int) -> str:
    return f"{conferences.SUPERVISOR}-{user_id}"


def supervise(db: Session, r: redis.Redis, call: Call, user_id: int, who: str, phone: str, mode: str) -> None:
    """Dial a supervisor's own phone into the call (or change how they are in it): listen, coach or join.

    Raises NotLive, or TwilioError when Twilio refuses. The caller hears nothing of a listener or a coach.
    """
    if mode not in SUPERVISOR_MODES:
        raise ValueError(mode)
    sid = live_conference(db, call)
    specialist = conferences.in_now(db, call, conferences.SPECIALIST)
    if mode == "coach" and specialist is None:
        raise NotLive("There is no specialist on this call to coach.")
    options = {"muted": mode == "listen", "coaching": mode == "coach"}
    if mode == "coach":
        options["call_sid_to_coach"] = specialist.call_sid
    label = supervisor_label(user_id)
    mine = next((p for p in conferences.present(db, call) if p.label == label), None)
    config = dict(current_app.config)
    if mine is not None:
        twilio_rest.noting_health(r, twilio_rest.update_participant, config, sid, mine.call_sid, **options)
        mine.detail = mode
    else:
        row = conferences.dialing(db, call, label, sid, user_id=user_id, detail=mode)
        place(db, row, lambda: twilio_rest.noting_health(
            r, twilio_rest.add_participant, config, sid, phone,
            **conferences.added_options(call, label, timeout=THIRD_PARTY_RING_SECONDS, **options)))
    calls.record_event(db, call, "supervisor", by=who, mode=mode)


# --- a warm transfer ----------------------------------------------------------------------------------------


def directory(db: Session, config: Mapping) -> list[tuple[str, str, str]]:
    """Where a specialist may send a caller warm, as (choice, name, number): dispatch first, then the active
    services of the coordinator's directory (`casework.services`), each by its id so an edit cannot shift a choice."""
    return [("dispatch", DISPATCH, config["DISPATCH_TRANSFER_NUMBER"]),
            *((f"service-{s.id}", s.name, s.phone) for s in services.directory(db, only_active=True))]


def hold_caller(db: Session, r: redis.Redis, call: Call, held: bool, by: str) -> None:
    """Put the caller on hold (music, hearing nobody) or bring them back."""
    sid = live_conference(db, call)
    caller = conferences.in_now(db, call, conferences.CALLER)
    changes = {"hold": held}
    if held:
        changes["hold_url"] = webhook_url("/voice/conference/hold-music", call=call.call_sid)
    twilio_rest.noting_health(r, twilio_rest.update_participant, dict(current_app.config), sid, caller.call_sid,
                              **changes)
    calls.record_event(db, call, "caller_held" if held else "caller_unheld", by=by)


def hold_music() -> str:
    """What a held caller hears: the line's hold music (a holdUrl may only Play, Say, Pause and Redirect)."""
    response = VoiceResponse()
    response.play(current_app.config["HOLD_MUSIC_URL"], loop=0)
    return str(response)


def add_third_party(db: Session, r: redis.Redis, call: Call, choice: str, by: str) -> str:
    """Dial dispatch or a directory service into the conference, the caller held meanwhile; returns its name."""
    chosen = [(name, number) for key, name, number in directory(db, current_app.config) if key == choice]
    if not chosen:
        raise NotLive("Choose where to transfer the caller.")
    if transfer_party(db, call) is not None:
        raise NotLive("A transfer is already under way on this call.")
    sid = live_conference(db, call)
    name, number = chosen[0]
    calls.record_event(db, call, "transfer_dialed", to=name, by=by)
    row = conferences.dialing(db, call, conferences.TRANSFER, sid, detail=name)
    place(db, row, lambda: twilio_rest.noting_health(
        r, twilio_rest.add_participant, dict(current_app.config), sid, number,
        **conferences.added_options(call, conferences.TRANSFER, timeout=THIRD_PARTY_RING_SECONDS)))
    return name


def transfer_party(db: Session, call: Call) -> ConferenceParticipant | None:
    return next((p for p in conferences.present(db, call) if p.label == conferences.TRANSFER), None)


def specialist_leaves(db: Session, r: redis.Redis, call: Call, by: str) -> str:
    """The handover is done: the caller is unheld, the specialist's leg leaves the conference (on purpose, not a
    cut-off), and the outcome says where the caller went. Only once the third party is in."""
    sid = live_conference(db, call)
    third = transfer_party(db, call)
    if third is None or third.joined_at is None:
        raise NotLive("The caller would be alone: wait until the person you are transferring to is on the line.")
    caller = conferences.in_now(db, call, conferences.CALLER)
    specialist = conferences.in_now(db, call, conferences.SPECIALIST)
    config = dict(current_app.config)
    # Unheld whatever the last hold event said (that callback may still be on its way).
    twilio_rest.noting_health(r, twilio_rest.unhold, config, sid, caller.call_sid)
    if specialist is not None:
        # Their leg goes on to its Dial action, which sees the third party in and says goodbye (not a *).
        twilio_rest.noting_health(r, twilio_rest.remove_participant, config, sid, specialist.call_sid)
    where = third.detail or "another service"
    if where == DISPATCH:
        calls.set_outcome(db, call, calls.ESCALATED, reason="warm transfer to dispatch by the specialist")
    else:
        calls.set_outcome(db, call, call.outcome, reason=f"warm transfer to {where}"[:200])
        service = services.named(db, where)
        if service is not None and service.active:
            # Put through to them is a referral the caller took; the reports count it with the others.
            services.give(db, call.id, service, accepted=True, user_id=None)
    calls.record_event(db, call, "transfer_completed", to=where, by=by)
    return where
