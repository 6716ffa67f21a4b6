"""The call log: one row per call, its event timeline, its outcome, and the CSV export."""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Iterable, Iterator, Mapping
from datetime import datetime
from typing import IO

from blinker import Namespace
from flask import current_app
from sqlalchemy import Select, String, bindparam, select, type_coerce
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, lazyload

from voice import phones
from voice.casework import cases
from voice.clock import utcnow
from voice.db import pend_event
from voice.models import Call, Case, Specialist

IN_INTAKE = "in_intake"
CONNECTING = "connecting"
BRIDGED = "bridged"
CALLBACK_QUEUED = "callback_queued"
CALLBACK_COMPLETED = "callback_completed"
ESCALATED = "escalated"
ABANDONED = "abandoned"
UNREACHABLE = "unreachable"
FAILED = "failed"
OUTCOMES = (
    IN_INTAKE,
    CONNECTING,
    BRIDGED,
    CALLBACK_QUEUED,
    CALLBACK_COMPLETED,
    ESCALATED,
    ABANDONED,
    UNREACHABLE,
    FAILED,
)
# Where a call came from (calls.source), told apart by the number it called (see `source_of`).
FROM_911 = "911"
HANDOFF = "handoff"
PUBLIC = "public"
FOLLOW_UP = "follow_up"
SOURCES = (FROM_911, HANDOFF, PUBLIC, FOLLOW_UP)
# Outcomes that mean the call is still live, so a later event may still settle it.
OPEN_OUTCOMES = (IN_INTAKE, CONNECTING)
# Outcomes after which nothing more happens to the call once it has ended (a queued callback is still to come).
FINAL_OUTCOMES = (BRIDGED, CALLBACK_COMPLETED, ESCALATED, ABANDONED, UNREACHABLE, FAILED)
# Why a call went back to 911 (calls.escalation_reason): a code written when it happens, for the reports.
DANGER = "danger"
CALLER_ASKED = "caller_asked"
NO_SAFETY_ANSWER = "no_safety_answer"
HOLD_FAILED = "hold_failed"
SPECIALIST_TRANSFER = "specialist_transfer"
RETURN_REASONS = (DANGER, CALLER_ASKED, NO_SAFETY_ANSWER, HOLD_FAILED, SPECIALIST_TRANSFER)

# Sent (sender: the call; db=) when a call that has ended reaches a final outcome; the 911 center is told of it
# (voice/reporting/outcomes.py, connected in create_app).
call_closed = Namespace().signal("call-closed")

EXPORT_COLUMNS = (
    "call_sid",
    "started_at",
    "from",
    "callback_number",
    "language",
    "category",
    "name",
    "location",
    "description",
    "outcome",
    "outcome_reason",
    "specialist_name",
    "specialist_phone",
    "connected_at",
    "ended_at",
    "disposition",
    "source",
    "incident_number",
    "escalation_reason",
    "case_id",
    "zip_code",
)

_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\ufffe\uffff]")


def clean_text(value: object, limit: int) -> str | None:
    """Untrusted caller text made safe to store and speak: no control characters, bounded length."""
    if value is None:
        return None
    text = _CONTROL.sub("", str(value))
    text = " ".join(text.split())[:limit]
    return text or None


# Built once: a webhook's statements are the same every time, and building one cost nearly as much as running it.
# The specialist is loaded only if asked for: most webhooks never look, and the join was a fifth of the load.
CALL_BY_SID = select(Call).where(Call.call_sid == bindparam("sid")).options(lazyload(Call.specialist))


def start_call(db: Session, call_sid: str, from_number: str, to_number: str,
               forwarded_from: str | None = None) -> Call:
    """The call's row, created on its first request; a repeated request gets the same row."""
    call = db.scalar(CALL_BY_SID, {"sid": call_sid})
    if call is not None:
        return call
    call = Call(call_sid=call_sid, from_number=from_number, to_number=to_number, step="greeting",
                source=source_of(to_number, current_app.config), forwarded_from=forwarded_from or None)
    db.add(call)
    try:
        db.flush()
    except IntegrityError:
        # Twilio retried while the first request was still writing: use the row it made.
        db.rollback()
        call = db.scalar(CALL_BY_SID, {"sid": call_sid})
        if call is None:
            raise
        return call
    record_event(db, call, "call_started", from_number=from_number, to_number=to_number,
                 **({"forwarded_from": forwarded_from} if forwarded_from else {}))
    cases.open_or_join(db, call, cases.link_days())
    return call


def caller_id(call: Call) -> str | None:
    """The caller's own number from the caller ID, or None (withheld, the 911 center's, the line's; see phones)."""
    return phones.caller_number(call.from_number, call.forwarded_from, current_app.config)


def source_of(to_number: str, config: Mapping) -> str:
    """A dispatcher's handoff (HANDOFF_NUMBER), the public line (PUBLIC_LINE_NUMBERS), else a 911 transfer."""
    number = phones.to_e164(to_number, config["DEFAULT_REGION"], strict=False)
    if number and number == config["HANDOFF_NUMBER"]:
        return HANDOFF
    if number and number in config["PUBLIC_LINE_NUMBERS"]:
        return PUBLIC
    return FROM_911


def record_event(db: Session, call: Call, kind: str, *, at: datetime | None = None, **detail: object) -> None:
    """Append one step to a call's timeline; the only way events are written (see voice/db.py for when)."""
    pend_event(db, call, at or utcnow(), kind, json.dumps(detail, default=str, ensure_ascii=False))


