"""Print the caller's journey as a Markdown table: each prompt, its words, and its seconds at 160 words a minute.

  python scripts/prompt_table.py [--language es]

Read from voice/script.py (with the default program name and hours), so the README's table can be checked
against the script whenever a prompt changes.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from voice.config import defaults  # noqa: E402
from voice.script import MESSAGES, SAFETY_QUESTION, STEPS, wait_words  # noqa: E402

WORDS_PER_MINUTE = 160
DEFAULTS = defaults()


def words(text: str) -> int:
    return len(text.split())


def journey(language: str) -> list[tuple[str, str, str]]:
    """(when, what the caller hears, text) in the order a caller meets them."""
    program = str(DEFAULTS["PROGRAM_NAME"] if language == "en" else DEFAULTS["PROGRAM_NAME_ES"])
    # In the caller's language, as the line says them (voice.line.questions.fill).
    hours = str(DEFAULTS["PROGRAM_HOURS"] if language == "en" else DEFAULTS["PROGRAM_HOURS_ES"]).rstrip(".")
    greeting = " ".join([STEPS["greeting"].prompt["en"].format(program=DEFAULTS["PROGRAM_NAME"]),
                         STEPS["greeting"].prompt["es"], SAFETY_QUESTION["en"]])
    rows = [("every caller", "greeting, Spanish on 9, safety, dispatch on 0", greeting)]
    if language == "es":
        rows.append(("after 9", "the safety question in Spanish", SAFETY_QUESTION["es"]))
    rows += [
        ("safe", "the kind of problem (one key)", STEPS["category"].prompt[language]),
        ("a specialist free", "while their phones ring", MESSAGES["connecting"][language]),
        ("danger or 0", "before dispatch is dialed", MESSAGES["escalate"][language]),
        ("everyone busy", "place in line and the wait",
         MESSAGES["busy"][language].format(position=2, wait=wait_words(15, language))),
    ]
    for name in ("name", "location", "callback_number", "description"):
        text = STEPS[name].prompt[language].format(number="9 3 7, 5 5 5, 0 1 2 3")
        rows.append(("holding, or called back", f"question: {name.replace('_', ' ')}", text))
    rows += [
        ("holding", "every 45 s or so", MESSAGES["position"][language].format(position=1, wait=wait_words(5, language))),
        ("line closed", "hours, 911, then the callback questions",
         MESSAGES["closed"][language].format(program=program, program_es=program, hours=hours))
    ]
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--language", choices=("en", "es"), default="en")
    args = parser.parse_args()
    print("| When | What | Words | Seconds |")
    print("|---|---|---:|---:|")
    for when, what, text in journey(args.language):
        count = words(text)
        print(f"| {when} | {what}: “{text}” | {count} | {count * 60 / WORDS_PER_MINUTE:.1f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
