"""Call ends that never reached us: the sweep asks Twilio (the fake REST API) and frees the specialists.

The whole line runs (the `line` fixture); a transport in front of the app loses the webhooks Twilio sent, as a
network or an outage of ours would, and the sweep runs as if a few minutes had passed.
"""

from __future__ import annotations

from datetime import timedelta
from urllib.parse import parse_qs, urlsplit

from sqlalchemy import select
from twilio.twiml.voice_response import VoiceResponse

from tests.support import ALICE, BRUNO, CALLER, INTAKE, SHORT, hold_row, kinds, leases, load_call
from voice import clock
from voice.models import CallbackRequest, Specialist
from voice.redisdb import Keys
from voice.simulator import ScriptedCaller
from workers import jobs


class LosingTransport:
    """Delivers the phone's requests to the app, except those to `paths` (for `specialist`, if given)."""

    def __init__(self, inner, *paths: str, specialist: int | None = None):
        self.inner = inner
        self.paths = set(paths)
        self.specialist = specialist
        self.lost: list[str] = []

    def post(self, url: str, data: dict, headers: dict) -> tuple[int, str, str]:
        parts = urlsplit(url)
        who = parse_qs(parts.query).get("specialist", [None])[0]
        if parts.path in self.paths and (self.specialist is None or who == str(self.specialist)):
            self.lost.append(parts.path)
            return 200, str(VoiceResponse()), "text/xml"  # Twilio sent it; we never saw it
        return self.inner.post(url, data, headers)


def sweep_later(line, monkeypatch, minutes: float = 3) -> dict:
    """Run the sweep as if `minutes` had passed (past RECONCILE_AFTER_SECONDS), then let the line settle."""
    moved = clock.utcnow() + timedelta(minutes=minutes)
    monkeypatch.setattr(clock, "now", lambda: moved)
    with line.app.app_context():
        summary = jobs.sweep()
        line.app.extensions["db"].session.remove()
    monkeypatch.undo()
    line.settle()
    return summary


def specialist_id(line, name: str) -> int:
    with line.app.app_context():
        return line.app.extensions["db"].session().scalar(select(Specialist.id).where(Specialist.name == name))


def test_a_bridged_call_whose_dial_result_and_status_callbacks_were_lost_frees_the_specialist(line, monkeypatch):
    line.add_specialist("Alice Mediator", ALICE)
    losing = LosingTransport(line.phone.transport, "/voice/offer/done", "/voice/offer/status", "/voice/status")
    line.phone.transport = losing

    record = line.phone.call_line(CALLER, ScriptedCaller(SHORT))
    line.settle()

    assert record.bridged_with == [ALICE]
    assert sorted(losing.lost) == ["/voice/offer/done", "/voice/offer/status", "/voice/status"]
    hold = hold_row(line.app, load_call(line.app, record.call_sid))
    # Nothing told the app the conversation is over: Alice is held (for hours, without the sweep).
    assert leases(line.app) == {"Alice Mediator": f"offer:{hold.id}"}
    assert load_call(line.app, record.call_sid).ended_at is None

    assert sweep_later(line, monkeypatch, minutes=1)["reconciled"] == 0  # not overdue yet: nobody asked
    summary = sweep_later(line, monkeypatch, minutes=3)

    assert summary["reconciled"] == 2, summary
    assert leases(line.app) == {"Alice Mediator": None}
    call = load_call(line.app, record.call_sid)
    assert call.ended_at is not None and call.outcome == "bridged"
    assert {"call_end_reconciled", "offer_leg_reconciled", "offer_leg_status", "call_ended"} <= set(kinds(call))
    assert hold_row(line.app, call).status == "done"
    assert line.app.extensions["redis"].hlen(Keys.offers(hold.id)) == 0
    assert sweep_later(line, monkeypatch, minutes=5)["reconciled"] == 0  # settled once


def test_a_losers_offer_leg_whose_status_was_lost_is_freed_by_the_sweep(line, monkeypatch):
    line.add_specialist("Alice Mediator", ALICE)
    line.add_specialist("Bruno Mediator", BRUNO, answers=False)
    bruno = specialist_id(line, "Bruno Mediator")
    line.phone.transport = LosingTransport(line.phone.transport, "/voice/offer/status", specialist=bruno)

    record = line.phone.call_line(CALLER, ScriptedCaller(SHORT))
    line.settle()

    assert record.bridged_with == [ALICE]
    hold = hold_row(line.app, load_call(line.app, record.call_sid))
    r = line.app.extensions["redis"]
    assert leases(line.app) == {"Alice Mediator": None, "Bruno Mediator": f"offer:{hold.id}"}
    assert [int(k) for k in r.hkeys(Keys.offers(hold.id))] == [bruno]

    summary = sweep_later(line, monkeypatch)

    assert summary["reconciled"] == 1, summary
    assert leases(line.app) == {"Alice Mediator": None, "Bruno Mediator": None}
    assert r.hlen(Keys.offers(hold.id)) == 0
    assert "offer_leg_reconciled" in kinds(load_call(line.app, record.call_sid))


def test_a_callback_whose_leg_statuses_were_lost_is_settled_by_the_sweep_and_the_specialist_freed(
        line, monkeypatch):
    line.phone.network[CALLER] = ScriptedCaller(["1"], label="caller")
    line.phone.transport = LosingTransport(line.phone.transport, "/voice/callback/status",
                                           "/voice/callback/dial-result", "/voice/callback/caller-status")
    record = line.phone.call_line(CALLER, ScriptedCaller(INTAKE))
    line.add_specialist("Alice Mediator", ALICE)
    line.settle()

    placed, _ = line.fake.calls
    assert placed.to == ALICE and placed.record.bridged_with == [CALLER]
    with line.app.app_context():
        request = line.app.extensions["db"].session().scalar(select(CallbackRequest))
        line.app.extensions["db"].session.remove()
    # Alice pressed 1 and the caller pressed 1 too; they talked, but no end reached the app: still in progress.
    assert request.status == "in_progress" and request.attempt_accepted_at is not None
    assert leases(line.app) == {"Alice Mediator": f"callback:{request.id}"}

    summary = sweep_later(line, monkeypatch)

    assert summary["reconciled"] == 1, summary  # Alice's leg
    with line.app.app_context():
        request = line.app.extensions["db"].session().scalar(select(CallbackRequest))
        line.app.extensions["db"].session.remove()
    # The caller pressed 1 at the screen, so a person was reached: the request is done.
    assert request.status == "completed" and request.attempts == 1
    assert leases(line.app) == {"Alice Mediator": None}
    assert "callback_leg_reconciled" in kinds(load_call(line.app, record.call_sid))
