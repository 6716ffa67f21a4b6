"""The simulated Twilio's conferences against tiny apps of fixed TwiML: <Dial><Conference>, the Conference and
Participant resources, status callbacks, who hears whom, and lines that drop."""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from twilio.base.exceptions import TwilioRestException
from twilio.twiml.voice_response import Dial, VoiceResponse

from tests.conftest import LINE, PUBLIC
from tests.test_simulated_twilio import ALICE, CALLER, Line, phone_for, twiml, wait_for
from voice.simulator import ScriptedCaller, SpecialistPhone, Voicemail

COORDINATOR = "+19375550303"
SECOND_CALLER = "+19375550124"
EVENTS = "start end join leave mute hold modify speaker announcement"
# Long enough that a test ends the call itself: nobody hangs up on their own while a test looks.
FOREVER = 100_000


def join(room: str = "room", action: bool = True, after: str | None = None, **attributes) -> callable:
    """/voice/incoming: into conference `room`, reporting every event; `after` is said if the call goes on."""
    def route(form: dict) -> VoiceResponse:
        response = VoiceResponse()
        dial = Dial(action=f"{PUBLIC}/voice/after-conference" if action else None)
        options = {"status_callback": f"{PUBLIC}/voice/conference-events", "status_callback_event": EVENTS,
                   **attributes}
        dial.conference(room, **options)
        response.append(dial)
        if after:
            response.say(after)
        return response
    return route


def after_conference(form: dict) -> VoiceResponse:
    response = VoiceResponse()
    response.say(f"Conference over: {form['DialCallStatus']}.")
    return response


def conference_line(**routes) -> Line:
    return Line({"/voice/incoming": join(), "/voice/after-conference": after_conference,
                 "/voice/conference-events": twiml(lambda r: None), **routes})


def events_of(line: Line, name: str | None = None) -> list[dict]:
    forms = line.sent("/voice/conference-events")
    return [f for f in forms if name in (None, f["StatusCallbackEvent"])]


def connected(phone, room: str = "room", count: int = 2):
    def check() -> bool:
        conference = phone.conference(room)
        return conference is not None and sum(p.status == "connected" for p in conference.participants) >= count
    return check


def network(phone, **parties) -> None:
    phone.network.update(parties)


@dataclass
class Scene:
    """A caller waiting in conference "room", then Alice (label "specialist") added through the REST API."""

    phone: object
    fake: object
    client: object
    caller: object
    sid: str
    alice: object


def caller_waits(serve, line: Line, **parties) -> tuple:
    """A caller alone in conference "room" (Alice, who never hangs up, on the network): phone, fake, client, leg."""
    phone = phone_for(line)
    network(phone, **{ALICE: SpecialistPhone("Alice", talk_seconds=FOREVER), **parties})
    fake, client = serve(phone)
    caller = phone.start_call_line(CALLER, ScriptedCaller(talk_seconds=FOREVER))
    wait_for(connected(phone, count=1))
    return phone, fake, client, caller


def specialist_joins(serve, line: Line, **parties) -> Scene:
    phone, fake, client, caller = caller_waits(serve, line, **parties)
    sid = phone.conference("room").sid
    alice = client.conferences(sid).participants.create(from_=LINE, to=ALICE, label="specialist")
    wait_for(connected(phone, count=2))
    return Scene(phone, fake, client, caller, sid, alice)


def end(phone, sid: str, *legs) -> None:
    """End the conference through the API; its callers' TwiML goes on to its end."""
    phone.update_conference(sid, status="completed")
    assert all(leg.ended.wait(10) for leg in legs)


# --- <Dial><Conference> and the conference's life -------------------------------------------


