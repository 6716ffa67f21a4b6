"""Program hours and long holds on the whole line: a closed line rings nobody, closing time and HOLD_MAX."""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import select

from tests.support import ALICE, CALLER, SHORT, whole_line
from voice import hours, tasks
from voice.line import routing
from voice.models import CallbackRequest, Specialist
from voice.simulator import ScriptedCaller

ZONE = ZoneInfo("America/New_York")
ANSWERS = ["Dana Whitfield", "400 West Third Street", "1", "Loud music every night"]


class HoldingCaller(ScriptedCaller):
    """Answers each question in turn; over the hold music presses `music_keys` in order (None: listens on)."""

    def __init__(self, inputs, music_keys=()):
        super().__init__(inputs)
        self.music_keys = list(music_keys)

    def respond(self, prompt, kinds):
        if not prompt.strip():
            return self.music_keys.pop(0) if self.music_keys else None
        return super().respond(prompt, kinds)


def busy(line, name: str) -> int:
    with line.app.app_context():
        specialist = line.app.extensions["db"].session().scalar(select(Specialist).where(Specialist.name == name))
        assert routing.claim_next_specialist(line.app.extensions["redis"], "en", "call:CAother", 600,
                                             only=specialist.id) == specialist.id
        return specialist.id


def the_request(line) -> CallbackRequest:
    with line.app.app_context():
        session = line.app.extensions["db"].session()
        request = session.scalar(select(CallbackRequest))
        request.call  # noqa: B018
        session.expunge_all()
        return request


def closed_today() -> dict:
    """Settings for a line open at every hour, except that today (in the program's zone) is a holiday."""
    today = datetime.now(ZONE).date()
    return {"OPEN_HOURS": "mon-sun 00:00-24:00", "HOLIDAYS": today.isoformat()}


def tomorrow_midnight_utc() -> datetime:
    tomorrow = datetime.now(ZONE).date() + timedelta(days=1)
    return datetime(tomorrow.year, tomorrow.month, tomorrow.day, tzinfo=ZONE).astimezone(ZoneInfo("UTC")).replace(
        tzinfo=None)


def test_a_closed_line_tells_the_hours_and_911_rings_nobody_and_calls_back_at_the_next_opening(redis_url,
                                                                                               database_url):
    with whole_line(redis_url, database_url, **closed_today()) as line:
        line.add_specialist("Alice Mediator", ALICE)  # on, but the line is closed

        record = line.phone.call_line(CALLER, ScriptedCaller(["2", *ANSWERS, "1"]))
        with line.app.app_context():
            tasks.dispatch_soon(line.app.extensions["redis"])
        line.settle()

        assert record.problems == []
        heard = record.heard()
        assert "is closed now" in heard and "For an emergency, hang up and call 9 1 1" in heard
        # Safety still came first: the greeting with the danger question was the first thing said.
        assert heard.index("Is anyone hurt") < heard.index("is closed now")
        request = the_request(line)
        assert request.status == "scheduled" and request.due_at == tomorrow_midnight_utc()
        assert request.reason == "line closed" and request.call.caller_name == "Dana Whitfield"
        assert line.fake.calls == []  # nobody was rung, live or for the callback


def test_closing_time_moves_everyone_holding_to_a_callback_at_the_next_opening(line):
    line.add_specialist("Alice Mediator", ALICE)
    busy(line, "Alice Mediator")
    caller = HoldingCaller([*SHORT, *ANSWERS, "1"])
    import threading

    records = []
    thread = threading.Thread(target=lambda: records.append(line.phone.call_line(CALLER, caller)))
    thread.start()
    line.wait_until_holding(1)
    # Closing time comes while they hold: the next wait document takes them out of the queue.
    config = line.app.config
    config["OPEN_HOURS"] = hours.parse_hours("mon-sun 00:00-24:00", config["TIMEZONE"],
                                             {datetime.now(ZONE).date()})
    thread.join(60)

    record = records[0]
    assert record.problems == []
    assert "We are closing for today." in record.heard()
    request = the_request(line)
    assert request.status == "scheduled" and request.due_at == tomorrow_midnight_utc()
    assert request.reason == "line closed while they held"
    assert request.arrived_at == request.call.started_at


def test_after_hold_max_minutes_the_caller_is_offered_a_callback_that_keeps_their_place(redis_url, database_url):
    with whole_line(redis_url, database_url, HOLD_MAX_MINUTES="1") as line:
        line.add_specialist("Alice Mediator", ALICE)
        busy(line, "Alice Mediator")
        # Silent through the questions, listens to two pieces of music (30 s each), then presses 2.
        caller = HoldingCaller([*SHORT, None, None, None, None, "1"], music_keys=[None, None, "2"])

        record = line.phone.call_line(CALLER, caller)

        assert record.problems == []
        heard = record.heard()
        assert "Sorry for the wait. To keep your place and get a call back, press 2." in heard
        assert heard.index("Sorry for the wait") < heard.index("will call you back")
        assert the_request(line).reason == "caller asked to be called back"


def test_a_caller_whose_rung_specialists_did_not_take_them_then_hears_their_place(line):
    # Phones ring in (scaled) real time: Alice's rings on, unanswered, while the caller hears "Connecting".
    line.phone.time_scale = 0.01
    line.add_specialist("Alice Mediator", ALICE, answers=False)
    # Hears "Connecting", listens to the music, then (nobody took them) the place in line and the questions;
    # silent through them, and presses 2 over the next music.
    caller = HoldingCaller([*SHORT, None, None, None, None, "1"], music_keys=[None, "2"])

    record = line.phone.call_line(CALLER, caller)
    line.settle()

    assert record.problems == []
    heard = record.heard()
    assert heard.index("Connecting you with a specialist.") < heard.index("All our specialists are busy.")
    assert heard.index("All our specialists are busy.") < heard.index("Please say your first and last name.")
    assert "For a call back instead, press 2 at any time." in heard
