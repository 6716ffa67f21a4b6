"""Shared TwiML pieces: absolute webhook URLs, speaking in the caller's language, the way back to dispatch."""

from __future__ import annotations

from urllib.parse import urlencode

from flask import current_app
from twilio.twiml.voice_response import VoiceResponse

SPEECH_LANGUAGE = {"en": "en-US", "es": "es-US"}

# Said after the Dial to dispatch ends: if dispatch was busy or the transfer failed, the caller still knows what to do.
DISPATCH_UNREACHABLE = {
    "en": "If you did not reach dispatch, please hang up and dial 9 1 1 now.",
    "es": "Si no pudo comunicarse con la central, cuelgue y marque el 9 1 1 ahora.",
}

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
    """Speak `text` in `language` with the configured voice (node is a response or a Gather)."""
    config = current_app.config
    voice = config["VOICE_ES"] if language == "es" else config["VOICE_EN"]
    node.say(text, voice=voice, language=SPEECH_LANGUAGE.get(language, "en-US"))


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
    say(response, DISPATCH_UNREACHABLE[language], language)
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
