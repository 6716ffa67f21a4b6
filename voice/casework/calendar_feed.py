"""A specialist's visits as an iCalendar feed (RFC 5545, with the `icalendar` library)."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC

from icalendar import Calendar, Event

from voice.casework.visits import CANCELLED
from voice.models import Specialist, Visit


def ics(specialist: Specialist, visits: list[Visit], config: Mapping) -> bytes:
    calendar = Calendar()
    calendar.add("prodid", "-//mediation-line//visits//EN")
    calendar.add("version", "2.0")
    calendar.add("x-wr-calname", f"{config['PROGRAM_NAME']} visits: {specialist.name}")
    host = config["PUBLIC_BASE_URL"].split("://", 1)[-1].split("/", 1)[0]
    for visit in visits:
        event = Event()
        # One UID per visit and a SEQUENCE per version: a calendar app moves the event when it is rescheduled.
        event.add("uid", f"visit-{visit.id}@{host}")
        event.add("sequence", visit.version - 1)
        event.add("dtstamp", visit.updated_at.replace(tzinfo=UTC))
        event.add("dtstart", visit.starts_at.replace(tzinfo=UTC))
        event.add("dtend", visit.ends_at.replace(tzinfo=UTC))
        event.add("summary", f"Mediation visit (case {visit.case_id})")
        event.add("location", visit.address)
        team = ", ".join(m.specialist.name for m in visit.team)
        event.add("description", f"Team: {team}. Case {visit.case_id}.")
        event.add("status", "CANCELLED" if visit.status == CANCELLED else "CONFIRMED")
        calendar.add_component(event)
    return calendar.to_ical()