def test_two_callers_start_a_conference_and_the_last_to_leave_ends_it_with_twilios_events():
    line = conference_line()
    phone = phone_for(line)
    first = phone.start_call_line(CALLER, ScriptedCaller(talk_seconds=60, lines=["Hello, is anyone there?"]))
    wait_for(lambda: "[hold music]" in first.record.heard())  # alone: the conference waits for a second
    conference = phone.conference("room")
    assert conference.status == "init" and conference.sid.startswith("CF")
    second = phone.call_line(SECOND_CALLER, ScriptedCaller(talk_seconds=120, lines=["I am here."]))
    assert first.ended.wait(10)
    phone.settle()

    assert conference.status == "completed" and conference.reason_ended == "last-participant-left"
    assert conference.call_sid_ending == second.call_sid
    names = [e["StatusCallbackEvent"] for e in events_of(line)]
    assert names[:3] == ["participant-join", "participant-join", "conference-start"]
    assert names[-2:] == ["participant-leave", "conference-end"]
    assert [int(e["SequenceNumber"]) for e in events_of(line)] == list(range(1, len(names) + 1))
    first_join = events_of(line, "participant-join")[0]
    assert first_join["CallSid"] == first.sid and first_join["ConferenceSid"] == conference.sid
    assert first_join["FriendlyName"] == "room" and first_join["Muted"] == "false"
    assert first_join["StartConferenceOnEnter"] == "true" and first_join["EndConferenceOnExit"] == "false"
    assert first_join["Timestamp"].endswith("+0000")
    leaves = events_of(line, "participant-leave")
    assert [(e["CallSid"], e["ReasonParticipantLeft"], e["ParticipantCallStatus"]) for e in leaves] == [
        (first.sid, "participant_hung_up", "completed"), (second.call_sid, "participant_hung_up", "completed")]
    end = events_of(line, "conference-end")[0]
    assert end["ReasonConferenceEnded"] == "last-participant-left" and end["CallSidEndingConference"] == second.call_sid
    # Each heard the other once the conference started.
    assert "caller: I am here." in first.record.heard()
    assert "caller: Hello, is anyone there?" in second.heard()
    assert first.record.problems == [] and second.problems == []


def test_a_conference_waits_for_its_moderator_and_the_wait_url_plays_once_then_silence():
    def wait(form):
        response = VoiceResponse()
        response.say("Please wait for the mediator.")
        return response

    line = conference_line(**{"/voice/incoming": join(start_conference_on_enter=False,
                                                       wait_url=f"{PUBLIC}/voice/wait"),
                              "/voice/moderator": join(start_conference_on_enter=True, end_conference_on_exit=True),
                              "/voice/wait": wait})
    phone = phone_for(line, time_scale=0.01)
    callers = [phone.start_call_line(number, ScriptedCaller(talk_seconds=FOREVER)) for number in (CALLER, SECOND_CALLER)]
    wait_for(connected(phone, count=2))
    conference = phone.conference("room")
    assert conference.status == "init"  # two participants, neither may start it
    wait_for(lambda: all(c.record.first_mark("said:Please wait") for c in callers))
    phone.voice_url = f"{PUBLIC}/voice/moderator"
    moderator = phone.call_line(COORDINATOR, SpecialistPhone("Mediator", talk_seconds=30))
    assert all(c.ended.wait(10) for c in callers)

    assert len(line.sent("/voice/wait")) == 2  # once each: after the document, silence until it starts
    assert conference.reason_ended == "participant-with-end-conference-on-exit-left"
    assert conference.call_sid_ending == moderator.call_sid
    leaves = {e["CallSid"]: e for e in events_of(line, "participant-leave")}
    for caller in callers:
        assert leaves[caller.sid]["ReasonParticipantLeft"] == "moderator_ended_conference"
        assert leaves[caller.sid]["ParticipantCallStatus"] == "in-progress"
        # The caller's TwiML goes on: the Dial action, told "answered", with no DialCallSid or duration.
        assert "Conference over: answered." in caller.record.heard()
    actions = line.sent("/voice/after-conference")
    assert {a["DialCallStatus"] for a in actions} == {"answered"}
    assert not any("DialCallSid" in a or "DialCallDuration" in a for a in actions)
    assert all(c.record.problems == [] for c in callers)


