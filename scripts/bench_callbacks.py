"""How fast a waiting caller is called back once a specialist texts ON, with the Procfile's web and worker lines.

Runs gunicorn (the web line) and `rq worker -c workers.settings --with-scheduler` (the worker line) against a
fake Twilio REST API and the simulated phone; each run queues a caller nobody could take, texts ON, and
measures ON -> Calls.create reaching Twilio, then checks the caller was reached. Prints the figures.

    python scripts/bench_callbacks.py --redis-url redis://127.0.0.1:6379/13 [--runs 10]
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time

import redis

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from voice.simulator import HttpTransport, ScriptedCaller, SimulatedPhone, SpecialistPhone  # noqa: E402
from voice.simulator.embedded_redis import free_port  # noqa: E402
from voice.simulator.fake_twilio import FakeTwilio  # noqa: E402

LINE = "+19375550100"
ACCOUNT = "AC" + "0" * 32
TOKEN = "bench-auth-token"  # noqa: S105 (the fake Twilio's, signs the simulated requests)
INTAKE = ["1", "2", "6", "Dana Whitfield", "400 West Third Street", "1", "The landlord shut off the heat", "1"]



def wait_for_port(port: int, process: subprocess.Popen, seconds: float = 20) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"gunicorn exited with {process.returncode}")
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.1)
    raise SystemExit("gunicorn did not start")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--redis-url", required=True, help="an EMPTY Redis database; it is flushed at the end")
    parser.add_argument("--database-url", default="", help="default: a new SQLite file")
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # the fake Twilio's request log

    r = redis.Redis.from_url(args.redis_url)
    if r.dbsize():
        raise SystemExit(f"{args.redis_url} is not empty; name an empty database (it is flushed afterwards)")
    workdir = tempfile.mkdtemp(prefix="bench-callbacks-")
    database_url = args.database_url or f"sqlite:///{workdir}/bench.db"
    port = free_port()
    public = f"http://127.0.0.1:{port}"
    phone = SimulatedPhone(HttpTransport(public), TOKEN, ACCOUNT, LINE, public)
    fake = FakeTwilio(phone, ACCOUNT, TOKEN, LINE)
    env = {**os.environ, "TWILIO_ACCOUNT_SID": ACCOUNT, "TWILIO_AUTH_TOKEN": TOKEN, "TWILIO_PHONE_NUMBER": LINE,
           "DISPATCH_TRANSFER_NUMBER": "+19375550911", "PUBLIC_BASE_URL": public, "SECRET_KEY": "bench",
           "REDIS_URL": args.redis_url, "DATABASE_URL": database_url, "TWILIO_API_BASE_URL": fake.start(),
           "CALLBACK_SMS": "false"}
    subprocess.run([sys.executable, "-m", "flask", "--app", "voice", "db", "upgrade"], env=env, cwd=ROOT, check=True,
                   capture_output=True)
    processes = [
        subprocess.Popen([sys.executable, "-m", "gunicorn", "--bind", f"127.0.0.1:{port}", "--workers", "2",
                          "--threads", "4", "voice:create_app()"], env=env, cwd=ROOT, start_new_session=True,
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL),
        subprocess.Popen([sys.executable, "-m", "rq.cli", "worker", "-c", "workers.settings", "--with-scheduler",
                          "--url", args.redis_url, "callbacks"], env=env, cwd=ROOT, start_new_session=True,
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL),
    ]
    try:
        wait_for_port(port, processes[0])
        time.sleep(2)  # the worker builds the app once before it takes jobs
        figures = []
        for run in range(args.runs):
            caller = f"+1937555{2000 + run:04d}"
            specialist = f"+1937555{3000 + run:04d}"
            subprocess.run([sys.executable, "-m", "flask", "--app", "voice", "specialist", "add", "--name",
                            f"Specialist {run}", "--phone", specialist], env=env, cwd=ROOT, check=True,
                           capture_output=True)
            phone.network[specialist] = SpecialistPhone(f"Specialist {run}", talk_seconds=60)
            phone.network[caller] = ScriptedCaller(label="caller")
            record = phone.call_line(caller, ScriptedCaller(INTAKE))
            if "call you back" not in record.heard():
                raise SystemExit(f"run {run}: the caller was not offered a callback:\n{record.text()}")
            placed_before = len(fake.calls)
            sent = time.time()
            status, _ = phone.send_sms(specialist, "ON")
            if status != 200:
                raise SystemExit(f"run {run}: ON answered HTTP {status}")
            deadline = time.monotonic() + 30
            while len(fake.calls) == placed_before and time.monotonic() < deadline:
                time.sleep(0.005)
            if len(fake.calls) == placed_before:
                raise SystemExit(f"run {run}: no callback was placed within 30 s of ON")
            call = fake.calls[placed_before]
            seconds = call.created_at.timestamp() - sent
            fake.wait_for_calls(30)
            reached = call.record is not None and caller in call.record.bridged_with
            figures.append(seconds)
            print(f"run {run + 1}: ON -> Calls.create {seconds * 1000:.0f} ms; caller reached: {reached}")
            if not reached:
                raise SystemExit(f"run {run}: the callback did not reach the caller:\n"
                                 + (call.record.text() if call.record else call.status))
            phone.send_sms(specialist, "OFF")
        print(f"ON -> the specialist's phone being dialed, {len(figures)} runs: median "
              f"{statistics.median(figures) * 1000:.0f} ms, max {max(figures) * 1000:.0f} ms")
        return 0
    finally:
        for process in processes:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGTERM)
        for process in processes:
            try:
                process.wait(10)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
        fake.stop()
        r.flushdb()


if __name__ == "__main__":
    raise SystemExit(main())
