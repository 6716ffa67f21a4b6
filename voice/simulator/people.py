"""The people (and machines) on the line: who picks up, what they press or say, what they hear."""

from __future__ import annotations

from collections.abc import Callable, Iterable

from voice.simulator.timing import RING_SECONDS, speaking_seconds

HANGUP = "<hangup>"
# A voicemail box's tone after its greeting.
BEEP_SECONDS = 1.0
# Twilio translates a withheld caller ID into the keypad digits of its name (ANONYMOUS is +266696687):
# https://www.twilio.com/changelog/upcoming-changes-to-withheld-caller-ids-behavior-for-dial-calls
# The changelog names ANONYMOUS and RESTRICTED "e.g."; the others are the same keypad spelling of the names
# carriers send. Pass the alpha name itself (call_line("Anonymous", ...)) for what that change persists on
# <Dial> legs.
WITHHELD_CALLER_IDS = {
    "anonymous": "+266696687",
    "restricted": "+7378742833",
    "unavailable": "+86282452253",
    "blocked": "+2562533",
    "unknown": "+8656696",
}


class Party:
    """Someone who may pick up a phone. Subclasses decide what they press or say."""

    label = "someone"
    answers = True
    busy = False
    talk_seconds = 90
    # Ringing heard before they pick up (one ring cycle).
    answer_after = RING_SECONDS
    # What they say on picking up: what answering machine detection hears.
    greeting = "Hello?"
    greeting_beep = False
    fax = False
    # What they say in a conference once it has started, one line after another.
    lines: tuple[str, ...] = ()
    # A landline answers calls but never gets a text (Twilio: 30006).
    receives_texts = True
    # Seconds after answering when they hang up of their own accord (None: when the call ends).
    hangs_up_after: float | None = None
    # At the end of their talk in a conference whose <Dial hangupOnStar> allows it, they press * rather than
    # hang up (specialists end calls so; a dropped line or a hangup by mistake is `phone.drop` / `phone.hang_up`).
    ends_with_star = False

    def respond(self, prompt: str, kinds: set[str]) -> str | None:
        """What they press or say after hearing `prompt`; None is silence, HANGUP hangs up."""
        return None

    def record(self, prompt: str) -> int | None:
        """Seconds of message they leave after the beep, or None for nothing."""
        return None

    def hear(self, text: str, after_answer: float) -> None:
        """Something said to them, `after_answer` seconds after they picked up (voicemail records it)."""


class ScriptedCaller(Party):
    """A caller who answers each prompt with the next item: digits, words, None (silence) or HANGUP."""

    label = "caller"

    def __init__(self, inputs: Iterable[str | None] = (), message_seconds: int | None = 20, label: str = "caller",
                 talk_seconds: int | None = None, lines: Iterable[str] = ()):
        self.inputs = list(inputs)
        self.message_seconds = message_seconds
        self.label = label
        if talk_seconds is not None:
            self.talk_seconds = talk_seconds
        self.lines = tuple(lines)

    def respond(self, prompt: str, kinds: set[str]) -> str | None:
        return self.inputs.pop(0) if self.inputs else None

    def record(self, prompt: str) -> int | None:
        return self.message_seconds


class Landline(ScriptedCaller):
    """A caller on a landline: calls like anyone, but a text to the number is undelivered (30006)."""

    receives_texts = False


class InteractiveCaller(Party):
    """A person at the keyboard: they read each prompt and type keys or words (Enter alone is silence)."""

    def __init__(self, label: str = "you", ask: Callable[[str], str] = input):
        self.label = label
        self.ask = ask

    def respond(self, prompt: str, kinds: set[str]) -> str | None:
        if not prompt.strip():
            return None  # music on hold, nothing asked: no need to stop for the keyboard
        how = "keys or words" if "speech" in kinds else "keys"
        try:
            answer = self.ask(f"  [{self.label}: type {how}, Enter for silence, q to hang up] > ").strip()
        except EOFError:
            return HANGUP
        if answer.lower() == "q":
            return HANGUP
        return answer or None

    def record(self, prompt: str) -> int | None:
        answer = self.respond(prompt, {"speech"})
        return 15 if answer and answer != HANGUP else None


class SpecialistPhone(Party):
    """A specialist's phone: rings, maybe answers, hears the whisper and presses a key; ends a call with *."""

    label = "specialist"
    ends_with_star = True

    def __init__(self, name: str = "specialist", accept: str | None = "1", answers: bool = True,
                 busy: bool = False, talk_seconds: int = 240, lines: Iterable[str] = ()):
        self.label = name
        self.accept = accept
        self.answers = answers
        self.busy = busy
        self.talk_seconds = talk_seconds
        self.lines = tuple(lines)

    def respond(self, prompt: str, kinds: set[str]) -> str | None:
        return self.accept


class Dispatcher(Party):
    label = "911 dispatch"
    talk_seconds = 60


class Voicemail(Party):
    """A voicemail box: picks up after some rings, plays its greeting, beeps, then records all it hears.

    It presses nothing and says nothing. `heard` is everything said on the line after it picked up (what a
    test checks for names and addresses); `message` only what came after the beep (what the owner will hear).
    """

    def __init__(self, owner: str = "voicemail", rings: int = 4,
                 greeting: str = ("Hi, you have reached my phone. I can't take your call right now. "
                                  "Please leave a message after the tone."),
                 beep: bool = True, max_message_seconds: int = 120):
        self.label = owner
        self.answer_after = rings * RING_SECONDS
        self.greeting = greeting
        self.greeting_beep = beep
        self.talk_seconds = max_message_seconds
        self.hangs_up_after = self.message_starts + max_message_seconds
        self.heard: list[str] = []
        self.message: list[str] = []

    @property
    def message_starts(self) -> float:
        """Seconds after pickup when recording starts: the greeting, then the beep."""
        return speaking_seconds(self.greeting) + (BEEP_SECONDS if self.greeting_beep else 0.0)

    def hear(self, text: str, after_answer: float) -> None:
        self.heard.append(text)
        if after_answer >= self.message_starts:
            self.message.append(text)

    def recording(self) -> str:
        """The message left in the box, as one string."""
        return " ".join(self.message)


class FaxMachine(Party):
    """A fax line: answers with its tone and nothing else."""

    label = "fax machine"
    greeting = ""
    fax = True
