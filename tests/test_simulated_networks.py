"""Real phones and networks on the simulated Twilio: voicemail that answers, answering machine detection, the
<Number url> whisper, withheld caller IDs, message statuses, opt-out keywords, calls per second, queue deletion."""

from __future__ import annotations

import pytest
from twilio.base.exceptions import TwilioRestException
from twilio.twiml.messaging_response import MessagingResponse
from twilio.twiml.voice_response import Dial, VoiceResponse

from tests.conftest import LINE, PUBLIC
from tests.test_simulated_twilio import (
    ALICE,
    BRUNO,
    CALLER,
    Line,
    enqueue,
    holding,
    phone_for,
    queued,
    twiml,
    wait_for,
)
from voice.simulator import (
    WITHHELD_CALLER_IDS,
    FaxMachine,
    Landline,
    ScriptedCaller,
    SpecialistPhone,
    Voicemail,
)

DANA = "+19375550150"
MESSAGE = "This is the city mediation line returning your call. Please call us back."


def reminder_line() -> Line:
    """A callback that leaves a message on a machine and asks a person for a key (no names, no addresses)."""
    def outbound(form):
        response = VoiceResponse()
        if form.get("AnsweredBy", "").startswith("machine"):
            response.say(MESSAGE)
            response.hangup()
        else:
            response.gather(num_digits=1, action=f"{PUBLIC}/voice/key").say("Press 1 to talk to a mediator.")
        return response

    return Line({"/voice/outbound": outbound, "/voice/amd": twiml(lambda r: None),
                 "/voice/key": twiml(lambda r: r.say("Connecting you."))})


def place(client, to: str = DANA, **options):
    return client.calls.create(to=to, from_=LINE, url=f"{PUBLIC}/voice/outbound",
                               status_callback=f"{PUBLIC}/voice/status", **options)


# --- voicemail and answering machine detection ----------------------------------------------


def test_a_voicemail_picks_up_after_its_rings_and_records_only_what_follows_the_beep(serve):
    line = reminder_line()
    phone = phone_for(line)
    box = Voicemail("Dana's voicemail", rings=3)
    phone.network[DANA] = box
    fake, client = serve(phone, calls_per_second=None)
    call = place(client)
    assert fake.wait_for_calls(10)

    record = fake.calls[0].record
    assert record.first_mark("answered") == pytest.approx(18.0)  # three rings of six seconds
    # No detection: the app's TwiML starts at pickup, over the greeting; the box presses nothing.
    assert "Press 1 to talk to a mediator." in box.heard and box.message == []
    assert line.sent("/voice/key") == [] and "AnsweredBy" not in line.sent("/voice/outbound")[0]
    assert client.calls(call.sid).fetch().answered_by is None


def test_detect_message_end_waits_for_the_beep_and_the_message_lands_in_the_box(serve):
    line = reminder_line()
    phone = phone_for(line)
    box = Voicemail("Dana's voicemail", rings=2, greeting="Hi, this is Dana. Leave a message after the tone.")
    phone.network[DANA] = box
    fake, client = serve(phone, calls_per_second=None)
    call = place(client, machine_detection="DetectMessageEnd")
    assert fake.wait_for_calls(10)

    [first] = line.sent("/voice/outbound")
    assert first["AnsweredBy"] == "machine_end_beep"
    record = fake.calls[0].record
    # Synchronous detection holds the first request until the greeting (4 s at 2.5 words a second) and beep end.
    assert record.first_mark(f"said:{MESSAGE}") == pytest.approx(12.0 + box.message_starts)
    assert box.recording() == MESSAGE and "Dana" not in box.recording()
    assert client.calls(call.sid).fetch().answered_by == "machine_end_beep"
    assert line.sent("/voice/status")[-1]["AnsweredBy"] == "machine_end_beep"


