"""Shared TwiML pieces: absolute webhook URLs, speaking in the caller's language, the way back to dispatch."""

from __future__ import annotations

from urllib.parse import urlencode

from flask import current_app
from twilio.twiml.voice_response import VoiceResponse

from voice import languages
from voice.script import DISPATCH_UNREACHABLE

FAULT_MESSAGE = {
    "en": "We are sorry, the mediation line is having a technical problem. Connecting you back to dispatch now.",
    "es": "Lo sentimos, la línea de mediación tiene un problema técnico. Le estamos comunicando con la central de emergencias.",
}


def webhook_url(path: str, **params: object) -> str:
    """The absolute URL Twilio will request (and sign) for one of our webhooks."""
    url = current_app.config["PUBLIC_BASE_URL"] + path
    clean = {k: v for k, v in params.items() if v is not None}
    return f"{url}?{urlencode(clean)}" if clean else url


def say(node, text: str, language: str) -> None:
    """Speak `text` in `language` with its voice (node is a response or a Gather)."""
    spoken = languages.of(language)
    node.say(text, voice=spoken.voice, language=spoken.say_language)


def hangup(text: str | None = None, language: str = "en") -> str:
    """A few words (or none), then hang up: the end of every leg that has nothing more to do."""
    response = VoiceResponse()
    if text:
        say(response, text, language)
    response.hangup()
    return str(response)


def dial_dispatch(response: VoiceResponse, language: str, caller_id: str | None = None) -> VoiceResponse:
    """Send the caller back to 911 dispatch; the last step of every danger and fault path."""
    dial = response.dial(caller_id=caller_id) if caller_id else response.dial()
    dial.number(current_app.config["DISPATCH_TRANSFER_NUMBER"])
    say(response, languages.of(language).prompts["dispatch_unreachable"], language)
    return response


def fault_response(dispatch_number: str, voice_en: str, voice_es: str) -> str:
    """TwiML for when we cannot serve the call; needs neither Redis nor the database (nor an app)."""
    response = VoiceResponse()
    response.say(FAULT_MESSAGE["en"], voice=voice_en, language="en-US")
    response.say(FAULT_MESSAGE["es"], voice=voice_es, language="es-US")
    response.dial().number(dispatch_number)
    response.say(DISPATCH_UNREACHABLE["en"], voice=voice_en, language="en-US")
    response.say(DISPATCH_UNREACHABLE["es"], voice=voice_es, language="es-US")
    return str(response)
