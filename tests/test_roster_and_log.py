"""The roster (CLI and texts) and the call log export, driven as the coordinator and specialists use them."""

from __future__ import annotations

import csv
import io

from defusedxml.ElementTree import fromstring
from sqlalchemy import select

from voice.line import specialists
from voice.models import Specialist
from voice.simulator import ScriptedCaller

ALICE = "+19375550201"
REQUIRED_COLUMNS = ["call_sid", "started_at", "from", "callback_number", "language", "category", "name",
                    "location", "description", "outcome", "specialist_phone", "ended_at"]


def sms_reply(phone, sender: str, body: str) -> str:
    status, xml = phone.send_sms(sender, body)
    assert status == 200
    root = fromstring(xml.encode())
    assert root.tag == "Response"
    return " ".join(m.text or "" for m in root.iter("Message"))


def test_cli_adds_lists_and_switches_specialists(app, runner, r):
    result = runner.invoke(args=["specialist", "add", "--name", "Alice Mediator", "--phone", "(937) 555-0201",
                                 "--language", "en", "--language", "es"])
    assert result.exit_code == 0, result.output
    assert "+19375550201" in result.output

    assert "off" in runner.invoke(args=["specialist", "list"]).output
    assert runner.invoke(args=["specialist", "on", "937-555-0201"]).exit_code == 0
    listing = runner.invoke(args=["specialist", "list"]).output
    assert "Alice Mediator" in listing and "available" in listing
    assert r.zcard("ml:available:es") == 1 and r.zcard("ml:available:en") == 1

    assert runner.invoke(args=["specialist", "off", "+1 937 555 0201"]).exit_code == 0
    assert "off" in runner.invoke(args=["specialist", "list"]).output


def test_cli_refuses_bad_input_clearly(app, runner):
    bad_phone = runner.invoke(args=["specialist", "add", "--name", "X", "--phone", "12"])
    assert bad_phone.exit_code != 0 and "not a valid phone number" in bad_phone.output
    bad_language = runner.invoke(args=["specialist", "add", "--name", "X", "--phone", ALICE, "--language", "fr"])
    assert bad_language.exit_code != 0 and "fr" in bad_language.output
    runner.invoke(args=["specialist", "add", "--name", "Alice", "--phone", ALICE])
    twice = runner.invoke(args=["specialist", "add", "--name", "Alice", "--phone", ALICE])
    assert twice.exit_code != 0 and "already" in twice.output
    unknown = runner.invoke(args=["specialist", "on", "+19375550999"])
    assert unknown.exit_code != 0 and "no specialist" in unknown.output


def test_specialists_switch_themselves_by_text(app, phone, db, r):
    alice = specialists.add_specialist(db, "Alice Mediator", ALICE, ["en"])
    db.commit()
    assert "ON" in sms_reply(phone, ALICE, " on ")
    assert specialists.state_of(r, alice) == "available"
    assert "ON and waiting" in sms_reply(phone, ALICE, "status")
    assert "OFF" in sms_reply(phone, ALICE, "Off.")
    db.expire_all()
    assert db.get(Specialist, alice.id).available is False
    assert "did not understand" in sms_reply(phone, ALICE, "what?")


def test_texts_from_strangers_change_nothing(app, phone, db, r):
    reply = sms_reply(phone, "+19375550777", "ON")
    # Most strangers are callers answering their confirmation text: a reply meant for them (see test_texts.py).
    assert "call (937) 555-0100" in reply and "In an emergency, call 911." in reply
    assert r.zcard("ml:available:en") == 0
    assert db.scalars(select(Specialist)).all() == []


def test_hostile_text_gets_a_plain_reply(app, phone, db):
    specialists.add_specialist(db, "Alice Mediator", ALICE, ["en"])
    db.commit()
    reply = sms_reply(phone, ALICE, "<Message>ON</Message>\x00" + "x" * 5000)
    assert "did not understand" in reply


def test_export_has_the_contract_columns_and_the_calls(line):
    line.add_specialist("Alice Mediator", ALICE)
    bridged = line.phone.call_line("+19375550123", ScriptedCaller(["2", "1"]))
    escalated = line.phone.call_line("+19375550124", ScriptedCaller(["1"]))
    line.settle()

    result = line.app.test_cli_runner().invoke(args=["calls", "export"])
    assert result.exit_code == 0
    rows = list(csv.DictReader(io.StringIO(result.output)))
    assert set(REQUIRED_COLUMNS) <= set(rows[0].keys())
    by_sid = {row["call_sid"]: row for row in rows}
    row = by_sid[bridged.call_sid]
    assert (row["outcome"], row["specialist_phone"], row["category"], row["language"]) == ("bridged", ALICE, "noise", "en")
    assert row["from"] == "+19375550123" and row["ended_at"].endswith("Z") and row["connected_at"].endswith("Z")
    assert by_sid[escalated.call_sid]["outcome"] == "escalated"


def test_export_defuses_spreadsheet_formulas(app, runner, phone):
    phone.call_line("+19375550123", ScriptedCaller(["2", "1", "=cmd|' /C calc'!A0", "@SUM(1)", "1", "+danger", "1"]))
    rows = list(csv.DictReader(io.StringIO(runner.invoke(args=["calls", "export"]).output)))
    assert rows[0]["name"].startswith("'=") and rows[0]["location"].startswith("'@")
    assert rows[0]["description"].startswith("'+")
    assert rows[0]["from"] == "+19375550123"