def test_without_an_action_the_verb_after_the_dial_runs_when_the_conference_ends(serve):
    line = conference_line(**{"/voice/incoming": join(action=False, after="Thanks for calling.")})
    phone = phone_for(line)
    _, client = serve(phone)
    caller = phone.start_call_line(CALLER, ScriptedCaller(talk_seconds=FOREVER))
    wait_for(connected(phone, count=1))
    client.conferences(phone.conference("room").sid).update(status="completed")
    assert caller.ended.wait(10)
    phone.settle()  # the leave event is posted off the caller's thread
    assert "Thanks for calling." in caller.record.heard()
    assert line.sent("/voice/after-conference") == []
    assert phone.conference("room").reason_ended == "conference-ended-via-api"
    [leave] = events_of(line, "participant-leave")
    assert leave["ReasonParticipantLeft"] == "conference_ended_via_api"


@pytest.mark.parametrize("verb", ["gather", "dial", "hangup"])
def test_a_wait_url_may_only_play_say_pause_and_redirect(verb):
    def wait(form):
        response = VoiceResponse()
        {"gather": lambda: response.gather().say("Press 1."), "dial": lambda: response.dial(ALICE),
         "hangup": response.hangup}[verb]()
        return response

    line = conference_line(**{"/voice/incoming": join(wait_url=f"{PUBLIC}/voice/wait"), "/voice/wait": wait})
    record = phone_for(line).call_line(CALLER, ScriptedCaller())
    assert any(p.startswith(f"invalid: <{verb.capitalize()}> is not allowed in a waitUrl document")
               for p in record.problems), record.problems


def test_a_conference_nobody_starts_is_reported_stuck_not_waited_on_for_ever():
    line = conference_line(**{"/voice/incoming": join(start_conference_on_enter=False)})
    record = phone_for(line, max_wait_cycles=5).call_line(CALLER, ScriptedCaller())
    assert any(p.startswith("stuck:") and "never started" in p for p in record.problems)
    # Still a clean end for the app: it hears that the participant left.
    assert events_of(line, "participant-leave")[0]["ReasonParticipantLeft"] == "participant_hung_up"


def test_a_full_conference_and_a_taken_label_keep_the_caller_out():
    line = conference_line(**{"/voice/incoming": join(max_participants=2, participant_label="caller",
                                                       after="You are not in the conference.")})
    phone = phone_for(line)
    first = phone.start_call_line(CALLER, ScriptedCaller(talk_seconds=FOREVER))
    wait_for(connected(phone, count=1))
    # Same label: "continue to the next TwiML verb" (16025), no action.
    refused = phone.call_line(SECOND_CALLER, ScriptedCaller())
    assert "You are not in the conference." in refused.heard()
    assert any("16025" in what for _, what in refused.transcript)
    line_full = conference_line(**{"/voice/incoming": join(max_participants=2)})
    phone_full = phone_for(line_full)
    legs = [phone_full.start_call_line(n, ScriptedCaller(talk_seconds=FOREVER)) for n in (CALLER, SECOND_CALLER)]
    wait_for(connected(phone_full, count=2))
    third = phone_full.call_line(COORDINATOR, ScriptedCaller())
    assert "Conference over: failed." in third.heard()  # 16020 fails to the action
    for p in (phone, phone_full):
        conference = [c for c in p.conferences if c.status != "completed"][0]
        p.update_conference(conference.sid, status="completed")
    assert first.ended.wait(10) and all(leg.ended.wait(10) for leg in legs)


def test_a_coach_sid_not_in_the_conference_fails_to_the_action_with_13240():
    line = conference_line(**{"/voice/incoming": join(coach="CA" + "1" * 32)})
    record = phone_for(line).call_line(CALLER, ScriptedCaller())
    assert "Conference over: failed." in record.heard()
    assert any(p.startswith("error 13240") for p in record.problems)


