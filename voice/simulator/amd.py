"""Answering machine detection: what Twilio concludes about whoever picks up, and how long it takes to say so.

https://www.twilio.com/docs/voice/answering-machine-detection and its FAQ
(https://www.twilio.com/docs/voice/answering-machine-detection-faq-best-practices): `Enable` answers as soon as
it can tell (a greeting longer than the speech threshold is a machine: `machine_start`); `DetectMessageEnd`
answers `human`, `fax` or `unknown` as soon as it knows, but for a machine waits for the greeting's end
(`machine_end_beep`, `machine_end_silence`, or `machine_end_other` when MachineDetectionTimeout comes first).
Initial silence longer than MachineDetectionSilenceTimeout is `unknown`. People say short greetings ("Hello?",
under 1.8 s), machines long ones (over 3 s); the defaults are a 2.4 s speech threshold, 1.2 s of silence to end
speech, 5 s of initial silence, a 30 s timeout.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from voice.simulator.people import BEEP_SECONDS, Party
from voice.simulator.timing import speaking_seconds

MODES = {"enable": "Enable", "detectmessageend": "DetectMessageEnd"}
# Seconds of a fax's answer tone before it is recognised (not documented; any short tone will do).
FAX_TONE_SECONDS = 2.0


class AmdError(ValueError):
    """A MachineDetection value Twilio does not know."""


@dataclass(frozen=True)
class AmdSettings:
    mode: str
    timeout: float = 30.0
    speech_threshold: float = 2.4
    speech_end_threshold: float = 1.2
    silence_timeout: float = 5.0
    # Synchronous detection holds the first TwiML request until it knows; asynchronous posts to `callback`.
    asynchronous: bool = False
    callback: str | None = None

    @classmethod
    def from_form(cls, form: Mapping[str, str], asynchronous: bool | None = None,
                  callback_field: str = "AsyncAmdStatusCallback") -> AmdSettings | None:
        """The REST API's MachineDetection parameters (None without MachineDetection); AmdError if it is unknown.

        `asynchronous` None reads AsyncAmd (the Calls API); the Participants API and <Number> always detect
        asynchronously (FAQ: "asynchronous by default and cannot be configured to behave otherwise").
        """
        mode = form.get("MachineDetection")
        if not mode:
            return None
        if mode.lower() not in MODES:
            raise AmdError(f"MachineDetection must be Enable or DetectMessageEnd, not {mode}")
        if asynchronous is None:
            asynchronous = (form.get("AsyncAmd") or "").lower() == "true"

        def seconds(name: str, default: float, per: float = 1.0) -> float:
            return float(form[name]) / per if form.get(name) else default

        return cls(MODES[mode.lower()], timeout=seconds("MachineDetectionTimeout", 30.0),
                   speech_threshold=seconds("MachineDetectionSpeechThreshold", 2.4, 1000),
                   speech_end_threshold=seconds("MachineDetectionSpeechEndThreshold", 1.2, 1000),
                   silence_timeout=seconds("MachineDetectionSilenceTimeout", 5.0, 1000),
                   asynchronous=asynchronous, callback=form.get(callback_field) or None)


def detect(party: Party, settings: AmdSettings) -> tuple[str, float]:
    """(AnsweredBy, seconds after pickup when Twilio knows it) for `party`."""
    if party.fax:
        return "fax", FAX_TONE_SECONDS
    greeting = speaking_seconds(party.greeting) if party.greeting else 0.0
    if greeting == 0:
        return "unknown", settings.silence_timeout
    if greeting <= settings.speech_threshold:
        return "human", greeting + settings.speech_end_threshold
    if settings.mode == "Enable":
        return "machine_start", settings.speech_threshold
    if party.greeting_beep:
        answered_by, at = "machine_end_beep", greeting + BEEP_SECONDS
    else:
        answered_by, at = "machine_end_silence", greeting + settings.speech_end_threshold
    if at > settings.timeout:
        # FAQ: machine_end_other "also happens when machine start is detected but MachineDetectionTimeout is
        # reached before the voicemail greeting finishes".
        return "machine_end_other", settings.timeout
    return answered_by, at