@pytest.mark.parametrize("party, mode, options, answered_by", [
    (ScriptedCaller(["1"]), "Enable", {}, "human"),
    (ScriptedCaller(["1"]), "DetectMessageEnd", {}, "human"),
    (Voicemail(rings=1), "Enable", {}, "machine_start"),
    (Voicemail(rings=1, beep=False), "DetectMessageEnd", {}, "machine_end_silence"),
    (Voicemail(rings=1, greeting="word " * 100), "DetectMessageEnd", {"machine_detection_timeout": 10},
     "machine_end_other"),
    (FaxMachine(), "Enable", {}, "fax"),
])
def test_answering_machine_detection_tells_people_from_machines(serve, party, mode, options, answered_by):
    line = reminder_line()
    phone = phone_for(line)
    phone.network[DANA] = party
    fake, client = serve(phone, calls_per_second=None)
    place(client, machine_detection=mode, **options)
    assert fake.wait_for_calls(10)
    assert line.sent("/voice/outbound")[0]["AnsweredBy"] == answered_by
    if answered_by == "human":
        assert line.sent("/voice/key")[0]["Digits"] == "1"


def test_a_silent_pickup_is_unknown_after_the_silence_timeout(serve):
    line = reminder_line()
    phone = phone_for(line)
    silent = ScriptedCaller()
    silent.greeting = ""
    phone.network[DANA] = silent
    fake, client = serve(phone, calls_per_second=None)
    place(client, machine_detection="Enable", machine_detection_silence_timeout=3000)
    assert fake.wait_for_calls(10)
    assert line.sent("/voice/outbound")[0]["AnsweredBy"] == "unknown"
    assert fake.calls[0].record.first_mark("said:Press 1") == pytest.approx(6.0 + 3.0)


def test_async_detection_runs_the_twiml_at_once_and_posts_the_result_later(serve):
    line = reminder_line()
    phone = phone_for(line)
    phone.network[DANA] = Voicemail(rings=1)
    fake, client = serve(phone, calls_per_second=None)
    call = place(client, machine_detection="DetectMessageEnd", async_amd="true",
                 async_amd_status_callback=f"{PUBLIC}/voice/amd")
    assert fake.wait_for_calls(10)
    assert "AnsweredBy" not in line.sent("/voice/outbound")[0]
    [amd] = line.sent("/voice/amd")
    assert amd["CallSid"] == call.sid and amd["AnsweredBy"] == "machine_end_beep"
    assert int(amd["MachineDetectionDuration"]) > 2400


def test_a_voicemail_hangs_up_after_its_longest_message(serve):
    line = Line({"/voice/outbound": twiml(lambda r: r.pause(length=600))})
    phone = phone_for(line)
    box = Voicemail(rings=1, max_message_seconds=60)
    phone.network[DANA] = box
    fake, client = serve(phone, calls_per_second=None)
    place(client)
    assert fake.wait_for_calls(10)
    record = fake.calls[0].record
    assert record.ended_by == "party-hangup" and record.status == "completed"
    assert phone.legs[fake.calls[0].sid].counted < 6 + box.message_starts + 60 + 600


def test_a_voicemail_set_to_more_rings_than_the_timeout_never_answers(serve):
    line = reminder_line()
    phone = phone_for(line)
    phone.network[DANA] = Voicemail(rings=10)  # 60 s of ringing
    fake, client = serve(phone, calls_per_second=None)
    place(client, timeout=30)
    assert fake.wait_for_calls(10)
    assert fake.calls[0].record.status == "no-answer" and line.sent("/voice/outbound") == []


def test_the_rest_api_refuses_an_unknown_machine_detection_value(serve):
    _, client = serve(phone_for(reminder_line()), calls_per_second=None)
    with pytest.raises(TwilioRestException) as refused:
        place(client, machine_detection="Sometimes")
    assert refused.value.status == 400


