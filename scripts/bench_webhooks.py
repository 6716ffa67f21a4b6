"""How fast the webhooks answer: whole simulated calls through the real server (gunicorn, Redis, SQLite).

  python scripts/bench_webhooks.py --calls 200 --concurrency 8
  python scripts/bench_webhooks.py --redis-url redis://127.0.0.1:6379/14 --database-url postgresql+psycopg2://...

Prints per-webhook latency (p50, p95, max) and calls per second. Twilio gives up after 15 seconds.
Redis is an embedded redis-server unless --redis-url names an empty database (emptied again afterwards);
the database is a fresh SQLite file unless --database-url is given.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import defaultdict
from pathlib import Path
from urllib.parse import urlsplit

import redis
import requests

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from voice.embedded_redis import EmbeddedRedis, free_port  # noqa: E402
from voice.simulator import Dispatcher, HttpTransport, ScriptedCaller, SimulatedPhone, SpecialistPhone  # noqa: E402

TOKEN = "bench-token"  # noqa: S105 (signs requests to the local benchmark server only)
SID = "AC" + "b" * 32
LINE, DISPATCH = "+19375550100", "+19375550911"
INTAKE = ["1", "2", "1", "Dana Whitfield", "400 West Third Street", "1", "Loud music every night", "1"]


def stop_embedded_redis(server: EmbeddedRedis) -> None:
    """Stop it for sure: EmbeddedRedis.stop() sends SHUTDOWN NOW, which the bundled redis-server 6.2 refuses."""
    with contextlib.suppress(redis.RedisError):
        redis.Redis.from_url(server.url, socket_timeout=5).shutdown(nosave=True)
    server.stop()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=100)
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--specialists", type=int, default=6)
    parser.add_argument("--workers", type=int, default=2, help="gunicorn worker processes")
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
    port = free_port()
    public = f"http://127.0.0.1:{port}"
    env = {**os.environ, "TWILIO_ACCOUNT_SID": SID, "TWILIO_AUTH_TOKEN": TOKEN, "TWILIO_PHONE_NUMBER": LINE,
           "DISPATCH_TRANSFER_NUMBER": DISPATCH, "PUBLIC_BASE_URL": public, "SECRET_KEY": "bench",
           "REDIS_URL": redis_url, "DATABASE_URL": args.database_url or f"sqlite:///{workdir / 'bench.db'}"}
    from voice import create_app, specialists

    app = create_app({k: v for k, v in env.items() if k.isupper()})
    logging.getLogger("alembic").setLevel(logging.WARNING)
    app.extensions["db"].upgrade()
    network = {DISPATCH: Dispatcher()}
    with app.app_context():
        db = app.extensions["db"].session()
        for n in range(args.specialists):
            number = f"+1937555{2000 + n:04d}"
            specialist = specialists.add_specialist(db, f"Specialist {n}", number, ["en"])
            db.commit()
            specialists.set_available(db, app.extensions["redis"], specialist, True)
            network[number] = SpecialistPhone(f"Specialist {n}")
    server = subprocess.Popen(
        [str(Path(sys.executable).parent / "gunicorn"), "--bind", f"127.0.0.1:{port}", "--workers", str(args.workers),
         "--threads", "4", "voice:create_app()"], env=env, cwd=ROOT, stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL)
    try:
        for _ in range(300):
            if server.poll() is not None:
                print(f"bench: gunicorn exited with status {server.returncode} while starting", file=sys.stderr)
                return 2
            try:
                requests.get(public + "/dashboard/login", timeout=1)
                break
            except requests.RequestException:
                time.sleep(0.1)
        phone = SimulatedPhone(HttpTransport(public), TOKEN, SID, LINE, public, network=network)
        timings: dict[str, list[float]] = defaultdict(list)
        problems: list[str] = []
        outcomes: dict[str, int] = defaultdict(int)
        lock = threading.Lock()
        todo = list(range(args.calls))

        def caller_loop():
            while True:
                with lock:
                    if not todo:
                        return
                    n = todo.pop()
                record = phone.call_line(f"+1937556{n:04d}", ScriptedCaller(INTAKE))
                with lock:
                    problems.extend(record.problems)
                    outcomes["bridged" if record.bridged_with else "not bridged"] += 1
                    for exchange in record.exchanges:
                        path = urlsplit(exchange.url).path
                        path = "/voice/intake/<step>" if path.startswith("/voice/intake/") else path
                        timings[path].append(exchange.seconds * 1000)

        started = time.monotonic()
        threads = [threading.Thread(target=caller_loop) for _ in range(args.concurrency)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        elapsed = time.monotonic() - started
    finally:
        server.terminate()
        server.wait(10)
        app.extensions["redis"].flushdb()
        app.extensions["db"].dispose()
        if embedded:
            stop_embedded_redis(embedded)
        shutil.rmtree(workdir, ignore_errors=True)

    everything = [t for values in timings.values() for t in values]
    print(f"{args.calls} calls, {args.concurrency} at a time, gunicorn {args.workers}x4 threads, SQLite + Redis")
    print(f"{args.calls / elapsed:.1f} calls/s, {len(everything) / elapsed:.0f} webhook requests/s; "
          f"outcomes: {dict(outcomes)}; problems: {len(problems)}")
    print(f"{'webhook':<28}{'requests':>9}{'p50 ms':>9}{'p95 ms':>9}{'max ms':>9}")
    for path, values in sorted(timings.items()) + [("all", everything)]:
        values.sort()
        p95 = values[int(len(values) * 0.95) - 1] if len(values) > 1 else values[0]
        print(f"{path:<28}{len(values):>9}{statistics.median(values):>9.1f}{p95:>9.1f}{values[-1]:>9.1f}")
    return 1 if problems else 0


if __name__ == "__main__":
    raise SystemExit(main())
