"""The callback jobs: offer waiting callers to free specialists, place the calls, text the callers, sweep."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from datetime import timedelta

from flask import Flask, current_app, has_app_context
from rq import Callback, get_current_job
from rq.job import Job

from voice import create_app, hours, languages, phones, tasks, twilio_rest
from voice import db as database
from voice.casework import field_safety
from voice.clock import utcnow
from voice.line import callback_legs, callbacks, calls, holds, offers, preferences, routing
from voice.models import CallbackRequest, Hold, Specialist
from voice.redisdb import Keys, get_redis
from voice.reporting import outcomes
from voice.tasks import enqueue
from voice.twilio_rest import TwilioError
from voice.twiml import webhook_url
from workers.call_ends import reconcile_call_ends

log = logging.getLogger("workers.jobs")

_app: Flask | None = None

# At most this many specialists' phones ring at once for one held caller.
RING_AT_ONCE = 5
# A placing job gets this long; Twilio's REST timeout is 10 s, so a longer run means a stuck or dead worker.
PLACE_JOB_TIMEOUT = 60


@contextmanager
def job_context() -> Iterator[None]:
    """The app context a job runs in: the caller's, or one built once per worker process."""
    if has_app_context():
        yield
        return
    with preload_app().app_context():
        yield


def preload_app() -> Flask:
    """Build the worker's app now (in the parent process, so every forked job inherits it)."""
    global _app
    if _app is None:
        _app = create_app()
    return _app


def dispatch() -> int:
    """Offer waiting callers to free specialists, longest waiting first, held or callback alike.

    A held caller gets every free specialist who fits, rung at once; a callback gets one. Nothing is offered
    while the line is closed, nor while Twilio is unreachable (callers keep their place; nobody is claimed).
    Returns how many specialists' phones were set ringing.
    """
    with job_context():
        db = database.session()
        r = get_redis()
        config = current_app.config
        callbacks.promote_due(db)
        db.commit()
        if not hours.line_open(config) or not twilio_answers(r, config):
            return 0
        waiting = [(hold.arrived_at, 0, hold) for hold in holds.waiting_holds(db)]
        waiting += [(request.arrived_at, 1, request) for request in callbacks.due_requests(db)]
        rung = 0
        # Once a caller found nobody free, nobody newer of their language is offered anyone in this pass: a
        # specialist freed a moment later goes to the caller waiting longest, in the dispatch their freeing queues.
        starved: set[str] = set()
        earlier_holds: list[Hold] = []
        for _, _, item in sorted(waiting, key=lambda entry: (entry[0], entry[1], entry[2].id)):
            language = item.language or "en"
            if language in starved:
                continue
            if twilio_rest.down_since(r) is not None:
                break  # a ring in this pass found Twilio down: claim nobody else
            if isinstance(item, Hold):
                # Someone freed since we passed an earlier caller goes to that caller, not to this newer one.
                rung += sum(ring_for_hold(db, r, earlier) for earlier in earlier_holds
                            if earlier.language == item.language)
                earlier_holds.append(item)
                count = ring_for_hold(db, r, item)
                if not count and not r.hlen(Keys.offers(item.id)):
                    starved.add(language)
            else:
                count = offer_callback_request(db, r, item)
                if not count and item.specialist_id is None:
                    starved.add(language)
            rung += count
        return rung


def twilio_answers(r, config) -> bool:
    """True unless Twilio is marked down; then the one probe per TWILIO_PROBE_SECONDS decides whether it is back."""
    if twilio_rest.down_since(r) is None:
        return True
    if not twilio_rest.may_ask(r, config):
        return False
    try:
        twilio_rest.noting_health(r, twilio_rest.probe, config)
    except TwilioError:
        # Ask again at the next probe's turn, even if nothing else asks for a dispatch meanwhile.
        tasks.dispatch_at(r, utcnow() + timedelta(seconds=twilio_rest.probe_seconds(config)))
        return False
    return True


