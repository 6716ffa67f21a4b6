"""The intake IVR as plain functions: a call's state and the caller's input in, the next TwiML out."""

from __future__ import annotations

import re

import redis
from flask import current_app
from sqlalchemy.orm import Session
from twilio.twiml.voice_response import VoiceResponse

from voice import bridge, calls, phones
from voice.models import Call
from voice.script import CATEGORIES, MESSAGES, ORDER, STEPS, WINDOWS, Step
from voice.twiml import SPEECH_LANGUAGE, dial_dispatch, say, webhook_url

TEXT_LIMITS = {"name": 200, "location": 300, "description": 2000}


def fill(text: str, call: Call | None = None, **extra: str) -> str:
    config = current_app.config
    values = {
        "program": config["PROGRAM_NAME"],
        "program_es": config["PROGRAM_NAME_ES"],
        "hours": config["PROGRAM_HOURS"] if not call or call.language != "es" else config["PROGRAM_HOURS_ES"],
        "line": phones.spoken(config["TWILIO_PHONE_NUMBER"], config["DEFAULT_REGION"]),
    }
    values.update(extra)
    return text.format(**values)


def usable_caller_id(call: Call) -> str | None:
    """The caller ID, if it can be called back (a 911 transfer may show dispatch's own number)."""
    config = current_app.config
    number = phones.to_e164(call.from_number, config["DEFAULT_REGION"])
    if number in {config["DISPATCH_TRANSFER_NUMBER"], config["TWILIO_PHONE_NUMBER"]}:
        return None
    return number


def begin(db: Session, call_sid: str, from_number: str, to_number: str) -> str:
    """The first answer to a new call: log it and ask the first question."""
    call = calls.start_call(db, call_sid, from_number, to_number)
    if call.step is None:
        return finished(call)
    return ask(call, call.step, attempt=1)


def ask(call: Call, step_name: str, attempt: int) -> str:
    """TwiML that asks one question; silence comes back to the same step as the next attempt."""
    if step_name == "callback_number" and usable_caller_id(call) is None:
        step_name = "callback_number_new"
    step = STEPS[step_name]
    call.step = step_name
    response = VoiceResponse()
    action = webhook_url(f"/voice/intake/{step_name}", call=call.call_sid, attempt=attempt)
    gather_args = {
        "input": step.input,
        "action": action,
        "method": "POST",
        "timeout": step.timeout,
        "action_on_empty_result": True,
    }
    if step.num_digits:
        gather_args["num_digits"] = step.num_digits
    if step.finish_on_key:
        gather_args["finish_on_key"] = step.finish_on_key
    if "speech" in step.input:
        gather_args["language"] = SPEECH_LANGUAGE[call.language]
        gather_args["speech_timeout"] = "auto"
        if step.hints.get(call.language):
            gather_args["hints"] = step.hints[call.language]
    gather = response.gather(**gather_args)
    if attempt > 1:
        say(gather, step.retry[call.language], call.language)
    if step_name == "language":
        # Both languages are offered before we know which one the caller speaks.
        say(gather, fill(step.prompt["en"]), "en")
        say(gather, fill(step.prompt["es"]), "es")
    else:
        number = phones.spoken(usable_caller_id(call), current_app.config["DEFAULT_REGION"])
        say(gather, fill(step.prompt[call.language], call, number=number), call.language)
    # If Twilio ever falls through the Gather, the same step hears it as silence.
    response.redirect(action, method="POST")
    return str(response)


def answer(db: Session, r: redis.Redis, call: Call, step_name: str, attempt: int, digits: str, speech: str) -> str:
    """Take the caller's answer to `step_name`, store it, and return what they hear next."""
    if step_name not in STEPS:
        step_name = call.step or "language"
    if call.step is None:
        return finished(call)
    step = STEPS[step_name]
    digits = re.sub(r"[^0-9*#]", "", digits or "")[:32]
    speech = calls.clean_text(speech, 2000) or ""
    value = interpret(step, call, digits, speech)
    calls.record_event(
        db, call, "intake_answer", step=step_name, attempt=attempt, digits=digits or None,
        speech=speech or None, understood=value is not None,
    )
    if value is None:
        if attempt < step.tries:
            return ask(call, step_name, attempt + 1)
        value = default_for(call, step_name)
        calls.record_event(db, call, "intake_default", step=step_name, value=value)
    return apply(db, r, call, step_name, value)


