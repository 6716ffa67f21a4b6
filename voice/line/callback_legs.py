"""The phone side of a callback: the specialist's whisper (no name, no address until they press a key), their key,
the caller dialed into the call's conference behind a "press 1" screen, and the results.

Voicemail is not a person (issue 19). The caller's leg is a call of its own whose first words ask for a key:
only a key press counts as reaching them. A voicemail presses nothing: it hears that sentence and a goodbye, no
case details, and the attempt is a miss retried on CALLBACK_RETRY_MINUTES. The key-press screen was chosen over
Twilio's answering machine detection (https://www.twilio.com/docs/voice/answering-machine-detection): it is
deterministic, where detection misjudges some people as machines (and a person it misjudged would be hung up on);
it adds no silence before a person hears us (detection listens for seconds after pickup); and it costs a caller
one key. The specialist's own voicemail, likewise, hears only "Mediation callback" and the language until a key.
"""

from __future__ import annotations

import redis
from flask import current_app
from sqlalchemy.orm import Session
from twilio.twiml.voice_response import VoiceResponse

from voice import languages, phones, tasks, twilio_rest
from voice.clock import to_local
from voice.db import flush_with_events
from voice.line import callbacks, calls, conferences, offers, questions, routing
from voice.models import CallbackRequest
from voice.redisdb import Keys
from voice.tasks import after_commit, dispatch_after_commit, dispatch_at, text_caller_after_commit
from voice.twilio_rest import TERMINAL_STATUSES, TwilioError
from voice.twiml import hangup, say, webhook_url

# How long the caller's phone rings for a callback.
CALLER_RING_SECONDS = 30
# A callback's caller leg, for as long as it can last.
CALLER_LEG_SECONDS = 6 * 3600


def params_of(request: CallbackRequest, specialist_id: int, **more: object) -> dict:
    return {"request": request.id, "specialist": specialist_id, **more}


def whisper(db: Session, r: redis.Redis, request: CallbackRequest | None, specialist_id: int, call_sid: str,
            repeat: int = 1) -> str:
    """The specialist picked up: a mediation callback and its language, and a key to hear who and where."""
    if not callbacks.is_attempt(request, specialist_id):
        return hangup("This callback has already been handled. Thank you.")
    if not request.attempt_call_sid and call_sid:
        # The worker may have died before saving the Call SID; Twilio's own request tells us.
        request.attempt_call_sid = call_sid[:64]
    # They are listening now: keep them held for this callback while they decide.
    routing.extend_lease(r, specialist_id, routing.callback_holder(request.id),
                         current_app.config["RING_LEASE_SECONDS"])
    language = languages.of(request.language or "en").name
    answer_url = webhook_url("/voice/callback/answer", **params_of(request, specialist_id, repeat=repeat,
                                                                      stage="intro"))
    return offers.whisper_twiml(f"Mediation callback, in {language}. Press 1 to hear it.", answer_url)


def details(request: CallbackRequest, specialist_id: int, repeat: int = 1) -> str:
    """Who and where, once the specialist pressed a key (a voicemail never gets here)."""
    summary = offers.case_summary(request.call, waited=callbacks.minutes_ago(request))
    answer_url = webhook_url("/voice/callback/answer", **params_of(request, specialist_id, repeat=repeat,
                                                                      stage="details"))
    return offers.whisper_twiml(f"{summary} Press 1 to call them now. Press 2 to pass.", answer_url)


