"""Write `docs/data-dictionary.md` from the exports' own field lists (voice/reporting/dictionary.py).

    python scripts/data_dictionary.py          # rewrite it
    python scripts/data_dictionary.py --check  # exit 1 if it is out of date (the tests run this check)
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from voice.reporting.dictionary import CALL_LOG, OPEN_DATA, Field  # noqa: E402

DOC = ROOT / "docs" / "data-dictionary.md"

INTRO = """# Data dictionary

Two exports leave the line as CSV (UTF-8, a header row, one row per call, oldest first). Every cell that starts
with `=`, `+`, `-` or `@` and is not a number gets a leading `'`, so a spreadsheet never runs it as a formula.
Every export is written to the audit log (who, when, which dates). This page is written from the field lists in
`voice/reporting/dictionary.py` (`python scripts/data_dictionary.py`); a test keeps the two in step, and the
exports' headers in step with both. How each figure on the reports page is counted is in
[reports.md](reports.md).

An empty cell means "none" or "not known". Times in UTC end in `Z`; a time in the program's time zone carries its
offset (`2026-11-10T09:00-05:00`).
"""

OPEN = """## Open data

For the city to publish: `flask --app voice report export --from 2026-01-01 --to 2026-12-31 --open-data`, or
**Download open data (CSV)** on the reports page (coordinators only).

It carries no personal information: no names, phone numbers, addresses, nor anything a caller said or a
specialist wrote. Each field is a value from the list below (a stored value outside the list is left empty, so a
name typed where a code belongs never comes out), a count, a whole number of seconds, the hour a call started, or
an area. An area is the city's district when `DISTRICTS_CSV` is set, else the 5-digit ZIP code the caller gave,
and it is named only when at least `OPEN_DATA_MIN_CALLS` calls of the export share it (see
[settings.md](settings.md)). The 911 center's incident number is left out (it leads to records that name people).
"""

FULL = """## The full export, for coordinators

Everything about each call, personal data included: `flask --app voice calls export` (every call),
`flask --app voice report export --from ... --to ...` (a date range), and **Export CSV** on the Calls page (its
filters). Keep it inside the program. After `RETENTION_DAYS` the nightly purge empties the personal fields of old
calls (name, location, description, numbers, reasons).
"""


def table(fields: tuple[Field, ...]) -> list[str]:
    lines = ["| Field | Type | Meaning | Allowed values |", "|---|---|---|---|"]
    for field in fields:
        allowed = ", ".join(f"`{value}`" for value in field.allowed) if field.allowed is not None else "any"
        lines.append(f"| `{field.name}` | {field.type} | {field.meaning.replace('|', '/')} | {allowed} |")
    return lines


def document() -> str:
    return "\n".join([INTRO, OPEN, *table(OPEN_DATA), "", FULL, *table(CALL_LOG), ""])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="only check that the page is up to date")
    args = parser.parse_args()
    if args.check:
        if not DOC.exists() or DOC.read_text() != document():
            print("out of date (run python scripts/data_dictionary.py): docs/data-dictionary.md", file=sys.stderr)
            return 1
        return 0
    DOC.write_text(document())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
