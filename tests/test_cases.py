"""Cases: calls from the same number join one case; the same address, said two ways, is proposed for linking;
the coordinator links, merges and splits; the whisper and the case page tell the case's history."""

from __future__ import annotations

from datetime import timedelta

import pytest

from voice.casework import cases
from voice.casework.addresses import address_key
from voice.clock import utcnow
from voice.line import calls, offers
from voice.models import Call, Case

NUMBER = "+19375550123"
OTHER = "+19375550124"


def new_call(db, sid: str, number: str, *, days_ago: float = 0, category: str | None = "noise",
             location: str | None = None) -> Call:
    call = calls.start_call(db, sid, number, "+19375550100")
    call.started_at = utcnow() - timedelta(days=days_ago)
    call.category = category
    if location is not None:
        call.location = location
        cases.note_location(call)
    db.commit()
    return call


@pytest.mark.parametrize(("said", "written"), [
    ("twelve hundred Salem Avenue", "1200 Salem Ave"),
    ("Twelve hundred Salem Avenue, Dayton", "1200 salem ave."),
    ("four hundred west third street, apartment 2", "400 W 3rd St"),
])
def test_spoken_and_written_addresses_have_one_key(said, written):
    assert address_key(said) == address_key(written) is not None


def test_places_without_a_house_number_and_street_are_never_matched():
    assert address_key("the corner of Main and Fifth") is None
    assert address_key("by the park") is None
    assert address_key("") is None and address_key(None) is None


def test_a_second_call_from_the_same_number_joins_the_open_case(app, db):
    first = new_call(db, "CA1", NUMBER, days_ago=3)
    second = new_call(db, "CA2", NUMBER)
    third = new_call(db, "CA3", OTHER)
    assert first.case_id == second.case_id
    assert third.case_id not in (None, first.case_id)


def test_a_call_after_the_link_window_or_to_a_closed_case_opens_a_new_one(app, db):
    old = new_call(db, "CA1", NUMBER, days_ago=31)
    assert new_call(db, "CA2", NUMBER).case_id != old.case_id
    case = db.get(Case, new_call(db, "CA3", OTHER, days_ago=1).case_id)
    cases.close(db, case, "resolved_by_phone", in_person=False)
    db.commit()
    assert new_call(db, "CA4", OTHER).case_id != case.id


def test_withheld_numbers_are_never_linked(app, db):
    assert new_call(db, "CA1", "anonymous").case_id != new_call(db, "CA2", "anonymous").case_id


def test_the_same_address_said_two_ways_is_proposed_and_linked_by_the_coordinator(app, db):
    first = new_call(db, "CA1", NUMBER, days_ago=2, location="1200 Salem Ave")
    second = new_call(db, "CA2", OTHER, location="twelve hundred Salem Avenue")
    assert first.case_id != second.case_id
    assert [case.id for case in cases.proposals(db, second, 30)] == [first.case_id]
    assert [case.id for case in cases.proposals(db, first, 30)] == [second.case_id]
    left = second.case_id
    cases.link_call(db, second, db.get(Case, first.case_id))
    db.commit()
    assert second.case_id == first.case_id
    assert cases.proposals(db, second, 30) == []
    # The case it left had nothing else: it now points at the case the call went to.
    assert db.get(Case, left).status == cases.MERGED and db.get(Case, left).merged_into_id == first.case_id


def test_merge_moves_every_call_and_split_takes_one_out(app, db):
    a1, a2 = new_call(db, "CA1", NUMBER, days_ago=1), new_call(db, "CA2", NUMBER)
    b = new_call(db, "CA3", OTHER)
    source, target = db.get(Case, a1.case_id), db.get(Case, b.case_id)
    cases.merge(db, source, target)
    db.commit()
    assert {a1.case_id, a2.case_id, b.case_id} == {target.id}
    assert source.status == cases.MERGED and cases.resolve(db, source).id == target.id
    with pytest.raises(cases.CaseError):
        cases.merge(db, target, target)
    with pytest.raises(cases.CaseError):
        cases.merge(db, source, target)
    alone = cases.split_call(db, a2)
    db.commit()
    assert a2.case_id == alone.id != target.id
    with pytest.raises(cases.CaseError):
        cases.split_call(db, a2)


def test_the_whisper_and_the_case_page_tell_the_history(app, db):
    first = new_call(db, "CA1", NUMBER, days_ago=9)
    first.disposition, first.disposition_at = "resolved_by_phone", utcnow() - timedelta(days=9)
    new_call(db, "CA2", NUMBER, days_ago=4)
    third = new_call(db, "CA3", NUMBER)
    db.commit()
    history = cases.history(db, third, 30)
    assert history.sentence("noise") == "third call in 30 days about noise; last outcome: resolved by phone"
    assert history.whisper() == "Third call. Last: resolved by phone."
    assert len(history.whisper().split()) <= 6
    summary = offers.offer_summary(db, third, language_said=False)
    assert summary == "Noise call, in English. Third call. Last: resolved by phone. Press 1 to take it."
    lone = new_call(db, "CA4", OTHER)
    assert offers.offer_summary(db, lone, language_said=True) == "Noise. Press 1."