def interpret(step: Step, call: Call, digits: str, speech: str) -> str | None:
    """What the caller meant, as the value stored for this step; None if silent or invalid."""
    region = current_app.config["DEFAULT_REGION"]
    if step.name == "language":
        if not digits and speech:
            said = speech.lower()
            if "espa" in said or "spanish" in said:
                return "es"
            if "english" in said or "ingl" in said:
                return "en"
        return {"1": "en", "2": "es"}.get(digits[:1])
    if step.name == "safety":
        key = digits[:1]
        if not key and speech:
            words = re.findall(r"\w+", speech.lower())
            choices = step.spoken_choices.get(call.language, {})
            keys = {choices[w] for w in words if w in choices}
            # "no, yes" or anything unclear counts as not understood and is asked again.
            key = keys.pop() if len(keys) == 1 else ""
        return {"1": "danger", "2": "safe"}.get(key)
    if step.name == "category":
        choice = CATEGORIES.get(digits[:1])
        return choice[0] if choice else None
    if step.name in TEXT_LIMITS:
        return calls.clean_text(speech, TEXT_LIMITS[step.name])
    if step.name == "callback_number":
        if digits.rstrip("#") == "1":
            return usable_caller_id(call)
        return phones.to_e164(digits.rstrip("#"), region) if len(digits.rstrip("#")) >= 10 else None
    if step.name == "callback_number_new":
        return phones.to_e164(digits.rstrip("#"), region) if len(digits.rstrip("#")) >= 10 else None
    if step.name == "preference":
        return {"1": "now", "2": "callback"}.get(digits[:1])
    if step.name == "window":
        choice = WINDOWS.get(digits[:1])
        return choice[0] if choice else None
    return None


def default_for(call: Call, step_name: str) -> str | None:
    """What a caller who never answers gets, so no one is trapped and everyone ends somewhere useful."""
    return {
        "language": "en",
        # Safety first: if we cannot confirm everyone is safe, a dispatcher decides.
        "safety": "no_answer",
        "category": "other",
        "callback_number": usable_caller_id(call),
        "preference": "now",
        "window": "asap",
    }.get(step_name)


def apply(db: Session, r: redis.Redis, call: Call, step_name: str, value: str | None) -> str:
    """Store one answer and move the call on."""
    if step_name == "language":
        call.language = value or "en"
    elif step_name == "safety":
        if value in {"danger", "no_answer"}:
            return escalate(db, call, reason="danger reported" if value == "danger" else "no answer to the safety question")
    elif step_name == "category":
        call.category = value
    elif step_name == "name":
        call.caller_name = value
    elif step_name == "location":
        call.location = value
    elif step_name in {"callback_number", "callback_number_new"}:
        call.callback_number = value
    elif step_name == "description":
        call.description = value
    elif step_name == "preference":
        if value == "callback":
            call.wants_callback = True
            return ask(call, "window", attempt=1)
        return bridge.connect_caller(db, r, call, attempt=1)
    elif step_name == "window":
        call.callback_window = value
        return bridge.offer_callback(db, r, call, reason="caller asked to be called back")
    return ask(call, next_step(step_name), attempt=1)


def next_step(step_name: str) -> str:
    if step_name == "callback_number_new":
        step_name = "callback_number"
    return ORDER[ORDER.index(step_name) + 1]


def escalate(db: Session, call: Call, reason: str) -> str:
    """Straight back to 911 dispatch."""
    call.step = None
    calls.set_outcome(db, call, calls.ESCALATED, reason=reason)
    response = VoiceResponse()
    key = "escalate" if reason == "danger reported" else "escalate_no_answer"
    say(response, MESSAGES[key][call.language], call.language)
    # Dispatch should see the caller's own number, as on the original 911 call.
    dial_dispatch(response, call.language, caller_id=phones.to_e164(call.from_number, current_app.config["DEFAULT_REGION"]))
    return str(response)


def finished(call: Call) -> str:
    """A late or repeated request for a call whose intake is over: end politely, change nothing."""
    response = VoiceResponse()
    say(response, fill(MESSAGES["after_bridge"][call.language], call), call.language)
    response.hangup()
    return str(response)
