"""What a conference's status callbacks mean for the call: the caller and the specialist met (the hold is
connected), or the specialist's own line ended mid-call (they were cut off: a held caller goes back to the front
of the line, a callback's caller is told we will call right back; nobody is left alone in the conference).

Twilio posts these off the calls' own paths and in no promised order with the calls' own webhooks, so each reaction
checks the hold's state first and is a no-op when something else got there before it.
"""

from __future__ import annotations

import redis
from sqlalchemy.orm import Session

from voice import tasks
from voice.line import callback_legs, callbacks, calls, conferences, holds, offers
from voice.models import Call, CallbackRequest


def on_status(db: Session, r: redis.Redis, call: Call, form: dict) -> None:
    """One conference or participant status callback for the call's conference."""
    hold = holds.hold_of(db, call)
    live = hold if hold is not None and hold.status in (holds.CONNECTING, holds.CONNECTED) else None
    request = callbacks.request_of(db, call) if live is None else None
    if request is not None and request.status != callbacks.IN_PROGRESS:
        request = None
    specialist_id = live.specialist_id if live else (request.attempt_specialist_id if request else None)
    update = conferences.record_status(db, call, form, specialist_id=specialist_id)
    if update.event == "participant-leave" and update.label == conferences.TRANSFER:
        third_party_left(db, r, call, update)
        return
    if update.gone and update.label == conferences.SPECIALIST and transfer_under_way(db, r, call):
        return
    if request is not None:
        on_callback_status(db, r, request, update)
    if live is None:
        return
    if update.event == "participant-join" and live.status == holds.CONNECTING and met(db, call):
        holds.connect(db, live)
    elif update.gone and update.label == conferences.SPECIALIST and update.participant is not None:
        # Their own call ended while the conference went on (a specialist leaving any other way, by * or by
        # being moved, keeps their call): the caller is still there.
        offers.specialist_gone(db, r, live, update.participant.specialist_id or 0,
                               f"their line ended in the conference ({update.reason or 'no reason given'})")


def transfer_under_way(db: Session, r: redis.Redis, call: Call) -> bool:
    """The specialist's line ended mid-transfer with the third party in: the caller, taken off hold, stays with
    them (they were about to be handed over). False when no third party is in yet."""
    third = conferences.in_now(db, call, conferences.TRANSFER)
    if third is None:
        return False
    caller = conferences.in_now(db, call, conferences.CALLER)
    if caller is None:
        return False
    calls.record_event(db, call, "specialist_cut_off", during="a warm transfer", transfer_to=third.detail)
    tasks.rest_after_commit(db, r, "unhold", conferences.conference_sid(db, call), caller.call_sid)
    return True


def third_party_left(db: Session, r: redis.Redis, call: Call, update: conferences.Update) -> None:
    """A transfer's third party left: with the specialist still there nothing changes (they bring the caller
    back); after the handover the call is over, and the caller hears goodbye rather than silence."""
    caller = conferences.in_now(db, call, conferences.CALLER)
    if caller is not None and conferences.in_now(db, call, conferences.SPECIALIST) is None:
        offers.end_for_caller(db, r, call, caller.call_sid, "the service the caller was transferred to hung up")


def met(db: Session, call: Call) -> bool:
    """The caller and the specialist are both in the conference now."""
    joined = {p.label for p in conferences.present(db, call) if p.joined_at is not None}
    return conferences.CALLER in joined and conferences.SPECIALIST in joined


def on_callback_status(db: Session, r: redis.Redis, request: CallbackRequest, update: conferences.Update) -> None:
    """A callback's conference: the specialist's line ending with the caller still in is a cut-off."""
    if update.gone and update.label == conferences.SPECIALIST and update.participant is not None:
        caller = conferences.in_now(db, request.call, conferences.CALLER)
        if caller is not None:
            callback_legs.specialist_cut_off(db, r, request, update.participant.specialist_id or 0, caller.call_sid)