# --- the REST API -------------------------------------------------------------------------


def test_the_rest_api_adds_a_specialist_by_friendly_name_and_lists_fetches_and_mutes(serve):
    line = conference_line()
    phone, fake, client, caller = caller_waits(serve, line)
    added = client.conferences("room").participants.create(from_=LINE, to=ALICE, label="specialist",
                                                          status_callback=f"{PUBLIC}/voice/status",
                                                          status_callback_event=["ringing", "answered", "completed"])
    conference = phone.conference("room")
    assert added.conference_sid == conference.sid and added.status in ("queued", "ringing", "connected")
    assert added.label == "specialist" and added.queue_time is not None
    wait_for(connected(phone, count=2))
    assert conference.status == "in-progress"

    [listed] = client.conferences.list(friendly_name="room", status="in-progress")
    assert listed.sid == conference.sid
    assert client.conferences(conference.sid).fetch().status == "in-progress"
    assert {p.call_sid for p in client.conferences(conference.sid).participants.list()} == {caller.sid, added.call_sid}
    by_label = client.conferences(conference.sid).participants("specialist").fetch()
    assert by_label.call_sid == added.call_sid and by_label.status == "connected"

    assert phone.speak(added.call_sid, "Hello, this is Alice.") == [caller.sid]
    client.conferences(conference.sid).participants("specialist").update(muted=True)
    assert phone.speak(added.call_sid, "Can you hear me?") == []
    assert [p.call_sid for p in client.conferences(conference.sid).participants.list(muted=True)] == [added.call_sid]
    phone.settle()
    assert [e["StatusCallbackEvent"] for e in events_of(line, "participant-mute")] == ["participant-mute"]
    assert "Hello, this is Alice." in caller.record.heard() and "Can you hear me?" not in caller.record.heard()
    assert conference.heard_by(caller.sid) == "Hello, this is Alice."

    client.conferences(conference.sid).update(status="completed")
    assert caller.ended.wait(10) and fake.wait_for_calls(10)
    # The participant the API added has no TwiML: its call hangs up; the caller's goes on to the action.
    assert "Conference over: answered." in caller.record.heard()
    statuses = [f["CallStatus"] for f in line.sent("/voice/status") if f["CallSid"] == added.call_sid]
    assert statuses == ["ringing", "in-progress", "completed"]
    assert client.conferences(conference.sid).fetch().status == "completed"
    assert client.conferences(conference.sid).participants.list() == []


def test_a_coach_is_heard_only_by_the_call_it_coaches(serve):
    line = conference_line()
    scene = specialist_joins(serve, line, **{COORDINATOR: SpecialistPhone("Coordinator", talk_seconds=FOREVER)})
    phone, client, caller, sid, alice = scene.phone, scene.client, scene.caller, scene.sid, scene.alice
    coach = client.conferences(sid).participants.create(from_=LINE, to=COORDINATOR, label="coach",
                                                        coaching=True, call_sid_to_coach=alice.call_sid)
    wait_for(connected(phone, count=3))

    assert phone.speak(coach.call_sid, "Ask about the address.") == [alice.call_sid]
    assert sorted(phone.speak(caller.sid, "It is the house next door.")) == sorted([alice.call_sid, coach.call_sid])
    assert client.conferences(sid).participants("coach").fetch().coaching is True
    # Coaching stops: now everyone hears the coordinator.
    client.conferences(sid).participants("coach").update(coaching=False)
    assert sorted(phone.speak(coach.call_sid, "Hello everyone.")) == sorted([alice.call_sid, caller.sid])
    assert "Ask about the address." not in caller.record.heard()
    assert "Coordinator: Ask about the address." in phone.legs[alice.call_sid].record.heard("Alice")
    phone.settle()
    modify = events_of(line, "participant-modify")
    assert [(e["CallSid"], e["Coaching"]) for e in modify] == [(coach.call_sid, "false")]
    end(phone, sid, caller)


