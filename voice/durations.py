"""How long ago something happened, in the one wording the line uses (spoken in whispers, short on screens)."""

from __future__ import annotations

from datetime import datetime

from voice.clock import utcnow


def ago(value: datetime | None, spoken: bool = False) -> str:
    """'25 minutes ago' / 'an hour and 10 minutes ago' when spoken; '25 min' / '1 h 10 min' on a screen."""
    if value is None:
        return ""
    minutes = max(0, int((utcnow() - value).total_seconds() // 60))
    if minutes < 1:
        return "just now"
    hours, rest = divmod(minutes, 60)
    if not spoken:
        return f"{minutes} min" if minutes < 60 else f"{hours} h {rest:02d} min"
    if minutes < 60:
        return f"{minutes} minute{'s' if minutes != 1 else ''} ago"
    text = f"{hours} hour{'s' if hours != 1 else ''}"
    return f"{text} and {rest} minutes ago" if rest else f"{text} ago"
