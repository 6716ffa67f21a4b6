"""The fake REST API's Conference and Participant resources, at the paths twilio-python calls.

https://www.twilio.com/docs/voice/api/conference-resource and
https://www.twilio.com/docs/voice/api/conference-participant-resource; parameters as in Twilio's OpenAPI
description (twilio/twilio-oai, twilio_api_v2010). Participants create takes a ConferenceSid or a FriendlyName
and places an outbound call (at the account's calls per second) that joins the conference when answered.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from flask import Flask, Response, request

from voice.simulator.amd import AmdSettings
from voice.simulator.conferences import (
    BEEPS,
    DEFAULT_MUSIC,
    EVENTS,
    MAX_PARTICIPANTS,
    REST_DEFAULT_EVENTS,
    Conference,
    ConferenceError,
    ConferenceJoin,
    Participant,
)
from voice.simulator.rest_answers import (
    API,
    API_VERSION,
    CALL_EVENTS,
    absolute_url,
    error_answer,
    events,
    flag,
    json_answer,
    not_found,
    page,
)
from voice.simulator.timing import rfc2822

if TYPE_CHECKING:  # the fake imports this module to add its routes
    from voice.simulator.fake_twilio import FakeTwilio

PARTICIPANT_UPDATES = {"Muted", "Hold", "HoldUrl", "HoldMethod", "AnnounceUrl", "AnnounceMethod", "WaitUrl",
                       "WaitMethod", "BeepOnExit", "EndConferenceOnExit", "Coaching", "CallSidToCoach"}


class BadRequest(ValueError):
    """A parameter Twilio would refuse: its error code and message."""

    def __init__(self, code: int, message: str):
        super().__init__(message)
        self.code = code


def add_conference_routes(app: Flask, fake: FakeTwilio) -> None:
    """Answer the Conferences and Participants paths on `app` with `fake`'s phone (read when asked: a test may
    give the fake its phone after building it)."""

    def conference_json(conference: Conference) -> dict:
        base = f"/{API_VERSION}/Accounts/{fake.account_sid}/Conferences/{conference.sid}"
        return {"sid": conference.sid, "account_sid": fake.account_sid, "friendly_name": conference.name,
                "status": conference.status, "region": "us1", "api_version": API_VERSION,
                "date_created": rfc2822(conference.created_at), "date_updated": rfc2822(conference.updated_at),
                "reason_conference_ended": conference.reason_ended,
                "call_sid_ending_conference": conference.call_sid_ending, "uri": f"{base}.json",
                "subresource_uris": {"participants": f"{base}/Participants.json",
                                     "recordings": f"{base}/Recordings.json"}}

    def participant_json(participant: Participant, queue_time: bool = False) -> dict:
        conference = participant.conference
        return {"account_sid": fake.account_sid, "call_sid": participant.leg.sid, "label": participant.label,
                "call_sid_to_coach": participant.call_sid_to_coach, "coaching": participant.coaching,
                "conference_sid": conference.sid, "date_created": rfc2822(participant.date_created),
                "date_updated": rfc2822(participant.date_updated), "end_conference_on_exit": participant.end_on_exit,
                "muted": participant.muted, "hold": participant.hold,
                "start_conference_on_enter": participant.start_on_enter, "status": participant.status,
                # "Only available in the response to a create participant request."
                "queue_time": str(participant.leg.queue_time_ms) if queue_time else None,
                "uri": f"/{API_VERSION}/Accounts/{fake.account_sid}/Conferences/{conference.sid}/Participants/"
                       f"{participant.leg.sid}.json"}

    def refused(error: ConferenceError) -> Response:
        return error_answer(error.status, error.code, str(error))

    @app.get(f"{API}/Conferences.json")
    def list_conferences(account):
        args = request.args
        found = [conference_json(c) for c in reversed(list(fake.phone.conferences))
                 if args.get("FriendlyName") in (None, c.name) and args.get("Status") in (None, c.status)]
        return page("conferences", found[:int(args.get("PageSize") or 50)])

    @app.get(f"{API}/Conferences/<sid>.json")
    def fetch_conference(account, sid):
        conference = fake.phone.find_conference(sid)
        return json_answer(conference_json(conference)) if conference else not_found()

    @app.post(f"{API}/Conferences/<sid>.json")
    def update_conference(account, sid):
        form = request.form
        unknown = set(form) - {"Status", "AnnounceUrl", "AnnounceMethod"}
        if unknown:
            return error_answer(400, 20001, f"Unknown parameters: {', '.join(sorted(unknown))}")
        if form.get("Status") not in (None, "completed"):
            return error_answer(400, 20001, f"Status must be completed, not {form['Status']}")
        if form.get("AnnounceUrl") and not absolute_url(form["AnnounceUrl"]):
            return error_answer(400, 21205, f"AnnounceUrl is not a valid URL: {form['AnnounceUrl']}")
        if (form.get("AnnounceMethod") or "POST").upper() != "POST":
            fake.problems.append(f"unsupported: the simulator only requests with POST (AnnounceMethod at {sid})")
        try:
            conference = fake.phone.update_conference(sid, status=form.get("Status"), announce_url=form.get("AnnounceUrl"))
        except ConferenceError as error:
            return refused(error)
        return json_answer(conference_json(conference))

    @app.post(f"{API}/Conferences/<key>/Participants.json")
    def create_participant(account, key):
        form = request.form
        to, from_ = form.get("To", ""), form.get("From", "")
        wrong = fake.refuse_numbers(to, from_)
        if wrong is not None:
            return wrong
        try:
            settings, conference_settings, amd, status_events, timeout = participant_request(form)
        except BadRequest as error:
            return error_answer(400, error.code, str(error))
        call = fake.new_call(to, from_, form.get("StatusCallback"), timeout=timeout, status_events=status_events,
                             amd=amd)
        leg = fake.phone.place_call(to, from_, call.sid)
        try:
            participant = fake.phone.add_participant(key, leg, settings, conference_settings)
        except ConferenceError as error:
            fake.phone.forget_call(call.sid)
            return refused(error)
        call.target = ConferenceJoin(participant)
        fake.launch(call)
        return json_answer(participant_json(participant, queue_time=True), 201)

    @app.get(f"{API}/Conferences/<sid>/Participants.json")
    def list_participants(account, sid):
        conference = fake.phone.find_conference(sid)
        if conference is None:
            return not_found()
        args = request.args
        wanted = {name: args[key].lower() == "true" for key, name in
                  (("Muted", "muted"), ("Hold", "hold"), ("Coaching", "coaching")) if key in args}
        found = [participant_json(p) for p in list(conference.participants)
                 if all(getattr(p, name) == value for name, value in wanted.items())]
        return page("participants", found[:int(args.get("PageSize") or 50)])

    @app.get(f"{API}/Conferences/<sid>/Participants/<key>.json")
    def fetch_participant(account, sid, key):
        try:
            return json_answer(participant_json(fake.phone.participant(sid, key)))
        except ConferenceError as error:
            return refused(error)

    @app.post(f"{API}/Conferences/<sid>/Participants/<key>.json")
    def update_participant(account, sid, key):
        form = request.form
        unknown = set(form) - PARTICIPANT_UPDATES
        if unknown:
            return error_answer(400, 20001, f"Unknown parameters: {', '.join(sorted(unknown))}")
        try:
            current = fake.phone.participant(sid, key)
            changes = participant_changes(form, current)
        except ConferenceError as error:
            return refused(error)
        except BadRequest as error:
            return error_answer(400, error.code, str(error))
        if form.get("Hold") == "true" and form.get("HoldUrl") and (form.get("HoldMethod") or "GET").upper() != "POST":
            # HoldMethod defaults to GET; the simulator only ever POSTs, and says so.
            current.leg.record.problem(f"unsupported: the simulator only requests with POST (HoldMethod "
                                       f"{form.get('HoldMethod') or 'GET, the default'} for {form['HoldUrl']})")
        try:
            participant = fake.phone.update_participant(sid, key, changes)
        except ConferenceError as error:
            return refused(error)
        return json_answer(participant_json(participant))

    @app.delete(f"{API}/Conferences/<sid>/Participants/<key>.json")
    def delete_participant(account, sid, key):
        try:
            fake.phone.remove_participant(sid, key)
        except ConferenceError as error:
            return refused(error)
        return Response(status=204)


def participant_request(form) -> tuple[dict, dict, AmdSettings | None, set[str], float]:
    """Participants create's parameters: (participant settings, conference settings, AMD, call events, Timeout)."""
    try:
        beep = form.get("Beep") or "true"
        if beep not in BEEPS:
            raise BadRequest(20001, f"Beep must be true, false, onEnter or onExit, not {beep}")
        for name in ("StatusCallback", "ConferenceStatusCallback", "WaitUrl", "AmdStatusCallback"):
            if form.get(name) and not absolute_url(form[name]):
                raise BadRequest(21205, f"{name} is not a valid URL: {form[name]}")
        for name in ("WaitMethod", "ConferenceStatusCallbackMethod", "StatusCallbackMethod"):
            if (form.get(name) or "POST").upper() != "POST":
                raise BadRequest(20001, f"the simulator only requests with POST, not {name}={form[name]}")
        coach = form.get("CallSidToCoach")
        coaching = flag(form.get("Coaching"), "Coaching")
        if coaching and not coach:
            raise BadRequest(20001, "CallSidToCoach is required when Coaching is true")
        label = form.get("Label")
        if label is not None and len(label) > 128:
            raise BadRequest(20001, "Label is longer than 128 characters")
        timeout = float(form.get("Timeout") or 60)
        if not 5 <= timeout <= 600:
            raise BadRequest(20001, f"Timeout must be 5 to 600, not {form['Timeout']}")
        max_participants = int(form.get("MaxParticipants") or MAX_PARTICIPANTS)
        if not 2 <= max_participants <= MAX_PARTICIPANTS:
            raise BadRequest(20001, f"MaxParticipants must be 2 to {MAX_PARTICIPANTS}, not {max_participants}")
        conference_events = events(form, "ConferenceStatusCallbackEvent") or REST_DEFAULT_EVENTS
        call_events = events(form, "StatusCallbackEvent") or {"completed"}
        if conference_events - EVENTS or call_events - CALL_EVENTS:
            raise BadRequest(20001, f"Unknown events: {sorted((conference_events - EVENTS) | (call_events - CALL_EVENTS))}")
        wait_url = form.get("WaitUrl")
        settings = {
            "label": label,
            "muted": bool(flag(form.get("Muted"), "Muted")),
            "beep": beep,
            "start_on_enter": flag(form.get("StartConferenceOnEnter"), "StartConferenceOnEnter") is not False,
            "end_on_exit": bool(flag(form.get("EndConferenceOnExit"), "EndConferenceOnExit")),
            "wait_url": DEFAULT_MUSIC if wait_url is None else wait_url,
            # "defaults to false unless call_sid_to_coach is defined"
            "coaching": bool(coach) if coaching is None else coaching,
            "call_sid_to_coach": coach or None,
        }
        flag(form.get("EarlyMedia"), "EarlyMedia")  # accepted: the simulator has no ringback for the agent to hear
        conference_settings = {"status_callback": form.get("ConferenceStatusCallback") or None,
                               "events": conference_events, "max_participants": max_participants}
        # AMD on the Participants API is asynchronous; results go to AmdStatusCallback.
        amd = AmdSettings.from_form(form, asynchronous=True, callback_field="AmdStatusCallback")
    except BadRequest:
        raise
    except ValueError as error:
        raise BadRequest(20001, str(error)) from None
    return settings, conference_settings, amd, call_events, timeout