def test_hold_plays_the_hold_url_and_a_held_participant_neither_hears_nor_is_heard(serve):
    line = conference_line(**{"/voice/hold": twiml(lambda r: r.say("You are on hold."))})
    scene = specialist_joins(serve, line)
    phone, client, caller, sid, alice = scene.phone, scene.client, scene.caller, scene.sid, scene.alice
    client.conferences(sid).participants(caller.sid).update(hold=True, hold_url=f"{PUBLIC}/voice/hold",
                                                            hold_method="POST")
    wait_for(lambda: caller.record.first_mark("said:You are on hold.") is not None)
    assert phone.speak(alice.call_sid, "A private note.") == []
    assert phone.speak(caller.sid, "Hello?") == []
    client.conferences(sid).participants(caller.sid).update(hold=False)
    assert phone.speak(alice.call_sid, "Thanks for waiting.") == [caller.sid]
    phone.settle()
    assert [e["StatusCallbackEvent"] for e in events_of(line) if "hold" in e["StatusCallbackEvent"]] == [
        "participant-hold", "participant-unhold"]
    assert line.sent("/voice/hold")[0]["ConferenceSid"] == sid
    assert "A private note." not in caller.record.heard() and caller.record.problems == []
    end(phone, sid, caller)


def test_announcements_reach_everyone_or_one_participant_and_are_reported(serve):
    line = conference_line(**{"/voice/announce": twiml(lambda r: r.say("This call is being transferred.")),
                              "/voice/whisper-announce": twiml(lambda r: r.say("Only for you."))})
    phone, _, client, caller = caller_waits(serve, line)
    sid = phone.conference("room").sid
    with pytest.raises(TwilioRestException) as early:
        client.conferences(sid).update(announce_url=f"{PUBLIC}/voice/announce")  # not started yet
    assert early.value.status == 400
    alice = client.conferences(sid).participants.create(from_=LINE, to=ALICE)
    wait_for(connected(phone, count=2))
    client.conferences(sid).update(announce_url=f"{PUBLIC}/voice/announce")
    client.conferences(sid).participants(alice.call_sid).update(announce_url=f"{PUBLIC}/voice/whisper-announce")
    alice_record = phone.legs[alice.call_sid].record
    wait_for(lambda: len(phone.conference("room").events_posted("announcement-end")) == 2)
    assert "Only for you." not in caller.record.heard()
    assert "This call is being transferred." in alice_record.heard("Alice")
    phone.settle()
    ends = {e["AnnounceUrl"]: e for e in events_of(line, "announcement-end")}
    assert len(ends) == 2
    # The conference's announcement is one event; the participant's names the participant.
    assert "CallSid" not in ends[f"{PUBLIC}/voice/announce"]
    assert ends[f"{PUBLIC}/voice/whisper-announce"]["CallSid"] == alice.call_sid
    end(phone, sid, caller)


def test_kicking_a_participant_goes_on_with_its_twiml_and_the_last_kick_ends_the_conference(serve):
    line = conference_line()
    scene = specialist_joins(serve, line)
    phone, fake, client, caller, sid, alice = scene.phone, scene.fake, scene.client, scene.caller, scene.sid, scene.alice
    client.conferences(sid).participants(caller.sid).delete()
    assert caller.ended.wait(10)
    assert "Conference over: answered." in caller.record.heard()
    client.conferences(sid).participants("specialist").delete()
    assert fake.wait_for_calls(10)
    phone.settle()
    leaves = events_of(line, "participant-leave")
    assert [(e["CallSid"], e["ReasonParticipantLeft"], e["ParticipantCallStatus"]) for e in leaves] == [
        (caller.sid, "participant_updated_via_api", "in-progress"),
        (alice.call_sid, "participant_updated_via_api", "completed")]
    assert events_of(line, "conference-end")[0]["ReasonConferenceEnded"] == "last-participant-kicked"
    assert phone.legs[alice.call_sid].status == "completed"


