"""The container files say what the Procfile says: each compose service runs its Procfile line, the image
runs as an ordinary user, and the release step finishes before anything else starts."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from honcho.environ import parse_procfile
from rq import Queue, Worker

ROOT = Path(__file__).resolve().parent.parent
LINES = ("release", "web", "worker", "cron")


@pytest.fixture(scope="module")
def procfile() -> dict[str, str]:
    return dict(parse_procfile((ROOT / "Procfile").read_text()).processes)


@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load((ROOT / "compose.yaml").read_text())


def dockerfile() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with continuation lines joined and comments left out."""
    text = (ROOT / "Dockerfile").read_text().replace("\\\n", " ")
    lines = [line.strip() for line in text.splitlines() if line.strip() and not line.strip().startswith("#")]
    return [(line.split(None, 1)[0].upper(), line.split(None, 1)[1]) for line in lines]


def test_each_compose_service_runs_its_procfile_line(compose, procfile):
    for name in LINES:
        command = compose["services"][name]["command"]
        assert command[:2] == ["sh", "-c"], name
        assert command[2].replace("$$", "$") == procfile[name], name  # $$: compose's escape for the shell's $


def test_release_runs_once_before_web_worker_and_cron_on_postgres_and_redis(compose):
    services = compose["services"]
    assert services["release"]["restart"] == "no"
    for name in ("web", "worker", "cron"):
        assert services[name]["depends_on"]["release"] == {"condition": "service_completed_successfully"}, name
    for name in LINES:
        environment = services[name]["environment"]
        assert environment["DATABASE_URL"].startswith("postgresql+psycopg2://") and "@postgres:" in environment["DATABASE_URL"]
        assert environment["REDIS_URL"].startswith("redis://redis:")
        assert services[name]["depends_on"]["postgres"] == {"condition": "service_healthy"}
        assert services[name]["depends_on"]["redis"] == {"condition": "service_healthy"}
    assert "/healthz" in " ".join(services["web"]["healthcheck"]["test"])
    for name in ("worker", "cron", "redis", "postgres"):
        assert services[name]["healthcheck"]["test"], name
    volumes = set(compose["volumes"])
    assert volumes == {"redis-data", "postgres-data"}
    assert {v.split(":")[0] for name in ("redis", "postgres") for v in compose["services"][name]["volumes"]} == volumes


def test_the_image_is_slim_runs_as_an_ordinary_user_and_serves_the_web_line(procfile):
    steps = dockerfile()
    assert steps[0] == ("FROM", "python:3.11-slim")
    install = next(args for op, args in steps if op == "RUN" and "pip install ." in args)
    # The development stand-ins (simulated phone, fake Twilio, embedded Redis) stay out of production.
    assert install.index("rm -rf voice/simulator") < install.index("pip install .")
    users = [args.strip() for op, args in steps if op == "USER"]
    assert users and users[-1] not in ("root", "0") and not users[-1].startswith(("root:", "0:"))
    cmd = json.loads(next(args for op, args in reversed(steps) if op == "CMD"))
    assert cmd == ["sh", "-c", procfile["web"]]
    ignored = (ROOT / ".dockerignore").read_text().split()
    assert ".env" in ignored and ".venv" in ignored and ".git" in ignored  # no secrets or local tools in the image


def test_container_healthcheck_finds_this_hosts_worker_in_rqs_registry(r, redis_url):
    check = [sys.executable, "-m", "voice.health", "worker"]
    env = {**os.environ, "REDIS_URL": redis_url}
    assert subprocess.run(check, env=env, cwd=ROOT).returncode == 1
    worker = Worker([Queue("callbacks", connection=r)], connection=r)
    worker.register_birth()
    try:
        assert subprocess.run(check, env=env, cwd=ROOT).returncode == 0
    finally:
        worker.register_death()


def compose_cli() -> list[str] | None:
    for command in (["docker", "compose"], ["docker-compose"]):
        if shutil.which(command[0]) and subprocess.run([*command, "version"], capture_output=True).returncode == 0:
            return command
    return None


@pytest.mark.skipif(compose_cli() is None, reason="Docker Compose is not installed")
def test_docker_compose_accepts_the_file():
    done = subprocess.run([*compose_cli(), "-f", str(ROOT / "compose.yaml"), "config", "--quiet"],
                          cwd=ROOT, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
