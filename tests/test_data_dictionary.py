"""The data dictionary (docs/data-dictionary.md) says what the exports hold: the same fields, types and allowed
values as the code that writes them."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

from voice.line import calls
from voice.reporting import dictionary, open_data

ROOT = Path(__file__).resolve().parent.parent
DOC = ROOT / "docs" / "data-dictionary.md"


def documented(heading: str) -> dict[str, tuple[str, str]]:
    """The table under `heading`: field -> (type, allowed values as written)."""
    text = DOC.read_text()
    section = text[text.index(f"## {heading}"):]
    section = section[:section.index("\n## ", 3)] if "\n## " in section[3:] else section
    rows = re.findall(r"^\| `([^`]+)` \| (\w+) \| [^|]+ \| ([^|]+) \|$", section, flags=re.M)
    return {name: (kind, allowed.strip()) for name, kind, allowed in rows}


def written(fields) -> dict[str, tuple[str, str]]:
    return {f.name: (f.type, ", ".join(f"`{v}`" for v in f.allowed) if f.allowed is not None else "any")
            for f in fields}


def test_the_page_is_written_from_the_code():
    result = subprocess.run([sys.executable, str(ROOT / "scripts" / "data_dictionary.py"), "--check"],
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


def test_every_open_data_column_is_documented_with_its_type_and_values():
    assert list(documented("Open data")) == list(open_data.COLUMNS)
    assert documented("Open data") == written(dictionary.OPEN_DATA)


def test_every_column_of_the_full_export_is_documented():
    assert list(documented("The full export")) == list(calls.EXPORT_COLUMNS)
    assert documented("The full export") == written(dictionary.CALL_LOG)

