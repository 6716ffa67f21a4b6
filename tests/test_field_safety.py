"""Safety in the field, on the whole line (real Redis and SQL, a real RQ worker, the simulated phone and the fake
REST API): a visit checked in and out by text; a team gone quiet climbing every rung, each text and call seen
on the fake in order; OK (or a late OUT) at each rung stopping it; a 1 acknowledging; SOS from the roster,
from a stranger, and outside a visit; a refused text that stops nothing. Time moves on the line's one clock,
and the timers RQ's scheduler would start are started when that clock passes them."""

from __future__ import annotations

import json
import re
from datetime import datetime, timedelta

import pytest
from sqlalchemy import select

from tests.support import (
    ALICE,
    BRUNO,
    CALLER,
    LINE,
    FieldClock,
    fire_due_timers,
    whole_line,
)
from voice import clock
from voice.casework import field_safety, field_texts, visits
from voice.config import ConfigError, load_settings
from voice.line import calls
from voice.models import Case, CaseEvent, SafetyAlert, SafetyEvent, Specialist, Visit
from voice.simulator import Dispatcher, SpecialistPhone

COORDINATOR = "+19375550300"
BACKUP_1, BACKUP_2 = "+19375550401", "+19375550402"
NON_EMERGENCY = "+19375550999"
STRANGER = "+19375550777"
# A Wednesday morning; the visit is booked for 10:00 local (15:00 UTC).
START = datetime(2026, 11, 4, 14, 0)
ADDRESS = "1200 Salem Ave"


@pytest.fixture
def field(redis_url, database_url, monkeypatch):
    """The line with the safety ladder set up, Ana and Ben on the roster, a visit booked for them, and a clock."""
    moment = FieldClock(START)
    monkeypatch.setattr(clock, "now", moment)
    with whole_line(redis_url, database_url, REST_RETRY_SECONDS="0", SAFETY_COORDINATOR_NUMBERS=COORDINATOR,
                    SAFETY_BACKUP_NUMBERS=f"{BACKUP_1},{BACKUP_2}", SAFETY_DISPATCH_NUMBER=NON_EMERGENCY) as line:
        line.add_specialist("Ana Ruiz", ALICE, on=False)
        line.add_specialist("Ben Cole", BRUNO, on=False)
        line.phone.network[COORDINATOR] = SpecialistPhone("coordinator", accept=None)
        line.phone.network[BACKUP_1] = SpecialistPhone("backup one", answers=False)
        line.phone.network[BACKUP_2] = SpecialistPhone("backup two", accept=None)
        line.phone.network[NON_EMERGENCY] = Dispatcher()
        line.clock = moment
        line.visit_id = book(line, START + timedelta(hours=1))
        yield line


def book(line, starts_at: datetime) -> int:
    with line.app.app_context():
        db = line.app.extensions["db"].session()
        call = calls.start_call(db, f"CA{starts_at:%H%M}", CALLER, LINE)
        team = [s.id for s in db.scalars(select(Specialist).order_by(Specialist.name))]
        visit = visits.schedule(db, line.app.extensions["redis"], line.app.config, db.get(Case, call.case_id),
                                visits.Plan(starts_at, team, ADDRESS, CALLER))
        db.commit()
        visit_id = visit.id
        db.close()
    line.settle()
    sent(line)  # the booking's own confirmation texts
    return visit_id


def text(line, number: str, body: str) -> str:
    status, reply = line.phone.send_sms(number, body)
    assert status == 200
    line.settle()
    return re.sub(r"<[^>]+>", "", reply.split("<Message>")[-1]).strip()


def later(line, minutes: float) -> None:
    """The clock moves on; the timers due by then start, and the line settles."""
    line.clock.advance(minutes)
    fire_due_timers(line.app, line.clock())
    line.settle()


def visit_row(line) -> Visit:
    with line.app.app_context():
        db = line.app.extensions["db"].session()
        visit = db.get(Visit, line.visit_id)
        db.expunge_all()
        return visit


