"""The phone clock: how long things take in life, in seconds, and how long the simulator waits for them."""

from __future__ import annotations

from datetime import datetime
from email.utils import format_datetime

# Twilio gives up on a webhook that takes longer than this.
TWILIO_TIMEOUT_SECONDS = 15.0
RING_SECONDS = 6.0
KEY_PRESS_SECONDS = 1.5
SAY_WORDS_PER_MINUTE = 160
SPOKEN_WORDS_PER_SECOND = 2.5
GATHER_TIMEOUT_SECONDS = 5.0
# A caller who hesitates mid-answer ("twelve hundred ... Salem Avenue"): a scripted answer marks it with "...".
HESITATION = "..."
HESITATION_SECONDS = 1.5
# With time_scale 0 nothing sleeps; a leg that only waits (hold music) still gives other threads this long.
YIELD_SECONDS = 0.05
# However long a leg waits for another (a bridge to end), it gives up after this much real time.
STUCK_SECONDS = 60.0


def speaking_seconds(text: str) -> float:
    """How long a person takes to say `text` (not Twilio's text-to-speech, which is SAY_WORDS_PER_MINUTE)."""
    return len(text.replace(HESITATION, " ").split()) / SPOKEN_WORDS_PER_SECOND + text.count(HESITATION) * HESITATION_SECONDS


def rfc2822(moment: datetime) -> str:
    """A timestamp as Twilio writes them (RFC 2822, +0000)."""
    return format_datetime(moment, usegmt=True).replace("GMT", "+0000")
