"""How fast the webhooks answer, against a floor: whole simulated calls through the Procfile's web server.

  python scripts/bench_webhooks.py --calls 200 --concurrency 16
  python scripts/bench_webhooks.py --redis-url redis://127.0.0.1:6379/14 --database-url postgresql+psycopg2://...

Two kinds of call, mixed by --hold-share: an English caller with nobody on (greeting, kind of problem, the
callback questions: every intake webhook), and a Spanish caller who holds (their one specialist is busy),
answers the questions from the queue, hears the music --waits times (the wait URL is requested again each
time), then presses 2 for a callback. No RQ worker runs: the jobs the line queues are only queued.

The simulated phone plays every call once through the line, which records its requests and checks the
call as a test would. The timed runs then replay those very requests, signed anew, with the same idle
pauses (hold music), from one driver, to the line (from an empty database and Redis each time) and to the
floor: scripts/floor_app.py (Twilio's RequestValidator and a fixed TwiML answer, nothing else) served by
the same gunicorn command in the same run. So both servers pay the same client's cost on the same cores.
A third server, the durable floor (the same app with durable=True), does only what any webhook that must
not lose or repeat a caller's answer does, the way the line does it: a Redis claim on the request, one
row and one event committed, the answer kept once sent. It shows how much of the target's budget goes
before any call flow. Two runs each, as the issue measures: --serial-calls calls one at a time (the
median; the servers take turns call by call), then every call with --concurrency at once (throughput and
p99; one server after another). Every answer of the line is checked again (HTTP 200, TwiML, never the
fault message that sends a caller to dispatch). The servers take turns for --rounds rounds (each goes
first in its share of them), since this machine's speed drifts from minute to minute.

Prints each measure from its median round (the worst round in brackets) with the floor's and the ratio
against its target, the same for the durable floor, then the line's webhooks one by one (the middle
round). For a figure that does not drift at all, scripts/count_webhook_instructions.py counts the same
calls in CPU instructions.

Redis is an embedded redis-server unless --redis-url names an empty database (emptied again afterwards);
the database is a fresh SQLite file unless --database-url names an empty one.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import math
import os
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import psutil
import redis
import requests
from defusedxml.ElementTree import fromstring
from twilio.request_validator import RequestValidator

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import floor_app  # noqa: E402  (scripts/, beside this file)

from voice.models import Base  # noqa: E402
from voice.redisdb import Keys  # noqa: E402
from voice.simulator import HttpTransport, ScriptedCaller, SimulatedPhone  # noqa: E402
from voice.simulator.embedded_redis import EmbeddedRedis, free_port  # noqa: E402
from voice.simulator.phone import FAULT_TEXTS  # noqa: E402

TOKEN = "bench-token"  # noqa: S105 (signs requests to the local benchmark servers only)
SID = "AC" + "b" * 32
LINE, DISPATCH = "+19375550100", "+19375550911"
# Nobody on for English: safe, noise, then the callback questions (name, place, this number, words, when).
CALLBACK_CALL = ["2", "1", "Dana", "Main Street", "1", "noise", "1"]
# Spanish, safe, noise; holds: the questions from the queue, music, 2 for a callback, then when.
HOLD_QUESTIONS = ["Dana", "Calle Main", "1", "ruido"]


def hold_call(waits: int) -> list[str | None]:
    return ["9", "2", "1", *HOLD_QUESTIONS, *([None] * waits), "2", "1"]


@dataclass
class Request:
    url: str
    params: dict
    idle_before: float  # seconds the simulated phone spent idle (hold music) before sending it


@dataclass
class Call:
    kind: str
    requests: list[Request] = field(default_factory=list)


class BenchPhone(SimulatedPhone):
    """The simulated phone, noting how long each leg sat idle before each request (to replay it exactly)."""

    def _wait(self, leg, seconds, until=lambda: False, idle=False):
        started = time.monotonic()
        try:
            return super()._wait(leg, seconds, until, idle)
        finally:
            if idle:
                leg.idle_seconds = getattr(leg, "idle_seconds", 0.0) + time.monotonic() - started

    def _post(self, leg, record, url, extra, follow=True):
        count = len(record.exchanges)
        try:
            return super()._post(leg, record, url, extra, follow)
        finally:
            if len(record.exchanges) > count:
                record.exchanges[-1].idle_before = getattr(leg, "idle_seconds", 0.0)
                leg.idle_seconds = 0.0


def line_settings(public: str, redis_url: str, database_url: str) -> dict[str, str]:
    """The line's settings for a benchmark: its own token and numbers, and the given Redis and database."""
    return {"TWILIO_ACCOUNT_SID": SID, "TWILIO_AUTH_TOKEN": TOKEN, "TWILIO_PHONE_NUMBER": LINE,
            "DISPATCH_TRANSFER_NUMBER": DISPATCH, "PUBLIC_BASE_URL": public, "SECRET_KEY": "bench",
            "REDIS_URL": redis_url, "DATABASE_URL": database_url}


