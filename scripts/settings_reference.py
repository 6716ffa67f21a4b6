"""Write `.env.example` and `docs/settings.md` from the settings registry (voice/config.py).

    python scripts/settings_reference.py          # rewrite both
    python scripts/settings_reference.py --check  # exit 1 if either is out of date (the tests run this check)
"""

from __future__ import annotations

import argparse
import sys
from itertools import groupby
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from voice.config import REQUIRED, SETTINGS, Setting  # noqa: E402

ENV_EXAMPLE = ROOT / ".env.example"
# Every city sets these, so .env.example lists them with their defaults to edit; the rest are commented out at
# their defaults (PROGRAM_HOURS among them: set, it would no longer follow OPEN_HOURS).
CHOSEN_BY_EACH_PROGRAM = {"PROGRAM_NAME", "PROGRAM_NAME_ES", "TIMEZONE", "OPEN_HOURS", "HOLIDAYS"}
SETTINGS_DOC = ROOT / "docs" / "settings.md"


def shown(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def env_value(setting: Setting) -> str:
    value = setting.example if setting.example is not None else shown(setting.default)
    # Read by python-dotenv, honcho and a shell alike: quote anything with a space or a comma.
    return f'"{value}"' if any(ch in value for ch in ' ,;"') else value


def env_example() -> str:
    lines = ["# Copy to .env and fill in. Written from voice/config.py by scripts/settings_reference.py.",
             "# Required settings have no default; start-up stops with one line naming any that is missing.",
             "# Read by the app (python-dotenv), by honcho (`make run`) and by a shell (`set -a; . ./.env; set +a`).",
             ""]
    for group, settings in groupby(SETTINGS, key=lambda s: s.group):
        lines.append(f"# --- {group} ---")
        for setting in settings:
            lines.append(f"# {setting.help}")
            chosen = setting.default is REQUIRED or setting.example is not None or setting.name in CHOSEN_BY_EACH_PROGRAM
            prefix = "" if chosen else "# "
            lines.append(f"{prefix}{setting.name}={env_value(setting)}")
        lines.append("")
    lines += ["# --- Running it ---", "# Where `make run` serves the app (default 5000); honcho takes a PORT set here over one "
              "in the environment.", "# PORT=5000", ""]
    return "\n".join(lines)


def settings_doc() -> str:
    lines = ["# Settings", "",
             "Every setting is read from the environment (or `.env`) at start-up and checked; a missing or bad one",
             "stops the app with one line naming it. This page is written from the registry in `voice/config.py`",
             "(`python scripts/settings_reference.py`), as is `.env.example`; a test keeps them in step.", ""]
    for group, settings in groupby(SETTINGS, key=lambda s: s.group):
        lines += [f"## {group}", "", "| Setting | Default | What it does |", "|---|---|---|"]
        for setting in settings:
            default = "**required**" if setting.default is REQUIRED else (f"`{shown(setting.default)}`"
                                                                           if shown(setting.default) else "(empty)")
            cell = setting.help.replace("|", "\\|")
            lines.append(f"| `{setting.name}` | {default} | {cell} |")
        lines.append("")
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="only check that both files are up to date")
    args = parser.parse_args()
    stale = []
    for path, text in ((ENV_EXAMPLE, env_example()), (SETTINGS_DOC, settings_doc())):
        if args.check:
            if not path.exists() or path.read_text() != text:
                stale.append(str(path.relative_to(ROOT)))
        else:
            path.parent.mkdir(exist_ok=True)
            path.write_text(text)
    if stale:
        print(f"out of date (run python scripts/settings_reference.py): {', '.join(stale)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