def ring_for_hold(db, r, hold: Hold) -> int:
    """Ring every free specialist who fits a held caller at once, from threads (each REST call is ~0.3 s).

    The preferred are placed before the others, group by group (`offers.Ringing.groups`: the open case's specialist,
    level 2, everyone else), each group's calls created before the next group's: Twilio places the calls an account
    creates at its calls-per-second rate (https://www.twilio.com/docs/voice/api/call-resource: "Calls beyond your
    account's CPS limit will be queued and will execute at the CPS rate"), and the docs do not say in which order it
    takes calls created at the same moment; a call created before any other is first in that queue either way.
    """
    db.refresh(hold)
    if hold.status != holds.WAITING:
        return 0  # taken (or gone) since this pass read the queue
    outstanding = r.hlen(Keys.offers(hold.id))
    ringing = offers.claim_ringing(db, r, hold, limit=max(0, RING_AT_ONCE - outstanding))
    if not ringing.everyone:
        return 0
    offers.offers_made(db, hold, ringing)
    rung = sum(place_offers(db, r, hold, group) for group in ringing.groups())
    db.commit()
    return rung


def place_offers(db, r, hold: Hold, chosen: list[Specialist]) -> int:
    """Place the calls to these specialists' phones together; returns how many rang."""
    config = current_app.config
    placements = {}
    with ThreadPoolExecutor(max_workers=len(chosen)) as pool:
        for specialist in chosen:
            whisper, status = offers.offer_urls(hold, specialist.id)
            placements[specialist] = pool.submit(twilio_rest.noting_health, r, twilio_rest.place_call, dict(config),
                                                 specialist.phone, whisper, status, config["RING_TIMEOUT_SECONDS"])
    rung = 0
    for specialist, future in placements.items():
        try:
            offers.offer_placed(db, r, hold, specialist, future.result())
            rung += 1
        except TwilioError as error:
            log.warning("could not ring %s for hold %s: %s", specialist.id, hold.id, error)
            offers.offer_placed(db, r, hold, specialist, None, error=str(error))
    return rung


def offer_callback_request(db, r, request: CallbackRequest) -> int:
    """Claim one free specialist for a callback and queue the job that rings them."""
    config = current_app.config
    holder = routing.callback_holder(request.id)
    # One specialist is rung for a callback, so a preference only orders who that is (never waits: PREFER_SECONDS
    # is for held callers, whose other phones would ring).
    preference = preferences.for_call(db, request.call, config["COMPLEX_CATEGORIES"])
    specialist_id = routing.claim_next_specialist(
        r, request.language or "en", holder, config["RING_LEASE_SECONDS"],
        tried_key=Keys.tried(holder), only=request.specialist_id, preferred=preference.tiers() if preference else (),
    )
    if specialist_id is None:
        return 0  # nobody free for this language (or this assignee); a later request may differ
    specialist = db.get(Specialist, specialist_id)
    if specialist is None or not specialist.active or not specialist.available:
        # Out of the idle queues first, so the release cannot put them back and loop.
        routing.set_idle_queue(r, specialist_id, [], on=False)
        routing.release_specialist(r, specialist_id, holder)
        return 0
    if offers.skip_if_on_visit(db, r, specialist_id, holder, holder):
        return 0
    if not callbacks.claim_request(db, request, specialist_id):
        # Another worker took this request first: give the specialist back.
        routing.release_specialist(r, specialist_id, holder)
        return 0
    enqueue(r, tasks.PLACE_CALLBACK, request.id, specialist_id, callbacks.attempt_token(request),
            job_id=place_job_id(request), retry=tasks.rest_retry(config), job_timeout=PLACE_JOB_TIMEOUT,
            on_failure=Callback(tasks.PLACING_FAILED))
    return 1


def end_calls(call_sids: list[str]) -> dict[str, str]:
    """Stop specialists' phones that were rung for a caller someone else took (cancel, or hang up)."""
    with job_context():
        config = dict(current_app.config)
        r = get_redis()
    if not twilio_rest.may_ask(r, config):
        # Twilio is down: the phones stop at their ring timeout, and each leg's end still frees its specialist.
        return {sid: "not asked: Twilio unreachable" for sid in call_sids}
    ended = {}
    with ThreadPoolExecutor(max_workers=max(1, min(len(call_sids), 8))) as pool:
        results = {sid: pool.submit(twilio_rest.noting_health, r, twilio_rest.end_call, config, sid) for sid in call_sids}
    for sid, future in results.items():
        try:
            ended[sid] = future.result()
        except TwilioError as error:
            # Its lease still runs out on its own; the phone stops at the ring timeout either way.
            log.warning("could not end call %s: %s", sid, error)
            ended[sid] = f"error: {error}"
    return ended


