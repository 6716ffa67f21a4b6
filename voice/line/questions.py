"""The questions a caller is asked: each prompt with its <Gather>, and what an answer means.

The bottom of the call flow: it asks and parses, and stores an answer on the call, but never decides where
the call goes next (the conversations in `intake` and `waiting` do).
"""

from __future__ import annotations

import re

from flask import current_app
from twilio.twiml.voice_response import VoiceResponse

from voice import languages, phones
from voice.casework import cases
from voice.line import calls
from voice.models import Call
from voice.script import ANOTHER_LANGUAGE, CATEGORIES, DISPATCH_KEY, STEPS, WINDOWS, Step
from voice.twiml import hangup, say, webhook_url

TEXT_LIMITS = {"name": 200, "location": 300, "description": 2000}
# What the greeting's answer is when the caller chose a language: this prefix and the language's code.
LANGUAGE_CHOICE = "language:"


def words(name: str, call: Call | None) -> str:
    """A prompt, message or phrase by name, in the caller's language (English before they chose one)."""
    return languages.of(call.language if call else "en").prompts[name]


def wait_words(minutes: int, call: Call | None) -> str:
    """A wait as a person says it in the caller's language ("about a minute", never "about 1 minutes")."""
    return words("wait_one_minute" if minutes <= 1 else "wait_minutes", call).format(minutes=minutes)


def fill(text: str, call: Call | None = None, **extra: str) -> str:
    config = current_app.config
    language = languages.of(call.language if call else "en")
    values = {
        # The program's name in the caller's language; Spanish prompts name it {program_es}, as they always have.
        "program": language.program_name,
        "program_es": config["PROGRAM_NAME_ES"],
        # Prompts end the sentence themselves ("We are open {hours}."): no "p.m.." twice.
        "hours": language.program_hours.rstrip("."),
    }
    if "{line}" in text:
        values["line"] = phones.spoken(config["TWILIO_PHONE_NUMBER"], config["DEFAULT_REGION"])
    values.update(extra)
    return text.format(**values)


def usable_caller_id(call: Call) -> str | None:
    """The caller ID, if it is the caller's own (not withheld, not the 911 center's) and the line may call it."""
    config = current_app.config
    number = calls.caller_id(call)
    return phones.callable_number(number, config["DEFAULT_REGION"], config["CALLBACK_COUNTRIES"]) if number else None


def gather_for(call: Call, step: Step, action: str, node: VoiceResponse) -> VoiceResponse:
    """A <Gather> for one question, with the step's input kinds, timeouts and speech hints.

    The same <Gather> is asked in the hold's waitUrl: the <Enqueue> page lets a waitUrl <Gather> take "dtmf and
    speech" (https://www.twilio.com/docs/voice/twiml/enqueue#attributes-wait-url), and keys must stay live there
    (0 reaches dispatch from any prompt). Were Twilio ever to refuse the document, the caller leaves the queue
    with QueueResult "error" and the Enqueue action puts them through to dispatch: a person either way.
    """
    args = {"input": step.input, "action": action, "method": "POST", "timeout": step.timeout,
            "action_on_empty_result": True}
    if step.num_digits:
        args["num_digits"] = step.num_digits
    if step.finish_on_key:
        args["finish_on_key"] = step.finish_on_key
    if "speech" in step.input:
        language = languages.of(call.language)
        args["language"] = language.speech_language
        hints = list(filter(None, language.hints.get(step.name, "").split(", ")))
        if step.name == "greeting":
            # The greeting listens in English: a caller may say the language they want by its English name.
            hints += [added.name for added in languages.catalogue().added()]
        if step.name in TEXT_LIMITS:
            args.update(free_text_speech(step.name))
            hints += current_app.config["STREET_HINTS"] if step.name == "location" else []
        else:
            # A yes or no: the first pause ends it, so nobody waits after a one-word answer.
            args["speech_timeout"] = "auto"
        if hints:
            args["hints"] = ", ".join(hints)
    return node.gather(**args)


def free_text_speech(step_name: str) -> dict[str, str]:
    """Speech settings for a name, a place or a description: a caller may pause mid-answer without being cut off.

    https://www.twilio.com/docs/voice/twiml/gather#speechtimeout: "auto" ends at the first pause ("twelve
    hundred... Salem Avenue" would end after "twelve hundred"); a number waits that many seconds of silence. A
    numeric speechTimeout is also what Twilio asks for with a speechModel (https://www.twilio.com/docs/api/errors/13335).
    `enhanced` applies only to the phone_call model (https://www.twilio.com/docs/api/errors/13339).
    """
    config = current_app.config
    args = {"speech_timeout": str(config["SPEECH_PAUSE_SECONDS"]), "speech_model": config["SPEECH_MODEL"]}
    if config["SPEECH_MODEL"] == "phone_call":
        args["enhanced"] = "true"
    return args


def step_for(call: Call, step_name: str) -> str:
    if step_name == "callback_number" and usable_caller_id(call) is None:
        return "callback_number_new"
    return step_name


