"""The data dictionary of both exports: each field, its type, its meaning and its allowed values.

docs/data-dictionary.md says the same in words a city's data team reads; a test keeps the two in step, and the
exports' own headers in step with these lists.
"""

from __future__ import annotations

from dataclasses import dataclass

from voice.casework import cases
from voice.languages import ISO_639_1
from voice.line import callbacks, calls
from voice.script import CATEGORY_LABELS

ANSWERED = ("live", "callback", "returned_to_911", "waiting", "never")
ABANDONED = ("before_hold", "during_hold")
CALLBACK_STATES = ("reached_first_try", "reached_later", "unreachable", "cancelled", "open")
CASE_OUTCOMES = ("resolved_by_phone", "resolved_in_person", "referred", "declined", "no_contact",
                 "no_further_action", "open")
RETURNED = (*calls.RETURN_REASONS, "other")
BOOLEAN = ("true", "false")
# English and Spanish first, then every other two-letter code a program may add (LANGUAGE_FILES).
LANGUAGE_CODES = ("en", "es", *sorted(ISO_639_1 - {"en", "es"}))


@dataclass(frozen=True)
class Field:
    name: str
    type: str  # text, integer, boolean, datetime
    meaning: str
    # The only values it takes besides empty; None: any value of its type.
    allowed: tuple[str, ...] | None = None


OPEN_DATA: tuple[Field, ...] = (
    Field("started_hour", "datetime", "When the call started, in the program's time zone, rounded down to the hour "
          "(ISO 8601 with the UTC offset)."),
    Field("source", "text", "Where the call came from: a 911 transfer, a dispatcher's warm handoff, the public line, "
          "or the program's own follow-up call.", calls.SOURCES),
    Field("language", "text", "The language the caller chose: en, es, or a language the program added "
          "(its ISO 639-1 code).", LANGUAGE_CODES),
    Field("category", "text", "The kind of problem the caller chose.", tuple(CATEGORY_LABELS)),
    Field("outcome", "text", "How the call itself ended.", calls.OUTCOMES),
    Field("answered", "text", "Whether a person answered: live, by a callback, sent back to 911 before anyone "
          "answered, still waiting for a callback, or never.", ANSWERED),
    Field("seconds_to_person", "integer", "Seconds from the call's start until the caller talked with a specialist "
          "(live or by callback); empty if they never did."),
    Field("abandoned", "text", "For a caller who hung up before reaching anyone: before holding, or while holding.",
          ABANDONED),
    Field("seconds_before_hangup", "integer", "For a caller who hung up before reaching anyone: seconds from the "
          "call's start until they hung up."),
    Field("returned_to_911", "text", "Why the call went back to 911, if it did.", RETURNED),
    Field("callback", "text", "The callback request of the call, if there was one.", CALLBACK_STATES),
    Field("referrals_given", "integer", "Services the specialist referred the caller to on this call."),
    Field("referrals_accepted", "integer", "Of those, how many the caller accepted."),
    Field("case_outcome", "text", "How the call's case ended, so far.", CASE_OUTCOMES),
    Field("repeat_call", "boolean", "Whether the call joined a case an earlier call had opened.", BOOLEAN),
    Field("area", "text", "The district (or ZIP code) of the place the caller gave; empty when it is not known or "
          "has fewer calls in the export than OPEN_DATA_MIN_CALLS."),
)

CALL_LOG: tuple[Field, ...] = (
    Field("call_sid", "text", "Twilio's identifier of the call (CA and 32 hex digits), or followup-... for the "
          "program's follow-up calls."),
    Field("started_at", "datetime", "When the call started, UTC (ISO 8601, Z)."),
    Field("from", "text", "The caller ID Twilio gave (E.164), or a withheld ID."),
    Field("callback_number", "text", "The number to call the caller back on (E.164)."),
    Field("language", "text", "The language the caller chose: en, es, or a language the program added "
          "(its ISO 639-1 code).", LANGUAGE_CODES),
    Field("category", "text", "The kind of problem the caller chose.", tuple(CATEGORY_LABELS)),
    Field("name", "text", "The caller's name as said or typed (personal data)."),
    Field("location", "text", "Where it is happening, as said or typed (personal data)."),
    Field("description", "text", "What is going on, in the caller's words (personal data)."),
    Field("outcome", "text", "How the call itself ended.", calls.OUTCOMES),
    Field("outcome_reason", "text", "Why, in words (may quote a number or a name)."),
    Field("specialist_name", "text", "The specialist who talked with the caller."),
    Field("specialist_phone", "text", "That specialist's phone (E.164)."),
    Field("connected_at", "datetime", "When the caller first talked with a specialist, UTC."),
    Field("ended_at", "datetime", "When the caller's call ended, UTC."),
    Field("disposition", "text", "How the specialist closed the call.", tuple(cases.DISPOSITION_WORDS)),
    Field("source", "text", "Where the call came from.", calls.SOURCES),
    Field("incident_number", "text", "The 911 center's incident number (CAD) for the call, when it gave one."),
    Field("escalation_reason", "text", "Why the call went back to 911, if it did.", calls.RETURN_REASONS),
    Field("case_id", "integer", "The case the call belongs to."),
    Field("zip_code", "text", "The ZIP code of the place the caller gave."),
)

# The callback request states the open-data export reads (a stored status outside these is left out).
CALLBACK_STATUSES = callbacks.STATUSES
