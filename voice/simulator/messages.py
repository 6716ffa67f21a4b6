"""Texts on the simulated network: Twilio's default opt-out handling, and what becomes of each text sent.

Opt-out (https://help.twilio.com/hc/en-us/articles/223134027-Twilio-support-for-opt-out-keywords-SMS-STOP-filtering-,
https://www.twilio.com/docs/messaging/tutorials/advanced-opt-out): on a long code Twilio itself answers the
English keywords STOP, UNSUBSCRIBE, END, QUIT, STOPALL, REVOKE, OPTOUT and CANCEL, and from then on refuses to
send from that number to the one that opted out (21610) until it texts START, YES or UNSTOP; HELP and INFO get
Twilio's help reply. The text still reaches the app's webhook; OptOutType (STOP, START, HELP) is added only
when Advanced Opt-Out is on (a Messaging Service), so it is off unless a test turns it on.

Delivery (https://www.twilio.com/docs/messaging/guides/outbound-message-status-in-status-callbacks): a text is
created `queued` (no callback for that), then `sent` or `failed`, then `delivered` or `undelivered`, each
posted to its StatusCallback with MessageStatus and, for failed or undelivered, ErrorCode.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from dataclasses import dataclass

from voice.simulator.people import Party

OPT_OUT = {"STOP", "UNSUBSCRIBE", "END", "QUIT", "STOPALL", "REVOKE", "OPTOUT", "CANCEL"}
OPT_IN = {"START", "YES", "UNSTOP"}
HELP = {"HELP", "INFO"}
REPLIES = {
    "STOP": "You have successfully been unsubscribed. You will not receive any more messages from this number. "
            "Reply START to resubscribe.",
    "START": "You have successfully been re-subscribed to messages from this number. Reply HELP for help. "
             "Reply STOP to unsubscribe. Msg&Data Rates May Apply.",
    "HELP": "Reply STOP to unsubscribe. Msg&Data Rates May Apply.",
}
# https://www.twilio.com/docs/api/errors/{code}
ERRORS = {
    21610: "Attempt to send to unsubscribed recipient",
    30003: "Unreachable destination handset",
    30005: "Unknown destination handset",
    30006: "Landline or unreachable carrier",
    30007: "Message filtered",
    30034: "Message from an Unregistered Number",
}


@dataclass(frozen=True)
class Outcome:
    """What becomes of a text: the statuses it goes through after `queued`, and the error at the end, if any."""

    statuses: tuple[str, ...]
    error_code: int | None = None


DELIVERED = Outcome(("sent", "delivered"))


def keyword(body: str) -> str | None:
    """The opt-out kind ("STOP", "START", "HELP") of a text that is one of Twilio's keywords, else None."""
    word = body.strip().upper()
    if word in OPT_OUT:
        return "STOP"
    if word in OPT_IN:
        return "START"
    if word in HELP:
        return "HELP"
    return None


class Messaging:
    """Who has opted out of which of the account's numbers, Twilio's own replies, and injected delivery failures."""

    def __init__(self, network: Mapping[str, Party]):
        self.network = network
        # Advanced Opt-Out (a Messaging Service): adds OptOutType to the webhook.
        self.advanced_opt_out = False
        # (account's number, handset) pairs Twilio will not text.
        self.opted_out: set[tuple[str, str]] = set()
        # Texts Twilio itself sent in answer to a keyword: {"to", "from", "body"}.
        self.auto_replies: list[dict] = []
        self._failures_to: dict[str, Outcome] = {}
        self._unregistered: set[str] = set()
        self._lock = threading.Lock()

    def receive(self, from_number: str, to_number: str, body: str) -> str | None:
        """A text from a handset to the account's `to_number`: Twilio's keyword handling; returns its kind."""
        kind = keyword(body)
        if kind is None:
            return None
        with self._lock:
            if kind == "STOP":
                self.opted_out.add((to_number, from_number))
            elif kind == "START":
                self.opted_out.discard((to_number, from_number))
            self.auto_replies.append({"to": from_number, "from": to_number, "body": REPLIES[kind]})
        return kind

    def refuses(self, from_number: str, to_number: str) -> bool:
        """Whether Twilio refuses to text `to_number` from `from_number` (it opted out): error 21610."""
        with self._lock:
            return (from_number, to_number) in self.opted_out

    def replies_to(self, number: str) -> list[str]:
        """The bodies of Twilio's own replies to `number`, in order."""
        with self._lock:
            return [reply["body"] for reply in self.auto_replies if reply["to"] == number]

    def fail_texts_to(self, number: str, code: int = 30003, status: str = "undelivered") -> None:
        """Every text to `number` ends `status` ("undelivered" after "sent", or "failed") with error `code`."""
        if status not in ("undelivered", "failed"):
            raise ValueError(f"status must be undelivered or failed, not {status}")
        with self._lock:
            self._failures_to[number] = Outcome(("sent", "undelivered") if status == "undelivered" else ("failed",), code)

    def unregistered_sender(self, number: str) -> None:
        """`number` is an unregistered US 10DLC sender: its texts are undelivered, 30034."""
        with self._lock:
            self._unregistered.add(number)

    def outcome(self, from_number: str, to_number: str) -> Outcome:
        """What becomes of a text from `from_number` to `to_number`."""
        with self._lock:
            if from_number in self._unregistered:
                return Outcome(("sent", "undelivered"), 30034)
            injected = self._failures_to.get(to_number)
        if injected is not None:
            return injected
        party = self.network.get(to_number)
        if party is not None and not party.receives_texts:
            return Outcome(("sent", "undelivered"), 30006)
        return DELIVERED