def test_redirecting_a_participants_call_takes_it_out_and_runs_the_new_twiml(serve):
    line = conference_line(**{"/voice/moved": twiml(lambda r: r.say("You were moved."))})
    scene = specialist_joins(serve, line)
    phone, client, caller, sid = scene.phone, scene.client, scene.caller, scene.sid
    client.calls(caller.sid).update(url=f"{PUBLIC}/voice/moved", method="POST")
    assert caller.ended.wait(10)
    heard = caller.record.heard()
    assert "You were moved." in heard and "Conference over" not in heard  # the action was told, its TwiML ignored
    assert line.sent("/voice/after-conference")[0]["DialCallStatus"] == "answered"
    phone.settle()
    [leave] = events_of(line, "participant-leave")
    assert leave["ReasonParticipantLeft"] == "participant_updated_via_api" and leave["ParticipantCallStatus"] == "in-progress"
    assert phone.conference("room").status == "in-progress"  # Alice is still in it
    phone.update_conference(sid, status="completed")


def test_a_participant_who_does_not_answer_leaves_with_participant_add_failed(serve):
    line = conference_line()
    phone = phone_for(line)
    network(phone, **{ALICE: SpecialistPhone("Alice", answers=False)})
    fake, client = serve(phone)
    added = client.conferences("empty-room").participants.create(
        from_=LINE, to=ALICE, timeout=10, conference_status_callback=f"{PUBLIC}/voice/conference-events",
        conference_status_callback_event=["leave", "end"])
    assert fake.wait_for_calls(10)
    phone.settle()
    [leave] = events_of(line, "participant-leave")
    assert leave["CallSid"] == added.call_sid and leave["ReasonParticipantLeft"] == "participant_add_failed"
    assert leave["ParticipantCallStatus"] == "no-answer"
    assert phone.conference("empty-room").status == "completed"


def test_the_rest_api_refuses_what_twilio_refuses(serve):
    phone, _, client, caller = caller_waits(serve, conference_line())
    sid = phone.conference("room").sid

    def refusal(call) -> tuple[int, int]:
        with pytest.raises(TwilioRestException) as refused:
            call()
        return refused.value.status, refused.value.code

    missing = "CF" + "f" * 32
    assert refusal(lambda: client.conferences(missing).participants.create(from_=LINE, to=ALICE)) == (404, 20404)
    assert refusal(lambda: client.conferences(missing).fetch())[0] == 404
    assert refusal(lambda: client.conferences(sid).participants("CA" + "e" * 32).fetch()) == (404, 20404)
    assert refusal(lambda: client.conferences(sid).participants("nobody").update(muted=True)) == (404, 20404)
    assert refusal(lambda: client.conferences(sid).participants.create(from_=LINE, to=ALICE, coaching=True)) == (400, 20001)
    assert refusal(lambda: client.conferences(sid).participants.create(from_=LINE, to="12345")) == (400, 21211)
    assert refusal(lambda: client.conferences(sid).participants.create(from_="+15005550000", to=ALICE))[1] == 21210
    client.conferences(sid).participants.create(from_=LINE, to=ALICE, label="specialist")
    assert refusal(lambda: client.conferences(sid).participants.create(from_=LINE, to=ALICE, label="specialist")) == (400, 16025)
    assert refusal(lambda: client.conferences(sid).update(status="in-progress")) == (400, 20001)
    client.conferences(sid).update(status="completed")
    assert caller.ended.wait(10)
    assert refusal(lambda: client.conferences(sid).update(status="completed")) == (404, 20404)
    assert refusal(lambda: client.conferences(sid).participants.create(from_=LINE, to=ALICE)) == (404, 20404)