def events(line) -> list[tuple[str, str]]:
    with line.app.app_context():
        db = line.app.extensions["db"].session()
        rows = [(e.kind, e.by) for e in db.scalars(select(SafetyEvent).where(SafetyEvent.visit_id == line.visit_id)
                                                   .order_by(SafetyEvent.id))]
        db.close()
        return rows


def alert_row(line) -> SafetyAlert | None:
    with line.app.app_context():
        db = line.app.extensions["db"].session()
        alert = db.scalar(select(SafetyAlert).order_by(SafetyAlert.id.desc()).limit(1))
        db.expunge_all()
        return alert


def sent(line) -> list[tuple[str, str]]:
    """What the fake REST API was asked for since the last look, as (text|call, to): texts, then calls."""
    texts, placed = getattr(line, "seen", (0, 0))
    line.seen = (len(line.fake.texts), len(line.fake.calls))
    return [("text", t["to"]) for t in line.fake.texts[texts:]] + [("call", c.to) for c in line.fake.calls[placed:]]


def last_text(line) -> str:
    return line.fake.texts[-1]["body"]


def last_call(line, to: str):
    return next(c for c in reversed(line.fake.calls) if c.to == to)


def climb_to(line, rung: str) -> None:
    """From the check-in (10:00) to the alert reaching `rung`, a timer at a time."""
    for step, minutes in zip(field_safety.RUNGS, (55, 5, 5, 5), strict=True):
        later(line, minutes)
        if step == rung:
            return


def checked_in(line) -> None:
    later(line, 60)  # 10:00 local: the visit starts
    assert "Checked in at 1200 Salem Ave" in text(line, ALICE, "in")


def test_a_visit_checked_in_and_out_by_text_is_on_its_timeline_and_asks_nobody(field):
    later(field, 60)
    reply = text(field, ALICE, "IN")
    assert reply.startswith("Checked in at 1200 Salem Ave (visit at 10:00 AM). Due back by 10:45 AM.")
    visit = visit_row(field)
    assert visit.field_state == "in_field" and visit.checked_in_at == START + timedelta(hours=1)
    assert visit.expected_back_at == START + timedelta(hours=1, minutes=45)

    field.clock.advance(20)
    assert text(field, BRUNO, "in 30 min") == "Noted: your team at 1200 Salem Ave is now due back by 10:50 AM. Text OUT when you leave."
    assert visit_row(field).expected_back_at == START + timedelta(hours=1, minutes=50)

    field.clock.advance(15)
    assert text(field, ALICE, "Out.") == "Checked out of 1200 Salem Ave. Thank you."
    visit = visit_row(field)
    assert visit.field_state == "out" and visit.checked_out_at == START + timedelta(hours=1, minutes=35)
    assert events(field) == [("checked_in", "Ana Ruiz (text)"), ("more_time", "Ben Cole (text)"),
                             ("checked_out", "Ana Ruiz (text)")]
    later(field, 120)  # well past every due-back time: the old timers find the team out and do nothing
    assert sent(field) == []
    assert alert_row(field) is None