def set_incident(db: Session, call: Call, number: str) -> None:
    """The 911 center's incident number (CAD) for this call, on the call and on its case (if it has none)."""
    call.incident_number = number[:40]
    if call.case_id is not None:
        case = db.get(Case, call.case_id)
        if case is not None and not case.incident_number:
            case.incident_number = call.incident_number
    record_event(db, call, "incident_number", incident_number=call.incident_number)


def set_outcome(db: Session, call: Call, outcome: str, reason: str | None = None) -> None:
    """Record how the call turned out (and why), on the row and on the timeline."""
    if outcome not in OUTCOMES:
        raise ValueError(f"unknown outcome {outcome!r}")
    if call.outcome == outcome and call.outcome_reason == reason:
        return
    call.outcome = outcome
    call.outcome_reason = reason
    record_event(db, call, "outcome", outcome=outcome, reason=reason)
    if call.ended_at is not None and outcome in FINAL_OUTCOMES:
        call_closed.send(call, db=db)


def end_call(db: Session, call: Call, duration: object = None) -> None:
    """The caller's leg is over: stamp it, and a call that never got anywhere is abandoned."""
    newly_ended = call.ended_at is None
    if newly_ended:
        call.ended_at = utcnow()
    if call.outcome in OPEN_OUTCOMES:
        set_outcome(db, call, ABANDONED, reason=f"caller hung up during {call.step or 'connecting'}")
    elif newly_ended and call.outcome in FINAL_OUTCOMES:
        call_closed.send(call, db=db)
    call.step = None
    record_event(db, call, "call_ended", duration=duration)


def _as_stored(column):
    """A time as the database hands it over, unparsed: SQLite's text, or the driver's own datetime (PostgreSQL)."""
    return type_coerce(column, String).label(column.key)


# The call log's columns as plain rows, not ORM objects, times unparsed: a year of calls streams several times faster.
EXPORT_SELECT = (
    select(Call.call_sid, _as_stored(Call.started_at), Call.from_number, Call.callback_number, Call.language,
           Call.category, Call.caller_name, Call.location, Call.description, Call.outcome, Call.outcome_reason,
           Specialist.name.label("specialist_name"), Specialist.phone.label("specialist_phone"),
           _as_stored(Call.connected_at), _as_stored(Call.ended_at), Call.disposition, Call.source,
           Call.incident_number, Call.escalation_reason, Call.case_id, Call.zip_code)
    .outerjoin(Specialist, Specialist.id == Call.specialist_id))


def export_query(where: Iterable = ()) -> Select:
    """The call log's rows that meet `where` (SQL conditions on calls), oldest first, read a thousand at a time."""
    return (EXPORT_SELECT.where(*where).order_by(Call.started_at, Call.id)
            .execution_options(yield_per=1000))


def export_row(call) -> dict[str, str]:
    """One row of `export_query` as the CSV's columns."""
    return {
        "call_sid": call.call_sid,
        "started_at": _iso(call.started_at),
        "from": call.from_number or "",
        "callback_number": call.callback_number or "",
        "language": call.language or "",
        "category": call.category or "",
        "name": call.caller_name or "",
        "location": call.location or "",
        "description": call.description or "",
        "outcome": call.outcome or "",
        "outcome_reason": call.outcome_reason or "",
        "specialist_name": call.specialist_name or "",
        "specialist_phone": call.specialist_phone or "",
        "connected_at": _iso(call.connected_at),
        "ended_at": _iso(call.ended_at),
        "disposition": call.disposition or "",
        "source": call.source or "",
        "incident_number": call.incident_number or "",
        "escalation_reason": call.escalation_reason or "",
        "case_id": str(call.case_id or ""),
        "zip_code": call.zip_code or "",
    }


def csv_chunks(calls: Iterable, rows_per_chunk: int = 500) -> Iterator[str]:
    """The call log (rows of `export_query`) as CSV text in chunks (formula-injection safe), for streaming."""
    return table_chunks(EXPORT_COLUMNS, (export_row(call) for call in calls), rows_per_chunk)


def table_chunks(columns: Iterable[str], rows: Iterable[Mapping[str, object]], rows_per_chunk: int = 500) -> Iterator[str]:
    """Rows (dicts by column) as CSV text in chunks of `rows_per_chunk`, every cell formula-injection safe."""
    names = list(columns)
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(names)
    for count, row in enumerate(rows, start=1):
        writer.writerow([csv_safe(str(row[name])) for name in names])
        if count % rows_per_chunk == 0:
            yield buffer.getvalue()
            buffer.seek(0)
            buffer.truncate()
    yield buffer.getvalue()


def write_csv(calls: Iterable, out: IO[str]) -> None:
    """Write the call log (rows of `export_query`) as CSV to a file."""
    for chunk in csv_chunks(calls):
        out.write(chunk)


def csv_safe(value: str) -> str:
    # A spreadsheet runs a cell that starts with = + - @ as a formula; callers' words must not.
    if value and value[0] in "=+-@\t\r" and not re.fullmatch(r"[+-]?\d[\d\s().-]*", value):
        return "'" + value
    return value


def _iso(value) -> str:
    """A UTC time as ISO 8601 to the second with a Z: from a datetime, or from SQLite's stored text."""
    if not value:
        return ""
    if isinstance(value, str):
        return value[:19].replace(" ", "T") + "Z"
    return value.isoformat(timespec="seconds") + "Z"