def answer(db: Session, r: redis.Redis, request: CallbackRequest | None, specialist_id: int, digits: str,
           call_sid: str, repeat: int = 1, stage: str = "details") -> str:
    """A key: 1 hears the details, then 1 again joins the conference and dials the caller. Else someone else."""
    if not callbacks.is_attempt(request, specialist_id):
        return hangup("This callback has already been handled. Thank you.")
    config = current_app.config
    if (digits or "")[:1] != "1":
        if not digits and repeat < 2:
            if stage == "intro":
                return whisper(db, r, request, specialist_id, call_sid, repeat=repeat + 1)
            return details(request, specialist_id, repeat=repeat + 1)
        callbacks.back_in_line(db, r, request, "declined" if digits else "no key pressed")
        dispatch_after_commit(db, r)
        return hangup("Okay. We will offer the callback to someone else.")
    if stage == "intro":
        return details(request, specialist_id)
    if phones.callable_number(request.callback_number, config["DEFAULT_REGION"], config["CALLBACK_COUNTRIES"]) is None:
        # The toll-fraud policy again, at the moment of dialing: nothing stored earlier slips through.
        callbacks.release_attempt(r, request)
        callbacks.give_up(db, request, "the callback number is outside the numbers this line may call")
        return hangup("Sorry, this caller's number cannot be dialed from the line. The coordinator will see it.")
    if request.attempt_accepted_at is None:
        callbacks.specialist_accepted(db, r, request, config["CALL_LEASE_SECONDS"], config["COMPLEX_CATEGORIES"])
    dial_caller(db, r, request, specialist_id)
    response = VoiceResponse()
    say(response, f"Calling {request.call.caller_name or 'the caller'} now. Please hold.", "en")
    action = webhook_url("/voice/callback/dial-result", **params_of(request, specialist_id))
    conferences.join(response, request.call, conferences.SPECIALIST, action, start=True, end=False,
                     hangup_on_star=True)
    return str(response)


def dial_caller(db: Session, r: redis.Redis, request: CallbackRequest, specialist_id: int) -> None:
    """Ring the caller once this request's acceptance is committed (the screen's first request reads it)."""
    config = dict(current_app.config)
    params = params_of(request, specialist_id)
    number, request_id, token = request.callback_number, request.id, callbacks.attempt_token(request)
    screen, status = webhook_url("/voice/callback/screen", **params), webhook_url("/voice/callback/caller-status",
                                                                               **params)

    def place() -> None:
        try:
            sid = twilio_rest.noting_health(r, twilio_rest.place_call, config, number, screen, status,
                                            CALLER_RING_SECONDS)
        except TwilioError as error:
            # A worker settles the attempt and tells the specialist (this request's session is done).
            tasks.enqueue(r, tasks.CALLER_LEG_FAILED, request_id, specialist_id, token, str(error)[:200])
            return
        r.set(Keys.caller_leg(request_id), sid, ex=CALLER_LEG_SECONDS)

    after_commit(db, place)


def caller_leg_failed(db: Session, r: redis.Redis, request: CallbackRequest | None, specialist_id: int,
                      error: str) -> bool:
    """Twilio would not place the call to the caller: the caller keeps their place; the specialist is told."""
    if not callbacks.is_attempt(request, specialist_id):
        return False
    specialist_sid = request.attempt_call_sid
    give_up_attempt(db, r, request, None, f"the call to the caller could not be placed: {error}")
    if specialist_sid:
        to_closing(db, r, request, specialist_id, specialist_sid)
    return True


# --- the caller's leg: the screen, the conference ---------------------------------------------------------


def screen(request: CallbackRequest | None, specialist_id: int, attempt: int = 1) -> str:
    """The caller's phone answered: who is calling, and a key to talk (no case details: it may be a machine)."""
    if request is None:
        return hangup()
    language = request.language or "en"
    if not callbacks.is_attempt(request, specialist_id) or request.attempt_accepted_at is None:
        return no_key_goodbye(request)
    response = VoiceResponse()
    gather = response.gather(input="dtmf", num_digits=1, timeout=5, method="POST", action_on_empty_result=True,
                             action=webhook_url("/voice/callback/pressed", **params_of(request, specialist_id,
                                                                                          attempt=attempt)))
    if attempt == 1:
        say(gather, questions.fill(questions.words("callback_screen", request.call), request.call), language)
    say(gather, questions.words("callback_press", request.call), language)
    return str(response)


def no_key_goodbye(request: CallbackRequest) -> str:
    return hangup(questions.fill(questions.words("callback_no_key", request.call), request.call),
                  request.language or "en")