# --- lines that drop, and voicemail in a conference -----------------------------------------


def test_a_dropped_line_leaves_the_conference_and_its_end_conference_on_exit_ends_it(serve):
    line = conference_line(**{"/voice/specialist": join(end_conference_on_exit=True)})
    phone = phone_for(line)
    caller = phone.start_call_line(CALLER, ScriptedCaller(talk_seconds=FOREVER))
    wait_for(connected(phone, count=1))
    phone.voice_url = f"{PUBLIC}/voice/specialist"
    specialist = phone.start_call_line(ALICE, SpecialistPhone("Alice", talk_seconds=FOREVER))
    wait_for(connected(phone, count=2))
    phone.drop(specialist.sid)
    assert specialist.ended.wait(10) and caller.ended.wait(10)
    assert specialist.record.ended_by == "dropped"
    assert line.sent("/voice/status")[-1]["CallStatus"] == "completed"
    phone.settle()
    leaves = {e["CallSid"]: e for e in events_of(line, "participant-leave")}
    assert leaves[specialist.sid]["ReasonParticipantLeft"] == "participant_hung_up"
    assert leaves[caller.sid]["ReasonParticipantLeft"] == "moderator_ended_conference"
    assert phone.conference("room").reason_ended == "participant-with-end-conference-on-exit-left"
    assert "Conference over: answered." in caller.record.heard()


def test_hanging_up_is_told_apart_from_a_dropped_line():
    line = conference_line()
    phone = phone_for(line)
    caller = phone.start_call_line(CALLER, ScriptedCaller(talk_seconds=FOREVER))
    wait_for(connected(phone, count=1))
    phone.hang_up(caller.sid)
    assert caller.ended.wait(10) and caller.record.ended_by == "party-hangup"
    with pytest.raises(Exception, match="not in progress"):
        phone.drop(caller.sid)
    # The Dial action a call that hung up still requests says so in its own CallStatus.
    [action] = line.sent("/voice/after-conference")
    assert action["DialCallStatus"] == "answered" and action["CallStatus"] == "completed"


def test_a_voicemail_added_to_a_conference_records_what_it_hears_and_amd_says_machine(serve):
    line = conference_line(**{"/voice/amd": twiml(lambda r: None)})
    box = Voicemail("Dana's voicemail", rings=2, max_message_seconds=FOREVER)
    phone, fake, client, caller = caller_waits(serve, line, **{ALICE: box})
    sid = phone.conference("room").sid
    added = client.conferences(sid).participants.create(from_=LINE, to=ALICE, machine_detection="DetectMessageEnd",
                                                        amd_status_callback=f"{PUBLIC}/voice/amd")
    wait_for(connected(phone, count=2))
    phone.speak(caller.sid, "My name is Dana Whitfield.")
    phone.update_conference(sid, status="completed")
    assert caller.ended.wait(10) and fake.wait_for_calls(10)
    [amd] = line.sent("/voice/amd")
    assert amd["CallSid"] == added.call_sid and amd["AnsweredBy"] == "machine_end_beep"
    assert int(amd["MachineDetectionDuration"]) > 2400  # a greeting longer than the speech threshold
    assert "Dana Whitfield" in " ".join(box.heard)


# --- hangupOnStar, a call's own status on its Dial action, who is bridged with whom ---------------------------


def into_room(response: VoiceResponse, hangup_on_star: bool = False) -> VoiceResponse:
    """Append the <Dial> into conference "room" (every event reported) to `response`."""
    dial = Dial(action=f"{PUBLIC}/voice/after-conference", hangup_on_star=hangup_on_star or None)
    dial.conference("room", status_callback=f"{PUBLIC}/voice/conference-events", status_callback_event=EVENTS)
    response.append(dial)
    return response


