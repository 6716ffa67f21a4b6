"""Putting a caller through to a specialist: free specialists are rung at once, the first to press 1 joins the
call's conference and the caller is brought to it, and everyone else's phone stops ringing. A specialist cut off
mid-call leaves the caller at the front of the line, and may rejoin for a minute. Also the callback offer.

A held caller's offers live in Redis (`Keys.offers`: specialist id -> the Call SID ringing them), each
specialist held by a lease for the offer; SQL's conditional claim (`holds.claim`) picks the one winner. An offer
stays there, the winner's too, until its leg's status callback (`offer_status`) arrives, so the sweep can ask
Twilio about a leg whose end was lost.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

import redis
from flask import current_app
from sqlalchemy import func, select
from sqlalchemy.orm import Session
from twilio.twiml.voice_response import VoiceResponse

from voice import languages, phones, script, tasks, twilio_rest
from voice.casework import cases, visits
from voice.clock import utcnow
from voice.db import flush_with_events
from voice.line import calls, conferences, holds, preferences, routing, specialists
from voice.models import Call, Hold, Specialist
from voice.redisdb import Keys
from voice.script import CATEGORY_LABELS
from voice.tasks import dispatch_after_commit
from voice.twilio_rest import TERMINAL_STATUSES
from voice.twiml import hangup, say, webhook_url

# How long a specialist's whisper waits (in one-second pauses) for a caller still choosing the kind of problem.
WHISPER_POLLS = 10
# How long a specialist cut off from a caller may rejoin them (rung first, or by calling the line).
REJOIN_SECONDS = 60
# A caller who called this many times in the last 30 days is a repeat caller in the whisper.
REPEAT_DAYS = 30


# --- ringing specialists (the worker's side calls these) ----------------------------------------------------


@dataclass
class Ringing:
    """The specialists held for one caller's offer, in the order their phones are placed: the preferred first."""

    everyone: list[Specialist] = field(default_factory=list)
    preference: preferences.Preference | None = None
    # While the preferred ring alone (PREFER_SECONDS), until when.
    alone_until: datetime | None = None

    def preferred(self) -> list[Specialist]:
        return [s for s in self.everyone if self.preference and self.preference.reason_for(s.id)]

    def groups(self) -> list[list[Specialist]]:
        """Placed one group after the other: the open case's specialist, the level 2 specialists, everyone else."""
        groups: dict[int, list[Specialist]] = {}
        for specialist in self.everyone:
            tier = self.preference.tier_of(specialist.id) if self.preference else None
            groups.setdefault(len(self.everyone) if tier is None else tier, []).append(specialist)
        return [groups[tier] for tier in sorted(groups)]


def claim_ringing(db: Session, r: redis.Redis, hold: Hold, limit: int) -> Ringing:
    """Hold every free specialist who fits the caller (up to `limit`), skipping anyone already tried for them.

    For a complex caller the preferred come first; with PREFER_SECONDS they are the only ones held until that
    long after the first of them was rung, or until none of them is free or still ringing.
    """
    config = current_app.config
    holder = routing.offer_holder(hold.id)
    taken: list[int] = []
    dropped = cut_off_from(r, hold)
    if dropped is not None and limit:
        # The specialist just cut off from this caller is rung first, once (then they are tried for them).
        taken = routing.claim_specialists(r, hold.language, holder, config["RING_LEASE_SECONDS"], only=dropped,
                                          tried_key=Keys.tried(hold.call.call_sid))
    preference = preferences.for_call(db, hold.call, config["COMPLEX_CATEGORIES"])
    tiers = preference.tiers() if preference else []

    def claim(preferred_only: bool) -> list[int]:
        return routing.claim_specialists(r, hold.language, holder, config["RING_LEASE_SECONDS"],
                                         tried_key=Keys.tried(hold.call.call_sid), limit=limit - len(taken),
                                         preferred=tiers, preferred_only=preferred_only)

    alone_until = preferred_alone_until(r, hold, config["PREFER_SECONDS"]) if preference else None
    taken += claim(preferred_only=alone_until is not None)
    if alone_until is not None and not taken and not r.hlen(Keys.offers(hold.id)):
        # None of the preferred is free or still ringing: there is nobody to wait for.
        alone_until = None
        taken += claim(preferred_only=False)
    ringing = Ringing(preference=preference, alone_until=alone_until)
    for specialist_id in taken:
        specialist = db.get(Specialist, specialist_id)
        if specialist is None or not specialist.active or not specialist.available:
            # Out of the idle queues first, so the release cannot put them back and loop.
            routing.set_idle_queue(r, specialist_id, [], on=False)
            routing.release_specialist(r, specialist_id, holder, keep_place=True)
            continue
        if skip_if_on_visit(db, r, specialist_id, holder, hold.call.call_sid):
            continue
        routing.mark_tried(r, hold.call.call_sid, specialist_id)
        ringing.everyone.append(specialist)
    if alone_until is not None and ringing.preferred() and start_preferring_alone(r, hold, alone_until):
        # The others are rung once this runs out (if the preferred have not taken the caller by then).
        tasks.dispatch_at(r, alone_until)
    return ringing