def pressed(db: Session, request: CallbackRequest | None, specialist_id: int, digits: str, attempt: int) -> str:
    """A key at the screen is a person: into the conference with their specialist. Silence twice: goodbye."""
    if request is None:
        return hangup()
    if not digits and attempt < 2 and callbacks.is_attempt(request, specialist_id):
        return screen(request, specialist_id, attempt + 1)
    if not digits or not callbacks.is_attempt(request, specialist_id) or request.attempt_accepted_at is None:
        calls.record_event(db, request.call, "callback_no_key", request_id=request.id, attempt=attempt)
        return no_key_goodbye(request)
    callbacks.caller_answered(db, request)
    response = VoiceResponse()
    action = webhook_url("/voice/callback/caller-done", **params_of(request, specialist_id))
    conferences.join(response, request.call, conferences.CALLER, action, start=False, end=True)
    return str(response)


def caller_done(request: CallbackRequest | None) -> str:
    """The caller's Dial action: out of the conference, their call going on (the specialist ended it with *)."""
    if request is None:
        return hangup()
    return questions.finished(request.call)


def caller_leg_status(db: Session, r: redis.Redis, request: CallbackRequest | None, specialist_id: int,
                      form: dict) -> None:
    """The caller's leg ended: a conversation over (reached), or nobody pressed a key (a miss, retried)."""
    status = form.get("CallStatus", "")
    if request is None or status not in TERMINAL_STATUSES:
        return
    calls.record_event(db, request.call, "callback_caller_leg_status", request_id=request.id, status=status,
                       duration=form.get("CallDuration"), answered_by=form.get("AnsweredBy"))
    if not callbacks.is_attempt(request, specialist_id) or request.attempt_accepted_at is None:
        return
    if callbacks.answered_this_attempt(request):
        callbacks.caller_reached(db, r, request, duration=form.get("CallDuration"))
        return
    specialist_sid = request.attempt_call_sid
    missed = "answered, but no key was pressed (a machine, or nobody there)" if status == "completed" else status
    due = callbacks.caller_missed(db, r, request, missed, current_app.config["CALLBACK_RETRY_MINUTES"])
    if due is not None:
        after_commit(db, dispatch_at, r, due)
    else:
        text_caller_after_commit(db, r, request.id, "unreachable")
    if specialist_sid:
        # The specialist waits in the conference for nobody: out, with the closing words.
        to_closing(db, r, request, specialist_id, specialist_sid)


def to_closing(db: Session, r: redis.Redis, request: CallbackRequest, specialist_id: int, specialist_sid: str) -> None:
    """Bring the specialist's leg out of the conference to the closing words."""
    tasks.rest_after_commit(db, r, "redirect_call", specialist_sid,
                            webhook_url("/voice/callback/closing", **params_of(request, specialist_id)))


# --- the specialist's leg: out of the conference, and its end -------------------------------------------------


def dial_result(db: Session, r: redis.Redis, request: CallbackRequest | None, specialist_id: int, form: dict) -> str:
    """The specialist's Dial action: out of the conference. * with the caller there ends the call for both; * while
    the caller's phone still rang gives the attempt up (the caller keeps their place)."""
    if request is None:
        return hangup("Thank you.")
    calls.record_event(db, request.call, "callback_specialist_out_of_conference", request_id=request.id,
                       specialist_id=specialist_id, dial_status=form.get("DialCallStatus"),
                       call_status=form.get("CallStatus"))
    if form.get("CallStatus") in TERMINAL_STATUSES:
        return hangup("Thank you.")
    if callbacks.is_attempt(request, specialist_id) and request.attempt_accepted_at is not None:
        caller_sid = caller_leg(r, request)
        if callbacks.answered_this_attempt(request):
            if offers.handed_over(db, request.call):
                return hangup("You have left the call. The caller is with the service you transferred them to.")
            if caller_sid and offers.caller_still_there(db, r, request.call, caller_sid):
                offers.end_for_caller(db, r, request.call, caller_sid, "the specialist ended the callback")
            return hangup("The call has ended. Thank you for taking it.")
        give_up_attempt(db, r, request, caller_sid, "the specialist pressed * before the caller answered")
        return hangup("Okay. We will offer the callback again. Thank you.")
    return closing_words(request, specialist_id)


