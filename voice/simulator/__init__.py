"""A stand-in for Twilio and the phone network, for tests, the demo and `scripts/simulate_call.py`."""

from voice.simulator.phone import (
    HANGUP,
    CallRecord,
    CallStateError,
    Dispatcher,
    FlaskTransport,
    HttpTransport,
    InteractiveCaller,
    Leg,
    Party,
    ScriptedCaller,
    SimulatedPhone,
    SpecialistPhone,
)

__all__ = [
    "HANGUP",
    "CallRecord",
    "CallStateError",
    "Dispatcher",
    "FlaskTransport",
    "HttpTransport",
    "InteractiveCaller",
    "Leg",
    "Party",
    "ScriptedCaller",
    "SimulatedPhone",
    "SpecialistPhone",
]