def test_a_team_gone_quiet_climbs_every_rung_and_the_fake_shows_each_text_and_call_in_order(field):
    checked_in(field)
    later(field, 45 + 9)  # due back at 10:45; the grace runs to 10:55
    assert sent(field) == []
    later(field, 1)
    assert sent(field) == [("text", ALICE), ("text", BRUNO)]
    assert "Reply OK if you are safe" in last_text(field)
    assert visit_row(field).field_state == "escalating"

    later(field, 4)
    assert sent(field) == []  # the team has five minutes to reply
    later(field, 1)
    (coordinator_text, coordinator_call) = sent(field)
    assert (coordinator_text, coordinator_call) == (("text", COORDINATOR), ("call", COORDINATOR))
    assert "Ana Ruiz and Ben Cole at 1200 Salem Ave have not answered" in last_text(field)
    heard = last_call(field, COORDINATOR).record.heard("coordinator")
    assert "Ana Ruiz and Ben Cole went into a home at 1200 Salem Ave 1 hour ago and have not answered." in heard
    assert heard.count("Press 1 to acknowledge") == 2 and heard.endswith("Goodbye.")

    later(field, 5)
    assert sent(field) == [("call", BACKUP_1), ("call", BACKUP_2)]  # the second once the first went unanswered
    assert "backup two answered" in last_call(field, BACKUP_2).record.text()

    later(field, 5)
    assert sent(field) == [("call", NON_EMERGENCY)]
    heard = last_call(field, NON_EMERGENCY).record.heard("911 dispatch")
    assert "Please send a welfare check to 1200 Salem Ave." in heard and "Two staff members, Ana Ruiz and Ben Cole" in heard
    assert "To reach the program's coordinator, call 9 3 7, 5 5 5, 0 3 0 0." in heard

    later(field, 60)
    assert sent(field) == []  # the top of the ladder: nobody else to call
    kinds = [kind for kind, _ in events(field)]
    assert kinds[:4] == ["checked_in", "overdue", "texted", "texted"]
    for step in ("rung_coordinator", "rung_backups", "rung_dispatch"):
        assert step in kinds
    assert kinds.count("calling") == 4 and kinds.count("call_ended") == 4
    with field.app.app_context():
        db = field.app.extensions["db"].session()
        returned = db.scalars(select(CaseEvent).where(CaseEvent.kind == "safety_dispatch_called")).all()
        assert [json.loads(e.detail)["visit_id"] for e in returned] == [field.visit_id]
        rows = field_safety.field_board(db, field.app.config)
        assert [(row.status, row.alert.rung) for row in rows] == [("escalating", "dispatch")]


@pytest.mark.parametrize(("rung", "reply", "after"), [
    ("team", "OK", []),
    ("coordinator", "ok!", [("text", COORDINATOR)]),
    ("backups", "Ok", [("text", COORDINATOR)]),
    ("dispatch", "OK", [("text", COORDINATOR)]),
    ("backups", "OUT", [("text", COORDINATOR)]),
])
def test_ok_or_a_late_out_at_any_rung_stops_the_ladder_and_the_coordinator_hears_it_is_over(field, rung, reply,
                                                                                             after):
    checked_in(field)
    climb_to(field, rung)
    assert alert_row(field).rung == rung
    sent(field)
    answer = text(field, BRUNO, reply)
    assert ("alert is stopped" in answer) if reply != "OUT" else answer == "Checked out of 1200 Salem Ave. Thank you."
    alert = alert_row(field)
    assert alert.closed_how == ("out" if reply == "OUT" else "safe") and alert.closed_at == field.clock()
    assert sent(field) == after  # the all-clear to a coordinator who was alerted, nothing else
    if after:
        assert last_text(field).startswith("All clear (Mediation Response Program): Ana Ruiz and Ben Cole at 1200")
    for _ in range(3):
        later(field, 5)  # every rung's wait, and more: the ladder does not go on
    assert sent(field) == []
    assert visit_row(field).field_state == ("out" if reply == "OUT" else "in_field")


def test_ok_puts_the_team_back_in_the_field_and_asks_again_if_they_go_quiet_again(field):
    checked_in(field)
    climb_to(field, "team")
    sent(field)
    assert "alert is stopped" in text(field, ALICE, "OK")
    visit = visit_row(field)
    assert visit.field_state == "in_field" and visit.expected_back_at == field.clock() + timedelta(minutes=10)
    later(field, 19)
    assert sent(field) == []
    later(field, 1)  # due back again, plus the grace: asked again, by a new alert
    assert sent(field) == [("text", ALICE), ("text", BRUNO)]
    assert alert_row(field).closed_at is None


def test_more_time_asked_for_while_overdue_stops_that_alert_but_never_an_sos(field):
    checked_in(field)
    climb_to(field, "team")
    assert text(field, BRUNO, "IN 20") == ("Noted: your team at 1200 Salem Ave is now due back by 11:15 AM. "
                                            "Text OUT when you leave.")
    assert alert_row(field).closed_how == "safe" and visit_row(field).field_state == "in_field"
    text(field, BRUNO, "SOS")
    text(field, BRUNO, "IN 20")
    assert alert_row(field).closed_at is None and visit_row(field).field_state == "escalating"


