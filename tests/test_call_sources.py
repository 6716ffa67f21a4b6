"""Where a call came from is on its row from its first request: the number it called tells them apart."""

from __future__ import annotations

import pytest

from tests.support import CALLER, LINE, fresh_app, settings
from voice.line import calls

HANDOFF = "+19375550999"
PUBLIC_LINE = "+19375550444"


@pytest.fixture
def app(redis_url, database_url):
    with fresh_app(settings(redis_url, database_url, HANDOFF_NUMBER=HANDOFF, PUBLIC_LINE_NUMBERS=PUBLIC_LINE)) as app:
        yield app


@pytest.mark.parametrize(("called", "source"), [(LINE, "911"), (HANDOFF, "handoff"), (PUBLIC_LINE, "public"),
                                                ("(937) 555-0444", "public")])
def test_the_number_called_names_the_calls_source(db, called, source):
    call = calls.start_call(db, "CA" + "5" * 32, CALLER, called)
    db.commit()
    assert call.source == source


def test_a_bad_source_number_stops_start_up_naming_it(redis_url, database_url, capsys):
    with pytest.raises(SystemExit), fresh_app(settings(redis_url, database_url, PUBLIC_LINE_NUMBERS="+1937555, 12")):
        pass
    assert "setting PUBLIC_LINE_NUMBERS is not a phone number" in capsys.readouterr().err
