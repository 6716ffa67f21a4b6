"""Cases: the calls, visits, follow-ups and notes about one situation.

Every call belongs to a case from its first request. The states, and the one function that makes each move:

    (a new call) --open_or_join-->  open      (joins the open case its number called about within CASE_LINK_DAYS,
                                               else opens a new one)
    open    --close-->              closed    (an outcome, in person or by phone; a visit's outcome closes it too)
    closed  --reopen-->             open
    open, closed --merge-->         merged    (its calls and visits move to the other case; merged_into_id says where)

A call moves between cases with `link_call` (the coordinator accepts a proposed address match, or moves it)
and `split_call` (it leaves for a case of its own). Matches by address are only proposed (`proposals`): the
caller gave the address while holding or on a callback, after the call had already opened or joined a case.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import timedelta

from blinker import Namespace
from flask import current_app
from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from voice import phones
from voice.casework import addresses
from voice.clock import utcnow
from voice.models import Call, Case, CaseEvent, Visit

OPEN = "open"
CLOSED = "closed"
MERGED = "merged"

# How a case (or a visit) can end; the first five are what a visit's team records.
VISIT_OUTCOMES = {
    "agreement_reached": "agreement reached",
    "resolved": "resolved",
    "referred": "referred",
    "no_one_home": "no one home",
    "declined": "declined",
}
OUTCOMES = {**VISIT_OUTCOMES, "resolved_by_phone": "resolved by phone", "no_further_action": "no further action"}
# Call dispositions in the words of a case's last outcome.
DISPOSITION_WORDS = {"resolved_by_phone": "resolved by phone", "in_person_scheduled": "visit scheduled",
                     "referred": "referred", "no_further_action": "no further action"}
ORDINALS = {2: "second", 3: "third", 4: "fourth", 5: "fifth", 6: "sixth", 7: "seventh", 8: "eighth",
            9: "ninth", 10: "tenth"}


# Sent (sender: the case; db=) when a case closes; the 911 center is told of it (voice/reporting/outcomes.py).
case_closed = Namespace().signal("case-closed")


class CaseError(ValueError):
    """A case change that cannot be made; the message says why."""


def link_days() -> int:
    """CASE_LINK_DAYS, from the app's settings."""
    return current_app.config["CASE_LINK_DAYS"]


def record(db: Session, case: Case, kind: str, user_id: int | None = None, **detail: object) -> CaseEvent:
    """Append one step to a case's own timeline; the only way case events are written."""
    event = CaseEvent(case_id=case.id, kind=kind, user_id=user_id,
                      detail=json.dumps(detail, default=str, ensure_ascii=False))
    db.add(event)
    return event


def open_or_join(db: Session, call: Call, link_days: int) -> Case:
    """Put a new call in a case: the open one its number called about within `link_days`, or a new one."""
    if call.case_id is not None:
        return db.get(Case, call.case_id)
    case = None
    # Withheld IDs, the 911 center's trunk and the line's own numbers are shared by strangers: never link on those.
    if phones.caller_number(call.from_number, call.forwarded_from, current_app.config) is not None:
        since = (call.started_at or utcnow()) - timedelta(days=link_days)
        case = db.scalar(
            select(Case).join(Call, Call.case_id == Case.id)
            .where(Call.from_number == call.from_number, Call.started_at >= since, Call.id != call.id,
                   Case.status == OPEN)
            .order_by(Call.started_at.desc()).limit(1))
    if case is None:
        case = Case(opened_at=call.started_at or utcnow(), status=OPEN)
        db.add(case)
        db.flush()
        record(db, case, "opened", call_id=call.id)
    else:
        record(db, case, "call_joined", call_id=call.id, by="same number")
    call.case_id = case.id
    return case


def note_location(call: Call) -> None:
    """Keep the call's address key and area (ZIP code, street) in step with what it says in `location`."""
    call.location_key, call.zip_code, call.street = addresses.place_of(call.location)


def proposals(db: Session, call: Call, link_days: int) -> list[Case]:
    """Open cases (not this call's) with a call about the same address within `link_days` of this one."""
    if not call.location_key:
        return []
    since = call.started_at - timedelta(days=link_days)
    until = call.started_at + timedelta(days=link_days)
    return list(db.scalars(
        select(Case).join(Call, Call.case_id == Case.id)
        .where(Call.location_key == call.location_key, Call.started_at >= since, Call.started_at <= until,
               Call.id != call.id, Case.status == OPEN, Case.id != (call.case_id or 0))
        .group_by(Case.id).order_by(Case.id)))


def link_call(db: Session, call: Call, case: Case, user_id: int | None = None, by: str = "coordinator") -> None:
    """Move one call into `case` (an accepted address match, or the coordinator's choice)."""
    if case.status == MERGED:
        raise CaseError(f"case {case.id} was merged into case {case.merged_into_id}; link to that one")
    old = db.get(Case, call.case_id) if call.case_id else None
    if old is not None and old.id == case.id:
        raise CaseError(f"this call is already in case {case.id}")
    call.case_id = case.id
    record(db, case, "call_linked", user_id, call_id=call.id, from_case=old.id if old else None, by=by)
    if old is not None:
        record(db, old, "call_moved_out", user_id, call_id=call.id, to_case=case.id)
        _close_if_empty(db, old, case)


def split_call(db: Session, call: Call, user_id: int | None = None) -> Case:
    """Take one call out of its case into a new case of its own."""
    old = db.get(Case, call.case_id) if call.case_id else None
    if old is not None and len(calls_of(db, old)) < 2:
        raise CaseError("this is the only call in its case; there is nothing to split it from")
    case = Case(opened_at=call.started_at, status=OPEN)
    db.add(case)
    db.flush()
    call.case_id = case.id
    record(db, case, "split", user_id, call_id=call.id, from_case=old.id if old else None)
    if old is not None:
        record(db, old, "call_split_off", user_id, call_id=call.id, to_case=case.id)
    return case


