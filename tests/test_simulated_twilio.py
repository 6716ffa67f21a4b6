"""The simulated Twilio against tiny apps of fixed TwiML: queues, live call control, the phone clock, crashes."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

import pytest
import requests
import responses
from flask import Flask, Response, abort, request
from twilio.base.exceptions import TwilioRestException
from twilio.request_validator import RequestValidator
from twilio.twiml.voice_response import Dial, Gather, VoiceResponse

from tests.support import ACCOUNT_SID, AUTH_TOKEN, LINE, PUBLIC
from voice.simulator import (
    HANGUP,
    Dispatcher,
    FlaskTransport,
    ScriptedCaller,
    SimulatedPhone,
    SpecialistPhone,
)
from voice.simulator.fake_twilio import FakeTwilio
from voice.twilio_rest import rest_client
from voice.twiml import fault_response

CALLER = "+19375550123"
ALICE = "+19375550201"
BRUNO = "+19375550202"
DISPATCH = "+19375550911"

Route = Callable[[dict], VoiceResponse | str]


class Line:
    """A tiny app: each path answers with TwiML from a function of the request, after checking Twilio's signature."""

    def __init__(self, routes: dict[str, Route]):
        self.requests: list[tuple[str, dict]] = []
        self.app = Flask("tiny")
        validator = RequestValidator(AUTH_TOKEN)
        routes = {"/voice/status": lambda form: VoiceResponse(), **routes}

        def view():
            path = request.full_path.rstrip("?")
            if not validator.validate(PUBLIC + path, request.form.to_dict(), request.headers.get("X-Twilio-Signature", "")):
                abort(403)
            form = request.form.to_dict()
            self.requests.append((path, form))
            return Response(str(routes[request.path](form)), mimetype="text/xml")

        for path in routes:
            self.app.add_url_rule(path, path, view, methods=["POST"])

    def sent(self, path: str) -> list[dict]:
        """The forms of every request to `path` (query string included), in order."""
        return [form for p, form in list(self.requests) if p == path]


def twiml(build: Callable[[VoiceResponse], object]) -> Route:
    def route(form: dict) -> VoiceResponse:
        response = VoiceResponse()
        build(response)
        return response
    return route


def hold_then_leave(holds: int) -> Route:
    """A waitUrl that plays a short message `holds` times, then takes the caller out of the queue."""
    def route(form: dict) -> VoiceResponse:
        response = VoiceResponse()
        if int(form["QueueTime"]) >= holds * 3:
            response.leave()
        else:
            response.say("Please hold for the next mediator.")  # 6 words: 2.25 s on the phone clock
            response.pause(length=1)
        return response
    return route


def holding(form: dict) -> VoiceResponse:
    response = VoiceResponse()
    response.pause(length=5)
    return response


def enqueue(action: bool = True, name: str = "help") -> Route:
    def route(form: dict) -> VoiceResponse:
        response = VoiceResponse()
        response.enqueue(name, action=f"{PUBLIC}/voice/after-queue" if action else None,
                         wait_url=f"{PUBLIC}/voice/wait", wait_url_method="POST")
        response.say("You are out of the queue.")
        return response
    return route


def after_queue(form: dict) -> VoiceResponse:
    response = VoiceResponse()
    response.say(f"Queue result {form['QueueResult']}.")
    response.hangup()
    return response


def phone_for(line: Line, **options) -> SimulatedPhone:
    network = {ALICE: SpecialistPhone("Alice", talk_seconds=240), BRUNO: SpecialistPhone("Bruno", talk_seconds=120),
               DISPATCH: Dispatcher()}
    return SimulatedPhone(FlaskTransport(line.app), AUTH_TOKEN, ACCOUNT_SID, LINE, PUBLIC, network=network, **options)


def wait_for(condition: Callable[[], bool], timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)


def queued(phone: SimulatedPhone, name: str = "help", size: int = 1) -> Callable[[], bool]:
    return lambda: name in phone.queues and len(phone.queues[name].members) >= size


# --- Enqueue, waitUrl, Gather, Leave ----------------------------------------------------------