def caller_leg_failed(request_id: int, specialist_id: int, token: str, error: str) -> str:
    """Twilio would not place a callback's call to the caller: settle the attempt and tell the specialist."""
    with job_context():
        db = database.session()
        request = db.get(CallbackRequest, request_id)
        if not callbacks.is_attempt(request, specialist_id, token):
            return "nothing to do"
        callback_legs.caller_leg_failed(db, get_redis(), request, specialist_id, error)
        db.commit()
        return "back in line"


def rest_request(name: str, *args) -> str:
    """One REST request a webhook could not make while Twilio failed for a moment (tasks.rest_after_commit)."""
    with job_context():
        config = dict(current_app.config)
        r = get_redis()
    try:
        twilio_rest.noting_health(r, twilio_rest.RETRIABLE[name], config, *args)
    except TwilioError as error:
        if error.permanent:
            log.warning("%s%s refused: %s", name, args, error)
            return f"refused: {error}"
        raise
    return "done"


def place_callback(request_id: int, specialist_id: int, token: str | None = None) -> str:
    """Ring the specialist through Twilio's REST API; their whisper then dials the caller.

    Safe to run twice: a run for an older attempt does nothing, and a re-run first asks Twilio whether an
    earlier run already placed the call (a worker killed mid-request, a timeout that Twilio did act on).
    """
    with job_context():
        db = database.session()
        r = get_redis()
        config = current_app.config
        request = db.get(CallbackRequest, request_id)
        if not callbacks.is_attempt(request, specialist_id, token) or request.attempt_call_sid:
            return "nothing to do"
        specialist = db.get(Specialist, specialist_id)
        if specialist is None:
            callbacks.back_in_line(db, r, request, "specialist removed from the roster", passed=False)
            db.commit()
            return "specialist gone"
        holder = routing.callback_holder(request.id)
        # A failed try released the specialist (so a live caller could have them while RQ waited to retry), and a
        # lease may run out or be lost with Redis: take them again if they are still free. If they are on a live
        # call by now, they must not be rung for this callback too.
        if (not routing.extend_lease(r, specialist_id, holder, config["RING_LEASE_SECONDS"])
                and routing.claim_next_specialist(r, request.language or "en", holder, config["RING_LEASE_SECONDS"],
                                                  only=specialist_id) is None):
            callbacks.back_in_line(db, r, request, "the hold on the specialist ran out before the call", passed=False)
            db.commit()
            tasks.dispatch_soon(r)
            return "lease lost"
        if not twilio_rest.may_ask(r, config):
            # Twilio is down and this interval's probe is someone else's: dispatch offers it again once it is back.
            callbacks.back_in_line(db, r, request, "Twilio unreachable", passed=False)
            db.commit()
            return "twilio unreachable"
        if is_rerun() and (sid := placed_call_sid(request)) is not None:
            adopt_call(db, r, request, sid)
            db.commit()
            return sid
        if not number_allowed(request):
            callbacks.release_attempt(r, request)
            callbacks.give_up(db, request, "the callback number is outside the numbers this line may call")
            db.commit()
            return "number not allowed"
        return ring_for_callback(db, r, request, specialist)


def number_allowed(request: CallbackRequest) -> bool:
    """The toll-fraud policy, checked again right before dialing or texting (a number may predate it, or come
    from a form), and a caller's own number: never the line's, dispatch's or the 911 center's."""
    return phones.textable_caller(request.callback_number, current_app.config) is not None


def ring_for_callback(db, r, request: CallbackRequest, specialist: Specialist) -> str:
    """The REST call to the specialist's phone: retried by RQ when Twilio fails for a moment, final when refused."""
    config = current_app.config
    params = {"request": request.id, "specialist": specialist.id}
    try:
        sid = twilio_rest.noting_health(
            r, twilio_rest.place_call, config, specialist.phone,
            webhook_url("/voice/callback/whisper", **params),
            status_callback=webhook_url("/voice/callback/status", **params),
            timeout=config["RING_TIMEOUT_SECONDS"],
        )
    except TwilioError as error:
        if not error.permanent:
            # Free the specialist for a live caller while RQ waits; the retry takes them again if still free.
            routing.release_specialist(r, specialist.id, routing.callback_holder(request.id), keep_place=True)
            calls.record_event(db, request.call, "callback_rest_retry", request_id=request.id, error=str(error)[:200])
            db.commit()
            raise  # RQ's Retry tries again after the configured wait; placing_failed handles the last one
        callbacks.release_attempt(r, request)
        callbacks.give_up(db, request, f"Twilio refused the call: {error}")
        db.commit()
        log.error("callback %s ended: Twilio refused the call: %s", request.id, error)
        return "refused"
    callbacks.attempt_placed(db, request, sid, specialist)
    db.commit()
    return sid


