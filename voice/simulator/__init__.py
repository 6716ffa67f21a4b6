"""A stand-in for Twilio and the phone network, for tests, the demo and `scripts/simulate_call.py`."""

from voice.simulator.legs import CallRecord, CallStateError, Leg
from voice.simulator.people import (
    HANGUP,
    WITHHELD_CALLER_IDS,
    Dispatcher,
    FaxMachine,
    InteractiveCaller,
    Landline,
    Party,
    ScriptedCaller,
    SpecialistPhone,
    Voicemail,
)
from voice.simulator.phone import SimulatedPhone
from voice.simulator.transports import FlaskTransport, HttpTransport

__all__ = [
    "HANGUP",
    "WITHHELD_CALLER_IDS",
    "CallRecord",
    "CallStateError",
    "Dispatcher",
    "FaxMachine",
    "FlaskTransport",
    "HttpTransport",
    "InteractiveCaller",
    "Landline",
    "Leg",
    "Party",
    "ScriptedCaller",
    "SimulatedPhone",
    "SpecialistPhone",
    "Voicemail",
]
