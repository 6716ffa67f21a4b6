"""Callbacks end to end: real Redis, a real RQ worker, the simulator's fake Twilio REST API mounted in
`responses`, and the simulated phone playing both legs of every call the worker places when the test rings it."""

from __future__ import annotations

import csv
import io
import json
import threading
from datetime import datetime, timedelta

import pytest
import responses
from sqlalchemy import select, update

from tests.support import (
    ACCOUNT_SID,
    ALICE,
    AUTH_TOKEN,
    BRUNO,
    CALLER,
    LINE,
    PUBLIC,
    fresh_app,
    leases,
    queued_caller,
    request_row,
    settings,
    text_on,
    work,
)
from voice.clock import utcnow
from voice.line import callbacks
from voice.models import Call, CallbackRequest, CallEvent, Specialist
from voice.simulator import ScriptedCaller, Voicemail
from voice.simulator.fake_twilio import FakeTwilio
from voice.tasks import queue as callback_queue
from voice.twilio_rest import rest_client
from workers import jobs

# Nobody is on: safe, the kind of problem, then the callback questions: name, location, callback number
# (the caller ID), a few words, and when (1: as soon as possible).
INTAKE = ["2", "6", "Dana Whitfield", "400 West Third Street", "1", "The landlord shut off the heat", "1"]


@pytest.fixture
def twilio(phone):
    """The simulator's fake Twilio REST API, answering in this process; the calls it places ring when a test says."""
    fake = FakeTwilio(phone, ACCOUNT_SID, AUTH_TOKEN, LINE, autoplay=False)
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        fake.mount(rsps)
        yield fake


@pytest.fixture
def app(redis_url, database_url):
    """The shared app fixture, with REST retries that do not wait (the worker runs in burst mode)."""

    with fresh_app(settings(redis_url, database_url, REST_RETRY_SECONDS="0,0,0", STALE_ATTEMPT_SECONDS="1")) as app:
        yield app






def events(app, kind: str | None = None) -> list[tuple[str, dict]]:
    with app.app_context():
        rows = app.extensions["db"].session().scalars(select(CallEvent).order_by(CallEvent.id)).all()
        return [(e.kind, json.loads(e.detail)) for e in rows if kind is None or e.kind == kind]






def test_caller_who_reached_nobody_is_called_back_when_a_specialist_texts_on(app, phone, twilio, runner):
    record = queued_caller(app, phone)
    heard = record.heard()
    assert "will call you back at 9 3 7, 5 5 5, 0 1 2 3, from 9 3 7, 5 5 5, 0 1 0 0" in heard
    assert "as soon as a specialist is available" in heard  # nobody is on: no time is promised

    work(app)  # nobody is on: only the confirmation text goes out
    assert twilio.calls == []
    assert twilio.texts[0]["to"] == CALLER and twilio.texts[0]["from"] == LINE
    assert "(937) 555-0100" in twilio.texts[0]["body"]

    text_on(app, phone, ALICE, "Alice Mediator")
    work(app)
    assert len(twilio.calls) == 1
    sent = twilio.calls[0]
    assert sent.to == ALICE and sent.from_ == LINE
    assert sent.url.startswith(f"{PUBLIC}/voice/callback/whisper?")
    assert sent.status_callback.startswith(f"{PUBLIC}/voice/callback/status?")

    leg, caller_leg = twilio.ring_pending()
    assert leg.problems == [] and caller_leg.problems == []
    whisper = leg.heard("Alice Mediator")
    # Who and where only once Alice pressed a key: first a mediation callback, and its language.
    assert whisper.startswith("Mediation callback, in English. Press 1 to hear it.")
    assert "landlord" in whisper and "Dana Whitfield" in whisper and "400 West Third Street" in whisper
    assert "ago" in whisper or "just now" in whisper
    assert leg.bridged_with == [CALLER] and caller_leg.bridged_with == [ALICE]
    # The caller's phone: who is calling and a key, then the specialist, in the call's conference.
    assert "returning your call. To talk with a mediation specialist now, press 1." in caller_leg.heard()
    assert twilio.calls[1].to == CALLER and twilio.calls[1].from_ == LINE

    row = request_row(app)
    assert row.status == "completed" and row.call.outcome == "callback_completed"
    exported = list(csv.DictReader(io.StringIO(runner.invoke(args=["calls", "export"]).output)))
    assert exported[0]["outcome"] == "callback_completed" and exported[0]["specialist_phone"] == ALICE
    kinds = [k for k, _ in events(app)]
    assert (kinds.index("callback_attempt") < kinds.index("callback_specialist_accepted")
            < kinds.index("callback_caller_answered") < kinds.index("callback_connected"))


