"""The line never dials or texts a number outside its calling policy, however the number reached it."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from tests.test_callbacks import ALICE, request_row, text_on, twilio, work  # noqa: F401 (fixtures)
from tests.test_callbacks import app  # noqa: F401 (the callbacks app fixture: REST retries do not wait)
from voice.models import Call, CallbackRequest
from voice.simulator import ScriptedCaller

CALLER = "+19375550123"
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

    assert twilio.placed == [] and twilio.texts == []
    row = request_row(app)
    assert row.status == "unreachable" and "outside the numbers this line may call" in row.reason