def test_a_queued_caller_hears_the_wait_url_again_and_again_with_twilios_parameters():
    line = Line({"/voice/incoming": enqueue(), "/voice/wait": hold_then_leave(3), "/voice/after-queue": after_queue})
    record = phone_for(line).call_line(CALLER, ScriptedCaller())

    waits = line.sent("/voice/wait")
    assert len(waits) >= 3
    assert {w["QueueSid"] for w in waits} == {waits[0]["QueueSid"]} and waits[0]["QueueSid"].startswith("QU")
    assert [w["QueuePosition"] for w in waits] == ["1"] * len(waits)
    assert all(w["CurrentQueueSize"] == "1" and w["MaxQueueSize"] == "100" and "AvgQueueTime" in w for w in waits)
    # QueueTime runs on the phone clock (whole seconds): a 6-word Say (2.25 s) and a 1 s pause per round.
    assert [int(w["QueueTime"]) for w in waits[:3]] == [0, 3, 6]
    [after] = line.sent("/voice/after-queue")
    assert after["QueueResult"] == "leave" and after["QueueSid"] == waits[0]["QueueSid"] and int(after["QueueTime"]) >= 9
    assert "Queue result leave." in record.heard() and "You are out of the queue." not in record.heard()
    assert record.problems == []
    assert phone_for(line).queues == {}  # queues belong to one phone


def test_a_gather_in_the_wait_url_posts_to_its_action_and_that_twiml_runs_in_the_queue():
    def wait(form):
        response = VoiceResponse()
        gather = Gather(action=f"{PUBLIC}/voice/wait-key", num_digits=1, timeout=3)
        gather.say("Press 1 to leave a message instead.")
        response.append(gather)
        return response

    def key(form):
        response = VoiceResponse()
        if form.get("Digits") == "1":
            response.leave()
        return response

    line = Line({"/voice/incoming": enqueue(), "/voice/wait": wait, "/voice/wait-key": key,
                 "/voice/after-queue": after_queue})
    record = phone_for(line).call_line(CALLER, ScriptedCaller([None, "1"]))

    # The first round is silence (the waitUrl comes again), the second a key that leads to <Leave>.
    assert len(line.sent("/voice/wait")) == 2
    assert line.sent("/voice/wait-key")[0]["Digits"] == "1"
    assert line.sent("/voice/after-queue")[0]["QueueResult"] == "leave"
    assert record.problems == []


def test_leave_without_an_action_goes_on_after_the_enqueue():
    line = Line({"/voice/incoming": enqueue(action=False), "/voice/wait": hold_then_leave(1)})
    record = phone_for(line).call_line(CALLER, ScriptedCaller())
    assert "You are out of the queue." in record.heard() and record.problems == []


def test_a_verb_twilio_refuses_in_a_wait_url_is_a_problem_and_the_caller_hears_twilios_error():
    line = Line({"/voice/incoming": enqueue(),
                 "/voice/wait": twiml(lambda r: r.dial(DISPATCH)), "/voice/after-queue": after_queue})
    record = phone_for(line).call_line(CALLER, ScriptedCaller())
    assert any(p.startswith("invalid: <Dial> is not allowed in a waitUrl document") for p in record.problems)
    assert "application error" in record.heard()


def test_a_caller_who_hangs_up_in_the_queue_is_removed_and_the_action_hears_hangup():
    def wait(form):
        response = VoiceResponse()
        response.gather(num_digits=1).say("Press any key.")
        return response

    line = Line({"/voice/incoming": enqueue(), "/voice/wait": wait, "/voice/after-queue": after_queue})
    phone = phone_for(line)
    record = phone.call_line(CALLER, ScriptedCaller([HANGUP]))
    assert line.sent("/voice/after-queue")[0]["QueueResult"] == "hangup"
    assert phone.queues["help"].members == []
    assert line.sent("/voice/status")[-1]["CallStatus"] == "completed"
    assert "Queue result" not in record.heard()


# --- Dial Queue: a specialist's call takes the caller out of the queue ------------------------


def specialist_line(timeout: int = 30) -> Line:
    def whisper(form):
        response = VoiceResponse()
        response.say("A caller is waiting.")
        dial = Dial(action=f"{PUBLIC}/voice/dial-done?who={form['To']}", timeout=timeout)
        dial.queue("help", url=f"{PUBLIC}/voice/connecting")
        response.append(dial)
        return response

    return Line({"/voice/incoming": enqueue(), "/voice/wait": holding, "/voice/after-queue": after_queue,
                 "/voice/whisper": whisper, "/voice/connecting": twiml(lambda r: r.say("Connecting you now.")),
                 "/voice/dial-done": twiml(lambda r: r.hangup())})