def test_specialist_finishing_a_live_call_is_offered_the_oldest_callback(app, phone, twilio, add_specialist):
    alice = add_specialist("Alice Mediator", ALICE)
    phone.network[CALLER] = ScriptedCaller(label="caller")
    # Alice is on a live call while a second caller asks to be called back...
    r = app.extensions["redis"]
    from voice.line import routing

    with app.app_context():
        alice_id = app.extensions["db"].session().scalar(select(Specialist.id))
    assert routing.claim_next_specialist(r, "en", "call:CAlive", 60) == alice_id
    # Everyone on is busy, so the caller holds, answers the questions, and presses 2 for a callback.
    record = queued_caller(app, phone, [*INTAKE[:-1], "2", "1"])
    assert "You are number 1 in line" in record.heard()
    assert "We expect to call you within about 15 minutes" in record.heard()
    work(app)
    assert twilio.calls == []
    # ...and the moment that call ends (status callback), the worker rings her for the callback.
    with app.app_context():
        routing.release_specialist(r, alice_id, "call:CAlive")
    work(app)
    assert [c.to for c in twilio.calls] == [ALICE]
    assert alice.label == "Alice Mediator"


def test_specialist_who_passes_is_released_and_the_next_one_is_tried(app, phone, twilio):
    queued_caller(app, phone)
    text_on(app, phone, ALICE, "Alice Mediator", accept="2")
    text_on(app, phone, BRUNO, "Bruno Mediator")
    work(app)
    first = twilio.ring_pending()
    assert first[0].bridged_with == []
    assert request_row(app).status == "pending"
    work(app)
    assert [c.to for c in twilio.calls] == [ALICE, BRUNO]
    second, _ = twilio.ring_pending()
    assert second.bridged_with == [CALLER]
    assert request_row(app).status == "completed"


def test_specialist_who_does_not_pick_up_goes_back_and_the_caller_keeps_their_place(app, phone, twilio):
    queued_caller(app, phone)
    text_on(app, phone, ALICE, "Alice Mediator", answers=False)
    work(app)
    (leg,) = twilio.ring_pending()
    assert leg.problems == []
    row = request_row(app)
    assert row.status == "pending" and row.attempts == 0
    assert [d["why"] for k, d in events(app, "callback_specialist_missed")] == ["specialist leg ended: no-answer"]
    assert leases(app) == {"Alice Mediator": None}


def test_caller_who_never_answers_is_retried_on_schedule_then_marked_unreachable(app, phone, twilio):
    queued_caller(app, phone)
    phone.network[CALLER].answers = False
    text_on(app, phone, ALICE, "Alice Mediator")
    for attempt in range(1, 5):
        work(app)
        leg, _ = twilio.ring_pending()
        assert leg.problems == []
        row = request_row(app)
        assert row.attempts == attempt
        if attempt < 4:
            assert row.status == "scheduled"
            assert "try again at" in leg.heard("Alice Mediator")
            # The schedule is 10, 30, 120 minutes; bring the next try forward instead of waiting.
            with app.app_context():
                session = app.extensions["db"].session()
                session.execute(update(CallbackRequest).values(due_at=row.due_at - timedelta(days=1)))
                session.commit()
            jobs_due = [minutes for minutes in (10, 30, 120)][attempt - 1]
            assert timedelta(minutes=jobs_due - 1) < row.due_at - row.last_attempt_at <= timedelta(minutes=jobs_due)
    row = request_row(app)
    assert row.status == "unreachable" and row.call.outcome == "unreachable"
    assert "last try" in leg.heard("Alice Mediator")
    work(app)
    unreachable_text = twilio.texts[-1]
    assert unreachable_text["to"] == CALLER and "could not reach you" in unreachable_text["body"]
    assert "Monday to Friday" in unreachable_text["body"]


def test_rest_429_then_success_places_exactly_one_call(app, phone, twilio):
    # Too many requests: Twilio answers, so it is retried at once (a 5xx marks Twilio down: see test_twilio_down).
    queued_caller(app, phone)
    twilio.fail_next_calls([(429, 20429), (429, 20429)])
    text_on(app, phone, ALICE, "Alice Mediator")
    work(app)
    assert len(twilio.calls) == 1
    assert len(events(app, "callback_rest_retry")) == 2
    leg, _ = twilio.ring_pending()
    assert leg.bridged_with == [CALLER]


