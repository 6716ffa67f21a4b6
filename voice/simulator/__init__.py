"""A stand-in for Twilio and the phone network, for tests, the demo and `scripts/simulate_call.py`."""

from voice.simulator.phone import (
    HANGUP,
    CallRecord,
    Dispatcher,
    FlaskTransport,
    HttpTransport,
    InteractiveCaller,
    Party,
    ScriptedCaller,
    SimulatedPhone,
    SpecialistPhone,
)

__all__ = [
    "HANGUP",
    "CallRecord",
    "Dispatcher",
    "FlaskTransport",
    "HttpTransport",
    "InteractiveCaller",
    "Party",
    "ScriptedCaller",
    "SimulatedPhone",
    "SpecialistPhone",
]
