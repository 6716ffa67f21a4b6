"""Caller IDs that are not callers: withheld numbers, the 911 center's trunk, the line's own numbers. None of them
links a case, counts as a repeat call, is read back or dialed as a callback number, or gets a text."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select

from tests.support import CALLER, DISPATCH, LINE, fresh_app, load_call, settings, whole_line
from voice import phones
from voice.casework import cases
from voice.clock import utcnow
from voice.line import callbacks, calls, offers
from voice.models import Call, CallbackRequest
from voice.simulator import WITHHELD_CALLER_IDS, ScriptedCaller

PSAP_TRUNK = "+19375550900"
PSAP_MAIN = "+19375550901"
HANDOFF = "+19375550102"
PUBLIC_LINE = "+19375550103"
NOT_CALLERS = {"PSAP_NUMBERS": f"{PSAP_TRUNK},{PSAP_MAIN}", "HANDOFF_NUMBER": HANDOFF,
               "PUBLIC_LINE_NUMBERS": PUBLIC_LINE}
# Nobody on: safe, landlord; name and place; then three silences where a number is asked for, a few words, as soon
# as possible. The caller must be asked to key a number and never hear one suggested.
SILENT_AT_THE_NUMBER = ["2", "6", "Dana Whitfield", "400 West Third Street", None, None, None,
                        "The landlord shut off the heat", "1"]


@pytest.fixture
def app(redis_url, database_url):
    """The app with the 911 center's, the handoff and the public numbers set (conftest's `db` builds on it)."""
    with fresh_app(settings(redis_url, database_url, **NOT_CALLERS)) as app:
        yield app


@pytest.mark.parametrize("number", [*WITHHELD_CALLER_IDS.values(), "anonymous", "Restricted", "", None, LINE,
                                    DISPATCH, PSAP_TRUNK, PSAP_MAIN, HANDOFF, PUBLIC_LINE, "+1937555"])
def test_withheld_ids_and_the_lines_dispatchs_and_911_centers_numbers_are_never_a_caller(app, number):
    assert phones.is_caller_number(number, app.config) is False


def test_an_ordinary_caller_id_is_a_caller_and_forwarded_from_never_is(app):
    config = app.config
    assert phones.is_caller_number(CALLER, config) is True
    assert phones.caller_number(CALLER, None, config) == CALLER
    # A transfer that shows the forwarder as the caller: that is the forwarder's number, not the caller's.
    assert phones.caller_number("+19375550177", "+19375550177", config) is None
    assert phones.caller_number(CALLER, "+19375550177", config) == CALLER


def call_from(db, sid: str, number: str, forwarded_from: str | None = None, days_ago: float = 0) -> Call:
    call = calls.start_call(db, sid, number, LINE, forwarded_from)
    call.started_at = utcnow() - timedelta(days=days_ago)
    call.category = "noise"
    db.commit()
    return call


@pytest.mark.parametrize("number", [WITHHELD_CALLER_IDS["anonymous"], WITHHELD_CALLER_IDS["restricted"], PSAP_TRUNK])
def test_strangers_behind_one_withheld_or_trunk_number_get_a_case_each_and_no_repeat_caller_whisper(db, number):
    first = call_from(db, "CA1", number, days_ago=2)
    second = call_from(db, "CA2", number, days_ago=1)
    third = call_from(db, "CA3", number)
    assert len({first.case_id, second.case_id, third.case_id}) == 3
    assert offers.repeat_calls(db, third) == 0
    assert offers.offer_summary(db, third, language_said=False) == "Noise call, in English. Press 1 to take it."


def test_a_caller_id_that_is_the_forwarder_links_nothing(db):
    first = call_from(db, "CA1", "+19375550177", forwarded_from="+19375550177", days_ago=1)
    second = call_from(db, "CA2", "+19375550177", forwarded_from="+19375550177")
    assert first.case_id != second.case_id and first.forwarded_from == "+19375550177"


def test_a_follow_up_is_never_set_to_a_withheld_number(db):
    call = call_from(db, "CA1", WITHHELD_CALLER_IDS["anonymous"])
    case = cases.resolve(db, db.get(cases.Case, call.case_id))
    with pytest.raises(callbacks.FollowUpError, match="no number"):
        callbacks.queue_follow_up(db, case, utcnow() + timedelta(days=7), None, "America/New_York")


@pytest.mark.parametrize(("caller_id", "forwarded_from"), [
    (WITHHELD_CALLER_IDS["anonymous"], None),
    (WITHHELD_CALLER_IDS["unavailable"], None),
    (PSAP_TRUNK, PSAP_MAIN),
    ("+19375550177", "+19375550177"),
])
def test_with_no_caller_number_the_caller_is_asked_to_key_one_and_none_is_suggested_dialed_or_texted(
        redis_url, database_url, caller_id, forwarded_from):
    with whole_line(redis_url, database_url, **NOT_CALLERS) as line:
        record = line.phone.call_line(caller_id, ScriptedCaller(SILENT_AT_THE_NUMBER), forwarded_from=forwarded_from)
        line.settle()
        assert record.problems == []
        heard = record.heard()
        assert "Please enter the best phone number to reach you" in heard
        assert "If we need to call you back, we will call" not in heard
        # No digits of the number it came from are ever read back.
        assert phones.spoken(caller_id, "US").split(",")[0] not in heard
        assert "could not get a number to call you back" in heard  # a message instead, and a person follows up
        call = load_call(line.app, record.call_sid)
        assert call.callback_number is None and call.case_id is not None
        assert line.fake.texts == [] and line.fake.calls == []
        with line.app.app_context():
            request = line.app.extensions["db"].session().scalar(select(CallbackRequest))
            assert request.callback_number is None


def test_keying_the_lines_own_number_or_the_911_centers_is_refused_and_a_real_one_taken(redis_url, database_url):
    inputs = ["2", "6", "Dana Whitfield", "400 West Third Street", "9375550100#", "9375550900#", "9375550123#",
              "The landlord shut off the heat", "1"]
    with whole_line(redis_url, database_url, **NOT_CALLERS) as line:
        line.phone.network[CALLER] = ScriptedCaller(label="caller at home")
        record = line.phone.call_line(WITHHELD_CALLER_IDS["anonymous"], ScriptedCaller(inputs))
        line.settle()
        assert record.problems == []
        assert load_call(line.app, record.call_sid).callback_number == CALLER
        assert [text["to"] for text in line.fake.texts] == [CALLER]


def test_a_forwarded_callers_own_number_is_read_back_and_the_forwarder_kept_on_the_call(redis_url, database_url):
    inputs = ["2", "6", "Dana Whitfield", "400 West Third Street", "1", "The landlord shut off the heat", "1"]
    with whole_line(redis_url, database_url, **NOT_CALLERS) as line:
        record = line.phone.call_line(CALLER, ScriptedCaller(inputs), forwarded_from=PSAP_MAIN)
        line.settle()
        assert "we will call 9 3 7, 5 5 5, 0 1 2 3" in record.heard()
        call = load_call(line.app, record.call_sid)
        assert call.callback_number == CALLER and call.forwarded_from == PSAP_MAIN
        started = next(e for e in call.events if e.kind == "call_started")
        assert PSAP_MAIN in started.detail