def is_rerun() -> bool:
    """True when this RQ job ran before (a retry, or RQ re-queueing it after its worker died)."""
    job = get_current_job()
    if job is None:
        return False
    job.meta["runs"] = job.meta.get("runs", 0) + 1
    job.save_meta()
    return job.meta["runs"] > 1


def placing_failed(job: Job, connection, error_type, error, traceback) -> None:
    """RQ failure callback for place_callback: after the last retry, recover the attempt at once."""
    if job.retries_left:
        return  # RQ will run it again
    request_id, specialist_id, *rest = job.args
    token = rest[0] if rest else None
    with job_context():
        db = database.session()
        request = db.get(CallbackRequest, request_id)
        if callbacks.is_attempt(request, specialist_id, token) and not request.attempt_call_sid:
            # Passed over for this request a while, so a failure that is not an outage cannot spin dispatch and
            # fail in a loop (an outage stops dispatch itself); the caller keeps their place for whoever is next.
            r = get_redis()
            recover_attempt(db, r, request, f"placing the call failed: {error_type.__name__}",
                            passed=twilio_rest.down_since(r) is None)
            db.commit()


def place_job_id(request: CallbackRequest) -> str:
    """The RQ job id of an attempt's placing job, so the sweep can ask RQ whether that job is still alive."""
    return f"place-callback-{request.id}-{request.attempt_started_at:%Y%m%d%H%M%S%f}"


def placing_job_alive(r, request: CallbackRequest) -> bool:
    """True while RQ still holds the attempt's placing job: queued, waiting to retry, or running."""
    return request.attempt_started_at is not None and tasks.job_held(r, place_job_id(request))


def adopt_call(db, r, request: CallbackRequest, sid: str) -> None:
    """Twilio placed the call although we never heard back: keep it, never ring the specialist twice."""
    request.attempt_call_sid = sid
    holder = routing.callback_holder(request.id)
    config = current_app.config
    if not routing.extend_lease(r, request.attempt_specialist_id, holder, config["RING_LEASE_SECONDS"]):
        # Redis lost the hold (flushed or replaced): take it again so no live call rings them meanwhile.
        routing.claim_next_specialist(r, request.language or "en", holder, config["RING_LEASE_SECONDS"],
                                      only=request.attempt_specialist_id)
    calls.record_event(db, request.call, "callback_attempt_recovered", request_id=request.id, call_sid=sid)


def recover_attempt(db, r, request: CallbackRequest, why: str, passed: bool = False) -> bool:
    """An attempt whose placing never finished: adopt Twilio's call if there is one, else back in line.

    Returns True when the caller went back in line.
    """
    if request.attempt_call_sid is None and (sid := placed_call_sid(request)) is not None:
        adopt_call(db, r, request, sid)
        return False
    callbacks.back_in_line(db, r, request, why, passed=passed)
    return True


