"""scripts/prompt_table.py shows each prompt as the caller hears it, in their language."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "scripts"))

import prompt_table  # noqa: E402


def test_the_closed_line_prompt_says_the_hours_in_the_callers_language():
    spanish = dict((when, text) for when, _, text in prompt_table.journey("es"))["line closed"]
    english = dict((when, text) for when, _, text in prompt_table.journey("en"))["line closed"]
    assert "de lunes a viernes" in spanish and "Monday" not in spanish
    assert "Monday to Friday" in english