def question(call: Call, step_name: str, attempt: int, action: str, response: VoiceResponse,
             retry: str | None = None) -> VoiceResponse:
    """Add one question to `response`: the Gather and its words (the `retry` phrase, by name, after a miss)."""
    step = STEPS[step_name]
    gather = gather_for(call, step, action, response)
    if attempt > 1:
        say(gather, words(retry or step.retry, call), call.language)
    if step_name == "greeting":
        # Every language is offered, each in its own voice, before we know which one the caller speaks (one
        # sentence each: English and Spanish, then the program's own); danger comes straight after.
        english = languages.of("en")
        say(gather, fill(english.greeting), "en")
        for offered in languages.catalogue().offered():
            say(gather, offered.greeting, offered.code)
        if current_app.config["ANOTHER_LANGUAGE_KEY"]:
            # Only where the program set the key: everyone else's greeting stays as short.
            say(gather, ANOTHER_LANGUAGE.format(key=current_app.config["ANOTHER_LANGUAGE_KEY"]), "en")
        say(gather, english.prompts["safety"], "en")
    else:
        prompt = words(step_name, call)
        # Parsing the caller ID is only worth it for the one prompt that says it.
        number = phones.spoken(usable_caller_id(call), current_app.config["DEFAULT_REGION"]) if "{number}" in prompt else ""
        say(gather, fill(prompt, call, number=number), call.language)
    return response


def ask(call: Call, step_name: str, attempt: int, response: VoiceResponse | None = None,
        retry: str | None = None) -> VoiceResponse:
    """TwiML that asks one question of the intake; silence comes back to the same step as the next attempt."""
    step_name = step_for(call, step_name)
    call.step = step_name
    response = response or VoiceResponse()
    action = webhook_url(f"/voice/intake/{step_name}", call=call.call_sid, attempt=attempt)
    question(call, step_name, attempt, action, response, retry=retry)
    # If Twilio ever falls through the Gather, the same step hears it as silence.
    response.redirect(action, method="POST")
    return response


def clean_input(digits: str, speech: str) -> tuple[str, str]:
    return re.sub(r"[^0-9*#]", "", digits or "")[:32], calls.clean_text(speech, 2000) or ""


def interpret(step: Step, call: Call, digits: str, speech: str) -> str | None:
    """What the caller meant, as the value stored for this step; None if silent or invalid."""
    config = current_app.config
    key = digits.rstrip("#")
    if key == DISPATCH_KEY:
        return "dispatch"
    if step.name in ("greeting", "safety"):
        if step.name == "greeting" and key and key[:1] == config["ANOTHER_LANGUAGE_KEY"]:
            return "another_language"
        if step.name == "greeting" and (chosen := chosen_language(key, speech)) is not None:
            return LANGUAGE_CHOICE + chosen
        if not key and speech:
            heard = re.findall(r"\w+", speech.lower())
            choices = languages.of(call.language).spoken_choices.get(step.name, {})
            keys = {choices[w] for w in heard if w in choices}
            # "no, yes" or anything unclear counts as not understood and is asked again.
            key = keys.pop() if len(keys) == 1 else ""
            if key == DISPATCH_KEY:
                return "dispatch"
        return {"1": "danger", "2": "safe"}.get(key[:1])
    if step.name == "category":
        choice = CATEGORIES.get(key[:1])
        return choice[0] if choice else None
    if step.name in TEXT_LIMITS:
        return calls.clean_text(speech, TEXT_LIMITS[step.name])
    if step.name in ("callback_number", "callback_number_new"):
        if step.name == "callback_number" and key == "1":
            return usable_caller_id(call)
        if len(key) < 10:
            return None
        number = phones.callable_number(key, config["DEFAULT_REGION"], config["CALLBACK_COUNTRIES"])
        # The line's own number, dispatch or the 911 center keyed as "mine" would call the wrong people back.
        return number if phones.is_caller_number(number, config) else None
    if step.name == "window":
        choice = WINDOWS.get(key[:1])
        return choice[0] if choice else None
    return None


def chosen_language(key: str, speech: str) -> str | None:
    """The language the caller chose at the greeting (its key, or its name said), if they chose one."""
    catalogue = languages.catalogue()
    if key:
        return next((offered.code for offered in catalogue.offered() if offered.key == key), None)
    said = speech.lower()
    return next((offered.code for offered in catalogue.offered() if any(w in said for w in offered.said_as)), None)


def refusal_words(step_name: str, digits: str) -> str | None:
    """A keyed number that is a real number the line will not call (abroad, premium) gets its own words."""
    if step_name not in ("callback_number", "callback_number_new") or len(digits.rstrip("#")) < 10:
        return None
    config = current_app.config
    check = phones.check_callable(digits.rstrip("#"), config["DEFAULT_REGION"], config["CALLBACK_COUNTRIES"])
    return "not_allowed" if check.refusal in (phones.Refusal.COUNTRY, phones.Refusal.KIND) else None


def default_for(call: Call, step_name: str) -> str | None:
    """What a caller who never answers gets, so no one is trapped and everyone ends somewhere useful."""
    return {
        # Safety first: if we cannot confirm everyone is safe, a dispatcher decides.
        "greeting": "no_answer",
        "safety": "no_answer",
        "category": "other",
        "callback_number": usable_caller_id(call),
        "window": "asap",
    }.get(step_name)


def store_answer(call: Call, step_name: str, value: str | None) -> None:
    if step_name == "name":
        call.caller_name = value
    elif step_name == "location":
        call.location = value
        cases.note_location(call)
    elif step_name in {"callback_number", "callback_number_new"}:
        call.callback_number = value
    elif step_name == "description":
        call.description = value
    elif step_name == "window":
        call.callback_window = value


def already_answered(call: Call, step_name: str) -> bool:
    value = {"name": call.caller_name, "location": call.location, "callback_number": call.callback_number,
             "description": call.description, "window": call.callback_window}.get(step_name)
    return value is not None


def finished(call: Call) -> str:
    """A late or repeated request for a call whose intake is over: end politely, change nothing."""
    return hangup(fill(words("after_bridge", call), call), call.language)