def test_a_coordinator_pressing_1_acknowledges_and_nobody_else_is_called(field):
    field.phone.network[COORDINATOR] = SpecialistPhone("coordinator", accept="1")
    checked_in(field)
    climb_to(field, "coordinator")
    assert sent(field) == [("text", ALICE), ("text", BRUNO), ("text", COORDINATOR), ("call", COORDINATOR)]
    heard = last_call(field, COORDINATOR).record.heard("coordinator")
    assert "Thank you, you have acknowledged. Call the team now" in heard
    alert = alert_row(field)
    assert alert.acknowledged_by == "coordinator (937) 555-0300" and alert.acknowledged_at == field.clock()
    assert ("acknowledged", "coordinator (937) 555-0300") in events(field)
    later(field, 30)
    assert sent(field) == []  # no backups, no dispatch
    assert alert_row(field).rung == "coordinator" and alert_row(field).closed_at is None


def test_a_wrong_key_hears_the_alert_again_and_the_call_still_ends_without_acknowledging(field):
    field.phone.network[COORDINATOR] = SpecialistPhone("coordinator", accept="2")
    checked_in(field)
    climb_to(field, "coordinator")
    call = last_call(field, COORDINATOR).record
    assert call.problems == [] and call.ended_by == "app-hangup"
    assert call.heard("coordinator").count("That was not 1.") == 2
    assert call.heard("coordinator").endswith("Nobody pressed 1, so the line goes on to the next contact. "
                                              "Look at the live board. Goodbye.")
    assert alert_row(field).acknowledged_at is None
    later(field, 5)
    assert ("call", BACKUP_1) in sent(field)


def test_sos_from_a_roster_number_calls_the_coordinator_and_dispatch_at_once(field):
    checked_in(field)
    field.clock.advance(10)
    reply = text(field, BRUNO, "sos 2nd floor")
    assert reply == "SOS received for 1200 Salem Ave. We are calling the coordinator and dispatch now. Call 911 if you can."
    assert sorted(sent(field)) == [("call", COORDINATOR), ("call", NON_EMERGENCY), ("text", COORDINATOR)]
    assert "Ben Cole sent SOS from the visit at 1200 Salem Ave; dispatch is being called" in last_text(field)
    heard = last_call(field, NON_EMERGENCY).record.heard("911 dispatch")
    assert "Ben Cole, a staff member on a home visit at 1200 Salem Ave, sent an emergency signal." in heard
    alert = alert_row(field)
    assert (alert.reason, alert.rung, alert.dispatch_called_at) == ("sos", "coordinator", field.clock())
    assert ("sos", "Ben Cole (text)") in events(field)
    later(field, 5)
    assert sent(field) == [("call", BACKUP_1), ("call", BACKUP_2)]
    later(field, 5)
    assert sent(field) == []  # dispatch was called already


def test_an_sos_with_nobody_set_up_to_call_says_to_call_911(field):
    field.app.config.update(SAFETY_COORDINATOR_NUMBERS=(), SAFETY_BACKUP_NUMBERS=(), SAFETY_DISPATCH_NUMBER="")
    checked_in(field)
    assert text(field, ALICE, "SOS") == "SOS received, but the line has nobody set up to call. Call 911 now."
    assert sent(field) == [] and alert_row(field).reason == "sos"


def test_a_text_from_a_number_not_on_the_roster_never_starts_anything(field):
    checked_in(field)
    for body in ("SOS", "IN", "OK", "OUT"):
        assert "In an emergency, call 911." in text(field, STRANGER, body)  # the reply meant for callers
    assert sent(field) == [] and alert_row(field) is None
    assert visit_row(field).field_state == "in_field"