def give_up_attempt(db: Session, r: redis.Redis, request: CallbackRequest, caller_sid: str | None, why: str) -> None:
    """The attempt ends with no conversation (the specialist left or was cut off, or the caller's call failed): the
    caller keeps their place, the next dispatch is asked for, and their phone (if `caller_sid`) stops."""
    callbacks.back_in_line(db, r, request, why, passed=False)
    dispatch_after_commit(db, r)
    if caller_sid:
        tasks.rest_after_commit(db, r, "end_call", caller_sid)


def caller_leg(r: redis.Redis, request: CallbackRequest) -> str | None:
    value = r.get(Keys.caller_leg(request.id))
    return value.decode() if value else None


def closing_words(request: CallbackRequest | None, specialist_id: int) -> str:
    """What the specialist hears once their part is over, from how the request now stands."""
    if request is None or request.attempt_specialist_id not in (None, specialist_id):
        return hangup("Thank you.")
    if request.status == callbacks.COMPLETED and request.call.specialist_id == specialist_id:
        return hangup("The call has ended. Thank you for taking it.")
    if request.status == callbacks.SCHEDULED:
        config = current_app.config
        local = to_local(request.due_at, config["TIMEZONE"])
        return hangup(f"The caller did not answer. We will try again at {local.strftime('%-I:%M %p')}. Thank you.")
    if request.status == callbacks.UNREACHABLE:
        return hangup("The caller did not answer. That was the last try; the coordinator will see it. Thank you.")
    return hangup("Thank you.")


def leg_status(db: Session, r: redis.Redis, request: CallbackRequest | None, specialist_id: int, form: dict) -> None:
    """The specialist's leg ended: before their key the caller goes back in line; before the caller answered too,
    and the caller's phone stops ringing."""
    status = form.get("CallStatus", "")
    if request is None or status not in TERMINAL_STATUSES:
        return
    calls.record_event(db, request.call, "callback_leg_status", request_id=request.id, specialist_id=specialist_id,
                       status=status, duration=form.get("CallDuration"))
    # On the timeline before they are freed below, as for a held caller's offer (offers.offer_status).
    flush_with_events(db)
    if callbacks.is_attempt(request, specialist_id) and request.attempt_accepted_at is None:
        callbacks.back_in_line(db, r, request, f"specialist leg ended: {status}")
        dispatch_after_commit(db, r)
    elif callbacks.is_attempt(request, specialist_id) and not callbacks.answered_this_attempt(request):
        give_up_attempt(db, r, request, caller_leg(r, request), f"specialist leg ended: {status}")
    else:
        # They are off the phone. A conversation under way is settled by the caller's leg (or, if the specialist
        # was cut off from the caller, by the conference's events), never by this request.
        routing.release_specialist(r, specialist_id, routing.callback_holder(request.id))


def specialist_cut_off(db: Session, r: redis.Redis, request: CallbackRequest | None, specialist_id: int,
                       caller_sid: str) -> None:
    """The specialist's line ended mid-callback with the caller still there: the caller is told we will call
    right back, and the request goes back in line at the front (its place kept)."""
    if not callbacks.is_attempt(request, specialist_id) or not callbacks.answered_this_attempt(request):
        return
    calls.record_event(db, request.call, "specialist_cut_off", specialist_id=specialist_id, request_id=request.id)
    give_up_attempt(db, r, request, None, "the specialist was cut off from the caller")
    tasks.rest_after_commit(db, r, "redirect_call", caller_sid,
                            webhook_url("/voice/callback/cut-off", **params_of(request, specialist_id)))


def cut_off_words(request: CallbackRequest | None) -> str:
    if request is None:
        return hangup()
    language = request.language or "en"
    return hangup(questions.words("callback_cut_off", request.call), language)
