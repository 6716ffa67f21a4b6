"""The README's "Running it", done as a new user does it: .env from .env.example, then `make run`, which
migrates and keeps web, worker and cron up on the port and the Redis that .env names."""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import pytest
import redis
import requests
from dotenv import dotenv_values
from honcho.environ import parse as honcho_parse
from rq import Worker

from tests.support import ACCOUNT_SID, AUTH_TOKEN, procfile, running
from voice.health import CRON_RAN_KEY
from voice.simulator.embedded_redis import EmbeddedRedis, free_port

ROOT = Path(__file__).resolve().parent.parent
ENV_EXAMPLE = ROOT / ".env.example"




def shell_values(path: Path) -> dict[str, str]:
    """What `set -a; . ./.env` gives a POSIX shell, or the shell's complaint."""
    script = 'set -a; . "$1" || exit 3; set +a; env -0'
    done = subprocess.run(["sh", "-c", script, "sh", str(path)], capture_output=True, env={"PATH": os.environ["PATH"]})
    assert done.returncode == 0 and done.stderr == b"", done.stderr.decode()
    pairs = (entry.split("=", 1) for entry in done.stdout.decode().split("\0") if "=" in entry)
    return dict(pairs)


def test_env_example_reads_the_same_in_a_shell_in_python_dotenv_and_in_honcho():
    dotenv = dotenv_values(ENV_EXAMPLE)
    shell = shell_values(ENV_EXAMPLE)
    honcho = honcho_parse(ENV_EXAMPLE.read_text())
    assert dotenv["PROGRAM_NAME"] == "Mediation Response Program"
    for name, value in dotenv.items():
        assert shell[name] == value, name
        if value:  # honcho leaves out empty values, which the app reads as unset anyway
            assert honcho[name] == value, name


def test_worker_and_cron_read_redis_from_the_apps_own_settings():
    lines = procfile()
    for name in ("worker", "cron"):
        # No shell default of its own that could differ from the app's: RQ reads REDIS_URL from workers.settings.
        assert "REDIS_URL" not in lines[name] and "--url" not in lines[name]
        assert "-c workers.settings" in lines[name]
    env = {**os.environ, "TWILIO_ACCOUNT_SID": ACCOUNT_SID, "TWILIO_AUTH_TOKEN": AUTH_TOKEN,
           "TWILIO_PHONE_NUMBER": "+19375550100", "DISPATCH_TRANSFER_NUMBER": "+19375550911",
           "PUBLIC_BASE_URL": "https://line.example.org", "SECRET_KEY": "x", "RETENTION_DAYS": "365",
           "REDIS_URL": "redis://127.0.0.1:1/12"}
    # Exactly how `rq worker -c` and `rq cron -c` open their connection.
    code = ("from rq.cli.helpers import CliConfig; kw = CliConfig(config='workers.settings').connection"
            ".connection_pool.connection_kwargs; print(kw['host'], kw['port'], kw['db'])")
    out = subprocess.run([sys.executable, "-c", code], env=env, cwd=ROOT, capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["127.0.0.1", "1", "12"]


def test_web_is_the_port_and_release_runs_first():
    lines = procfile()
    assert lines["release"] == "flask --app voice db upgrade"  # Heroku-style platforms run it on each release
    assert "${PORT:-5000}" in lines["web"]
    makefile = (ROOT / "Makefile").read_text()
    run = re.search(r"^run:.*\n((?:\t.*\n)+)", makefile, re.M).group(1)
    steps = [line.strip() for line in run.splitlines()]
    assert steps[0].endswith("honcho start -e $(ENV_FILE) release")
    # Named first, web gets $PORT itself; honcho adds 100 for each line before it.
    assert steps[1].endswith("honcho start -e $(ENV_FILE) web worker cron")


def env_file(path: Path, values: dict[str, str]) -> None:
    """.env.example with the test's values put in place, as a new user fills it in."""
    lines = []
    for line in ENV_EXAMPLE.read_text().splitlines():
        name = line.split("=", 1)[0]
        lines.append(f'{name}="{values.pop(name)}"' if "=" in line and name in values else line)
    lines += [f'{name}="{value}"' for name, value in values.items()]
    path.write_text("\n".join(lines) + "\n")


def on_db(url: str, db: int) -> str:
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path=f"/{db}"))


@pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed")
def test_make_run_migrates_then_keeps_web_worker_and_cron_up(tmp_path):
    port = free_port()
    # A Redis of its own: on a shared server another run's worker would take this run's jobs, or its
    # flushdb would take this worker out of RQ's registry.
    server = EmbeddedRedis()
    line_redis = on_db(server.url, 12)
    r = redis.Redis.from_url(line_redis)
    env_path = tmp_path / ".env"
    env_file(env_path, {
        "TWILIO_ACCOUNT_SID": ACCOUNT_SID, "TWILIO_AUTH_TOKEN": AUTH_TOKEN, "SECRET_KEY": "run-it-secret",
        "PUBLIC_BASE_URL": f"http://127.0.0.1:{port}", "REDIS_URL": line_redis,
        # On PostgreSQL too when the suite runs there (.ci/run's second pass): the same three processes.
        "DATABASE_URL": os.environ.get("TEST_DATABASE_URL") or f"sqlite:///{tmp_path}/line.db",
        "WEB_CONCURRENCY": "1",
    })
    log = (tmp_path / "run.log").open("wb")
    # A clean environment: everything the line reads comes from the .env file; PORT as a user would pass it.
    env = {"PATH": os.environ["PATH"], "HOME": str(tmp_path), "LANG": "C.UTF-8", "PORT": str(port)}
    run = subprocess.Popen(["make", "--no-print-directory", "-C", str(ROOT), "run", f"ENV_FILE={env_path}"],
                           env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)

    def output() -> str:
        return (tmp_path / "run.log").read_text(errors="replace")[-4000:]

    try:
        deadline = time.monotonic() + 60
        while True:
            assert run.poll() is None, output()
            assert time.monotonic() < deadline, "web never answered on PORT\n" + output()
            try:
                if requests.get(f"http://127.0.0.1:{port}/healthz", timeout=2).status_code == 200:
                    break
            except (requests.ConnectionError, requests.Timeout):
                pass  # not listening yet, or gunicorn's master is listening and its worker still booting
            time.sleep(0.5)
        # The whole log: the release's line may be more than output()'s last 4000 characters back.
        assert "database is at the newest schema" in (tmp_path / "run.log").read_text(errors="replace"), output()

        for _ in range(10):  # ten seconds up, all three
            time.sleep(1)
            assert run.poll() is None, output()
            assert "exited with code" not in output(), output()
        assert requests.get(f"http://127.0.0.1:{port}/healthz", timeout=2).json() == {"status": "ok"}
        assert len(Worker.all(connection=r)) == 1, f"no worker on the Redis db .env names: {r.keys()}\n{output()}"
        assert r.get(CRON_RAN_KEY) is not None, "cron's sweep never ran on the Redis db .env names\n" + output()
    finally:
        stopped = stop_like_ctrl_c(run)
        r.flushdb()
        server.stop()
        log.close()
    assert stopped, "a process outlived make run's Ctrl-C\n" + output()


def stop_like_ctrl_c(run: subprocess.Popen) -> bool:
    """SIGINT to make's process group, as a terminal sends it; True if every process of the run then ended.

    honcho starts each line in a session of its own, so it alone passes the signal on; whatever is still
    running after 30 s is killed, so a failed test leaves nothing behind."""
    family = descendants(run.pid)
    os.killpg(run.pid, signal.SIGINT)
    with contextlib.suppress(subprocess.TimeoutExpired):
        run.wait(30)
    deadline = time.monotonic() + 30
    while any(map(running, family)) and time.monotonic() < deadline:
        time.sleep(0.2)
    leftovers = [pid for pid in family if running(pid)]
    for pid in leftovers:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    run.wait(5)
    return not leftovers


def parents() -> dict[int, int]:
    found = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as stat:
                    found[int(entry)] = int(stat.read().rsplit(")", 1)[1].split()[1])
            except (FileNotFoundError, ProcessLookupError, IndexError):
                continue
    return found


def descendants(pid: int) -> list[int]:
    tree = parents()
    family, frontier = [], [pid]
    while frontier:
        parent = frontier.pop()
        children = [child for child, ppid in tree.items() if ppid == parent]
        family += children
        frontier += children
    return family