def test_a_specialist_call_dequeues_the_waiting_caller_and_both_actions_come_after_the_talk(serve):
    line = specialist_line()
    phone = phone_for(line)
    fake, client = serve(phone)
    caller = phone.start_call_line(CALLER, ScriptedCaller())
    wait_for(queued(phone))
    assert client.calls(caller.sid).fetch().status == "in-progress"  # inbound calls are on the REST API too
    placed = client.calls.create(to=ALICE, from_=LINE, url=f"{PUBLIC}/voice/whisper")
    assert fake.wait_for_calls(10) and caller.ended.wait(10)

    record, alice = caller.record, fake.calls[0].record
    [connecting] = line.sent("/voice/connecting")
    assert connecting["CallSid"] == caller.sid and connecting["DequeingCallSid"] == placed.sid
    assert connecting["QueueSid"] == phone.queues["help"].sid and "QueueTime" in connecting
    [done] = line.sent(f"/voice/dial-done?who={ALICE}")
    assert done["DialCallStatus"] == "completed" and done["DialCallSid"] == caller.sid
    assert done["DialCallDuration"] == "240" and done["QueueSid"] == phone.queues["help"].sid
    [after] = line.sent("/voice/after-queue")
    assert after["QueueResult"] == "bridged" and "Queue result bridged." in record.heard()
    assert record.bridged_with == [ALICE] and alice.bridged_with == [CALLER]
    assert "Connecting you now." in record.heard() and record.first_mark("specialist") is not None
    assert record.problems == [] and alice.problems == []
    assert client.calls(caller.sid).fetch().status == "completed"


def test_two_dialers_racing_for_one_caller_only_one_gets_them(serve):
    line = specialist_line(timeout=3)
    phone = phone_for(line)
    fake, client = serve(phone)
    caller = phone.start_call_line(CALLER, ScriptedCaller())
    wait_for(queued(phone))
    client.calls.create(to=ALICE, from_=LINE, url=f"{PUBLIC}/voice/whisper")
    client.calls.create(to=BRUNO, from_=LINE, url=f"{PUBLIC}/voice/whisper")
    assert fake.wait_for_calls(10) and caller.ended.wait(10)

    results = line.sent(f"/voice/dial-done?who={ALICE}") + line.sent(f"/voice/dial-done?who={BRUNO}")
    assert len(results) == 2
    winners = [r for r in results if r.get("DialCallSid") == caller.sid]
    losers = [r for r in results if "DialCallSid" not in r]
    assert len(winners) == 1 and len(losers) == 1
    assert losers[0]["DialCallStatus"] == "completed" and losers[0]["DialCallDuration"] == "0"
    assert len(line.sent("/voice/connecting")) == 1 and len(caller.record.bridged_with) == 1


# --- live call control through the REST API ---------------------------------------------------


def test_canceling_a_ringing_call_stops_the_answer(serve):
    line = specialist_line()
    phone = phone_for(line, time_scale=0.05)  # ringing takes 6 s on the clock: 0.3 s here
    fake, client = serve(phone)
    call = client.calls.create(to=ALICE, from_=LINE, url=f"{PUBLIC}/voice/whisper",
                               status_callback=f"{PUBLIC}/voice/status")
    assert client.calls(call.sid).fetch().status in ("queued", "ringing")
    assert client.calls(call.sid).update(status="canceled").status == "canceled"
    assert fake.wait_for_calls(10)
    assert client.calls(call.sid).fetch().status == "canceled"
    assert line.sent("/voice/whisper") == []
    assert [s["CallStatus"] for s in line.sent("/voice/status")] == ["canceled"]


def test_completing_an_in_progress_queued_call_hangs_it_up(serve):
    line = specialist_line()
    phone = phone_for(line)
    _, client = serve(phone)
    caller = phone.start_call_line(CALLER, ScriptedCaller())
    wait_for(queued(phone))
    assert client.calls(caller.sid).update(status="completed").status == "completed"
    assert caller.ended.wait(10)
    assert line.sent("/voice/after-queue")[0]["QueueResult"] == "hangup"
    assert line.sent("/voice/status")[-1]["CallStatus"] == "completed"
    assert phone.queues["help"].members == [] and caller.record.problems == []


