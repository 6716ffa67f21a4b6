"""Who routing prefers for a caller, and why (docs/routing.md tells the whole story).

A caller is complex when the program says so: their kind of problem is one of COMPLEX_CATEGORIES, or they call
again about an open case (their call joined a case that has earlier calls). For a complex caller routing prefers,
in this order, whoever of them is free and speaks the caller's language:

    1. the specialist already on their open case (who took its latest call, at whatever level);
    2. the level 2 specialists.

The phones start ringing while the caller is still choosing the kind of problem. Until they have chosen, a program
that marks some kinds complex counts the caller as complex; once they choose a kind that is not (and have no open
case), nobody is preferred any more. Whether the preferred ring alone for a while (PREFER_SECONDS) is the ringing's
business (`voice.line.offers`); this module only says who and why.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from voice.casework import cases
from voice.models import Call, Case, Specialist
from voice.script import CATEGORY_LABELS, SHORT_PATH

OPEN_CASE = "repeat caller with an open case"
NOT_CHOSEN = "kind of problem not chosen yet"
CASE_SPECIALIST = "the open case's specialist"
LEVEL_TWO = "level 2"


@dataclass(frozen=True)
class Preference:
    """Why a caller is complex, and whom routing prefers for them."""

    why: tuple[str, ...]
    case_specialist_id: int | None
    level_two: tuple[int, ...]

    def tiers(self) -> list[tuple[int, ...]]:
        """The preferred in the order they are rung: the open case's specialist, then level 2."""
        first = (self.case_specialist_id,) if self.case_specialist_id else ()
        return [tier for tier in (first, tuple(i for i in self.level_two if i not in first)) if tier]

    def tier_of(self, specialist_id: int) -> int | None:
        """0 for the first preferred (the open case's specialist, or level 2 without one), then 1; None: not preferred."""
        return next((n for n, tier in enumerate(self.tiers()) if specialist_id in tier), None)

    def reason_for(self, specialist_id: int) -> str | None:
        """Why this specialist is preferred ("the open case's specialist", "level 2"), or None if not."""
        if specialist_id == self.case_specialist_id:
            return CASE_SPECIALIST
        return LEVEL_TWO if specialist_id in self.level_two else None


def for_call(db: Session, call: Call, complex_categories: Collection[str]) -> Preference | None:
    """Whom routing prefers for this caller; None when they are not complex or nobody could be preferred."""
    why = []
    case_specialist_id = None
    earlier = open_case_calls(db, call)
    if earlier:
        why.append(OPEN_CASE)
        case_specialist_id = next((specialist_id for specialist_id, reached in earlier if specialist_id and reached),
                                  None)
    if call.category in complex_categories:
        why.append(f"kind of problem: {CATEGORY_LABELS.get(call.category, call.category)}")
    elif call.category is None and complex_categories and call.step in SHORT_PATH:
        why.append(NOT_CHOSEN)
    if not why:
        return None
    level_two = tuple(db.scalars(select(Specialist.id).where(Specialist.active.is_(True), Specialist.level == 2)
                                 .order_by(Specialist.id)))
    if case_specialist_id is None and not level_two:
        return None
    return Preference(tuple(why), case_specialist_id, level_two)


def open_case_calls(db: Session, call: Call) -> list[tuple[int | None, bool]]:
    """The earlier calls of this call's case while it is open, latest first: (specialist id, reached one)."""
    if call.case_id is None:
        return []
    with db.no_autoflush:  # earlier calls only: nothing this request changes
        rows = db.execute(
            select(Call.specialist_id, Call.connected_at).join(Case, Case.id == Call.case_id)
            .where(Call.case_id == call.case_id, Case.status == cases.OPEN, Call.id != call.id,
                   Call.started_at <= call.started_at)
            .order_by(Call.started_at.desc(), Call.id.desc())).all()
    return [(specialist_id, connected_at is not None) for specialist_id, connected_at in rows]


def note_taker(db: Session, call: Call, specialist_id: int, complex_categories: Collection[str]) -> dict:
    """The specialist who took the call: keep their level and whether routing preferred them (for the reports).

    Returns what the call's timeline says about it.
    """
    specialist = db.get(Specialist, specialist_id)
    preference = for_call(db, call, complex_categories)
    reason = preference.reason_for(specialist_id) if preference else None
    call.specialist_level = specialist.level if specialist else None
    call.to_preferred = None if preference is None else reason is not None
    return {"level": call.specialist_level, "preferred": reason,
            "preferred_for": list(preference.why) if preference else None}
