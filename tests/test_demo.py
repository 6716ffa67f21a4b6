"""`make demo`'s script, run for real (embedded Redis, every process of the Procfile, the fake Twilio), start to
finish, and nothing of it left running afterwards."""

from __future__ import annotations

import os
import re
import shlex
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import redis
import requests

from tests.support import procfile, running
from voice.health import last_cron_run

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


def procfile_pids(out: str) -> dict[str, int]:
    """The pid of each Procfile process, as the demo prints them when it starts."""
    started = re.search(r"the Procfile's processes: (.*)", out).group(1)
    return {name: int(pid) for name, pid in re.findall(r"(\w+) pid (\d+)", started)}


def command_line(pid: int) -> list[str]:
    return Path(f"/proc/{pid}/cmdline").read_bytes().decode().split("\0")[:-1]


def as_a_shell_reads_it(line: str, port: int) -> list[str]:
    """The argv a POSIX shell makes of a Procfile line, with the demo's PORT and no WEB_CONCURRENCY."""
    env = {"PATH": os.environ["PATH"], "PORT": str(port)}
    done = subprocess.run(["sh", "-c", f"printf '%s\\0' {line}"], env=env, capture_output=True, check=True)
    return done.stdout.decode().split("\0")[:-1]


def assert_nothing_left(out: str) -> None:
    web = int(re.search(r"Dashboard: \S*http://127\.0\.0\.1:(\d+)/dashboard/", out).group(1))
    redis_url = re.search(r"embedded redis-server on (redis://127\.0\.0\.1:(\d+)/0)", out)
    assert not listening(web), "gunicorn is still serving"
    assert not listening(int(redis_url.group(2))), "the embedded redis-server is still running"
    if Path("/proc/self/cmdline").exists():
        for name, pid in procfile_pids(out).items():
            # A pid taken by another program since does not count: only the Procfile's command itself.
            program = shlex.split(procfile()[name])[0]
            assert not (running(pid) and program in " ".join(command_line(pid))), f"the {name} is still running"
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
    assert "Bruno Mediador hears: Mediation callback, in Spanish. Press 1 to hear it." in out
    assert "Bruno Mediador and María (caller) are connected" in out
    assert "second call: callback_completed" in out
    # A dispatcher's warm handoff, and a caller in another language with an interpreter dialed in.
    assert "dispatch hears: Mediation line. Key the incident number and pound, or just wait." in out
    assert "Bruno Mediador hears: Handoff from dispatch. Incident 2 4 0 1 5. In English. Press 1." in out
    assert "Bruno Mediador hears: dispatch: Caller at 12 Main Street" in out
    assert "third call: bridged to +19375550202" in out
    assert "interpreter hears: [keys ww123456#]" in out
    assert "fourth call: bridged to +19375550177, +19375550201" in out
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


def sign_in_and_see_both_calls(base: str, out: str) -> requests.Session:
    """The demo's login, as printed; the call log shows the two calls it played."""
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
    return browser


def serve_demo() -> tuple[subprocess.Popen, str]:
    """The demo, started as `make demo` starts it, and what it printed until it said it serves."""
    demo = subprocess.Popen(DEMO, env=demo_env(), cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True)
    out = ""
    for line in demo.stdout:
        out += line
        if "Serving until Ctrl-C" in line:
            break
    return demo, out


def stop_demo(demo: subprocess.Popen, how: signal.Signals) -> str:
    demo.send_signal(how)
    out = demo.stdout.read()
    assert demo.wait(60) == 0, out
    return out


def test_ctrl_c_while_serving_stops_every_process():
    demo, out = serve_demo()
    try:
        assert "Serving until Ctrl-C" in out, out
        web = int(re.search(r"Dashboard: \S*http://127\.0\.0\.1:(\d+)/", out).group(1))
        browser = sign_in_and_see_both_calls(f"http://127.0.0.1:{web}", out)
        # The seeded team out on a home visit, on the board's field panel.
        board = browser.get(f"http://127.0.0.1:{web}/dashboard/", timeout=10).text
        assert "Cora Mediator and Dana Mediator" in board and "410 Linden Ave" in board and "In the field" in board
        out += stop_demo(demo, signal.SIGINT)
    finally:
        if demo.poll() is None:
            demo.kill()
    assert "Stopping the line." in out
    assert_nothing_left(out)


# Past the moment RQ counts the Procfile's worker dead without a beat (--worker-ttl 45 plus 60 s), twice the
# sweep's minute, and the minute the banner allowed a worker before it read the worker's TTL.
QUIET_SECONDS = 125


def test_the_demo_runs_every_procfile_process_and_its_board_stays_clear_then_kill_stops_them():
    demo, out = serve_demo()
    try:
        assert "Serving until Ctrl-C" in out, out
        web = int(re.search(r"Dashboard: \S*http://127\.0\.0\.1:(\d+)/", out).group(1))
        base = f"http://127.0.0.1:{web}"
        lines = procfile()
        pids = procfile_pids(out)
        # release ran to its end first (the calls needed its tables); the others run the Procfile's commands.
        assert "release (migrated the database)" in out
        assert list(pids) == [name for name in lines if name != "release"] == ["web", "worker", "cron"]
        for name, pid in pids.items():
            # The demo serves this machine only: the web line's bind, on loopback.
            expected = as_a_shell_reads_it(lines[name].replace("--bind 0.0.0.0:", "--bind 127.0.0.1:"), web)
            argv = command_line(pid)
            assert Path(argv[1]).name == expected[0] and argv[2:] == expected[1:], (name, argv, expected)

        browser = sign_in_and_see_both_calls(base, out)
        r = redis.Redis.from_url(re.search(r"embedded redis-server on (\S+)", out).group(1))
        assert last_cron_run(r) is not None  # the demo says it serves only once the sweep has run
        since = time.monotonic()
        while True:
            board = browser.get(f"{base}/dashboard/", timeout=10).text
            assert 'class="banner health"' not in board, [line.strip() for line in board.splitlines()
                                                          if "banner health" in line]
            assert demo.poll() is None and all(running(pid) for pid in pids.values())
            if time.monotonic() - since > QUIET_SECONDS:
                break
            time.sleep(1)
        assert time.time() - last_cron_run(r) < 90, "the sweep no longer runs every minute"

        out += stop_demo(demo, signal.SIGTERM)
    finally:
        if demo.poll() is None:
            demo.kill()
    assert "Stopping the line." in out
    assert_nothing_left(out)