def test_redirecting_a_queued_caller_takes_them_out_and_runs_the_new_twiml(serve):
    line = specialist_line()
    line.app.add_url_rule("/voice/moved", "moved", lambda: Response(
        str(twiml(lambda r: r.say("You were moved."))({})), mimetype="text/xml"), methods=["POST"])
    phone = phone_for(line)
    _, client = serve(phone)
    caller = phone.start_call_line(CALLER, ScriptedCaller())
    wait_for(queued(phone))
    client.calls(caller.sid).update(url=f"{PUBLIC}/voice/moved", method="POST")
    assert caller.ended.wait(10)
    [after] = line.sent("/voice/after-queue")
    assert after["QueueResult"] == "redirected"
    heard = caller.record.heard()
    assert "You were moved." in heard and "Queue result" not in heard  # the action's TwiML is ignored


def test_the_member_resource_lists_and_dequeues_the_front_caller(serve):
    line = specialist_line()
    phone = phone_for(line)
    _, client = serve(phone)
    caller = phone.start_call_line(CALLER, ScriptedCaller())
    wait_for(queued(phone))
    [queue] = client.queues.list()
    assert queue.friendly_name == "help" and queue.current_size == 1
    [member] = client.queues(queue.sid).members.list()
    assert member.call_sid == caller.sid and member.position == 1 and member.wait_time >= 0
    client.queues(queue.sid).members("Front").update(url=f"{PUBLIC}/voice/connecting")
    assert caller.ended.wait(10)
    assert line.sent("/voice/after-queue")[0]["QueueResult"] == "redirected"
    assert "Connecting you now." in caller.record.heard()
    assert client.queues(queue.sid).members.list() == []


def test_redirecting_a_finished_call_is_refused_with_21220(serve):
    line = Line({"/voice/incoming": twiml(lambda r: r.say("Hello."))})
    phone = phone_for(line)
    _, client = serve(phone)
    record = phone.call_line(CALLER, ScriptedCaller())
    with pytest.raises(TwilioRestException) as refused:
        client.calls(record.call_sid).update(url=f"{PUBLIC}/voice/incoming")
    assert refused.value.status == 400 and refused.value.code == 21220
    with pytest.raises(TwilioRestException) as missing:
        client.calls("CA" + "f" * 32).update(status="completed")
    assert missing.value.status == 404


# --- the phone clock --------------------------------------------------------------------------


SIXTEEN_WORDS = "one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen sixteen"


def test_the_phone_clock_counts_speech_keys_and_rings_without_sleeping():
    def menu(form):
        response = VoiceResponse()
        response.gather(num_digits=1, action=f"{PUBLIC}/voice/key").say(SIXTEEN_WORDS)
        return response

    line = Line({"/voice/incoming": menu, "/voice/key": twiml(lambda r: r.say("Thanks.")),
                 "/voice/whisper": twiml(lambda r: r.say("Hi."))})
    phone = phone_for(line)
    started = time.monotonic()
    record = phone.call_line(CALLER, ScriptedCaller(["1"]))
    assert record.marks[0] == (0.0, "answered")
    assert record.first_mark("said:one two") == 0.0
    assert record.first_mark("said:Thanks.") == pytest.approx(6.0 + 1.5)  # 16 words at 160 a minute, then a key
    leg = phone.outbound_call(ALICE, LINE, f"{PUBLIC}/voice/whisper")
    assert leg.first_mark("answered") == pytest.approx(6.0)  # six seconds of ringing
    phone.network[BRUNO] = SpecialistPhone("Bruno", answers=False)
    unanswered = phone.outbound_call(BRUNO, LINE, f"{PUBLIC}/voice/whisper", timeout=20)
    assert unanswered.status == "no-answer" and phone.legs[unanswered.call_sid].counted == 20  # rang its timeout
    assert time.monotonic() - started < 2  # time_scale 0: counted, never slept