def test_sos_outside_a_visit_alerts_the_coordinator_with_the_last_known_visit_and_calls_no_dispatch(field):
    checked_in(field)
    later(field, 30)
    text(field, ALICE, "OUT")
    later(field, 60)
    reply = text(field, ALICE, "SOS")
    assert reply == ("SOS received. You are not on a visit: we are calling the coordinator now. We told them your "
                     "last visit was at 1200 Salem Ave. Call 911 if you can.")
    assert sent(field) == [("text", COORDINATOR), ("call", COORDINATOR)]
    assert "Ana Ruiz sent SOS and is not on a visit; last visit 1200 Salem Ave at 10:00 AM" in last_text(field)
    heard = last_call(field, COORDINATOR).record.heard("coordinator")
    assert "Ana Ruiz sent an emergency signal and is not on a visit. Their last visit began" in heard
    alert = alert_row(field)
    assert (alert.reason, alert.visit_id, alert.dispatch_called_at) == ("sos_away", field.visit_id, None)
    assert visit_row(field).field_state == "out"
    later(field, 5)
    later(field, 5)
    assert sent(field) == [("call", BACKUP_1), ("call", BACKUP_2)]  # backups, but never dispatch
    assert text(field, ALICE, "OK") == "Thank you: your SOS is stopped, and the coordinator is told you are safe."
    assert alert_row(field).closed_how == "safe"


def test_a_rung_with_nobody_to_call_passes_on_at_once_and_says_so(field):
    field.app.config.update(SAFETY_BACKUP_NUMBERS=(), SAFETY_DISPATCH_NUMBER="")
    checked_in(field)
    climb_to(field, "coordinator")
    sent(field)
    later(field, 5)  # no backups: on to the last rung at once, where there is no dispatch number either
    assert sent(field) == []
    alert = alert_row(field)
    assert (alert.rung, alert.dispatch_called_at, alert.closed_at) == ("dispatch", None, None)
    assert [kind for kind, _ in events(field)][-4:] == ["rung_backups", "nobody_to_call", "rung_dispatch",
                                                        "nobody_to_call"]


def test_a_text_twilio_refuses_is_on_the_timeline_and_the_ladder_goes_on(field):
    checked_in(field)
    field.fake.fail_texts(400, 21610)  # the team member once texted STOP to the line
    climb_to(field, "team")
    assert sent(field) == []
    assert [kind for kind, _ in events(field)][-2:] == ["text_failed", "text_failed"]
    with field.app.app_context():
        rows = field_safety.field_board(field.app.extensions["db"].session(), field.app.config)
        assert [c.status for c in rows[0].failed] == ["failed", "failed"]
    field.fake.fail_texts(None)
    later(field, 5)
    assert sent(field) == [("text", COORDINATOR), ("call", COORDINATOR)]


def test_a_visit_never_checked_into_is_flagged_fifteen_minutes_after_its_start(field):
    later(field, 60 + 14)
    with field.app.app_context():
        db = field.app.extensions["db"].session()
        assert field_safety.field_board(db, field.app.config) == []
        field.clock.advance(1)
        assert [row.status for row in field_safety.field_board(db, field.app.config)] == ["not_checked_in"]


@pytest.mark.parametrize(("body", "command"), [
    ("IN", ("in", None)), ("in 30", ("in", 30)), (" In 20 min. ", ("in", 20)), ("OUT", ("out", None)),
    ("ok!", ("ok", None)), ("SOS", ("sos", None)), ("sos, 2nd floor", ("sos", None)), ("out of battery", None),
    ("inside now", None), ("okay", None), ("ON", None), ("HELP", None),
])
def test_field_commands_are_read_exactly_except_the_safety_word(body, command):
    assert field_texts.parse(body, "SOS") == command


@pytest.mark.parametrize("word", ["HELP", "info", "STOP", "start", "OK", "IN", "two words"])
def test_a_safety_word_the_carriers_or_the_line_already_use_stops_start_up(word):
    with pytest.raises(ConfigError, match=r"setting SAFETY_WORD (cannot be|must be one word)"):
        load_settings({"TWILIO_ACCOUNT_SID": "AC1", "TWILIO_AUTH_TOKEN": "t", "TWILIO_PHONE_NUMBER": LINE,
                       "DISPATCH_TRANSFER_NUMBER": "+19375550911", "PUBLIC_BASE_URL": "http://x", "SECRET_KEY": "k",
                       "SAFETY_WORD": word})

