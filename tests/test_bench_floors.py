"""The benchmark's durable floor does what it stands for: a claimed, committed write per request, repeats replayed."""

from __future__ import annotations

import sys
from pathlib import Path

from sqlalchemy import func, select
from twilio.request_validator import RequestValidator

from tests.support import AUTH_TOKEN, PUBLIC
from voice.db import make_engine

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "scripts"))

import floor_app  # noqa: E402


def test_the_durable_floor_writes_each_request_once_and_replays_a_repeat(redis_url, tmp_path, monkeypatch):
    database_url = f"sqlite:///{tmp_path / 'floor.db'}"
    for name, value in {"PUBLIC_BASE_URL": PUBLIC, "TWILIO_AUTH_TOKEN": AUTH_TOKEN, "REDIS_URL": redis_url,
                        "DATABASE_URL": database_url}.items():
        monkeypatch.setenv(name, value)
    floor_app.prepare_durable(redis_url, database_url)
    engine = make_engine(database_url)
    try:
        client = floor_app.create_app(durable=True).test_client()
        validator = RequestValidator(AUTH_TOKEN)

        def post(path: str, params: dict, signature: str | None = None):
            signature = signature or validator.compute_signature(PUBLIC + path, params)
            response = client.post(path, data=params, headers={"X-Twilio-Signature": signature})
            response.close()  # as a server does once it has sent the answer: the answer is kept then
            return response

        first = post("/voice/intake/name", {"CallSid": "CA1", "SpeechResult": "Dana"})
        repeat = post("/voice/intake/name", {"CallSid": "CA1", "SpeechResult": "Dana"})
        post("/voice/intake/location", {"CallSid": "CA1", "SpeechResult": "Main Street"})
        unsigned = post("/voice/intake/window", {"CallSid": "CA1", "Digits": "1"}, signature="forged")

        assert first.status_code == repeat.status_code == 200
        assert repeat.get_data() == first.get_data() and b"<Gather" in first.get_data()
        assert unsigned.status_code == 403
        with engine.connect() as connection:
            row = connection.execute(select(floor_app.calls.c.step, floor_app.calls.c.answers)).one()
            events = connection.scalar(select(func.count()).select_from(floor_app.events))
        # The repeat wrote nothing; the forged request never got in.
        assert tuple(row) == ("voice/intake/location", 2)
        assert events == 2
    finally:
        floor_app.prepare_durable(redis_url, database_url, drop=True)
        engine.dispose()
