"""How fast the webhooks answer, against a floor: whole simulated calls through the Procfile's web server.

  python scripts/bench_webhooks.py --calls 200 --concurrency 16
  python scripts/bench_webhooks.py --redis-url redis://127.0.0.1:6379/14 --database-url postgresql+psycopg2://...

Two kinds of call, mixed by --hold-share: an English caller with nobody on (greeting, kind of problem, the
callback questions: every intake webhook), and a Spanish caller who holds (their one specialist is busy),
answers the questions from the queue, hears the music --waits times (the wait URL is requested again each
time), then presses 2 for a callback. No RQ worker runs: the jobs the line queues are only queued.

The floor is scripts/floor_app.py (Twilio's RequestValidator and a fixed TwiML answer, nothing else),
served by the same gunicorn command in the same run and sent the very same requests, call by call, at the
same concurrency and with the same idle pauses the simulated phone took (hold music).

Prints, for the line and the floor: median and p99 per request, requests per second, and the ratios; then
the line's webhooks one by one. Twilio gives up after 15 seconds. Redis is an embedded redis-server
unless --redis-url names an empty database (emptied again afterwards); the database is a fresh SQLite file
unless --database-url names an empty one.
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

import redis
import requests
from defusedxml.ElementTree import fromstring
from twilio.request_validator import RequestValidator

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from voice.embedded_redis import EmbeddedRedis, free_port  # noqa: E402
from voice.redisdb import Keys  # noqa: E402
from voice.simulator import HttpTransport, ScriptedCaller, SimulatedPhone  # noqa: E402

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


def run_threads(count: int, target) -> float:
    started = time.monotonic()
    threads = [threading.Thread(target=target) for _ in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return time.monotonic() - started


def drive_line(public: str, scripts: list[tuple[str, list]], concurrency: int):
    """Play every call through the line; each caller thread has its own phone and HTTP connection."""
    timings: dict[str, list[float]] = defaultdict(list)
    problems: list[str] = []
    calls: list[Call | None] = [None] * len(scripts)
    lock = threading.Lock()
    todo = list(range(len(scripts)))

    def caller_loop():
        phone = BenchPhone(HttpTransport(public), TOKEN, SID, LINE, public, max_wait_cycles=50)
        while True:
            with lock:
                if not todo:
                    return
                n = todo.pop(0)
            kind, inputs = scripts[n]
            record = phone.call_line(f"+1937556{n:04d}", ScriptedCaller(inputs))
            call = Call(kind)
            for exchange in record.exchanges:
                call.requests.append(Request(exchange.url, exchange.params, exchange.idle_before))
            with lock:
                calls[n] = call
                problems.extend(f"{kind} call {n}: {p}" for p in record.problems)
                for exchange in record.exchanges:
                    path = urlsplit(exchange.url).path
                    path = "/voice/intake/<step>" if path.startswith("/voice/intake/") else path
                    timings[path].append(exchange.seconds * 1000)

    elapsed = run_threads(concurrency, caller_loop)
    return calls, timings, problems, elapsed


def drive_floor(line_public: str, floor_public: str, calls: list[Call], concurrency: int):
    """Send the floor the line's requests, call by call, signed for the floor, with the same idle pauses."""
    validator = RequestValidator(TOKEN)
    timings: list[float] = []
    problems: list[str] = []
    lock = threading.Lock()
    todo = list(range(len(calls)))

    def caller_loop():
        transport = HttpTransport(floor_public)
        while True:
            with lock:
                if not todo:
                    return
                n = todo.pop(0)
            mine = []
            for sent in calls[n].requests:
                if sent.idle_before:
                    time.sleep(sent.idle_before)
                url = floor_public + sent.url.removeprefix(line_public)
                headers = {"X-Twilio-Signature": validator.compute_signature(url, sent.params)}
                started = time.monotonic()
                status, body, _ = transport.post(url, sent.params, headers)
                mine.append((time.monotonic() - started) * 1000)
                if status != 200:
                    problems.append(f"floor: {url} answered HTTP {status}")
                else:
                    fromstring(body.encode())  # read it as the phone reads the line's answers
            with lock:
                timings.extend(mine)

    elapsed = run_threads(concurrency, caller_loop)
    return timings, problems, elapsed


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[max(0, math.ceil(len(ordered) * share) - 1)]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=100)
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--hold-share", type=float, default=0.5, help="share of calls that hold (0 to 1)")
    parser.add_argument("--waits", type=int, default=2, help="times a held caller hears the music before pressing 2")
    parser.add_argument("--workers", type=int, help="gunicorn worker processes (default: the Procfile's)")
    parser.add_argument("--redis-url", help="an empty Redis database to use (default: an embedded redis-server)")
    parser.add_argument("--database-url", help="an empty database (default: a new SQLite file)")
    parser.add_argument("--no-floor", action="store_true", help="measure the line alone")
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
    line_port, floor_port = free_port(), free_port()
    line_public, floor_public = f"http://127.0.0.1:{line_port}", f"http://127.0.0.1:{floor_port}"
    database_url = args.database_url or f"sqlite:///{workdir / 'bench.db'}"
    env = {**os.environ, "TWILIO_ACCOUNT_SID": SID, "TWILIO_AUTH_TOKEN": TOKEN, "TWILIO_PHONE_NUMBER": LINE,
           "DISPATCH_TRANSFER_NUMBER": DISPATCH, "PUBLIC_BASE_URL": line_public, "SECRET_KEY": "bench",
           "REDIS_URL": redis_url, "DATABASE_URL": database_url}
    from voice import create_app, routing, specialists

    app = create_app({k: v for k, v in env.items() if k.isupper()})
    logging.getLogger("alembic").setLevel(logging.WARNING)
    app.extensions["db"].upgrade()
    with app.app_context():
        db = app.extensions["db"].session()
        r = app.extensions["redis"]
        # One Spanish specialist on and busy with someone else: Spanish callers hold; nobody is on for English.
        specialist = specialists.add_specialist(db, "Busy Specialist", "+19375552000", ["es"])
        db.commit()
        specialists.set_available(db, r, specialist, True)
        r.set(Keys.lease(specialist.id), routing.call_holder("CA" + "f" * 32))

    holds = round(args.calls * args.hold_share)
    scripts = [("hold", hold_call(args.waits)) if _spread(n, args.calls, holds) else ("callback", CALLBACK_CALL)
               for n in range(args.calls)]
    web = procfile_web(line_port, args.workers, "voice:create_app()")
    try:
        with serving(web, env, line_public, workdir / "line.log"):
            calls, line_paths, problems, line_elapsed = drive_line(line_public, scripts, args.concurrency)
        floor_times: list[float] = []
        floor_elapsed = 0.0
        if not args.no_floor:
            floor = procfile_web(floor_port, args.workers, "floor_app:create_app()", chdir=ROOT / "scripts")
            with serving(floor, {**env, "PUBLIC_BASE_URL": floor_public}, floor_public, workdir / "floor.log"):
                floor_times, floor_problems, floor_elapsed = drive_floor(line_public, floor_public, calls,
                                                                         args.concurrency)
            problems += floor_problems
    finally:
        app.extensions["redis"].flushdb()
        app.extensions["db"].dispose()
        if embedded:
            stop_embedded_redis(embedded)
        shutil.rmtree(workdir, ignore_errors=True)

    line_times = [t for values in line_paths.values() for t in values]
    kinds = defaultdict(int)
    for kind, _ in scripts:
        kinds[kind] += 1
    engine = "PostgreSQL" if database_url.startswith("postgresql") else "SQLite"
    print(f"{args.calls} calls ({dict(kinds)}), {args.concurrency} at a time, {len(line_times)} requests; "
          f"{engine} + Redis; web: {' '.join(web[1:-1])}")
    print(f"problems: {len(problems)}")
    for problem in problems[:10]:
        print(f"  {problem}")
    print()
    print(f"{'measure':<28}{'the line':>10}{'the floor':>11}{'ratio':>8}")
    rows = [("median per request, ms", statistics.median(line_times),
             statistics.median(floor_times) if floor_times else None, "{:.1f}"),
            ("requests per second", len(line_times) / line_elapsed,
             len(floor_times) / floor_elapsed if floor_times else None, "{:.0f}"),
            ("p99 per request, ms", percentile(line_times, 0.99),
             percentile(floor_times, 0.99) if floor_times else None, "{:.1f}")]
    for name, line_value, floor_value, shape in rows:
        floor_text = shape.format(floor_value) if floor_value is not None else "-"
        ratio = f"{line_value / floor_value:.2f}x" if floor_value else "-"
        print(f"{name:<28}{shape.format(line_value):>10}{floor_text:>11}{ratio:>8}")
    print()
    print(f"{'the line, by webhook':<28}{'requests':>9}{'p50 ms':>9}{'p95 ms':>9}{'p99 ms':>9}{'max ms':>9}")
    for path, values in sorted(line_paths.items()):
        print(f"{path:<28}{len(values):>9}{statistics.median(values):>9.1f}{percentile(values, 0.95):>9.1f}"
              f"{percentile(values, 0.99):>9.1f}{max(values):>9.1f}")
    return 1 if problems else 0


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