def test_send_digits_keys_the_numbers_to_whoever_answers_before_the_twiml_runs(serve):
    line = reminder_line()
    phone = phone_for(line)
    phone.network[DANA] = ScriptedCaller(label="interpreting service")
    fake, client = serve(phone)
    # https://www.twilio.com/docs/voice/api/call-resource#create-a-call-resource (SendDigits)
    call = place(client, send_digits="ww1234#", machine_detection="Enable")
    assert fake.wait_for_calls(10)
    record = fake.calls[0].record
    heard = record.heard("interpreting service")
    assert heard.startswith("[keys ww1234#]") and "Press 1 to talk to a mediator." in heard
    assert call.sid == fake.calls[0].sid and record.problems == []
    assert "AnsweredBy" not in line.sent("/voice/outbound")[0]  # SendDigits turns detection off
    for wrong in ("1234x", "1" * 33):
        with pytest.raises(TwilioRestException) as refused:
            place(client, send_digits=wrong)
        assert refused.value.status == 400


def test_call_progress_events_are_posted_as_asked(serve):
    line = reminder_line()
    phone = phone_for(line)
    phone.network[DANA] = ScriptedCaller(["1"])
    fake, client = serve(phone, calls_per_second=None)
    place(client, status_callback_event=["initiated", "ringing", "answered", "completed"])
    assert fake.wait_for_calls(10)
    assert [f["CallStatus"] for f in line.sent("/voice/status")] == ["initiated", "ringing", "in-progress", "completed"]


# --- <Number url>, <Number machineDetection>, a dropped dialed party --------------------------


def dial_line(whisper) -> Line:
    def incoming(form):
        response = VoiceResponse()
        dial = Dial(action=f"{PUBLIC}/voice/dial-done")
        dial.number(ALICE, url=f"{PUBLIC}/voice/whisper", machine_detection="Enable",
                    amd_status_callback=f"{PUBLIC}/voice/amd")
        response.append(dial)
        return response

    return Line({"/voice/incoming": incoming, "/voice/whisper": whisper, "/voice/amd": twiml(lambda r: None),
                 "/voice/dial-done": twiml(lambda r: r.say("Dial ended.")),
                 "/voice/declined": twiml(lambda r: r.hangup())})


def screening(form):
    response = VoiceResponse()
    response.gather(num_digits=1, action=f"{PUBLIC}/voice/declined?key=1", timeout=3).say("Press 1 to decline.")
    return response


@pytest.mark.parametrize("party, bridged", [(SpecialistPhone("Alice", accept=None), True),
                                            (SpecialistPhone("Alice", accept="1"), False)])
def test_a_whisper_that_hangs_up_leaves_the_parties_unbridged(party, bridged):
    line = dial_line(screening)
    phone = phone_for(line)
    phone.network[ALICE] = party
    record = phone.call_line(CALLER, ScriptedCaller())
    [done] = line.sent("/voice/dial-done")
    assert done["DialCallStatus"] == "completed" and done["DialBridged"] == str(bridged).lower()
    assert record.bridged_with == ([ALICE] if bridged else [])
    [amd] = line.sent("/voice/amd")
    assert amd["AnsweredBy"] == "human" and amd["CallSid"] == done["DialCallSid"]
    assert record.problems == []


@pytest.mark.parametrize("verb", ["pause", "redirect", "dial"])
def test_a_whisper_may_only_play_say_gather_and_hang_up(verb):
    def whisper(form):
        response = VoiceResponse()
        {"pause": lambda: response.pause(length=1), "redirect": lambda: response.redirect(f"{PUBLIC}/voice/whisper"),
         "dial": lambda: response.dial(BRUNO)}[verb]()
        return response

    phone = phone_for(dial_line(whisper))
    record = phone.call_line(CALLER, ScriptedCaller())
    assert any(p.startswith(f"invalid: <{verb.capitalize()}> is not allowed in a <Number url> document")
               for p in record.problems), record.problems


def test_a_dialed_party_whose_line_drops_ends_the_bridge_early():
    line = dial_line(twiml(lambda r: r.say("A caller for you.")))
    phone = phone_for(line, time_scale=0.01)  # Alice's 240 s of talk: 2.4 s
    caller = phone.start_call_line(CALLER, ScriptedCaller())
    wait_for(lambda: caller.record.bridged_with == [ALICE])
    [alice] = [leg for leg in list(phone.legs.values()) if leg.parent_sid == caller.sid]
    phone.drop(alice.sid)
    assert caller.ended.wait(10)
    [done] = line.sent("/voice/dial-done")
    assert done["DialCallStatus"] == "completed" and int(done["DialCallDuration"]) < 240
    assert "Dial ended." in caller.record.heard() and "line drops" in caller.record.text()