def preferred_alone_until(r: redis.Redis, hold: Hold, seconds: int) -> datetime | None:
    """Until when only the preferred are rung for this caller (from the first of them rung); None once over."""
    if seconds <= 0:
        return None
    started = r.get(Keys.prefer_until(hold.id))
    until = datetime.fromisoformat(started.decode()) if started else utcnow() + timedelta(seconds=seconds)
    return until if utcnow() < until else None


def start_preferring_alone(r: redis.Redis, hold: Hold, until: datetime) -> bool:
    """Note when the preferred stop ringing alone for this caller; False if that was already set."""
    return bool(r.set(Keys.prefer_until(hold.id), until.isoformat(), nx=True, ex=24 * 3600))


def skip_if_on_visit(db: Session, r: redis.Redis, specialist_id: int, holder: str, tried_for: str) -> bool:
    """Give back a specialist just claimed for `holder` if they are on a visit; True when they were.

    They stay in the idle queues (they come back when the visit ends) but are marked tried for this caller
    until then, so the dispatch their release asks for does not claim them for the same caller again.
    """
    visit = visits.on_visit_now(db, specialist_id)
    if visit is None:
        return False
    left = max(1, int((visit.ends_at - utcnow()).total_seconds()))
    routing.mark_tried(r, tried_for, specialist_id, seconds=left)
    routing.release_specialist(r, specialist_id, holder, keep_place=True)
    return True


def offer_urls(hold: Hold, specialist_id: int) -> tuple[str, str]:
    """The whisper and status callback URLs of one specialist's offer."""
    params = {"hold": hold.id, "specialist": specialist_id}
    return webhook_url("/voice/offer/whisper", **params), webhook_url("/voice/offer/status", **params)


def offers_made(db: Session, hold: Hold, ringing: Ringing) -> None:
    """On the caller's timeline (committed before any phone rings): who is about to be rung for them, and whom
    routing preferred and why."""
    preference = ringing.preference
    if preference is not None:
        calls.record_event(db, hold.call, "routing_preference", why=list(preference.why),
                           preferred=[{"specialist_id": s.id, "specialist": s.name,
                                       "as": preference.reason_for(s.id)} for s in ringing.preferred()],
                           alone_until=ringing.alone_until)
    for specialist in ringing.everyone:
        reason = preference.reason_for(specialist.id) if preference else None
        calls.record_event(db, hold.call, "specialist_offered", specialist_id=specialist.id,
                           specialist=specialist.name, **({"preferred": reason} if reason else {}))
    db.commit()


def offer_placed(db: Session, r: redis.Redis, hold: Hold, specialist: Specialist, call_sid: str | None,
                 error: str | None = None) -> None:
    """Note a specialist's phone ringing for a caller (or why it could not be rung)."""
    if call_sid:
        pipe = r.pipeline()
        # NX: the specialist may have called the line to rejoin while this rang (their call is the offer now).
        pipe.hsetnx(Keys.offers(hold.id), str(specialist.id), call_sid)
        # When it rang, so the sweep asks Twilio about it only once its status callback is overdue.
        pipe.hset(Keys.offer_times(hold.id), str(specialist.id), utcnow().isoformat())
        for key in (Keys.offers(hold.id), Keys.offer_times(hold.id)):
            pipe.expire(key, 24 * 3600)
        pipe.execute()
        calls.record_event(db, hold.call, "offer_ringing", specialist_id=specialist.id, specialist_call_sid=call_sid)
        return
    routing.release_specialist(r, specialist.id, routing.offer_holder(hold.id), keep_place=True)
    calls.record_event(db, hold.call, "offer_failed", specialist_id=specialist.id, error=(error or "")[:200])