def merge(db: Session, source: Case, target: Case, user_id: int | None = None) -> None:
    """Move everything of `source` into `target`; `source` stays as a pointer (merged)."""
    if source.id == target.id:
        raise CaseError("a case cannot be merged into itself")
    if target.status == MERGED:
        raise CaseError(f"case {target.id} was itself merged into case {target.merged_into_id}")
    if source.status == MERGED:
        raise CaseError(f"case {source.id} was already merged into case {source.merged_into_id}")
    moved = db.execute(update(Call).where(Call.case_id == source.id).values(case_id=target.id)
                       .execution_options(synchronize_session="fetch")).rowcount
    db.execute(update(Visit).where(Visit.case_id == source.id).values(case_id=target.id)
               .execution_options(synchronize_session="fetch"))
    target.opened_at = min(target.opened_at, source.opened_at)
    if target.follow_up_due_at is None and source.follow_up_due_at is not None:
        target.follow_up_due_at, target.follow_up_note = source.follow_up_due_at, source.follow_up_note
        target.follow_up_request_id = source.follow_up_request_id
    source.status, source.merged_into_id = MERGED, target.id
    source.follow_up_due_at = source.follow_up_request_id = None
    record(db, target, "merged_in", user_id, from_case=source.id, calls=moved)
    record(db, source, "merged_into", user_id, to_case=target.id)


def _close_if_empty(db: Session, old: Case, into: Case) -> None:
    if not calls_of(db, old) and not db.scalar(select(func.count(Visit.id)).where(Visit.case_id == old.id)):
        old.status, old.merged_into_id = MERGED, into.id


def close(db: Session, case: Case, outcome: str, in_person: bool, user_id: int | None = None) -> None:
    if outcome not in OUTCOMES:
        raise CaseError("choose how the case ended")
    if case.status == MERGED:
        raise CaseError(f"case {case.id} was merged into case {case.merged_into_id}")
    case.status, case.outcome = CLOSED, outcome
    case.closed_how = "in_person" if in_person else "phone"
    case.closed_at = utcnow()
    record(db, case, "closed", user_id, outcome=outcome, how=case.closed_how)
    case_closed.send(case, db=db)


def reopen(db: Session, case: Case, user_id: int | None = None) -> None:
    if case.status != CLOSED:
        raise CaseError("only a closed case can be reopened")
    case.status, case.closed_at, case.closed_how = OPEN, None, None
    record(db, case, "reopened", user_id)


def calls_of(db: Session, case: Case) -> list[Call]:
    return list(db.scalars(select(Call).where(Call.case_id == case.id).order_by(Call.started_at, Call.id)))


def resolve(db: Session, case: Case | None) -> Case | None:
    """The case itself, or the case it was merged into."""
    seen = 0
    while case is not None and case.status == MERGED and case.merged_into_id and seen < 20:
        case, seen = db.get(Case, case.merged_into_id), seen + 1
    return case


# --- what the specialist hears and reads --------------------------------------------------------------


@dataclass
class History:
    """A call's place in its case: how many calls in the window, what about, how the last one ended."""

    nth: int  # this call is the nth of the case within the window (1: the first)
    days: int
    category: str | None
    last_outcome: str | None

    def whisper(self) -> str:
        """At most six words for the specialist's phone, who has a caller waiting: "Third call. Last: resolved by
        phone." (the window in days is on the case page, not worth the caller's seconds)."""
        if self.nth < 2:
            return ""
        text = f"{_ordinal(self.nth).capitalize()} call."
        return f"{text} Last: {self.last_outcome}." if self.last_outcome else text

    def sentence(self, category_label: str | None = None) -> str:
        """The case page's fuller line: "third call in 30 days about noise; last outcome: agreement reached"."""
        what = f" about {category_label}" if category_label else ""
        if self.nth < 2:
            text = f"first call in {self.days} days{what}"
        else:
            text = f"{_ordinal(self.nth)} call in {self.days} days{what}"
        return f"{text}; last outcome: {self.last_outcome}" if self.last_outcome else text


def _ordinal(n: int) -> str:
    return ORDINALS.get(n, f"{n}th")


def history(db: Session, call: Call, link_days: int) -> History:
    """How this call sits in its case: the calls of the case in the last `link_days`, up to and including it."""
    if call.case_id is None:
        return History(1, link_days, call.category, None)
    since = call.started_at - timedelta(days=link_days)
    earlier = list(db.scalars(
        select(Call).where(Call.case_id == call.case_id, Call.started_at >= since, Call.id != call.id,
                           Call.started_at <= call.started_at)
        .order_by(Call.started_at.desc(), Call.id.desc())))
    return History(len(earlier) + 1, link_days, call.category or next((c.category for c in earlier if c.category), None),
                   last_outcome(db, call.case_id, earlier))


def last_outcome(db: Session, case_id: int, earlier_calls: list[Call]) -> str | None:
    """In words: the latest recorded visit outcome, else the latest earlier call's disposition."""
    visit = db.scalar(select(Visit).where(Visit.case_id == case_id, Visit.outcome.is_not(None))
                      .order_by(Visit.outcome_at.desc()).limit(1))
    visit_at = visit.outcome_at if visit else None
    call = next((c for c in earlier_calls if c.disposition), None)
    if call is not None and (visit_at is None or (call.disposition_at and call.disposition_at > visit_at)):
        return DISPOSITION_WORDS.get(call.disposition, call.disposition.replace("_", " "))
    return VISIT_OUTCOMES.get(visit.outcome) if visit else None