def send_callback_sms(request_id: int, kind: str) -> str:
    """Text the caller: a confirmation of their request, or the line's number and hours when unreachable."""
    with job_context():
        db = database.session()
        config = current_app.config
        request = db.get(CallbackRequest, request_id)
        if request is None or not request.callback_number or not config["CALLBACK_SMS"]:
            return "nothing to send"
        if not number_allowed(request):
            return "number not allowed"
        language = languages.of(request.language)
        text = language.prompts["text_callback_confirm" if kind == "confirm" else "text_callback_unreachable"]
        body = text.format(program=language.program_name, hours=language.program_hours.rstrip("."),
                           line=phones.display(config["TWILIO_PHONE_NUMBER"], config["DEFAULT_REGION"]))
        if not twilio_rest.may_ask(get_redis(), config):
            raise TwilioError("Twilio unreachable: not asked", permanent=False)  # RQ's Retry sends it later
        # Twilio posts the text's later statuses (sent, delivered, undelivered, failed) here; the call's timeline and
        # the callbacks page show them. https://www.twilio.com/docs/messaging/api/message-resource#create-a-message-resource
        status_callback = webhook_url("/sms/status", request=request.id, text=kind)
        try:
            message_sid = twilio_rest.noting_health(get_redis(), twilio_rest.send_sms, config, request.callback_number,
                                                    body, status_callback)
        except TwilioError as error:
            if not error.permanent:
                raise
            # An opted-out number (21610) or one that takes no texts: never retried; the callback itself goes on.
            log.warning("text to request %s not sent: Twilio error %s", request.id, error.code)
            callbacks.text_refused(db, request, kind, error.code)
            db.commit()
            return f"not sent ({error.code})"
        callbacks.text_queued(db, request, kind, message_sid)
        db.commit()
        return message_sid


def sweep() -> dict:
    """The periodic safety net: rebuild Redis from SQL, recover stuck attempts, dispatch what is due, and
    queue again any field-safety timer or text that RQ lost."""
    with job_context():
        db = database.session()
        r = get_redis()
        config = current_app.config
        summary = callbacks.reconcile(db, r)
        # RQ's own handling of jobs whose worker died (retry them, or fail them into placing_failed),
        # before the sweep looks at what is left.
        tasks.queue(r).started_job_registry.cleanup()
        recovered = 0
        for request in callbacks.recover_stale(db, config["STALE_ATTEMPT_SECONDS"], config["CALL_LEASE_SECONDS"]):
            if placing_job_alive(r, request):
                continue  # RQ still owns it (waiting to retry, or running): the job decides, not the sweep
            recovered += recover_attempt(db, r, request, "attempt lost (worker stopped or Twilio never reported)")
        db.commit()
        summary["recovered"] = recovered
        # Calls whose end Twilio reported but we never heard: frees their specialists within a sweep or two.
        answers = twilio_answers(r, config)
        summary["reconciled"] = reconcile_call_ends(db, r, config) if answers else 0
        summary["queues_deleted"] = delete_leftover_queues(db, r, config) if answers else 0
        # Outcome reports RQ gave up on, or whose worker died, go to the 911 center's receiver again.
        summary["outcomes"] = outcomes.requeue(db, r, config)
        summary["placed"] = dispatch()
        # Field safety's timers and texts, from SQL: a restart or a flushed Redis loses no step of the ladder.
        summary["safety_queued"] = field_safety.rebuild_timers(database.session(), r, config)
        return summary


def delete_leftover_queues(db, r, config) -> int:
    """Held callers' Twilio queues that nobody waits in and whose hold is over (or unknown): deleted.

    https://www.twilio.com/docs/voice/api/queue-resource: "Queues persist. To optimize fetch operations, inactive
    Queues should be deleted." A hold's own end deletes its queue (holds.delete_queue); this catches the rest.
    """
    try:
        empty = twilio_rest.noting_health(r, twilio_rest.empty_queues, config, "ml-")
    except TwilioError as error:
        log.warning("could not list Twilio's queues: %s", error)
        return 0
    deleted = 0
    for sid, name in empty:
        hold = holds.of_queue(db, name)
        if hold is not None and hold.status in (*holds.WAITING_STATUSES, holds.CONNECTED):
            continue  # a live caller's: they may come back to it
        try:
            twilio_rest.noting_health(r, twilio_rest.delete_queue, config, sid)
            deleted += 1
        except TwilioError as error:
            log.warning("could not delete queue %s: %s", sid, error)
    return deleted


def placed_call_sid(request: CallbackRequest) -> str | None:
    """Ask Twilio whether the attempt's call to the specialist was placed and is still queued, ringing or going."""
    config = current_app.config
    r = get_redis()
    specialist = database.session().get(Specialist, request.attempt_specialist_id or 0)
    if specialist is None or request.attempt_started_at is None or not twilio_rest.may_ask(r, config):
        return None
    try:
        return twilio_rest.noting_health(r, twilio_rest.live_call_sid, config, specialist.phone,
                                         request.attempt_started_at - timedelta(minutes=1))
    except TwilioError:
        log.exception("could not ask Twilio about callback %s", request.id)
        return None