def cancel_offers(db: Session, r: redis.Redis, hold: Hold, keep: int | None = None) -> None:
    """Stop every other specialist's phone ringing for this caller (after the commit, in a worker).

    Their leases are released when Twilio reports their call over, so nobody is rung twice at once.
    """
    offers = {int(k): v.decode() for k, v in r.hgetall(Keys.offers(hold.id)).items()}
    sids = [sid for specialist_id, sid in offers.items() if specialist_id != keep]
    if sids:
        tasks.enqueue_after_commit(db, r, tasks.END_CALLS, sids)


# --- the specialist's phone: whisper, key, join ------------------------------------------------------------


def offer_summary(db: Session, call: Call, language_said: bool) -> str:
    """One breath: the kind of problem, the language, the case's history ("Third call in 30 days. Last: ...")."""
    language = languages.of(call.language).name
    if call.source == calls.HANDOFF:
        # A dispatcher is on the line to brief them: who it is from, the incident number if given, the language.
        parts = [] if language_said else [opening_words(call)]
        if call.incident_number:
            parts.append(f"Incident {' '.join(call.incident_number)}.")
        parts.append(f"In {language}. Press 1.")
        return " ".join(parts)
    category = CATEGORY_LABELS.get(call.category) if call.category else None
    parts = []
    if language_said:
        parts.append(f"{category.capitalize()}." if category else "Kind of problem not given.")
    else:
        what = f"{category.capitalize()} call" if category else "Mediation call"
        parts.append(f"{what}, in {language}.")
    history = cases.history(db, call, cases.link_days()).whisper()
    if history:
        parts.append(history)
    elif repeat_calls(db, call):
        # Called before but split from (or never joined) that case: still worth one word.
        parts.append("Repeat caller.")
    # After "Mediation call, in English" and a wait, they know what the key is for: two words, not five.
    parts.append("Press 1." if language_said else "Press 1 to take it.")
    return " ".join(parts)


def still_answering(call: Call) -> bool:
    """The caller (or the dispatcher) is still giving what the whisper says: the kind of problem, the incident."""
    if call.source == calls.HANDOFF:
        return call.step == script.INCIDENT_STEP
    return call.category is None and call.step in script.SHORT_PATH


def opening_words(call: Call) -> str:
    if call.source == calls.HANDOFF:
        return "Handoff from dispatch."
    return f"Mediation call, in {languages.of(call.language).name}."


def repeat_calls(db: Session, call: Call) -> int:
    """How many earlier calls came from this caller's number in the last 30 days."""
    if calls.caller_id(call) is None:
        return 0
    since = call.started_at - timedelta(days=REPEAT_DAYS)
    return db.scalar(select(func.count(Call.id)).where(
        Call.from_number == call.from_number, Call.started_at >= since, Call.id != call.id,
        Call.started_at < call.started_at)) or 0


def offer_whisper(db: Session, r: redis.Redis, hold: Hold | None, specialist_id: int, poll: int = 0,
                  repeat: int = 1) -> str:
    """The specialist picked up: what the call is about, then press 1 to take it."""
    if hold is None or hold.status != holds.WAITING:
        # Their leg's status callback frees them once this call is over, never while their phone is busy.
        return hangup("Another specialist has this caller. Thank you.")
    routing.extend_lease(r, specialist_id, routing.offer_holder(hold.id), current_app.config["RING_LEASE_SECONDS"])
    call = hold.call
    response = VoiceResponse()
    if still_answering(call) and poll < WHISPER_POLLS:
        # The caller is still choosing the kind of problem (a dispatcher keying the incident number): say what we
        # know, and wait a moment for the rest.
        if poll == 0:
            say(response, opening_words(call), "en")
        response.pause(length=1)
        response.redirect(webhook_url("/voice/offer/whisper", hold=hold.id, specialist=specialist_id, poll=poll + 1),
                          method="POST")
        return str(response)
    answer_url = webhook_url("/voice/offer/answer", hold=hold.id, specialist=specialist_id, repeat=repeat)
    gather = response.gather(input="dtmf", num_digits=1, timeout=6, action=answer_url, method="POST",
                             action_on_empty_result=True)
    if cut_off_from(r, hold) == specialist_id:
        say(gather, "Your call was cut off. The caller is waiting. Press 1 to rejoin.", "en")
    else:
        say(gather, offer_summary(db, call, language_said=poll > 0), "en")
    return str(response)