def test_a_permanent_rest_error_ends_the_request_with_a_reason(app, phone, twilio):
    queued_caller(app, phone)
    twilio.fail_next_calls([(400, 21211)])
    text_on(app, phone, ALICE, "Alice Mediator")
    work(app)
    row = request_row(app)
    assert row.status == "unreachable" and "21211" in row.reason
    assert leases(app) == {"Alice Mediator": None}


def test_a_landline_that_cannot_take_texts_is_logged_not_fatal(app, phone, twilio):
    twilio.fail_texts(400, 21614)
    queued_caller(app, phone)
    work(app)
    assert [d["code"] for _, d in events(app, "sms_not_sent")] == [21614]
    text_on(app, phone, ALICE, "Alice Mediator")
    work(app)
    assert len(twilio.calls) == 1


def test_redis_flushed_then_reconcile_rebuilds_the_queue_from_sql(app, phone, twilio, runner):
    queued_caller(app, phone)
    text_on(app, phone, ALICE, "Alice Mediator", answers=False)
    app.extensions["redis"].flushdb()  # every queued job and idle queue is gone
    work(app)
    assert twilio.calls == []
    result = runner.invoke(args=["callbacks", "reconcile"])
    assert result.exit_code == 0 and "1 specialist" in result.output
    work(app)
    assert [c.to for c in twilio.calls] == [ALICE]


def test_callbacks_list_shows_open_requests(app, phone, runner):
    queued_caller(app, phone)
    output = runner.invoke(args=["callbacks", "list"]).output
    assert "pending" in output and "(937) 555-0123" in output and "Dana Whitfield" in output


def test_window_start_is_the_next_window_in_the_program_time_zone():
    zone = "America/New_York"  # UTC-5 in November
    one_am = datetime(2026, 11, 25, 6, 0)
    assert callbacks.window_start("morning", one_am, zone) == datetime(2026, 11, 25, 14, 0)
    assert callbacks.window_start("evening", datetime(2026, 11, 25, 23, 0), zone) == datetime(2026, 11, 25, 23, 0)
    assert callbacks.window_start("morning", datetime(2026, 11, 25, 18, 0), zone) == datetime(2026, 11, 26, 14, 0)
    assert callbacks.window_start("asap", one_am, zone) == one_am
    assert callbacks.window_start(None, one_am, zone) == one_am


def test_caller_who_chooses_a_window_is_scheduled_with_rqs_scheduler(app, phone, twilio, runner):
    from rq.registry import ScheduledJobRegistry

    # A window it is not now in New York (the intake offers 2 morning, 3 afternoon, 4 evening).
    now = utcnow()
    key, window = next((k, w) for k, w in (("2", "morning"), ("3", "afternoon"), ("4", "evening"))
                       if callbacks.window_start(w, now, "America/New_York") > now + timedelta(minutes=1))
    record = queued_caller(app, phone, INTAKE[:-1] + [key], status="scheduled")
    row = request_row(app)
    assert row.window == window and row.status == "scheduled"
    expected = callbacks.window_start(window, row.created_at, "America/New_York")
    assert abs((row.due_at - expected).total_seconds()) < 5
    assert "time you chose" in record.heard()
    registry = ScheduledJobRegistry(queue=callback_queue(app.extensions["redis"]))
    (job_id,) = registry.get_job_ids()
    scheduled_for = registry.get_scheduled_time(job_id).replace(tzinfo=None)
    assert timedelta(0) <= scheduled_for - row.due_at <= timedelta(seconds=2)
    text_on(app, phone, ALICE, "Alice Mediator")
    work(app)
    assert twilio.calls == []  # a specialist is on, but the caller asked for later

    # Redis is lost: reconcile puts the window back on RQ's scheduler (twice asked, one job).
    app.extensions["redis"].flushdb()
    for _ in range(2):
        assert runner.invoke(args=["callbacks", "reconcile"]).exit_code == 0
    (job_id,) = registry.get_job_ids()
    assert timedelta(0) <= registry.get_scheduled_time(job_id).replace(tzinfo=None) - row.due_at <= timedelta(minutes=1)


