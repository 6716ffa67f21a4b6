"""A dispatcher's warm handoff: calls to HANDOFF_NUMBER, given only to the 911 center, skip the caller's questions.

The dispatcher hears one sentence: key the CAD incident number and #, or just wait. Free specialists are rung at
once (the whisper: "Handoff from dispatch", the incident number, the language). The specialist who takes it joins
the call's conference with the dispatcher and the caller; the dispatcher briefs them and hangs up their side, and
the caller stays. Nobody free within HANDOFF_RING_SECONDS (or nobody on at all): one sentence, and 1 leaves the
caller in the callback questions; hanging up keeps the call with dispatch.
"""

from __future__ import annotations

import re

import redis
from flask import current_app
from sqlalchemy.orm import Session
from twilio.twiml.voice_response import VoiceResponse

from voice import hours
from voice.line import calls, endings, holds, questions, routing, waiting
from voice.models import Call
from voice.script import HANDOFF_WORDS, INCIDENT_STEP
from voice.twiml import say, webhook_url


def begin(db: Session, r: redis.Redis, call: Call) -> str:
    """The dispatcher's first words: the incident number, or wait; specialists start ringing now."""
    calls.record_event(db, call, "handoff_started")
    if not hours.line_open(current_app.config) or routing.on_count(r, call.language) == 0:
        call.step = None
        return nobody_free(call)
    call.step = INCIDENT_STEP
    holds.join(db, r, call)
    response = VoiceResponse()
    action = webhook_url("/voice/handoff/incident", call=call.call_sid)
    gather = response.gather(input="dtmf", finish_on_key="#", timeout=5, action=action, method="POST",
                             action_on_empty_result=True)
    say(gather, HANDOFF_WORDS["handoff"]["en"], "en")
    response.redirect(action, method="POST")
    return str(response)


def incident(db: Session, r: redis.Redis, call: Call, digits: str) -> str:
    """The incident number keyed (or nothing): to the specialist already taking the call, or wait for one."""
    if call.step != INCIDENT_STEP:
        return questions.finished(call)
    number = re.sub(r"[^0-9]", "", digits or "")[:40]
    if number:
        calls.set_incident(db, call, number)
    call.step = None
    hold = holds.hold_of(db, call)
    if hold is None or hold.status not in holds.WAITING_STATUSES:
        return nobody_free(call)
    return waiting.into_line(db, call, hold)


def nobody_free(call: Call, telling: int = 1) -> str:
    """Nobody is on (or the line is closed): the dispatcher hears so at once, outside any queue."""
    response = VoiceResponse()
    gather = response.gather(input="dtmf", num_digits=1, timeout=8, method="POST", action_on_empty_result=True,
                             action=webhook_url("/voice/handoff/nobody", call=call.call_sid, attempt=telling))
    say(gather, HANDOFF_WORDS["handoff_nobody"]["en"], "en")
    return str(response)


def nobody_answer(db: Session, r: redis.Redis, call: Call, digits: str, telling: int) -> str:
    """1 leaves the caller in the callback questions; silence asks again a few times, then the questions start
    (whoever is still on the line, the caller alone perhaps, can answer them)."""
    if call.outcome not in calls.OPEN_OUTCOMES:
        return questions.finished(call)
    if (digits or "")[:1] != "1" and telling < waiting.NOBODY_TELLINGS:
        return nobody_free(call, telling + 1)
    call.wants_callback = True
    calls.record_event(db, call, "handoff_left_for_callback", by="key" if digits else "silence")
    return endings.next_callback_question(db, r, call)
