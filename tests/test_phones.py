"""The toll-fraud policy: the line dials ordinary landlines and mobiles in the allowed regions only."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from voice import phones
from voice.models import Specialist
from voice.phones import Refusal, callable_number, check_callable

US = ("US",)


@pytest.mark.parametrize(("raw", "refusal", "region"), [
    ("011 44 20 7183 8750", Refusal.COUNTRY, "GB"),    # London, keyed with the US international prefix
    ("+44 20 7183 8750", Refusal.COUNTRY, "GB"),
    ("1 900 555 0199", Refusal.KIND, "US"),            # US premium rate
    ("876 555 0123", Refusal.COUNTRY, "JM"),           # Jamaica: +1, but billed internationally
    ("1 800 555 0123", Refusal.KIND, "US"),            # toll free
    ("500 555 0006", Refusal.KIND, "US"),              # personal number
])
def test_toll_fraud_numbers_are_refused(raw, refusal, region):
    check = check_callable(raw, "US", US)
    assert check.number is None and not check.callable
    assert (check.refusal, check.region) == (refusal, region)
    assert check.reason()
    assert callable_number(raw, "US", US) is None


@pytest.mark.parametrize(("raw", "e164"), [
    ("(937) 555-0142", "+19375550142"),                # the 555-01xx numbers the whole suite uses
    ("937-555-0201", "+19375550201"),
    ("+1 937 555 0999", "+19375550999"),
    ("212 736 5000", "+12127365000"),                  # a New York landline
    ("(202) 456-1414", "+12024561414"),
    ("+1 415 555 2671", "+14155552671"),
])
def test_ordinary_us_numbers_are_accepted(raw, e164):
    check = check_callable(raw, "US", US)
    assert check.callable and check.number == e164 and check.reason() == ""
    assert callable_number(raw, "US", US) == e164


def test_a_canadian_number_needs_canada_allowed():
    toronto = "416 555 0123"
    assert check_callable(toronto, "US", US).refusal is Refusal.COUNTRY
    assert "(CA)" in check_callable(toronto, "US", US).reason()
    assert callable_number(toronto, "US", ["US", "CA"]) == "+14165550123"
    assert callable_number(toronto, "US", ["us", "ca"]) == "+14165550123"
    assert callable_number(toronto, "US", "US, CA") == "+14165550123"


def test_a_mobile_abroad_is_accepted_when_its_country_is_allowed():
    assert callable_number("07400 123456", "GB", ["GB"]) == "+447400123456"
    assert callable_number("+44 20 7183 8750", "US", ["US", "GB"]) == "+442071838750"


@pytest.mark.parametrize("raw", [None, "", "hello", "555", "123", "+1 937 555", "9" * 200, "+1 (000) 555-0100"])
def test_garbage_is_refused(raw):
    check = check_callable(raw, "US", US)
    assert check.number is None and check.refusal is Refusal.NOT_A_NUMBER


def test_caller_ids_are_still_read_without_the_policy():
    assert phones.to_e164("+18765550123", "US") == "+18765550123"
    assert phones.to_e164("+442071838750", "US") == "+442071838750"


def test_the_cli_refuses_a_premium_number_for_the_roster(app, runner):
    result = runner.invoke(args=["specialist", "add", "--name", "Mallory", "--phone", "1 900 555 0199"])
    assert result.exit_code != 0
    assert "'1 900 555 0199' is not an ordinary landline or mobile number" in result.output
    result = runner.invoke(args=["specialist", "add", "--name", "Mallory", "--phone", "876 555 0123"])
    assert result.exit_code != 0
    assert "does not call (JM)" in result.output
    with app.app_context():
        assert app.extensions["db"].session().scalars(select(Specialist)).all() == []


def test_the_cli_takes_an_ordinary_roster_number(runner):
    result = runner.invoke(args=["specialist", "add", "--name", "Ana Ruiz", "--phone", "(937) 555-0142"])
    assert result.exit_code == 0, result.output
    assert "+19375550142" in result.output
