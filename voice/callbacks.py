"""Callback requests: callers nobody could take live, saved in SQL so none is ever lost."""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from voice import calls
from voice.models import Call, CallbackRequest

PENDING = "pending"
SCHEDULED = "scheduled"
IN_PROGRESS = "in_progress"
COMPLETED = "completed"
UNREACHABLE = "unreachable"
CANCELLED = "cancelled"
OPEN_STATUSES = (PENDING, SCHEDULED, IN_PROGRESS)


def queue_callback(db: Session, call: Call, reason: str) -> CallbackRequest:
    """Save the caller's request to be called back (once per call) and settle the call as queued."""
    request = db.scalar(select(CallbackRequest).where(CallbackRequest.call_id == call.id))
    if request is None:
        request = CallbackRequest(
            call_id=call.id,
            callback_number=call.callback_number,
            language=call.language,
            window=call.callback_window,
            status=PENDING,
            reason=reason,
        )
        db.add(request)
        db.flush()
        calls.record_event(db, call, "callback_queued", request_id=request.id, reason=reason,
                           window=call.callback_window)
    calls.set_outcome(db, call, calls.CALLBACK_QUEUED, reason=reason)
    return request


def wait_phrase(db: Session, request: CallbackRequest, language: str) -> str:
    """A sentence telling the caller roughly when to expect the call."""
    ahead = db.scalar(
        select(func.count(CallbackRequest.id)).where(
            CallbackRequest.status.in_(OPEN_STATUSES), CallbackRequest.id < request.id
        )
    ) or 0
    if language == "es":
        return "Hay otras personas esperando antes que usted." if ahead else "Usted es la próxima persona en la lista."
    return f"There are {ahead} people ahead of you." if ahead else "You are next in line."

