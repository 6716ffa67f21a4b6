"""The safety ladder's phone calls: what the coordinator, a backup or dispatch hears, and their 1 to acknowledge.

The call says the team, the address and how long since they checked in, then asks for 1. Nobody pressing
anything hears it once more; then the call ends with what happens next, and the ladder goes on by its timers
(voicemail never acknowledges). A 1 is recorded with who pressed it and when (`field_safety.acknowledge`).
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from sqlalchemy.orm import Session
from twilio.twiml.voice_response import VoiceResponse

from voice import durations, phones
from voice.casework import field_safety as safety
from voice.casework.field_texts import clock
from voice.models import SafetyAlert, SafetyContact
from voice.twiml import say, webhook_url

# The message is said this many times before the call ends without a 1.
TIMES = 2
GATHER_SECONDS = 8


def spoken_situation(alert: SafetyAlert, for_dispatch: bool = False) -> str:
    """What the alert is about, as a call says it: who, the address in full, how long ago in words."""
    visit = alert.visit
    name = alert.specialist.name if alert.specialist else "A team member"
    if alert.reason == safety.OVERDUE:
        staff = f"Two staff members, {safety.team_names(visit)}," if for_dispatch else safety.team_names(visit)
        return (f"{staff} went into a home at {visit.address} {durations.ago(visit.checked_in_at, spoken=True)} "
                "and have not answered.")
    if alert.reason == safety.SOS:
        since = f" They checked in {durations.ago(visit.checked_in_at, spoken=True)}." if visit.checked_in_at else ""
        if for_dispatch:
            return f"{name}, a staff member on a home visit at {visit.address}, sent an emergency signal.{since}"
        return f"{name} sent an emergency signal from a visit at {visit.address}.{since}"
    if visit is None:
        return f"{name} sent an emergency signal and is not on a visit. There is no visit on record."
    return (f"{name} sent an emergency signal and is not on a visit. Their last visit began "
            f"{durations.ago(visit.starts_at, spoken=True)}, at {visit.address}.")


def message(alert: SafetyAlert, contact: SafetyContact, config: Mapping) -> str:
    if contact.role == "dispatch":
        # Calling the line's own number back reaches its intake menu, not a person: give them the coordinator's.
        coordinators = config["SAFETY_COORDINATOR_NUMBERS"]
        reach = (f" To reach the program's coordinator, call {spoken_number(coordinators[0], config)}."
                 if coordinators else "")
        return (f"This is an automated safety call from the {config['PROGRAM_NAME']}, the city's mediation "
                f"response. {spoken_situation(alert, for_dispatch=True)} Please send a welfare check to "
                f"{alert.visit.address}.{reach}")
    return f"Safety alert from the {config['PROGRAM_NAME']}. {spoken_situation(alert)}"


def spoken_number(number: str, config: Mapping) -> str:
    """A phone number as text-to-speech should read it: digit by digit, in groups ("9 3 7, 5 5 5, 0 3 0 0")."""
    shown = phones.display(number, config["DEFAULT_REGION"])
    groups = [group for group in re.split(r"\D+", shown) if group]
    return ", ".join(" ".join(group) for group in groups)


def call_twiml(contact: SafetyContact | None, config: Mapping, attempt: int) -> str:
    """What the called person hears: the alert and "press 1", said again once if nobody presses anything."""
    response = VoiceResponse()
    if contact is None or contact.alert.closed_at is not None:
        say(response, "This safety alert from the mediation line has already ended. Goodbye.", "en")
        response.hangup()
        return str(response)
    alert = contact.alert
    ask = ("Press 1 to confirm you have this message." if contact.role == "dispatch"
           else "Press 1 to acknowledge. Then the line calls nobody else.")
    gather = response.gather(num_digits=1, timeout=GATHER_SECONDS, method="POST",
                             action=webhook_url("/voice/safety/ack", contact=contact.id, attempt=attempt))
    say(gather, f"{message(alert, contact, config)} {ask}", "en")
    # No key pressed: Twilio goes on to the verb after the <Gather> (https://www.twilio.com/docs/voice/twiml/gather).
    if attempt < TIMES:
        response.redirect(webhook_url("/voice/safety/call", contact=contact.id, attempt=attempt + 1), method="POST")
    else:
        _ending(response, contact)
    return str(response)


def _ending(response: VoiceResponse, contact: SafetyContact) -> None:
    """The safe end of a call nobody acknowledged: what happens next, then hang up (the ladder goes on)."""
    if contact.role == "dispatch":
        ending = f"Again, the address is {contact.alert.visit.address}. Goodbye."
    else:
        ending = "Nobody pressed 1, so the line goes on to the next contact. Look at the live board. Goodbye."
    say(response, ending, "en")
    response.hangup()


def answer_twiml(db: Session, contact: SafetyContact | None, config: Mapping, digits: str, attempt: int) -> str:
    """After a key: a 1 acknowledges (and says what to do now); anything else hears the alert again."""
    if contact is None or contact.alert.closed_at is not None:
        return call_twiml(contact, config, attempt)
    if digits != "1":
        response = VoiceResponse()
        say(response, "That was not 1.", "en")
        if attempt >= TIMES:
            _ending(response, contact)  # never a loop: a phone whose keys keep failing still hangs up
        else:
            response.redirect(webhook_url("/voice/safety/call", contact=contact.id, attempt=attempt + 1),
                              method="POST")
        return str(response)
    first = safety.acknowledge(db, contact, config)
    alert = contact.alert
    response = VoiceResponse()
    if contact.role == "dispatch":
        text = f"Thank you. The address is {alert.visit.address}. Goodbye."
    else:
        already = "" if first else (f" {alert.acknowledged_by} acknowledged first, at "
                                    f"{clock(alert.acknowledged_at, config)}.")
        where = f" The address is {alert.visit.address}." if alert.visit else ""
        text = (f"Thank you, you have acknowledged.{already} Call the team now; if you cannot reach them, call "
                f"9 1 1.{where} End the alert on the live board once you know they are safe.")
    say(response, text, "en")
    response.hangup()
    return str(response)
