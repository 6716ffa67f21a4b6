"""A held caller hears their wait as a person would say it: "about a minute", never "about 1 minutes"."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select

from tests.support import ALICE, SHORT, whole_line
from voice.clock import utcnow
from voice.line import routing
from voice.models import Call, Specialist
from voice.script import MESSAGES, wait_words
from voice.simulator import ScriptedCaller


@pytest.mark.parametrize(("minutes", "language", "said"), [
    (1, "en", "about a minute"), (5, "en", "about 5 minutes"),
    (1, "es", "alrededor de un minuto"), (15, "es", "unos 15 minutos"),
])
def test_minutes_are_said_as_a_person_would(minutes, language, said):
    assert wait_words(minutes, language) == said
    assert said in MESSAGES["busy"][language].format(position=1, wait=said)


@pytest.mark.parametrize(("language", "keys", "heard"), [
    ("en", SHORT, "The wait is about a minute."),
    ("es", ["9", "2", "1"], "La espera es de alrededor de un minuto."),
])
def test_a_held_caller_with_a_short_wait_hears_about_a_minute(redis_url, database_url, language, keys, heard):
    with whole_line(redis_url, database_url) as line:
        line.add_specialist("Alice Mediator", ALICE, languages=("en", "es"))
        with line.app.app_context():
            db = line.app.extensions["db"].session()
            # Lately every conversation took forty seconds, and Alice is on one now.
            for n in range(3):
                ended = utcnow() - timedelta(hours=n + 1)
                db.add(Call(call_sid=f"CAdone{n}", from_number="+19375550150", outcome="bridged", started_at=ended
                            - timedelta(minutes=2), connected_at=ended - timedelta(seconds=40), ended_at=ended))
            db.commit()
            alice = db.scalar(select(Specialist).where(Specialist.phone == ALICE))
            assert routing.claim_next_specialist(line.app.extensions["redis"], language, "call:CAother", 600,
                                                 only=alice.id) == alice.id
        record = line.phone.call_line("+19375550123", ScriptedCaller([*keys, "0"]))
        assert heard in record.heard()
        assert "1 minutes" not in record.heard() and "1 minutos" not in record.heard()
