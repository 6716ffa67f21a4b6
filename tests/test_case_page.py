"""The specialist's case page: their current case, what they complete on it, and the transfer to dispatch."""

from __future__ import annotations

import json
import threading
import time

from sqlalchemy import select

from tests.support import ALICE, CALLER, DISPATCH, PASSWORD, TOKEN, login
from voice.dashboard.auth import create_user
from voice.models import AuditEntry, Call, Specialist
from voice.simulator import ScriptedCaller


def account_for(line, name: str, email: str) -> None:
    with line.app.app_context():
        session = line.app.extensions["db"].session()
        specialist = session.scalar(select(Specialist).where(Specialist.name == name))
        create_user(session, email, PASSWORD, "specialist", specialist.id)
        session.commit()


def signed_in(line, email: str):
    client = line.app.test_client()
    login(client, email)
    return client


def the_call(line) -> Call | None:
    with line.app.app_context():
        session = line.app.extensions["db"].session()
        call = session.scalar(select(Call))
        if call is None:
            return None
        call.events  # noqa: B018
        session.expunge_all()
        return call


def test_the_specialist_sees_their_current_case_and_completes_it(line):
    line.add_specialist("Alice Mediator", ALICE)
    account_for(line, "Alice Mediator", "alice@city.gov")
    record = line.phone.call_line(CALLER, ScriptedCaller(["2", "5"]))
    line.settle()
    assert record.bridged_with == [ALICE]
    client = signed_in(line, "alice@city.gov")

    current = client.get("/dashboard/case")
    call = the_call(line)
    assert current.status_code == 302 and current.location.endswith(f"/dashboard/calls/{call.id}")
    page = client.get(current.location).get_data(as_text=True)
    assert "The case" in page and "family" in page and "Save the case" in page

    token = TOKEN.search(page).group(1)
    saved = client.post(f"/dashboard/calls/{call.id}/case", data={
        "csrf_token": token, "caller_name": "Dana <b>Whitfield</b>", "location": "400 West Third Street",
        "description": "Brother will not leave the house", "follow_up": "visit"})
    assert saved.status_code == 302
    call = the_call(line)
    assert (call.caller_name, call.location, call.follow_up) == ("Dana <b>Whitfield</b>", "400 West Third Street",
                                                                 "visit")
    updates = [json.loads(e.detail) for e in call.events if e.kind == "case_updated"]
    assert updates == [{"by": "alice@city.gov", "caller_name": True, "location": True, "description": True,
                        "follow_up": "visit"}]
    shown = client.get(f"/dashboard/calls/{call.id}").get_data(as_text=True)
    assert "Dana &lt;b&gt;Whitfield&lt;/b&gt;" in shown and "<b>Whitfield" not in shown
    with line.app.app_context():
        actions = line.app.extensions["db"].session().scalars(select(AuditEntry.action)).all()
    assert "update_case" in actions


def test_the_case_form_refuses_bad_input_and_a_missing_token_and_changes_nothing(line):
    line.add_specialist("Alice Mediator", ALICE)
    account_for(line, "Alice Mediator", "alice@city.gov")
    line.phone.call_line(CALLER, ScriptedCaller(["2", "1"]))
    line.settle()
    client = signed_in(line, "alice@city.gov")
    call = the_call(line)
    page = client.get(f"/dashboard/calls/{call.id}").get_data(as_text=True)
    token = TOKEN.search(page).group(1)

    too_long = client.post(f"/dashboard/calls/{call.id}/case", data={"csrf_token": token, "location": "x" * 301,
                                                                      "follow_up": "none"})
    assert too_long.status_code == 400 and "There is a problem" in too_long.get_data(as_text=True)
    no_token = client.post(f"/dashboard/calls/{call.id}/case", data={"caller_name": "Mallory", "follow_up": "none"})
    assert no_token.status_code == 400
    bad_choice = client.post(f"/dashboard/calls/{call.id}/case", data={"csrf_token": token, "follow_up": "jail"})
    assert bad_choice.status_code == 400
    assert the_call(line).caller_name is None and the_call(line).follow_up is None


def test_another_specialist_cannot_open_or_change_the_case(line):
    line.add_specialist("Alice Mediator", ALICE)
    line.add_specialist("Bruno Mediator", "+19375550202", on=False)
    account_for(line, "Bruno Mediator", "bruno@city.gov")
    line.phone.call_line(CALLER, ScriptedCaller(["2", "1"]))
    line.settle()
    client = signed_in(line, "bruno@city.gov")
    call = the_call(line)
    assert client.get("/dashboard/case").status_code == 200  # "You have no current case"
    assert client.get(f"/dashboard/calls/{call.id}").status_code == 404
    token = TOKEN.search(client.get("/dashboard/case").get_data(as_text=True)).group(1)
    assert client.post(f"/dashboard/calls/{call.id}/transfer", data={"csrf_token": token}).status_code == 404


def test_a_specialist_transfers_the_live_caller_to_dispatch_with_one_button(line):
    line.phone.time_scale = 0.01  # the conversation lasts (scaled) minutes, long enough to press the button
    line.add_specialist("Alice Mediator", ALICE, talk_seconds=600)
    account_for(line, "Alice Mediator", "alice@city.gov")
    records = []
    caller = threading.Thread(target=lambda: records.append(line.phone.call_line(CALLER, ScriptedCaller(["2", "1"]))))
    caller.start()
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and (the_call(line) is None or the_call(line).connected_at is None):
        time.sleep(0.05)
    client = signed_in(line, "alice@city.gov")
    call = the_call(line)
    page = client.get(f"/dashboard/calls/{call.id}").get_data(as_text=True)
    assert "Transfer to 911 dispatch" in page

    moved = client.post(f"/dashboard/calls/{call.id}/transfer", data={"csrf_token": TOKEN.search(page).group(1)})
    caller.join(30)
    line.settle()

    assert moved.status_code == 302
    record = records[0]
    assert record.problems == []
    assert record.bridged_with == [ALICE, DISPATCH]
    call = the_call(line)
    assert (call.outcome, call.outcome_reason) == ("escalated", "transferred to dispatch by the specialist")
    assert call.escalation_reason == "specialist_transfer"
    kinds = [e.kind for e in call.events]
    assert "transfer_requested" in kinds and "transferred_to_dispatch" in kinds