def test_two_workers_racing_for_one_request_dial_it_once(app, phone, twilio):
    queued_caller(app, phone)
    text_on(app, phone, ALICE, "Alice Mediator")
    text_on(app, phone, BRUNO, "Bruno Mediator")
    barrier = threading.Barrier(2)
    results = []

    def dispatch():
        with app.app_context():
            barrier.wait()
            results.append(jobs.dispatch())
            app.extensions["db"].session.remove()

    threads = [threading.Thread(target=dispatch) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(results) == [0, 1]
    work(app)
    assert len(twilio.calls) == 1
    # The specialist the losing worker claimed was given back, not left holding nothing.
    held = [holder for holder in leases(app).values() if holder]
    assert held == [f"callback:{request_row(app).id}"]


def test_a_live_call_and_a_callback_never_take_the_same_specialist(app, phone, twilio):
    queued_caller(app, phone)
    text_on(app, phone, ALICE, "Alice Mediator")
    work(app)  # Alice is now held by the callback attempt
    live = phone.call_line("+19375550999", ScriptedCaller(INTAKE))
    assert live.bridged_with == [] and "dialing +19375550201" not in live.text()


def test_sweep_recovers_an_attempt_whose_worker_died_before_twilio_answered(app, phone, twilio):
    queued_caller(app, phone)
    text_on(app, phone, ALICE, "Alice Mediator")
    with app.app_context():
        jobs.dispatch()  # claimed, but the worker "dies" before placing the call
    callback_queue(app.extensions["redis"]).empty()
    with app.app_context():
        session = app.extensions["db"].session()
        session.execute(update(CallbackRequest).values(attempt_started_at=utcnow() - timedelta(minutes=5)))
        session.commit()
        summary = jobs.sweep()
    assert summary["recovered"] == 1, summary
    assert summary["placed"] == 1, summary
    work(app)
    assert len(twilio.calls) == 1


def test_sweep_adopts_a_call_twilio_placed_before_the_worker_died(app, phone, twilio):
    queued_caller(app, phone)
    text_on(app, phone, ALICE, "Alice Mediator")
    with app.app_context():
        jobs.dispatch()
    callback_queue(app.extensions["redis"]).empty()
    # The worker's Calls.create reached Twilio, which placed the call, and the worker died before the answer.
    placed = rest_client(app.config).calls.create(to=ALICE, from_=LINE, url=f"{PUBLIC}/voice/callback/whisper")
    with app.app_context():
        session = app.extensions["db"].session()
        session.execute(update(CallbackRequest).values(attempt_started_at=utcnow() - timedelta(minutes=5)))
        session.commit()
        summary = jobs.sweep()
    assert summary["recovered"] == 0 and [c.sid for c in twilio.calls] == [placed.sid]  # the sweep placed none
    assert request_row(app).attempt_call_sid == placed.sid


def test_whisper_for_a_request_already_handled_just_says_goodbye(app, phone, twilio):
    queued_caller(app, phone)
    text_on(app, phone, ALICE, "Alice Mediator")
    work(app)
    twilio.ring_pending()
    # Twilio repeats the whisper of a finished attempt (a late retry): nothing is dialed again.
    again = phone.outbound_call(ALICE, LINE, twilio.calls[0].url)
    assert "already been handled" in again.heard("Alice Mediator") and again.bridged_with == []
    with app.app_context():
        assert app.extensions["db"].session().scalar(select(Call.outcome)) == "callback_completed"



@pytest.mark.parametrize("who", ["person", "no_answer", "voicemail", "silence"])
def test_the_callers_leg_settles_the_attempt_a_person_is_reached_a_machine_is_retried(app, phone, twilio, who):
    queued_caller(app, phone)
    phone.network[CALLER] = {"person": ScriptedCaller(["1"], label="caller"),
                             "no_answer": ScriptedCaller(label="caller"),
                             "voicemail": Voicemail("caller's voicemail"),
                             "silence": ScriptedCaller([None, None], label="caller")}[who]
    if who == "no_answer":
        phone.network[CALLER].answers = False
    text_on(app, phone, ALICE, "Alice Mediator")
    work(app)
    leg, caller_leg = twilio.ring_pending()
    assert leg.problems == [] and caller_leg.problems == []
    assert len(events(app, "callback_caller_leg_status")) == 1 and len(events(app, "callback_leg_status")) == 1
    row = request_row(app)
    assert row.attempts == 1
    if who == "person":
        assert row.status == "completed" and row.call.outcome == "callback_completed"
        assert "Thank you for taking it" in leg.heard("Alice Mediator")
    else:
        # Voicemail is not a person: a miss, retried on the usual schedule (10 minutes first).
        assert row.status == "scheduled" and row.call.outcome == "callback_queued"
        assert "try again at" in leg.heard("Alice Mediator") and leg.bridged_with == []
        assert timedelta(minutes=9) < row.due_at - row.last_attempt_at <= timedelta(minutes=10)
    if who == "voicemail":
        message = phone.network[CALLER].recording()
        assert "returning your call" in message and "We will try again later" in message
        for detail in ("Dana", "400 West", "landlord", "heat"):
            assert detail not in " ".join(phone.network[CALLER].heard)
    assert leases(app) == {"Alice Mediator": None}
    work(app)
    assert [c.to for c in twilio.calls] == [ALICE, CALLER]  # nobody is called again: reached, or not yet due


def test_a_specialists_own_voicemail_hears_no_name_or_address(app, phone, twilio):
    queued_caller(app, phone)
    text_on(app, phone, ALICE, "Alice Mediator")
    box = phone.network[ALICE] = Voicemail("Alice's voicemail", rings=2)
    work(app)
    (leg,) = twilio.ring_pending()
    heard = " ".join(box.heard)
    assert "Mediation callback, in English." in heard
    for detail in ("Dana", "400 West", "landlord", "heat"):
        assert detail not in heard
    row = request_row(app)
    assert row.status == "pending" and row.attempts == 0  # back in line, place kept, for someone else
    assert [c.to for c in twilio.calls] == [ALICE]


def signed_legs(phone, twilio) -> tuple[dict, str]:
    """The specialist's placed leg as Twilio's requests carry it: its parameters, and its URLs' pattern."""
    sent = twilio.calls[0]
    params = {"CallSid": sent.sid, "From": LINE, "To": ALICE, "Direction": "outbound-api"}
    return params, sent.url.replace("/whisper?", "/{}?")


def test_a_specialist_hanging_up_after_the_caller_answered_does_not_requeue_a_caller_reached(app, phone, twilio):
    queued_caller(app, phone)
    text_on(app, phone, ALICE, "Alice Mediator")
    work(app)
    params, base = signed_legs(phone, twilio)
    assert phone.signed_post(base.format("answer"), {**params, "Digits": "1"})[0] == 200
    caller = twilio.calls[1]
    caller_params = {"CallSid": caller.sid, "From": LINE, "To": CALLER, "Direction": "outbound-api"}
    status, body = phone.signed_post(base.format("pressed"), {**caller_params, "Digits": "1"})
    assert status == 200 and "<Conference" in body and 'participantLabel="caller"' in body
    # Alice's leg ends mid-conversation: its status can reach us before the caller's.
    status, _ = phone.signed_post(twilio.calls[0].status_callback, {**params, "CallStatus": "completed",
                                                                      "CallDuration": "300"})
    assert status == 200
    assert request_row(app).status == "in_progress" and leases(app) == {"Alice Mediator": None}
    assert phone.signed_post(caller.status_callback, {**caller_params, "CallStatus": "completed",
                                                      "CallDuration": "280"})[0] == 200
    row = request_row(app)
    assert row.status == "completed" and row.call.outcome == "callback_completed"
    work(app)
    assert [c.to for c in twilio.calls] == [ALICE, CALLER]


def test_specialist_hanging_up_before_the_caller_answers_keeps_the_callers_place_and_stops_their_phone(
        app, phone, twilio):
    queued_caller(app, phone)
    text_on(app, phone, ALICE, "Alice Mediator")
    work(app)
    params, base = signed_legs(phone, twilio)
    assert phone.signed_post(base.format("answer"), {**params, "Digits": "1"})[0] == 200
    assert [c.to for c in twilio.calls] == [ALICE, CALLER]  # the caller's phone is ringing
    assert phone.signed_post(twilio.calls[0].status_callback, {**params, "CallStatus": "completed",
                                                               "CallDuration": "20"})[0] == 200
    row = request_row(app)
    assert row.status == "pending" and row.attempts == 0 and row.call.outcome == "callback_queued"
    assert phone.legs[twilio.calls[1].sid].control == ("cancel",)  # the REST API stopped the caller's phone


def test_a_specialist_whose_hold_ran_out_while_rq_waited_is_not_rung(app, phone, twilio):
    from voice.line import routing
    from voice.redisdb import Keys

    queued_caller(app, phone)
    text_on(app, phone, ALICE, "Alice Mediator")
    r = app.extensions["redis"]
    with app.app_context():
        assert jobs.dispatch() == 1  # the placing job is queued, holding Alice
        alice_id = app.extensions["db"].session().scalar(select(Specialist.id))
    # Time passes (RQ waiting to retry a 503): the hold expires and a live call takes Alice.
    r.delete(Keys.lease(alice_id))
    assert routing.claim_next_specialist(r, "en", "call:CAlive", 60) == alice_id
    work(app)
    assert twilio.calls == []
    assert request_row(app).status == "pending"
    assert leases(app) == {"Alice Mediator": "call:CAlive"}


def test_a_job_for_an_older_attempt_does_nothing(app, phone, twilio):
    queued_caller(app, phone)
    text_on(app, phone, ALICE, "Alice Mediator")
    with app.app_context():
        jobs.dispatch()
        row = app.extensions["db"].session().scalar(select(CallbackRequest))
        assert jobs.place_callback(row.id, row.attempt_specialist_id, "2026-01-01T00:00:00") == "nothing to do"
    assert twilio.calls == []


def test_an_error_that_is_not_twilios_answer_never_ends_the_request(app, phone, twilio):
    from rq.registry import FailedJobRegistry

    queued_caller(app, phone)
    # (A connection reset is Twilio not answering: see test_twilio_down.)
    twilio.fail_next_calls([RuntimeError("a bug")] * 4)
    text_on(app, phone, ALICE, "Alice Mediator")
    work(app)
    assert twilio.calls == []
    row = request_row(app)
    # After RQ's last retry the failure callback puts the caller back in line, not out of it.
    assert row.status == "pending" and row.attempts == 0 and row.call.outcome == "callback_queued"
    assert "placing the call failed" in events(app, "callback_specialist_missed")[-1][1]["why"]
    assert leases(app) == {"Alice Mediator": None}
    assert len(FailedJobRegistry(queue=callback_queue(app.extensions["redis"]))) == 1


# --- the toll-fraud policy: the line never dials or texts a number outside it, however it got there ---

FRAUD = ["011442071838750#", "19005550199#", "8765550123#"]  # London, US premium rate, Jamaica (+1, billed abroad)


@pytest.mark.parametrize("keyed", FRAUD)
def test_a_premium_or_foreign_callback_number_is_refused_and_asked_again(app, phone, keyed):
    # Nobody is on: safe, noise, name, place, then a different number keyed in, a good one, a few words, asap.
    record = phone.call_line(CALLER, ScriptedCaller(["2", "1", "Dana", "Main Street", keyed, "9375550188#",
                                                     "Loud music", "1"]))

    assert record.problems == []
    assert "can only call ordinary phone numbers in our area" in record.heard()
    row = request_row(app)
    assert row.callback_number == "+19375550188"


def test_after_the_tries_run_out_the_caller_id_is_kept(app, phone):
    record = phone.call_line(CALLER, ScriptedCaller(["2", "1", "Dana", "Main Street", *FRAUD, "Loud music", "1"]))

    assert record.problems == []
    assert record.heard().count("can only call ordinary phone numbers") == 2
    assert request_row(app).callback_number == CALLER


def test_a_stored_premium_number_is_never_dialed_or_texted(app, phone, twilio):
    phone.call_line(CALLER, ScriptedCaller(["2", "1", "Dana", "Main Street", "1", "Loud music", "1"]))
    with app.app_context():
        session = app.extensions["db"].session()
        # As if written before the policy existed, or typed into the database by hand.
        for row in session.scalars(select(CallbackRequest)):
            row.callback_number = "+19005550199"
        for call in session.scalars(select(Call)):
            call.callback_number = "+19005550199"
        session.commit()
    twilio.texts.clear()
    text_on(app, phone, ALICE, "Alice Mediator")
    work(app)

    assert twilio.calls == [] and twilio.texts == []
    row = request_row(app)
    assert row.status == "unreachable" and "outside the numbers this line may call" in row.reason


# --- the sweep asks Twilio about calls whose end is overdue (tests/test_call_ends.py has the lost webhooks) ---


def overdue_attempt(app, phone, twilio) -> tuple[str, str]:
    """A callback placed to Alice 5 minutes ago, and its caller's first call, both still live as far as we know."""
    record = queued_caller(app, phone)
    text_on(app, phone, ALICE, "Alice Mediator")
    work(app)
    (placed,) = twilio.calls
    # Neither call's end reaches us: as far as Twilio's API says, both are still going.
    twilio.answer_fetches({placed.sid: "in-progress", record.call_sid: "in-progress"})
    with app.app_context():
        session = app.extensions["db"].session()
        earlier = utcnow() - timedelta(minutes=5)
        session.execute(update(CallbackRequest).values(attempt_started_at=earlier))
        session.execute(update(Call).values(started_at=earlier, ended_at=None))
        session.commit()
    return placed.sid, record.call_sid


def test_the_sweep_leaves_calls_twilio_says_are_still_live_alone(app, phone, twilio):
    sid, caller_sid = overdue_attempt(app, phone, twilio)

    with app.app_context():
        summary = jobs.sweep()

    assert summary["reconciled"] == 0
    assert sorted(twilio.fetched) == sorted([sid, caller_sid])  # each asked about once
    row = request_row(app)
    assert row.status == "in_progress" and row.attempt_call_sid == sid
    assert row.call.ended_at is None
    assert leases(app) == {"Alice Mediator": f"callback:{row.id}"}
    assert len(twilio.calls) == 1


def test_a_rest_failure_while_reconciling_leaves_things_for_a_later_sweep(app, phone, twilio):
    from voice.redisdb import Keys

    sid, caller_sid = overdue_attempt(app, phone, twilio)
    twilio.answer_fetches({caller_sid: (503, 20503), sid: (503, 20503)})

    with app.app_context():
        summary = jobs.sweep()

    assert summary["reconciled"] == 0
    assert len(twilio.fetched) == 1  # Twilio did not answer: nothing more was asked this sweep
    row = request_row(app)
    assert row.status == "in_progress" and row.attempt_call_sid == sid and row.call.ended_at is None
    assert leases(app) == {"Alice Mediator": f"callback:{row.id}"}

    # The probe's interval passes and Twilio answers again: Alice never answered, the caller hung up long ago.
    app.extensions["redis"].delete(Keys.twilio_probe())
    twilio.answer_fetches({caller_sid: "completed", sid: "no-answer"})
    with app.app_context():
        summary = jobs.sweep()

    assert summary["reconciled"] == 2, summary
    assert [d["status"] for _, d in events(app, "callback_leg_reconciled")] == ["no-answer"]
    assert "found by the sweep" in events(app, "callback_specialist_missed")[-1][1]["why"]
    row = request_row(app)
    assert row.call.ended_at is not None and row.attempts == 0
    # Back in line with its place, and (the loss was ours, not Alice's pass) offered to her again at once.
    assert summary["placed"] == 1 and row.status == "in_progress" and row.attempt_call_sid is None


def test_a_5xx_frees_the_specialist_until_rqs_retry_places_the_call_as_the_next_probe(app, phone, twilio):
    from rq.job import Job
    from rq.registry import ScheduledJobRegistry

    from voice.redisdb import Keys

    r = app.extensions["redis"]
    app.config["REST_RETRY_SECONDS"] = [5]
    queued_caller(app, phone)
    twilio.fail_next_calls([(503, 20503)])
    text_on(app, phone, ALICE, "Alice Mediator")
    work(app)

    # Twilio is down: Alice is free for anyone meanwhile; the request keeps its attempt for RQ's retry.
    assert twilio.calls == [] and leases(app) == {"Alice Mediator": None}
    row = request_row(app)
    assert row.status == "in_progress" and row.attempt_call_sid is None
    assert r.get(Keys.twilio_down_since()) is not None
    with app.app_context():
        assert jobs.dispatch() == 0  # nothing claims her while the interval's probe is spent

    # The retry's time comes, and with it the next probe's: the retry takes Alice again and places the call.
    registry = ScheduledJobRegistry(queue=callback_queue(r))
    (job_id,) = registry.get_job_ids()
    registry.remove(job_id)
    r.delete(Keys.twilio_probe())
    callback_queue(r).enqueue_job(Job.fetch(job_id, connection=r))
    work(app)

    assert [c.to for c in twilio.calls] == [ALICE]
    assert r.get(Keys.twilio_down_since()) is None
    row = request_row(app)
    assert row.status == "in_progress" and row.attempt_call_sid == twilio.calls[0].sid
    assert leases(app) == {"Alice Mediator": f"callback:{row.id}"}
