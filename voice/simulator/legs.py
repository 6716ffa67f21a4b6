"""Call legs and what the simulator keeps of them: the record of a call, its live state, and the signals a
leg's thread raises when something outside (the REST API, the network, the other party) changes its course."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import urljoin

from voice.simulator.people import Party

if TYPE_CHECKING:  # types only: queues and conferences import this module
    from voice.simulator.conferences import Participant
    from voice.simulator.queues import Bridge, Member


def new_sid(prefix: str = "CA") -> str:
    return prefix + uuid.uuid4().hex


def resolve(base: str, url: str | None) -> str | None:
    """A relative URL in TwiML is relative to the document's own URL, as in a browser."""
    return urljoin(base, url) if url else None



@dataclass
class Exchange:
    url: str
    params: dict
    status: int
    seconds: float
    body: str


@dataclass
class CallRecord:
    call_sid: str
    transcript: list[tuple[str, str]] = field(default_factory=list)
    exchanges: list[Exchange] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    bridged_with: list[str] = field(default_factory=list)
    ended_by: str = ""
    # How Twilio would report the call: completed, or busy / no-answer / canceled for an outbound call.
    status: str = "completed"
    # Called with each line as it happens (the demo prints the conversation live).
    echo: Callable[[str, str], None] | None = None
    # (phone-clock seconds, label): "answered", "dispatch", "specialist", "said:<first 40 chars>", ...
    marks: list[tuple[float, str]] = field(default_factory=list)
    # The leg's clock (set by the phone); marks are taken on it.
    clock: Callable[[], float] = lambda: 0.0
    # A test that causes a fault on purpose sets this, so hearing the fault message is not a problem.
    expect_fault: bool = False

    def say(self, who: str, text: str) -> None:
        self.transcript.append((who, text))
        if self.echo is not None:
            self.echo(who, text)

    def mark(self, label: str) -> None:
        """Note the phone-clock time of an event (a benchmark finds it again with `first_mark`)."""
        self.marks.append((self.clock(), label))

    def first_mark(self, prefix: str) -> float | None:
        """Clock time of the first mark starting with `prefix`, or None."""
        return next((at for at, label in self.marks if label.startswith(prefix)), None)

    def problem(self, text: str) -> None:
        if text not in self.problems:
            self.problems.append(text)

    def text(self) -> str:
        return "\n".join(f"{who:>14}: {what}" for who, what in self.transcript)

    def heard(self, who: str = "caller") -> str:
        """Everything spoken to `who`, as one string (for assertions)."""
        return " ".join(what for w, what in self.transcript if w == f"to {who}")


@dataclass(frozen=True)
class Inline:
    """TwiML given inline (the REST API's Twiml= parameter) rather than fetched from a URL."""

    twiml: str


@dataclass(eq=False)
class Leg:
    """One live call leg: who is on it, its status, its clock and what the REST API has asked of it."""

    sid: str
    from_number: str
    to_number: str
    party: Party
    direction: str
    parent_sid: str | None = None
    status: str = "queued"
    record: CallRecord | None = None
    # Seconds on this leg's own clock (used when time_scale is 0).
    counted: float = 0.0
    # ("redirect", target) | ("hangup",) | ("cancel",) | ("drop",) | ("party-hangup",), set by update_call, drop
    # or hang_up, acted on at the next check.
    control: tuple | None = None
    # What to run on answer, when a not-yet-answered call is redirected.
    answer_target: object | None = None
    member: Member | None = None
    bridge: Bridge | None = None
    participant: Participant | None = None
    started_at: datetime = field(default_factory=lambda: datetime.now(UTC))
    ended_at: datetime | None = None
    wake: threading.Event = field(default_factory=threading.Event)
    ended: threading.Event = field(default_factory=threading.Event)
    request_limit: int = 0
    # Parameters Twilio adds to every request about this call (ForwardedFrom, CallerName, AnsweredBy).
    extra_params: dict[str, str] = field(default_factory=dict)
    # Clock time the party picked up, and when they will hang up of their own accord (None: never).
    answered_clock: float = 0.0
    hangup_at: float | None = None
    # (clock time, action) to run on this leg's thread once its clock reaches the time (an async AMD result).
    events: list[tuple[float, Callable[[], Any]]] = field(default_factory=list)
    answered_by: str | None = None
    # Milliseconds the call waited in the account's outbound queue (calls per second) before it was placed.
    queue_time_ms: int = 0

    @property
    def number(self) -> str:
        """The number of the person on this leg (the caller on an inbound leg, the called party otherwise)."""
        return self.from_number if self.direction == "inbound" else self.to_number


class Redirected(Exception):  # noqa: N818 (a signal, not an error)
    def __init__(self, target):
        super().__init__("redirected")
        self.target = target


class HungUpByApi(Exception):  # noqa: N818
    pass


class Canceled(Exception):  # noqa: N818
    pass


class Dequeued(Exception):  # noqa: N818
    pass


class CallStateError(Exception):
    """An update Twilio refuses: the call is not in progress (21220)."""


class Disconnected(Exception):  # noqa: N818 (a signal, not an error)
    """The far end went away: `how` is "party-hangup" (they hung up) or "dropped" (the network lost them)."""

    def __init__(self, how: str):
        super().__init__(how)
        self.how = how


class TwiMLError(Exception):
    """The app returned something Twilio would reject, or the call looped."""
