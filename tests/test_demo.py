"""`make demo`'s script, run for real (embedded Redis, gunicorn, an RQ worker, the fake Twilio), start to
finish, and nothing of it left running afterwards."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import requests

ROOT = Path(__file__).parent.parent
DEMO = [sys.executable, str(ROOT / "scripts" / "demo.py")]
# language, safety, category, name, location, callback number, description, talk now
TYPED = "2\n4\n"  # safe, pets: then a specialist (you again, as Alice) takes the call


def demo_env() -> dict:
    # The demo must start its own Redis, and must not pick up a developer's real settings.
    return {k: v for k, v in os.environ.items() if k != "REDIS_URL" and not k.startswith("TWILIO_")}


def listening(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(1)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def processes_mentioning(text: str) -> list[str]:
    found = []
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            command = cmdline.read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if text in command:
            found.append(command)
    return found


def assert_nothing_left(out: str) -> None:
    web = int(re.search(r"Dashboard: \S*http://127\.0\.0\.1:(\d+)/dashboard/", out).group(1))
    redis_url = re.search(r"embedded redis-server on (redis://127\.0\.0\.1:(\d+)/0)", out)
    assert not listening(web), "gunicorn is still serving"
    assert not listening(int(redis_url.group(2))), "the embedded redis-server is still running"
    if Path("/proc/self/cmdline").exists():
        assert processes_mentioning(f"--url {redis_url.group(1)}") == [], "the RQ worker is still running"
    assert "kept in" not in out  # a clean run leaves no temporary files behind


def whispered(out: str, who: str, kind: str) -> bool:
    """The specialist heard the kind of problem and the key: at once, or after the caller chose it."""
    at_once = f"{who} hears: {kind} call, in English. Press 1 to take it." in out
    after = f"{who} hears: Mediation call, in English." in out and f"{who} hears: {kind}. Press 1." in out
    return at_once or after


def test_demo_shows_a_bridged_call_and_a_callback_then_exits():
    result = subprocess.run([*DEMO, "--no-serve"], env=demo_env(), cwd=ROOT, capture_output=True, text=True,
                            timeout=180)
    out = result.stdout
    assert result.returncode == 0, out + result.stderr
    assert "embedded redis-server" in out
    assert whispered(out, "Alice Mediator", "Noise")
    assert "caller and Alice Mediator are connected" in out
    assert "Bruno Mediador hears: Callback request." in out
    assert "Bruno Mediador and María (caller) are connected" in out
    assert "second call: callback_completed" in out
    assert "/dashboard/" in out and "login coordinator@demo" in out
    assert "PROBLEMS" not in out
    assert_nothing_left(out)


def test_the_person_at_the_keyboard_can_be_the_caller_and_the_specialist():
    # What they type as the caller, then the key they press as Alice hearing the whisper.
    result = subprocess.run([*DEMO, "--interactive", "--as-specialist", "--no-serve"], input=TYPED + "1\n",
                            env=demo_env(), cwd=ROOT, capture_output=True, text=True, timeout=180)
    out = result.stdout
    assert result.returncode == 0, out + result.stderr
    assert "You are the caller." in out
    assert "you: presses '4'" in out
    assert whispered(out, "Alice (you)", "Pets")
    assert "Alice (you): presses '1'" in out
    assert "you and Alice (you) are connected" in out
    assert "second call: callback_completed" in out


def test_the_person_at_the_keyboard_can_be_the_specialist():
    result = subprocess.run([*DEMO, "--as-specialist", "--no-serve"], input="1\n", env=demo_env(), cwd=ROOT,
                            capture_output=True, text=True, timeout=180)
    out = result.stdout
    assert result.returncode == 0, out + result.stderr
    assert whispered(out, "Alice (you)", "Noise")
    assert "Alice (you): presses '1'" in out
    assert "caller and Alice (you) are connected" in out
    assert "PROBLEMS" not in out
    assert_nothing_left(out)


def assert_the_demo_login_shows_both_calls(base: str, out: str) -> None:
    email, password = re.search(r"login (\S+@\S+) / (\S+)", out).groups()
    browser = requests.Session()
    form = browser.get(f"{base}/dashboard/login", timeout=10).text
    token = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', form).group(1)
    signed_in = browser.post(f"{base}/dashboard/login", data={"csrf_token": token, "email": email,
                                                              "password": password}, timeout=10)
    assert signed_in.status_code == 200 and signed_in.url == f"{base}/dashboard/"
    log = browser.get(f"{base}/dashboard/calls", timeout=10).text
    # The first caller was put through after the short path (no name asked); the second gave hers.
    assert "Answered live" in log and "María López" in log


@pytest.mark.parametrize("how", [signal.SIGINT, signal.SIGTERM])
def test_ctrl_c_or_kill_while_serving_stops_every_process(how):
    demo = subprocess.Popen(DEMO, env=demo_env(), cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True)
    out = ""
    try:
        for line in demo.stdout:
            out += line
            if "Serving until Ctrl-C" in line:
                break
        assert "Serving until Ctrl-C" in out, out
        web = int(re.search(r"Dashboard: \S*http://127\.0\.0\.1:(\d+)/", out).group(1))
        assert_the_demo_login_shows_both_calls(f"http://127.0.0.1:{web}", out)
        demo.send_signal(how)
        out += demo.stdout.read()
        assert demo.wait(60) == 0, out
    finally:
        if demo.poll() is None:
            demo.kill()
    assert "Stopping the line." in out
    assert_nothing_left(out)
