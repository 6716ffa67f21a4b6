"""`make demo`'s script, run for real (embedded Redis, gunicorn, an RQ worker, the fake Twilio), start to finish."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).parent.parent


def test_demo_shows_a_bridged_call_and_a_callback_then_exits():
    env = {k: v for k, v in os.environ.items() if k != "REDIS_URL"}  # the demo must start its own Redis
    result = subprocess.run([sys.executable, str(ROOT / "scripts" / "demo.py"), "--no-serve"], env=env, cwd=ROOT,
                            capture_output=True, text=True, timeout=180)
    out = result.stdout
    assert result.returncode == 0, out + result.stderr
    assert "embedded redis-server" in out
    assert "Alice Mediator hears: Mediation line call about noise." in out
    assert "caller and Alice Mediator are connected" in out
    assert "Bruno Mediador hears: Callback request." in out
    assert "Bruno Mediador and María (caller) are connected" in out
    assert "second call: callback_completed" in out
    assert "/dashboard/" in out and "login coordinator@demo" in out
    assert "problems Twilio would have had" not in out