def procfile_web(port: int, workers: int | None, app: str, chdir: Path | None = None) -> list[str]:
    """The Procfile's web line as an argv, on `port`, serving `app` instead of the line."""
    line = next(row for row in (ROOT / "Procfile").read_text().splitlines() if row.startswith("web:"))
    line = line.removeprefix("web:").replace("0.0.0.0:${PORT:-5000}", f"127.0.0.1:{port}")
    line = line.replace("${WEB_CONCURRENCY:-2}", str(workers) if workers else os.environ.get("WEB_CONCURRENCY", "2"))
    argv = shlex.split(line)
    argv[0] = str(Path(sys.executable).parent / argv[0])
    argv[-1] = app
    if chdir is not None:
        argv[1:1] = ["--chdir", str(chdir)]
    return argv


@contextlib.contextmanager
def serving(argv: list[str], env: dict, url: str, log: Path):
    with log.open("w") as out:
        server = subprocess.Popen(argv, env=env, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT)
    try:
        for _ in range(300):
            if server.poll() is not None:
                raise SystemExit(f"bench: gunicorn exited with status {server.returncode} while starting; see {log}")
            try:
                requests.post(url + "/voice/ping", timeout=1)
                break
            except requests.RequestException:
                time.sleep(0.1)
        # Both workers booted (not only the first): give the second a moment.
        time.sleep(1.0)
        yield server
    finally:
        server.terminate()
        server.wait(10)