def offer_answer(db: Session, r: redis.Redis, hold: Hold | None, specialist_id: int, digits: str,
                 repeat: int = 1) -> str:
    """Press 1: the first to press gets the caller; the others' phones stop ringing."""
    if hold is None:
        return hangup("Thank you.")
    call = hold.call
    if (digits or "")[:1] != "1":
        if not digits and repeat < 2 and hold.status == holds.WAITING:
            return offer_whisper(db, r, hold, specialist_id, poll=WHISPER_POLLS, repeat=repeat + 1)
        calls.record_event(db, call, "specialist_declined", specialist_id=specialist_id, digits=digits or None)
        return hangup("Okay. Thank you.")  # their leg's end releases them; they are not rung again for this caller
    if not holds.claim(db, hold, specialist_id):
        calls.record_event(db, call, "specialist_too_late", specialist_id=specialist_id)
        return hangup("Another specialist took this caller. Thank you.")
    config = current_app.config
    routing.extend_lease(r, specialist_id, routing.offer_holder(hold.id), config["CALL_LEASE_SECONDS"])
    taker = preferences.note_taker(db, call, specialist_id, config["COMPLEX_CATEGORIES"])
    calls.record_event(db, call, "specialist_accepted", specialist_id=specialist_id, hold_id=hold.id, **taker)
    if cut_off_from(r, hold) == specialist_id:
        forget_cut_off(r, hold, specialist_id)
        calls.record_event(db, call, "specialist_rejoined", specialist_id=specialist_id)
    cancel_offers(db, r, hold, keep=specialist_id)
    if call.step is None and holds.send_caller(db, hold):
        # The caller is in their queue (or on the way in): a REST redirect brings them out at once, not at the end
        # of their hold music. One still answering the intake goes in from there; the wait URL's next request
        # brings them if this redirect never lands (so it is not retried: a late one would move them twice).
        tasks.rest_after_commit(db, r, "redirect_call", call.call_sid, webhook_url("/voice/hold/bring", hold=hold.id),
                                retry=False)
    return specialist_joins(hold, specialist_id)


def specialist_joins(hold: Hold, specialist_id: int, words: str = "Connecting.") -> str:
    """The specialist's leg into the call's conference: they start it, * ends it, their leaving does not."""
    response = VoiceResponse()
    say(response, words, "en")
    action = webhook_url("/voice/offer/done", hold=hold.id, specialist=specialist_id)
    conferences.join(response, hold.call, conferences.SPECIALIST, action, start=True, end=False,
                     hangup_on_star=True)
    return str(response)


def offer_done(db: Session, r: redis.Redis, hold: Hold | None, specialist_id: int, form: dict) -> str:
    """The specialist's leg is out of the conference (its Dial action): they pressed * to end the call, or the
    call ended around them. A leg whose own call is over hears nothing: its leave event says what happened."""
    if hold is None:
        return hangup("Thank you.")
    call = hold.call
    calls.record_event(db, call, "specialist_out_of_conference", specialist_id=specialist_id,
                       dial_status=form.get("DialCallStatus"), call_status=form.get("CallStatus"))
    if form.get("CallStatus") in TERMINAL_STATUSES or hold.specialist_id != specialist_id:
        return hangup("Thank you.")
    if hold.status == holds.CONNECTING:
        # Before the caller came: their leg's end (offer_status, right after this) puts the caller back in line.
        if form.get("DialCallStatus") == "completed":  # a * (https://www.twilio.com/docs/voice/twiml/dial#hanguponstar)
            return hangup("Okay. The caller keeps their place in line. Thank you.")
        return hangup("The call has ended. Thank you.")
    if handed_over(db, call):
        return hangup("You have left the call. The caller is with the service you transferred them to. Thank you.")
    if hold.status == holds.CONNECTED and caller_still_there(db, r, call, call.call_sid):
        # They pressed * with the caller still there: the call ends for everyone, on purpose.
        end_for_caller(db, r, call, call.call_sid, "the specialist ended the call")
    return hangup("The call has ended. Thank you for taking it.")


def handed_over(db: Session, call: Call) -> bool:
    """A warm transfer's third party is in the conference: the specialist left it to them, on purpose."""
    return conferences.in_now(db, call, conferences.TRANSFER) is not None


