"""How long a caller waits for a person, on a phone's clock, through the real webhooks and a real RQ worker.

  python scripts/bench_time_to_human.py [--runs 3] [--time-scale 0.05] [--redis-url URL] [--database-url URL]

The line runs with the README's demo settings (SQLite, an embedded Redis unless --redis-url names an empty
database, the fake Twilio REST API, an RQ worker). The simulated phone keeps a phone's clock: prompts at 160
words a minute, 1.5 s to press a key, 6 s of ringing before anyone answers, the specialist's whisper and key.
Every leg runs in real time scaled by --time-scale (0.05: twenty times faster than life), so the app's and the
worker's own latency count too, magnified by the same factor. Personas:

  free        a specialist is free; the caller is safe and has a noise complaint
  first-miss  two specialists are free; the one idle longest never answers, the other takes the call
  danger      the caller says someone is in danger: put through to dispatch
  busy        the only specialist on is busy: the caller hears their place in line

Prints, per persona, the median and worst seconds over the runs and the words spoken before that moment.
A benchmark, not a test: it prints figures and exits 0 unless something broke.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

TARGETS = {"free": 30.0, "first-miss": 50.0, "danger": 20.0, "busy": 30.0}
WHAT = {
    "free": "specialist free: a specialist talking with the caller",
    "first-miss": "the first specialist rung misses: a specialist talking with the caller",
    "danger": "caller reports danger: put through to dispatch",
    "busy": "everyone busy: the caller hears their place in line",
}
CALLER = "+19375550123"
ALICE = "+19375550201"
BRUNO = "+19375550202"


def run_persona(persona: str, redis_url: str, database_url: str, time_scale: float) -> tuple[float, int]:
    """One call of `persona` on a fresh line: (seconds on the phone's clock, words heard before then)."""
    from sqlalchemy import select

    from tests.conftest import (
        ACCOUNT_SID,
        AUTH_TOKEN,
        DISPATCH,
        LINE,
        PUBLIC,
        Line,
        ThreadWorker,
        fresh_app,
        settings,
    )
    from voice import routing
    from voice.models import Specialist
    from voice.simulator import Dispatcher, FlaskTransport, ScriptedCaller, SimulatedPhone
    from voice.simulator.fake_twilio import FakeTwilio

    fake = FakeTwilio(None, ACCOUNT_SID, AUTH_TOKEN, LINE)
    url = fake.start()
    config = settings(redis_url, database_url, TWILIO_API_BASE_URL=url, TESTING=False)
    with fresh_app(config) as app:
        phone = SimulatedPhone(FlaskTransport(app), AUTH_TOKEN, ACCOUNT_SID, LINE, PUBLIC,
                               network={DISPATCH: Dispatcher()}, time_scale=time_scale)
        fake.phone = phone
        worker = ThreadWorker(app)
        worker.start()
        line = Line(app, phone, fake, worker)
        try:
            if persona == "first-miss":
                line.add_specialist("Alice", ALICE, answers=False)  # idle longest: rung first, never answers
                line.add_specialist("Bruno", BRUNO)
            elif persona in ("free", "busy"):
                line.add_specialist("Alice", ALICE)
            if persona == "busy":
                with app.app_context():
                    alice = app.extensions["db"].session().scalar(select(Specialist))
                    routing.claim_next_specialist(app.extensions["redis"], "en", "call:CAother", 600, only=alice.id)
            inputs = {"danger": ["1"], "busy": ["2", "1", "2", "1"]}.get(persona, ["2", "1"])
            record = phone.call_line(CALLER, ScriptedCaller(inputs))
            if record.problems:
                raise SystemExit(f"{persona}: the call had problems: {record.problems}")
            if persona == "busy":
                moment = next((at for at, label in record.marks if "in line" in label), None)
            else:
                moment = record.first_mark("dispatch" if persona == "danger" else "specialist")
            if moment is None:
                raise SystemExit(f"{persona}: never reached the moment measured\n{record.text()}")
            words = sum(len(label.split(":", 1)[1].split()) for at, label in record.marks
                        if label.startswith("said:") and at < moment)
            return moment, words
        finally:
            worker.stop()
            fake.stop()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--time-scale", type=float, default=0.05,
                        help="real seconds per second of phone clock (default 0.05: 20x faster than life)")
    parser.add_argument("--redis-url", help="an EMPTY Redis database to use (default: an embedded server)")
    parser.add_argument("--database-url", help="default: a temporary SQLite file migrated by Alembic")
    parser.add_argument("--persona", choices=sorted(TARGETS), action="append", help="only these (repeatable)")
    args = parser.parse_args()

    import logging

    logging.disable(logging.WARNING)
    from voice.db import Database
    from voice.embedded_redis import ensure_redis

    redis_url, server = ensure_redis(args.redis_url)
    workdir = tempfile.TemporaryDirectory(prefix="bench-tth-")
    database_url = args.database_url or f"sqlite:///{workdir.name}/bench.db"
    database = Database(database_url)
    database.upgrade()
    database.dispose()
    try:
        print(f"phone clock: 160 words/min, 1.5 s a key, 6 s ringing; time scale {args.time_scale} "
              f"({1 / args.time_scale:.0f}x); {args.runs} run(s) each")
        print(f"{'case':<62} {'median':>7} {'worst':>7} {'target':>7} {'words':>6}")
        ok = True
        for persona in args.persona or list(TARGETS):
            results = [run_persona(persona, redis_url, database_url, args.time_scale) for _ in range(args.runs)]
            seconds = [s for s, _ in results]
            words = results[0][1]
            mid, worst = statistics.median(seconds), max(seconds)
            met = worst <= TARGETS[persona]
            ok &= met
            print(f"{WHAT[persona]:<62} {mid:6.1f}s {worst:6.1f}s {TARGETS[persona]:6.0f}s {words:>6}"
                  f"  {'ok' if met else 'OVER TARGET'}")
        print("all at or under target" if ok else "some figures are over target")
        return 0
    finally:
        workdir.cleanup()
        if server is not None:
            server.stop()


if __name__ == "__main__":
    raise SystemExit(main())
