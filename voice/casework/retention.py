"""How long callers' personal data is kept, and the purge that redacts it (`flask --app voice purge`).

A call older than RETENTION_DAYS loses what identifies the caller or repeats their words: name, place,
description, numbers, the reason texts, its notes, the details of every timeline event, and its recording
(deleted at Twilio). What the reports count stays: category, outcome, language, timestamps, specialist,
disposition, and each event's kind and time. `calls.redacted_at` marks a call done.

A call whose recording Twilio could not delete has its text redacted anyway but is not marked, so the next
night's purge asks Twilio again (a recording is never forgotten while it still exists there).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from voice import twilio_rest
from voice.clock import utcnow
from voice.models import AuditEntry, Call, CallbackRequest, CallEvent, CallNote
from voice.twilio_rest import TwilioError

log = logging.getLogger("voice.casework.retention")

REDACTED_DETAIL = json.dumps({"redacted": True})
# Calls are read and committed this many at a time, so a first purge of years of calls stays small.
BATCH_SIZE = 200


@dataclass
class PurgeResult:
    """What one purge run did: the calls redacted, and those left for the next night (by id)."""

    redacted: list[int] = field(default_factory=list)
    recordings_deleted: int = 0
    left_for_next_run: list[int] = field(default_factory=list)

    def summary(self) -> str:
        text = f"{len(self.redacted)} calls redacted"
        if self.left_for_next_run:
            text += f", {len(self.left_for_next_run)} left for the next run (recording not deleted)"
        return text


def cutoff(retention_days: int, now: datetime | None = None) -> datetime:
    """Calls that started before this (naive UTC) are past their retention."""
    return (now or utcnow()) - timedelta(days=retention_days)


def calls_due(db: Session, before: datetime, after_id: int = 0, limit: int | None = None) -> list[Call]:
    """Calls started before `before` and not yet redacted, by id."""
    query = (select(Call).where(Call.redacted_at.is_(None), Call.started_at < before, Call.id > after_id)
             .order_by(Call.id))
    if limit is not None:
        query = query.limit(limit)
    return list(db.scalars(query))


def recording_sid(call: Call) -> str | None:
    """The call's Twilio recording SID, from its column or else the last part of its URL (…/Recordings/RE…)."""
    if call.recording_sid:
        return call.recording_sid
    last = (call.recording_url or "").rstrip("/").rsplit("/", 1)[-1].removesuffix(".json")
    return last if last.startswith("RE") else None


def delete_recording(config: Mapping, call: Call) -> bool:
    """Delete the call's recording at Twilio; True when it is gone (or there was none).

    Twilio holds the only copy: the dashboard streams recordings from Twilio and nothing is saved on our
    disks, so there is no local file to remove.
    """
    sid = recording_sid(call)
    if sid is None:
        return True
    try:
        twilio_rest.delete_recording(config, sid)
    except TwilioError as error:
        level = logging.ERROR if error.permanent else logging.WARNING
        log.log(level, "could not delete the recording of call %s (kept for the next run): %s", call.id, error)
        return False
    return True


def redact_call(db: Session, call: Call, recording_gone: bool) -> None:
    """Remove the caller's personal data from the call, its callback request, notes and timeline."""
    call.caller_name = None
    call.location = None
    call.location_key = None
    # The street goes with the place; the ZIP code stays, like the category, so the reports still count the area.
    call.street = None
    call.description = None
    call.callback_number = None
    call.from_number = ""
    # Reasons can quote a number or a coordinator's words (a Twilio error, a cancellation); outcome stays.
    call.outcome_reason = None
    call.disposition_notes = None
    db.execute(update(CallbackRequest).where(CallbackRequest.call_id == call.id)
               .values(callback_number=None, reason=None))
    db.execute(update(CallNote).where(CallNote.call_id == call.id).values(body=""))
    db.execute(update(CallEvent).where(CallEvent.call_id == call.id).values(detail=REDACTED_DETAIL))
    if recording_gone:
        call.recording_sid = None
        call.recording_url = None
        call.redacted_at = utcnow()


def purge(db: Session, config: Mapping, now: datetime | None = None) -> PurgeResult:
    """Redact every call past RETENTION_DAYS, deleting its recording at Twilio first; one audit entry a run.

    Each batch is committed, so a run stopped halfway keeps what it did and the next run does the rest.
    """
    before = cutoff(config["RETENTION_DAYS"], now)
    result = PurgeResult()
    last_id = 0
    while batch := calls_due(db, before, after_id=last_id, limit=BATCH_SIZE):
        for call in batch:
            had_recording = recording_sid(call) is not None
            gone = delete_recording(config, call)
            redact_call(db, call, recording_gone=gone)
            if not gone:
                result.left_for_next_run.append(call.id)
                continue
            result.redacted.append(call.id)
            result.recordings_deleted += had_recording
        db.commit()
        last_id = batch[-1].id
    db.add(AuditEntry(user_id=None, action="purge", target=result.summary()[:200], ip=None))
    db.commit()
    log.info("purge: %s", result.summary())
    return result