def caller_still_there(db: Session, r: redis.Redis, call: Call, caller_sid: str) -> bool:
    """Is the caller still in the conference the specialist just left? Twilio is asked (the conference's own
    callbacks may not have come yet: the caller hanging up also takes the specialist out); if Twilio cannot
    say, the callbacks so far decide."""
    sid = conferences.conference_sid(db, call)
    if sid is None:
        return False
    try:
        return twilio_rest.noting_health(r, twilio_rest.in_conference, dict(current_app.config), sid, caller_sid)
    except twilio_rest.TwilioError:
        return conferences.in_now(db, call, conferences.CALLER) is not None


def end_for_caller(db: Session, r: redis.Redis, call: Call, caller_sid: str, why: str) -> None:
    """End the call on purpose: the caller hears goodbye and hangs up, which ends the conference (the caller's
    endConferenceOnExit)."""
    calls.record_event(db, call, "call_ended_on_purpose", why=why)
    tasks.rest_after_commit(db, r, "redirect_call", caller_sid, webhook_url("/voice/conference/goodbye",
                                                                            call=call.call_sid))


def specialist_gone(db: Session, r: redis.Redis, hold: Hold | None, specialist_id: int, why: str) -> None:
    """The specialist who took the caller is gone (their line dropped, they hung up, or pressed * early).

    Before they met: the caller keeps their place. Mid-call: the caller hears that the specialist was cut off
    and is back at the front of the line, the same specialist rung first and able to rejoin for a minute.
    Either way a caller already in the conference is brought back to their queue, never left alone in it.
    """
    if hold is None or hold.specialist_id != specialist_id:
        return
    if hold.status == holds.CONNECTING:
        if holds.release_claim(db, hold, why):
            bring_back(db, r, hold, "not_connected")
        dispatch_after_commit(db, r)
    elif hold.status == holds.CONNECTED and holds.back_in_line(db, hold, why):
        calls.record_event(db, hold.call, "specialist_cut_off", specialist_id=specialist_id, why=why)
        pipe = r.pipeline()
        pipe.set(Keys.rejoin(specialist_id), hold.id, ex=REJOIN_SECONDS)
        pipe.set(Keys.cut_off(hold.id), specialist_id, ex=REJOIN_SECONDS)
        pipe.srem(Keys.tried(hold.call.call_sid), specialist_id)  # so the next dispatch rings them, once
        pipe.execute()
        bring_back(db, r, hold, "cut_off")
        dispatch_after_commit(db, r)


def bring_back(db: Session, r: redis.Redis, hold: Hold, why: str) -> None:
    """Move the caller out of the conference and back into their queue, with a word of why (after the commit);
    a caller with their interpreter stays in the conference with them, waiting for the next specialist."""
    if conferences.in_now(db, hold.call, conferences.INTERPRETER) is not None:
        holds.in_conference_waiting(db, hold)
        return
    tasks.rest_after_commit(db, r, "redirect_call", hold.call.call_sid,
                            webhook_url("/voice/hold/back", hold=hold.id, why=why))


def rejoin_by_calling(db: Session, r: redis.Redis, call_sid: str, from_number: str) -> str | None:
    """A specialist cut off from a caller calls the line from their roster phone within the minute: straight back
    into the caller's conference. None when this is not such a call (it is then a caller's, as any other)."""
    specialist = specialists.find_by_phone(db, phones.to_e164(from_number, current_app.config["DEFAULT_REGION"]))
    value = r.get(Keys.rejoin(specialist.id)) if specialist is not None else None
    hold = holds.by_id(db, int(value)) if value else None
    if hold is None or hold.status != holds.WAITING or cut_off_from(r, hold) != specialist.id:
        return None
    holder = routing.offer_holder(hold.id)
    lease = current_app.config["CALL_LEASE_SECONDS"]
    held = (routing.extend_lease(r, specialist.id, holder, lease)
            or routing.claim_specialists(r, hold.language, holder, lease, only=specialist.id)
            # A dispatch is ringing them for this very caller as they call in: theirs all the same.
            or routing.extend_lease(r, specialist.id, holder, lease))
    if not held:
        return None  # held for something else meanwhile: they are not free to rejoin
    if not holds.claim(db, hold, specialist.id):
        return None
    call = hold.call
    calls.record_event(db, call, "specialist_accepted", specialist_id=specialist.id, hold_id=hold.id)
    calls.record_event(db, call, "specialist_rejoined", specialist_id=specialist.id, by="calling the line")
    forget_cut_off(r, hold, specialist.id)
    cancel_offers(db, r, hold)  # their own phone too, if it is being rung to rejoin
    pipe = r.pipeline()
    # Their call to the line is this offer's leg now: its end (the number's status callback) frees them.
    pipe.hset(Keys.offers(hold.id), str(specialist.id), call_sid)
    pipe.set(Keys.rejoin_leg(call_sid), f"{hold.id}:{specialist.id}", ex=current_app.config["CALL_LEASE_SECONDS"])
    pipe.execute()
    if holds.send_caller(db, hold):
        tasks.rest_after_commit(db, r, "redirect_call", call.call_sid, webhook_url("/voice/hold/bring", hold=hold.id),
                                retry=False)
    return specialist_joins(hold, specialist.id, words="Reconnecting you with your caller.")


