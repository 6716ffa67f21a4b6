"""Spoken answers: a caller who pauses mid-address is not cut off, and the <Gather> for a name, a place or a
description carries a numeric speech timeout, Twilio's speech model and the city's street names as hints."""

from __future__ import annotations

import pytest
from defusedxml.ElementTree import fromstring

from tests.support import CALLER, LINE, fresh_app, load_call, settings, whole_line
from voice.config import ConfigError, load_settings
from voice.line import calls, questions
from voice.simulator import ScriptedCaller
from voice.simulator.legs import CallRecord
from voice.simulator.phone import SimulatedPhone

STREETS = "Salem Avenue, Wayne Avenue, Smithville Road"
# Nobody on: safe, noise, then the callback questions; the place comes with a pause in the middle.
HESITANT = ["2", "1", "Dana Whitfield", "twelve hundred ... Salem Avenue", "1", "Loud music ... every night", "1"]


def gather(xml: str):
    return fromstring(xml.encode()).find("Gather")


@pytest.fixture
def hinted_app(redis_url, database_url):
    with fresh_app(settings(redis_url, database_url, STREET_HINTS=STREETS)) as app:
        yield app


def test_a_caller_who_pauses_mid_address_is_heard_to_the_end(redis_url, database_url):
    with whole_line(redis_url, database_url) as line:
        record = line.phone.call_line(CALLER, ScriptedCaller(HESITANT))
        line.settle()
        assert record.problems == []
        call = load_call(line.app, record.call_sid)
        assert call.location == "twelve hundred Salem Avenue"
        assert call.description == "Loud music every night"
        assert "speech cut off" not in record.text()


def test_free_text_questions_wait_for_a_pause_and_carry_the_model_and_the_citys_streets(hinted_app):
    with hinted_app.app_context():
        db = hinted_app.extensions["db"].session()
        call = calls.start_call(db, "CA" + "7" * 32, CALLER, LINE)
        place = gather(str(questions.ask(call, "location", 1)))
        name = gather(str(questions.ask(call, "name", 1)))
        safety = gather(str(questions.ask(call, "safety", 1)))
        db.rollback()
    assert (place.get("speechTimeout"), place.get("speechModel"), place.get("enhanced")) == ("2", "phone_call", "true")
    assert place.get("hints") == STREETS
    assert (name.get("speechTimeout"), name.get("speechModel"), name.get("hints")) == ("2", "phone_call", None)
    # A yes or no still ends at the first pause, with no model (Twilio refuses auto with one: 13335).
    assert (safety.get("speechTimeout"), safety.get("speechModel"), safety.get("hints")) == ("auto", None, "yes, no")


def test_the_pause_is_a_setting_and_a_bad_one_stops_start_up_naming_it():
    base = {"TWILIO_ACCOUNT_SID": "AC1", "TWILIO_AUTH_TOKEN": "t", "TWILIO_PHONE_NUMBER": LINE,
            "DISPATCH_TRANSFER_NUMBER": "+19375550911", "PUBLIC_BASE_URL": "http://localhost", "SECRET_KEY": "s"}
    assert load_settings({**base, "SPEECH_PAUSE_SECONDS": "3"})["SPEECH_PAUSE_SECONDS"] == 3
    for name, value, words in [("SPEECH_PAUSE_SECONDS", "9", "at most 5"), ("SPEECH_MODEL", "best", "one of"),
                               ("STREET_HINTS", "x" * 101, "longer than 100")]:
        with pytest.raises(ConfigError, match=f"setting {name} .*{words}"):
            load_settings({**base, name: value})


def element(tag: str, **attributes: str):
    return fromstring(f"<{tag} {' '.join(f'{k}={v!r}' for k, v in attributes.items())}/>".encode())


@pytest.mark.parametrize(("speech_timeout", "heard"), [
    ("auto", "twelve hundred"),  # Twilio's automatic end-of-speech stops at the first pause
    ("1", "twelve hundred"),  # shorter than the pause
    ("2", "twelve hundred Salem Avenue"),
    (None, "twelve hundred Salem Avenue"),  # unset: the Gather's timeout (5 s)
])
def test_the_simulator_cuts_a_spoken_answer_at_a_pause_longer_than_the_speech_timeout(speech_timeout, heard):
    attributes = {"input": "speech"} | ({"speechTimeout": speech_timeout} if speech_timeout else {})
    said, seconds = SimulatedPhone._recognised(element("Gather", **attributes), "twelve hundred ... Salem Avenue")
    assert said == heard
    assert seconds > 0


def test_the_simulator_reports_auto_with_a_speech_model_and_refuses_unknown_input_in_a_wait_url():
    record = CallRecord("CA1")
    SimulatedPhone._check_gather(record, element("Gather", input="speech", speechModel="phone_call",
                                                 speechTimeout="auto"), "https://x/y", "call")
    assert record.problems and "13335" in record.problems[0]
    SimulatedPhone._check_gather(record, element("Gather", input="dtmf speech"), "https://x/wait", "wait")
    with pytest.raises(Exception, match="waitUrl"):
        SimulatedPhone._check_gather(record, element("Gather", input="voice"), "https://x/wait", "wait")