def participant_changes(form, participant: Participant) -> dict:
    """Participants update's parameters as changes for the phone; BadRequest if Twilio would refuse them."""
    changes: dict = {}
    try:
        if "Muted" in form:
            # "Anything value other than true or false is interpreted as false."
            changes["muted"] = form["Muted"].lower() == "true"
        if "Hold" in form:
            changes["hold"] = flag(form["Hold"], "Hold")
        for name, key in (("HoldUrl", "hold_url"), ("AnnounceUrl", "announce_url"), ("WaitUrl", "wait_url")):
            if form.get(name):
                if not absolute_url(form[name]):
                    raise BadRequest(21205, f"{name} is not a valid URL: {form[name]}")
                changes[key] = form[name]
        if (form.get("AnnounceMethod") or "POST").upper() != "POST" or (form.get("WaitMethod") or "POST").upper() != "POST":
            raise BadRequest(20001, "the simulator only requests with POST (AnnounceMethod, WaitMethod)")
        if "EndConferenceOnExit" in form:
            changes["end_on_exit"] = flag(form["EndConferenceOnExit"], "EndConferenceOnExit")
        if "BeepOnExit" in form:
            on_enter = participant.beep in ("true", "onEnter")
            on_exit = flag(form["BeepOnExit"], "BeepOnExit")
            changes["beep"] = {(True, True): "true", (True, False): "onEnter", (False, True): "onExit",
                               (False, False): "false"}[(on_enter, on_exit)]
        if "Coaching" in form:
            changes["coaching"] = flag(form["Coaching"], "Coaching")
        if form.get("CallSidToCoach"):
            changes["call_sid_to_coach"] = form["CallSidToCoach"]
    except BadRequest:
        raise
    except ValueError as error:
        raise BadRequest(20001, str(error)) from None
    return changes