# --- caller IDs -----------------------------------------------------------------------------


@pytest.mark.parametrize("withheld, digits", [("anonymous", "+266696687"), ("restricted", "+7378742833"),
                                              ("unavailable", "+86282452253")])
def test_a_withheld_caller_id_arrives_as_twilio_sends_it(withheld, digits):
    line = Line({"/voice/incoming": twiml(lambda r: r.say("Hello."))})
    phone_for(line).call_line(WITHHELD_CALLER_IDS[withheld], ScriptedCaller())
    [incoming] = line.sent("/voice/incoming")
    assert incoming["From"] == incoming["Caller"] == digits


def test_forwarded_from_and_caller_name_come_on_every_request_of_a_transferred_call():
    psap_trunk, psap_main = "+19375550900", "+19375550911"
    line = Line({"/voice/incoming": twiml(lambda r: r.gather(num_digits=1, action=f"{PUBLIC}/voice/next").say("Hi.")),
                 "/voice/next": twiml(lambda r: r.say("Thanks."))})
    phone_for(line).call_line(psap_trunk, ScriptedCaller(["1"]), forwarded_from=psap_main, caller_name="CITY OF DAYTON")
    requests = line.sent("/voice/incoming") + line.sent("/voice/next") + line.sent("/voice/status")
    assert len(requests) == 3
    assert all(r["From"] == psap_trunk and r["ForwardedFrom"] == psap_main and r["CallerName"] == "CITY OF DAYTON"
               for r in requests)
    plain = Line({"/voice/incoming": twiml(lambda r: r.say("Hello."))})
    phone_for(plain).call_line(CALLER, ScriptedCaller())
    assert "ForwardedFrom" not in plain.sent("/voice/incoming")[0] and "CallerName" not in plain.sent("/voice/incoming")[0]


# --- texts: statuses and opt-out --------------------------------------------------------------


def text_line() -> Line:
    def reply(form):
        response = MessagingResponse()
        response.message("Got it.")
        return response

    return Line({"/sms/status": twiml(lambda r: None), "/sms/incoming": reply})


def statuses(line: Line, sid: str) -> list[tuple[str, str | None]]:
    return [(f["MessageStatus"], f.get("ErrorCode")) for f in line.sent("/sms/status") if f["MessageSid"] == sid]


def test_message_status_callbacks_follow_each_text_to_its_end(serve):
    line = text_line()
    phone = phone_for(line)
    phone.network[DANA] = Landline(label="Dana at home")
    phone.messaging.fail_texts_to(BRUNO, code=30003, status="failed")
    fake, client = serve(phone)
    callback = f"{PUBLIC}/sms/status"
    ok = client.messages.create(to=CALLER, from_=LINE, body="We will call you back.", status_callback=callback)
    landline = client.messages.create(to=DANA, from_=LINE, body="We will call you back.", status_callback=callback)
    unreachable = client.messages.create(to=BRUNO, from_=LINE, body="We will call you back.", status_callback=callback)
    assert ok.status == "queued"  # "A status callback request is not sent for the initial status"
    assert phone.settle()
    assert statuses(line, ok.sid) == [("sent", None), ("delivered", None)]
    assert statuses(line, landline.sid) == [("sent", None), ("undelivered", "30006")]
    assert statuses(line, unreachable.sid) == [("failed", "30003")]
    fetched = client.messages(landline.sid).fetch()
    assert fetched.status == "undelivered" and fetched.error_code == 30006
    assert fetched.error_message == "Landline or unreachable carrier"
    phone.messaging.unregistered_sender(LINE)
    blocked = client.messages.create(to=CALLER, from_=LINE, body="Hello.", status_callback=callback)
    assert phone.settle()
    assert statuses(line, blocked.sid) == [("sent", None), ("undelivered", "30034")]
    first = line.sent("/sms/status")[0]
    assert first["SmsSid"] == first["MessageSid"] and first["From"] == LINE and first["AccountSid"].startswith("AC")