def rejoin_leg(r: redis.Redis, call_sid: str) -> tuple[int, int] | None:
    """(hold id, specialist id) when this call is a specialist's own call back into a caller's conference."""
    value = r.get(Keys.rejoin_leg(call_sid))
    if not value:
        return None
    hold_id, specialist_id = value.decode().split(":")
    return int(hold_id), int(specialist_id)


def cut_off_from(r: redis.Redis, hold: Hold) -> int | None:
    """The specialist this caller was cut off from in the last minute, if any."""
    value = r.get(Keys.cut_off(hold.id))
    return int(value) if value else None


def forget_cut_off(r: redis.Redis, hold: Hold, specialist_id: int) -> None:
    r.delete(Keys.cut_off(hold.id), Keys.rejoin(specialist_id))


def offer_status(db: Session, r: redis.Redis, hold: Hold | None, specialist_id: int, form: dict) -> None:
    """A specialist's offer call ended (its status callback): free them, and ring others if the caller waits."""
    status = form.get("CallStatus", "")
    if hold is None or status not in TERMINAL_STATUSES:
        return
    current = r.hget(Keys.offers(hold.id), str(specialist_id))
    if current is not None and form.get("CallSid") and current.decode() != form["CallSid"]:
        # An older leg of theirs for this caller (rung to rejoin, then they called in): their current leg frees them.
        calls.record_event(db, hold.call, "offer_leg_status", specialist_id=specialist_id, status=status,
                           duration=form.get("CallDuration"), superseded=True)
        return
    r.hdel(Keys.offers(hold.id), str(specialist_id))
    r.hdel(Keys.offer_times(hold.id), str(specialist_id))
    calls.record_event(db, hold.call, "offer_leg_status", specialist_id=specialist_id, status=status,
                       duration=form.get("CallDuration"))
    # Written before the release below, so the timeline never shows their next offer ahead of this call's end
    # (a bare flush would leave the event pending: no row changed).
    flush_with_events(db)
    holder = routing.offer_holder(hold.id)
    if hold.specialist_id == specialist_id:
        if hold.status == holds.CONNECTING:
            specialist_gone(db, r, hold, specialist_id, f"specialist leg ended: {status}")
        routing.release_specialist(r, specialist_id, holder)  # back of the idle queue after a conversation
    else:
        # Rung but not connected (missed, passed, or cancelled for someone faster): free, and keep their place.
        routing.release_specialist(r, specialist_id, holder, keep_place=True)
    if hold.status == holds.WAITING:
        dispatch_after_commit(db, r)


# --- the callback offer, messages, and the end of a call -----------------------------------------------------


def case_summary(call: Call, waited: str | None = None) -> str:
    """The sentence a specialist hears before calling someone back: what, who, where, and how long ago."""
    category = CATEGORY_LABELS.get(call.category or "other", "something else")
    parts = [f"Mediation line call about {category}."]
    if call.language != "en":
        parts.append(f"The caller speaks {languages.of(call.language).name}.")
    parts.append(f"Caller: {call.caller_name or 'name not given'}.")
    parts.append(f"Location: {call.location or 'not given'}.")
    if waited:
        parts.append(f"They asked for help {waited}.")
    return " ".join(parts)


def whisper_twiml(summary: str, answer_url: str) -> str:
    """The specialist's offer of a callback: one key, then the action URL."""
    response = VoiceResponse()
    gather = response.gather(
        input="dtmf", num_digits=1, timeout=8, action=answer_url, method="POST", action_on_empty_result=True
    )
    say(gather, summary, "en")
    say(response, "No answer. We will offer the call to someone else.", "en")
    response.hangup()
    return str(response)