def star_room(form: dict) -> VoiceResponse:
    """/voice/incoming: into conference "room" with <Dial hangupOnStar>."""
    return into_room(VoiceResponse(), hangup_on_star=True)


def test_star_takes_a_participant_whose_dial_allows_it_out_and_their_call_goes_on_to_the_action(serve):
    line = conference_line(**{"/voice/incoming": star_room})
    scene = specialist_joins(serve, line)
    phone, caller, sid, alice = scene.phone, scene.caller, scene.sid, scene.alice
    assert phone.press(alice.call_sid, "*") is False  # a REST-added participant has no <Dial>: keys do nothing
    assert phone.press(caller.sid, "5") is False
    assert phone.press(caller.sid, "*") is True
    assert caller.ended.wait(10)
    phone.settle()
    [action] = line.sent("/voice/after-conference")
    # https://www.twilio.com/docs/voice/twiml/dial#hanguponstar: "Twilio submits DialCallStatus=completed".
    assert action["DialCallStatus"] == "completed" and action["CallStatus"] == "in-progress"
    assert "Conference over: completed." in caller.record.heard()
    [leave] = events_of(line, "participant-leave")
    assert leave["CallSid"] == caller.sid and leave["ParticipantCallStatus"] == "in-progress"
    assert phone.conference("room").status == "in-progress"  # Alice is still in it
    end(phone, sid)


def test_a_specialist_ends_their_talk_with_star_when_their_dial_allows_it_and_hangs_up_otherwise():
    for route, pressed in ((star_room, True), (join(), False)):
        line = conference_line(**{"/voice/incoming": route})
        phone = phone_for(line)
        caller = phone.start_call_line(CALLER, ScriptedCaller(talk_seconds=FOREVER))
        wait_for(connected(phone, count=1))
        specialist = phone.call_line(ALICE, SpecialistPhone("Alice", talk_seconds=30))
        assert ("Alice: presses '*'" in specialist.text()) is pressed
        assert ("Alice: (hangs up)" in specialist.text()) is not pressed
        phone.settle()
        leave = next(e for e in events_of(line, "participant-leave") if e["CallSid"] == specialist.call_sid)
        assert leave["ParticipantCallStatus"] == ("in-progress" if pressed else "completed")
        phone.update_conference(phone.conference("room").sid, status="completed")
        assert caller.ended.wait(10)


def test_talk_time_runs_on_the_conferences_clock_and_each_party_notes_whom_they_can_hear(serve):
    def late_caller(form: dict) -> VoiceResponse:
        response = VoiceResponse()
        if form["From"] == CALLER:
            response.pause(length=150)  # the caller's leg comes with a clock far ahead of the specialist's
        return into_room(response)

    line = conference_line(**{"/voice/incoming": late_caller})
    phone = phone_for(line)
    network(phone, **{COORDINATOR: SpecialistPhone("Coordinator", talk_seconds=FOREVER)})
    fake, client = serve(phone)
    # The specialist waits alone; their 60 s of talk start when the conference does, on its clock.
    alice = phone.start_call_line(ALICE, SpecialistPhone("Alice", talk_seconds=60))
    wait_for(connected(phone, count=1))
    sid = phone.conference("room").sid
    client.conferences(sid).participants.create(from_=LINE, to=COORDINATOR, muted=True, label="listener",
                                                start_conference_on_enter=False)
    wait_for(connected(phone, count=2))
    caller = phone.start_call_line(CALLER, ScriptedCaller(talk_seconds=FOREVER))
    assert alice.ended.wait(10)
    started = caller.record.first_mark("specialist")
    assert started is not None and started >= 150
    assert alice.counted - started >= 55
    assert caller.record.bridged_with == [ALICE]  # the muted listener is heard by nobody
    assert alice.record.bridged_with == [CALLER] and "caller and Alice are connected" in caller.record.text()
    phone.update_conference(sid, status="completed")
    assert caller.ended.wait(10) and fake.wait_for_calls(10)