def test_with_a_time_scale_concurrent_legs_interleave_on_one_clock():
    def slow(form):
        response = VoiceResponse()
        response.say(f"Hello {form['From'][-4:]}.")
        response.pause(length=10)
        response.say("Done.")
        return response

    line = Line({"/voice/incoming": slow})
    phone = phone_for(line, time_scale=0.05)  # ten seconds of pause: 0.5 s of real time
    started = time.monotonic()
    legs = [phone.start_call_line(f"+1937555{n:04d}", ScriptedCaller()) for n in range(3)]
    assert all(leg.ended.wait(10) for leg in legs)
    elapsed = time.monotonic() - started
    assert elapsed < 1.2  # side by side, not one after another (1.5 s or more)
    done = [leg.record.first_mark("said:Done.") for leg in legs]
    assert all(10 < at < 20 for at in done)
    # Each leg said hello before any said done: the legs interleave on the shared clock.
    assert max(leg.record.first_mark("said:Hello") for leg in legs) < min(done)
    assert phone.clock() > 10


# --- crash detection --------------------------------------------------------------------------


def crashing_line() -> Line:
    log = logging.getLogger("tiny.intake")

    def step(form):
        raise RuntimeError("the intake step broke")

    def incoming(form):
        # Like the real app: any fault inside is answered with TwiML that apologises and dials dispatch.
        try:
            return step(form)
        except Exception:
            log.exception("intake step failed")
            return fault_response(DISPATCH, "Polly.Joanna", "Polly.Lupe")

    return Line({"/voice/incoming": incoming})


def test_a_caller_who_hears_the_fault_message_is_a_problem_even_though_the_call_goes_on():
    record = phone_for(crashing_line()).call_line(CALLER, ScriptedCaller())
    assert "dispatch" in " ".join(what for _, what in record.transcript if "connected" in what)
    assert f"fault: the caller heard the fault message at {PUBLIC}/voice/incoming" in record.problems
    assert any(p.startswith("exception: tiny.intake: intake step failed") for p in record.problems)


def test_expect_fault_quiets_crash_detection_for_tests_that_cause_one_on_purpose():
    assert phone_for(crashing_line(), expect_fault=True).call_line(CALLER, ScriptedCaller()).problems == []
    assert phone_for(crashing_line()).call_line(CALLER, ScriptedCaller(), expect_fault=True).problems == []


def test_exceptions_in_other_threads_are_not_blamed_on_the_call():
    line = Line({"/voice/incoming": twiml(lambda r: r.say("Hello."))})
    noise = threading.Thread(target=lambda: [logging.getLogger("elsewhere").error("x", exc_info=True)
                                             for _ in range(50)])
    noise.start()
    record = phone_for(line).call_line(CALLER, ScriptedCaller())
    noise.join()
    assert record.problems == []


def test_redirecting_a_bridged_caller_breaks_the_bridge_and_ends_the_dialers_dial(serve):
    line = specialist_line()
    line.app.add_url_rule("/voice/moved", "moved", lambda: Response(
        str(twiml(lambda r: r.say("You were moved."))({})), mimetype="text/xml"), methods=["POST"])
    phone = phone_for(line, time_scale=0.01)  # Alice's 240 s of talk: 2.4 s, cut short below
    fake, client = serve(phone)
    caller = phone.start_call_line(CALLER, ScriptedCaller())
    wait_for(queued(phone))
    client.calls.create(to=ALICE, from_=LINE, url=f"{PUBLIC}/voice/whisper")
    wait_for(lambda: caller.record.bridged_with == [ALICE])
    client.calls(caller.sid).update(url=f"{PUBLIC}/voice/moved")
    assert caller.ended.wait(10) and fake.wait_for_calls(10)
    [done] = line.sent(f"/voice/dial-done?who={ALICE}")
    assert done["DialCallStatus"] == "completed" and int(done["DialCallDuration"]) < 240
    assert line.sent("/voice/after-queue")[0]["QueueResult"] == "redirected-from-bridged"
    assert "You were moved." in caller.record.heard() and caller.record.problems == []


# --- one fake, mounted in `responses` or served over HTTP -------------------------------------