def share_out(count: int, concurrency: int, make_handler) -> float:
    """Handle calls 0..count-1 on `concurrency` threads, each thread with its own handler (its own phone or
    HTTP connection), taking the next call as it finishes one; returns the elapsed seconds."""
    todo = list(range(count))
    lock = threading.Lock()

    def loop():
        handle = make_handler()
        while True:
            with lock:
                if not todo:
                    return
                n = todo.pop(0)
            handle(n)

    started = time.monotonic()
    threads = [threading.Thread(target=loop) for _ in range(concurrency)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return time.monotonic() - started


def record_calls(public: str, scripts: list[tuple[str, list]], concurrency: int):
    """Play every call through the line with the simulated phone, noting each request it sent."""
    problems: list[str] = []
    calls: list[Call | None] = [None] * len(scripts)
    lock = threading.Lock()

    def make_handler():
        phone = BenchPhone(HttpTransport(public), TOKEN, SID, LINE, public, max_wait_cycles=50)

        def handle(n: int) -> None:
            kind, inputs = scripts[n]
            record = phone.call_line(f"+1937556{n:04d}", ScriptedCaller(inputs))
            call = Call(kind)
            for exchange in record.exchanges:
                call.requests.append(Request(exchange.url, exchange.params, exchange.idle_before))
            with lock:
                calls[n] = call
                problems.extend(f"{kind} call {n}: {p}" for p in record.problems)

        return handle

    share_out(len(scripts), concurrency, make_handler)
    return calls, problems


def replay(line_public: str, public: str, calls: list[Call], concurrency: int, check_line: bool):
    """Send `public` the recorded requests, call by call, signed for it, with the same idle pauses.

    Returns the times by webhook, the problems seen and the elapsed seconds.
    """
    validator = RequestValidator(TOKEN)
    timings: dict[str, list[float]] = defaultdict(list)
    problems: list[str] = []
    lock = threading.Lock()

    def make_handler():
        transport = HttpTransport(public)

        def handle(n: int) -> None:
            mine = []
            for sent in calls[n].requests:
                if sent.idle_before:
                    time.sleep(sent.idle_before)
                url = public + sent.url.removeprefix(line_public)
                headers = {"X-Twilio-Signature": validator.compute_signature(url, sent.params)}
                started = time.monotonic()
                status, body, _ = transport.post(url, sent.params, headers)
                mine.append((webhook_name(url), (time.monotonic() - started) * 1000))
                problem = answer_problem(status, body, check_line)
                if problem:
                    with lock:
                        problems.append(f"{calls[n].kind} call {n}: {urlsplit(url).path} {problem}")
            with lock:
                for path, ms in mine:
                    timings[path].append(ms)

        return handle

    elapsed = share_out(len(calls), concurrency, make_handler)
    return timings, problems, elapsed


def answer_problem(status: int, body: str, check_line: bool) -> str | None:
    """What Twilio (or the caller) would object to in an answer; None when it is sound."""
    if status != 200:
        return f"answered HTTP {status}"
    try:
        root = fromstring(body.encode())
    except Exception as error:  # noqa: BLE001 (any parse failure is the finding)
        return f"answered with invalid TwiML: {error}"
    if check_line and any((node.text or "").strip() in FAULT_TEXTS for node in root.iter("Say")):
        return "answered with the fault message (the caller would be sent to dispatch)"
    return None


def webhook_name(url: str) -> str:
    path = urlsplit(url).path
    return "/voice/intake/<step>" if path.startswith("/voice/intake/") else path


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[max(0, math.ceil(len(ordered) * share) - 1)]


TARGETS = {"median": 1.5, "throughput": 0.7, "p99": 100.0}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=200)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--serial-calls", type=int, default=40, help="calls replayed one at a time for the median")
    parser.add_argument("--hold-share", type=float, default=0.5, help="share of calls that hold (0 to 1)")
    parser.add_argument("--waits", type=int, default=2, help="times a held caller hears the music before pressing 2")
    parser.add_argument("--rounds", type=int, default=3, help="rounds of both servers in turn (the median counts)")
    parser.add_argument("--workers", type=int, help="gunicorn worker processes (default: the Procfile's)")
    parser.add_argument("--redis-url", help="an empty Redis database to use (default: an embedded redis-server)")
    parser.add_argument("--database-url", help="an empty database (default: a new SQLite file)")
    args = parser.parse_args()

    embedded = None
    if args.redis_url:
        redis_url = args.redis_url
        # The benchmark fills the routing state with its own specialists: never someone's real line.
        keys = redis.Redis.from_url(redis_url).dbsize()
        if keys:
            print(f"bench: {redis_url} holds {keys} key(s); give an empty database", file=sys.stderr)
            return 2
    else:
        embedded = EmbeddedRedis()
        redis_url = embedded.url
    workdir = Path(tempfile.mkdtemp(prefix="bench-webhooks-"))
    line_port, floor_port, durable_port = free_port(), free_port(), free_port()
    line_public, floor_public = f"http://127.0.0.1:{line_port}", f"http://127.0.0.1:{floor_port}"
    durable_public = f"http://127.0.0.1:{durable_port}"
    database_url = args.database_url or f"sqlite:///{workdir / 'bench.db'}"
    env = {**os.environ, **line_settings(line_public, redis_url, database_url)}
    from voice import create_app

    app = create_app({k: v for k, v in env.items() if k.isupper()})
    logging.getLogger("alembic").setLevel(logging.WARNING)
    app.extensions["db"].upgrade()

    holds = round(args.calls * args.hold_share)
    scripts = [("hold", hold_call(args.waits)) if _spread(n, args.calls, holds) else ("callback", CALLBACK_CALL)
               for n in range(args.calls)]
    web = procfile_web(line_port, args.workers, "voice:create_app()")
    floor = procfile_web(floor_port, args.workers, "floor_app:create_app()", chdir=ROOT / "scripts")
    durable = procfile_web(durable_port, args.workers, "floor_app:create_app(durable=True)", chdir=ROOT / "scripts")
    serial = max(1, min(args.serial_calls, args.calls))
    rounds: list[dict[tuple[str, str], tuple[dict, float, float]]] = []
    try:
        floor_app.prepare_durable(redis_url, database_url)
        with serving(web, env, line_public, workdir / "line.log") as line_server, \
                serving(floor, {**env, "PUBLIC_BASE_URL": floor_public}, floor_public, workdir / "floor.log") as floor_server, \
                serving(durable, {**env, "PUBLIC_BASE_URL": durable_public}, durable_public,
                        workdir / "durable.log") as durable_server:
            fresh_line(app)
            calls, problems = record_calls(line_public, scripts, args.concurrency)
            # Each kind of call in the serial share, as in the whole mix.
            order = sorted(range(len(calls)), key=lambda n: (n * serial) % len(calls))[:serial]
            servers = {"line": (line_public, line_server, True), "floor": (floor_public, floor_server, False),
                       "durable": (durable_public, durable_server, False)}

            def prepare(who: str) -> None:
                if who == "line":
                    fresh_line(app)
                elif who == "durable":
                    floor_app.prepare_durable(redis_url, database_url)

            def play(who: str, chosen: list[Call], concurrency: int) -> tuple[dict, float, float]:
                public, server, is_line = servers[who]
                before = cpu_seconds(server)
                timings, seen, elapsed = replay(line_public, public, chosen, concurrency, check_line=is_line)
                problems.extend(seen if is_line else [f"{who} floor: {problem}" for problem in seen])
                return timings, elapsed, cpu_seconds(server) - before

            for number in range(args.rounds):
                # This machine's speed drifts from minute to minute: the servers take turns, each going first
                # in its share of the rounds, and each measure is judged by its median round.
                names = list(servers)
                turns = names[number % len(names):] + names[:number % len(names)]
                runs: dict[tuple[str, str], tuple[dict, float, float]] = {}
                # One call at a time, the servers take turns call by call: a drift falls on all of them alike.
                for who in turns:
                    prepare(who)
                played: dict[str, list[tuple[dict, float, float]]] = {who: [] for who in turns}
                for n in order:
                    for who in turns:
                        played[who].append(play(who, [calls[n]], 1))
                for who in turns:
                    timings = defaultdict(list)
                    for one_call, _, _ in played[who]:
                        for path, values in one_call.items():
                            timings[path] += values
                    runs[who, "serial"] = (timings, sum(e for _, e, _ in played[who]), sum(c for _, _, c in played[who]))
                for who in turns:
                    prepare(who)
                    runs[who, "concurrent"] = play(who, calls, args.concurrency)
                rounds.append(runs)
    finally:
        floor_app.prepare_durable(redis_url, database_url, drop=True)
        app.extensions["redis"].flushdb()
        app.extensions["db"].dispose()
        if embedded:
            stop_embedded_redis(embedded)
        shutil.rmtree(workdir, ignore_errors=True)

    kinds = defaultdict(int)
    for kind, _ in scripts:
        kinds[kind] += 1
    engine = "PostgreSQL" if database_url.startswith("postgresql") else "SQLite"
    requests_made = sum(len(call.requests) for call in calls)
    print(f"{args.calls} calls ({dict(kinds)}), {requests_made} requests; {engine} + Redis; "
          f"web: {' '.join(web[1:-1])}")
    print(f"one call at a time: {serial} of the calls; {args.concurrency} at once: all of them")
    print(f"problems: {len(problems)}")
    for problem in problems[:10]:
        print(f"  {problem}")
    print()
    print(f"{args.rounds} rounds, the line, the floor and the durable floor in turn; each measure is its median "
          f"round (its worst round in brackets)")
    print()
    line_figures = [figures(runs, "line") for runs in rounds]
    durable_figures = [figures(runs, "durable") for runs in rounds]
    line_judged = print_measures(line_figures, "the line", targets=True)
    print()
    print("the durable floor: the floor plus what any webhook that keeps the caller's answers must do, as the")
    print("line does it: a Redis claim on the request, one row and one event committed, the answer kept once sent")
    durable_judged = print_measures(durable_figures, "durable", targets=False)
    print()
    name = "median per request, one call at a time"
    against_durable = sorted(line[name][0] / durable[name][0]
                             for line, durable in zip(line_figures, durable_figures, strict=True))
    print(f"median, one call at a time: 1.5x allows 0.50x over the floor; the durable floor takes "
          f"{durable_judged[name] - 1:.2f}x of it, the line {line_judged[name] - 1:.2f}x; the line against the "
          f"durable floor: {against_durable[len(against_durable) // 2]:.2f}x")
    print()
    runs = rounds[len(rounds) // 2]
    for phase, label in (("serial", "one call at a time"), ("concurrent", f"{args.concurrency} calls at once")):
        line_paths = runs["line", phase][0]
        print(f"{'the line, ' + label:<34}{'requests':>9}{'p50 ms':>9}{'p95 ms':>9}{'p99 ms':>9}{'max ms':>9}")
        for path, values in sorted(line_paths.items()):
            print(f"{path:<34}{len(values):>9}{statistics.median(values):>9.1f}{percentile(values, 0.95):>9.1f}"
                  f"{percentile(values, 0.99):>9.1f}{max(values):>9.1f}")
        print()
    return 1 if problems else 0


def print_measures(per_round: list[dict[str, tuple]], label: str, targets: bool) -> dict[str, float]:
    """One table: each measure's median round against the floor, its worst round, and (for the line) its target.

    Returns each measure's judged figure (a ratio, or ms for p99)."""
    judged_by_name = {}
    print(f"{'measure':<40}{label:>10}{'the floor':>11}{'ratio':>8}{'worst':>10}  {'target' if targets else ''}")
    for name, (_, _, shape, target, better) in per_round[0].items():
        by_ratio = target is None or target[1] == "x"
        seen = sorted(((line / floor if floor else math.inf) if by_ratio else line, line, floor)
                      for line, floor, *_ in (measures[name] for measures in per_round))
        judged, line_value, floor_value = seen[len(seen) // 2]
        worst = seen[0 if better == "higher" else -1][0]
        worst_text = f"({worst:.2f}x)" if by_ratio else f"({shape.format(worst)})"
        verdict = ""
        if target is not None and targets:
            limit, unit = target
            met = judged >= limit if better == "higher" else judged <= limit if unit == "x" else judged < limit
            sign = ">=" if better == "higher" else "<=" if unit == "x" else "<"
            verdict = f"  {sign} {limit:g}{'x the floor' if unit == 'x' else ' ms'}: {'met' if met else 'NOT met'}"
        ratio = f"{line_value / floor_value:.2f}x" if floor_value else "-"
        print(f"{name:<40}{shape.format(line_value):>10}{shape.format(floor_value):>11}{ratio:>8}{worst_text:>10}"
              f"{verdict}")
        judged_by_name[name] = judged
    return judged_by_name


def figures(runs: dict, who: str = "line") -> dict[str, tuple]:
    """The issue's measures for `who` (the line, or the durable floor) and the floor, each with its target."""

    def flat(server: str, phase: str) -> list[float]:
        return [ms for values in runs[server, phase][0].values() for ms in values]

    def rate(server: str, phase: str) -> float:
        return len(flat(server, phase)) / runs[server, phase][1]

    median = statistics.median(flat(who, "serial")), statistics.median(flat("floor", "serial"))
    throughput = rate(who, "concurrent"), rate("floor", "concurrent")
    p99 = percentile(flat(who, "concurrent"), 0.99), percentile(flat("floor", "concurrent"), 0.99)
    middle = statistics.median(flat(who, "concurrent")), statistics.median(flat("floor", "concurrent"))
    cpu = tuple(1000 * runs[server, "concurrent"][2] / len(flat(server, "concurrent")) for server in (who, "floor"))
    # name: (who, floor, format, (target, "x" for a ratio or "ms"), "higher" or "lower" is better)
    return {
        "median per request, one call at a time": (*median, "{:.1f}", (TARGETS["median"], "x"), "lower"),
        "requests per second, N at once": (*throughput, "{:.0f}", (TARGETS["throughput"], "x"), "higher"),
        "p99 per request, N at once, ms": (*p99, "{:.1f}", (TARGETS["p99"], "ms"), "lower"),
        "median per request, N at once, ms": (*middle, "{:.1f}", None, "lower"),
        "server CPU per request, N at once, ms": (*cpu, "{:.2f}", None, "lower"),
    }


def cpu_seconds(server: subprocess.Popen) -> float:
    """CPU time the server's gunicorn workers have used so far (user and system)."""
    total = 0.0
    for worker in psutil.Process(server.pid).children():
        with contextlib.suppress(psutil.NoSuchProcess):
            times = worker.cpu_times()
            total += times.user + times.system
    return total


def fresh_line(app) -> None:
    """An empty database and Redis, then the bench's one specialist: Spanish, on, and busy with someone else."""
    from voice.line import routing, specialists

    engine = app.extensions["db"].engine
    with engine.begin() as connection:
        for table in reversed(Base.metadata.sorted_tables):
            connection.execute(table.delete())
    r = app.extensions["redis"]
    r.flushdb()
    with app.app_context():
        db = app.extensions["db"].session()
        specialist = specialists.add_specialist(db, "Busy Specialist", "+19375552000", ["es"])
        db.commit()
        specialists.set_available(db, r, specialist, True)
        r.set(Keys.lease(specialist.id), routing.call_holder("CA" + "f" * 32))
        app.extensions["db"].session.remove()


def _spread(n: int, total: int, chosen: int) -> bool:
    """Whether call n is one of `chosen` calls spread evenly through `total`."""
    return chosen > 0 and (n * chosen) // total != ((n + 1) * chosen) // total


def stop_embedded_redis(server: EmbeddedRedis) -> None:
    """Stop it for sure: EmbeddedRedis.stop() sends SHUTDOWN NOW, which the bundled redis-server 6.2 refuses."""
    with contextlib.suppress(redis.RedisError):
        redis.Redis.from_url(server.url, socket_timeout=5).shutdown(nosave=True)
    server.stop()


if __name__ == "__main__":
    raise SystemExit(main())
