"""The simulator script's command line: "-" is silence anywhere, options and inputs mix, "--" passes dash inputs."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tests.support import ACCOUNT_SID, AUTH_TOKEN, LINE, PUBLIC, load_script, serve_app

SCRIPT = Path(__file__).parent.parent / "scripts" / "simulate_call.py"


def test_help_says_how_to_pass_silence_and_inputs_that_start_with_a_dash():
    out = subprocess.run([sys.executable, str(SCRIPT), "--help"], capture_output=True, text=True, check=True).stdout
    assert '"-"' in out and "silence" in out
    assert 'everything after "--" is an input' in out


def test_silence_and_dash_inputs_reach_the_call_wherever_the_options_are(app, capsys):
    url, server = serve_app(app)
    try:
        code = load_script("simulate_call").main([
            "--url", url, "2", "1", "-", "--public-base-url", PUBLIC, "--auth-token", AUTH_TOKEN,
            "--account-sid", ACCOUNT_SID, "--line", LINE, "--dispatch", "+19375550911", "--", "-x"])
    finally:
        server.shutdown()
    out = capsys.readouterr().out
    assert code == 0, out
    said = [line.strip() for line in out.splitlines() if line.strip().startswith("caller:")]
    # Safe, noise, then silence and "-x" at the first callback question (nobody is on).
    assert said[:4] == ["caller: presses '2'", "caller: presses '1'", "caller: (silence)", "caller: says '-x'"], said