def test_stop_opts_a_number_out_until_start_and_help_gets_twilios_reply(serve):
    line = text_line()
    phone = phone_for(line)
    _, client = serve(phone)
    status, body = phone.send_sms(CALLER, "stop")
    assert status == 200 and "Got it." in body  # the app still gets the text
    [incoming] = line.sent("/sms/incoming")
    assert incoming["Body"] == "stop" and "OptOutType" not in incoming  # no Messaging Service: no OptOutType
    assert phone.messaging.replies_to(CALLER) == [
        "You have successfully been unsubscribed. You will not receive any more messages from this number. "
        "Reply START to resubscribe."]
    with pytest.raises(TwilioRestException) as refused:
        client.messages.create(to=CALLER, from_=LINE, body="We will call you back.")
    assert (refused.value.status, refused.value.code) == (400, 21610)
    phone.send_sms(CALLER, "HELP")
    assert phone.messaging.replies_to(CALLER)[-1] == "Reply STOP to unsubscribe. Msg&Data Rates May Apply."
    phone.send_sms(CALLER, "Start")
    assert phone.messaging.replies_to(CALLER)[-1].startswith("You have successfully been re-subscribed")
    client.messages.create(to=CALLER, from_=LINE, body="We will call you back.")
    # A keyword inside a sentence is just a text.
    phone.send_sms(CALLER, "please stop calling at night")
    assert len(phone.messaging.replies_to(CALLER)) == 3
    phone.messaging.advanced_opt_out = True
    phone.send_sms(CALLER, "UNSUBSCRIBE")
    assert line.sent("/sms/incoming")[-1]["OptOutType"] == "STOP"


# --- calls per second, queues ---------------------------------------------------------------


def test_calls_are_placed_at_the_accounts_calls_per_second(serve):
    line = Line({"/voice/whisper": twiml(lambda r: r.say("Hi."))})
    phone = phone_for(line)
    fake, client = serve(phone)  # Twilio's default: one call a second
    calls = [client.calls.create(to=number, from_=LINE, url=f"{PUBLIC}/voice/whisper")
             for number in (ALICE, BRUNO, ALICE)]
    # A burst of requests (less the real time between them): the second waits a second, the third two.
    assert [int(c.queue_time) for c in calls] == pytest.approx([0, 1000, 2000], abs=250)
    assert fake.wait_for_calls(10)
    # Each waited its turn on its own clock before it rang (six seconds) and was answered.
    assert [c.record.first_mark("answered") for c in fake.calls] == pytest.approx([6.0, 7.0, 8.0], abs=0.25)
    unpaced, client2 = serve(phone_for(line), calls_per_second=None)
    assert {int(client2.calls.create(to=ALICE, from_=LINE, url=f"{PUBLIC}/voice/whisper").queue_time)
            for _ in range(3)} == {0}
    assert unpaced.wait_for_calls(10)


def test_deleting_a_queue_refuses_while_callers_wait_and_removes_it_once_empty(serve):
    line = Line({"/voice/incoming": enqueue(action=False), "/voice/wait": holding})
    phone = phone_for(line)
    _, client = serve(phone)
    caller = phone.start_call_line(CALLER, ScriptedCaller())
    wait_for(queued(phone))
    sid = phone.queues["help"].sid
    with pytest.raises(TwilioRestException) as refused:
        client.queues(sid).delete()
    assert refused.value.status == 400
    client.calls(caller.sid).update(status="completed")
    assert caller.ended.wait(10)
    # Queues persist once empty ("inactive Queues should be deleted"); DELETE removes one.
    assert client.queues(sid).fetch().current_size == 0
    assert client.queues(sid).delete() is True
    with pytest.raises(TwilioRestException) as gone:
        client.queues(sid).fetch()
    assert gone.value.status == 404
    again = phone.start_call_line(CALLER, ScriptedCaller())
    wait_for(queued(phone))
    assert phone.queues["help"].sid != sid
    client.calls(again.sid).update(status="completed")