def exchange(base: str) -> list[tuple[int, str, dict]]:
    """The same requests, in order, to the fake at `base`: each answer's status, content type and JSON
    (less its timestamps, which tick between the two runs, and the queue time that calls per second gives a
    burst of calls, which shrinks by the real time between them)."""
    api = f"{base}/2010-04-01/Accounts/{ACCOUNT_SID}"
    auth = (ACCOUNT_SID, AUTH_TOKEN)
    whisper = f"{PUBLIC}/voice/whisper"
    answers = []

    def timeless(body: dict) -> dict:
        return {k: v for k, v in body.items()
                if not k.startswith("date_") and k not in ("start_time", "end_time", "queue_time")}

    def send(method: str, path: str, data: dict | None = None, params: dict | None = None, signed: bool = True):
        response = requests.request(method, api + path, data=data, params=params, auth=auth if signed else None,
                                    timeout=10)
        body = timeless(response.json())
        if "calls" in body:
            body["calls"] = [timeless(c) for c in body["calls"]]
        answers.append((response.status_code, response.headers["Content-Type"], body))
        return body

    sid = send("POST", "/Calls.json", {"To": ALICE, "From": LINE, "Url": whisper})["sid"]
    send("POST", "/Calls.json", {"To": "12345", "From": LINE, "Url": whisper})
    send("GET", "/Calls.json", signed=False)
    send("GET", f"/Calls/{sid}.json")
    send("POST", f"/Calls/{sid}.json", {"Status": "canceled"})
    send("POST", "/Calls.json", {"To": BRUNO, "From": LINE, "Url": whisper})
    send("GET", "/Calls.json", params={"To": ALICE, "From": LINE, "Status": "canceled"})
    send("POST", "/Messages.json", {"To": CALLER, "From": LINE, "Body": "We will call you back."})
    return answers


def test_the_mounted_fake_answers_every_request_as_the_served_fake_does():
    def fresh_fake() -> FakeTwilio:
        return FakeTwilio(phone_for(Line({})), ACCOUNT_SID, AUTH_TOKEN, LINE, autoplay=False)

    mounted = fresh_fake()
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        mounted.mount(rsps)
        in_process = exchange("https://api.twilio.com")
    served = fresh_fake()
    try:
        over_http = exchange(served.start())
    finally:
        served.stop()

    assert in_process == over_http
    statuses = [(status, body.get("code")) for status, _, body in in_process]
    assert statuses == [(201, None), (400, 21211), (401, 20003), (200, None), (200, None), (201, None), (200, None),
                        (201, None)]
    assert in_process[4][2]["status"] == "canceled"
    assert [c["to"] for c in in_process[6][2]["calls"]] == [ALICE]
    assert [c.to for c in mounted.calls] == [c.to for c in served.calls] == [ALICE, BRUNO]
    assert mounted.texts[0]["body"] == served.texts[0]["body"] == "We will call you back."


@pytest.mark.parametrize("how", ["mounted", "served"])
def test_injected_failures_reach_the_client_as_twilios_answer_or_no_answer_at_all(how):
    fake = FakeTwilio(phone_for(Line({})), ACCOUNT_SID, AUTH_TOKEN, LINE, autoplay=False)
    config = {"TWILIO_ACCOUNT_SID": ACCOUNT_SID, "TWILIO_AUTH_TOKEN": AUTH_TOKEN}
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        if how == "mounted":
            fake.mount(rsps)
        else:
            rsps.add_passthru("http://127.0.0.1")
            config["TWILIO_API_BASE_URL"] = fake.start()
        client = rest_client(config)
        fake.fail_next_calls([(429, 20429), ConnectionResetError("reset by peer")])
        fake.fail_texts(400, 21614)
        try:
            with pytest.raises(TwilioRestException) as refused:
                client.calls.create(to=ALICE, from_=LINE, url=f"{PUBLIC}/voice/whisper")
            assert (refused.value.status, refused.value.code) == (429, 20429)
            # Mounted, the request raises the exception itself; served, the connection drops.
            with pytest.raises(ConnectionResetError if how == "mounted" else requests.ConnectionError):
                client.calls.create(to=ALICE, from_=LINE, url=f"{PUBLIC}/voice/whisper")
            placed = client.calls.create(to=ALICE, from_=LINE, url=f"{PUBLIC}/voice/whisper")
            with pytest.raises(TwilioRestException) as not_texted:
                client.messages.create(to=CALLER, from_=LINE, body="hi")
            assert (not_texted.value.status, not_texted.value.code) == (400, 21614)
            fake.fail_texts(None)
            client.messages.create(to=CALLER, from_=LINE, body="hi")
        finally:
            fake.stop()
    assert [c.sid for c in fake.calls] == [placed.sid] and [t["body"] for t in fake.texts] == ["hi"]
