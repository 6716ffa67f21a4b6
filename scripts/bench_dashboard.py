"""Does the dashboard stay fast with a million calls? Seeds a database, then times each page and export.

  python scripts/bench_dashboard.py --rows 1000000                      # a SQLite file
  python scripts/bench_dashboard.py --database-url postgresql+psycopg2://postgres@127.0.0.1/test
  python scripts/bench_dashboard.py --explain                           # and each page's query plan

Prints the time of each page (the median of 5 requests through the Flask app, logged in as a coordinator), then
the exports of a month and of a year (the open data and the full call log), streamed to the end: their time, rows,
and the most Python memory they held at once (tracemalloc, in a run of its own), which stays flat as rows grow.
The seed gives calls everything the reports read: cases, holds, callback requests, sources, areas, reasons for
going back to 911, referrals and specialists' shifts.
"""

from __future__ import annotations

import argparse
import logging
import os
import random
import statistics
import sys
import tempfile
import time
import tracemalloc
from datetime import datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from sqlalchemy import func, insert, select, text  # noqa: E402

from voice import create_app  # noqa: E402
from voice.line import specialists  # noqa: E402
from voice.models import (  # noqa: E402
    Base,
    Call,
    CallbackRequest,
    Hold,
    Referral,
    Service,
    Shift,
    utcnow,
)
from voice.models import Case as CaseRow  # noqa: E402
from voice.script import CATEGORIES  # noqa: E402
from voice.simulator.embedded_redis import ensure_redis  # noqa: E402

OUTCOMES = ["bridged"] * 6 + ["callback_completed"] * 2 + ["escalated", "abandoned", "callback_queued", "unreachable"]
NAMES = ["Dana Whitfield", "María López", "Eli Brooks", "Sam Carter", "Ana Ruiz", "Tom Nguyen", "Rosa Díaz"]
SOURCES = ["911"] * 40 + ["handoff"] * 4 + ["public"] * 5 + ["follow_up"]
ZIPS = [f"454{n:02d}" for n in range(1, 26)]
STREETS = [f"{name} {kind}" for name in ("salem", "main", "3rd", "wayne", "brown", "linden", "troy", "keowee")
           for kind in ("ave", "st", "rd", "dr", "blvd")]
CASE_OUTCOMES = [("resolved_by_phone", "phone"), ("agreement_reached", "in_person"), ("resolved", "in_person"),
                 ("referred", "phone"), ("declined", "phone"), ("no_one_home", "in_person"), ("no_further_action", "phone")]
RETURNS = ["danger", "caller_asked", "no_safety_answer", "specialist_transfer"]


def seed(app, rows: int) -> None:
    db_ext = app.extensions["db"]
    with db_ext.engine.begin() as conn:
        have = conn.scalar(select(func.count(Call.id)))
    if have >= rows:
        print(f"database already has {have} calls")
        checkpoint(app)
        return
    with app.app_context():
        db = db_ext.session()
        ids = []
        for n in range(6):
            s = specialists.add_specialist(db, f"Specialist {n}", f"+1937555{3000 + n:04d}", ["en", "es"])
            db.flush()
            ids.append(s.id)
        db.commit()
    rng = random.Random(7)
    categories = [c[0] for c in CATEGORIES.values()]
    now = utcnow()
    started = time.monotonic()
    batches: dict = {CaseRow: [], Call: [], Hold: [], CallbackRequest: [], Referral: []}
    with db_ext.engine.begin() as conn:
        conn.execute(insert(Service), [{"name": f"Service {n}", "kind": kind, "phone": f"+1937555{4000 + n:04d}",
                                        "active": True, "created_at": now, "updated_at": now}
                                       for n, kind in enumerate(("housing", "legal_aid", "mental_health", "food"))])
        conn.execute(insert(Shift), list(shifts(rng, ids, now)))
        case_id = 0
        # Oldest first, as a line writes them: a range of days is then a run of neighbouring rows, as in service.
        ages = sorted((rng.randint(0, 3 * 365 * 86400) for _ in range(have, rows)), reverse=True)
        for n, age in zip(range(have, rows), ages, strict=True):
            call_id = n + 1
            when = now - timedelta(seconds=age)
            outcome = rng.choice(OUTCOMES)
            if outcome == "callback_queued" and when < now - timedelta(days=1):
                outcome = "callback_completed"  # callers still waiting are from the last day, not from years ago
            connected = outcome in ("bridged", "callback_completed") or (outcome == "escalated" and rng.random() < .2)
            # A call in five joins the case of the call before it; the rest open their own.
            if case_id == 0 or rng.random() >= 0.2:
                case_id += 1
                status, (closed, how) = rng.choice(["closed"] * 3 + ["open"]), rng.choice(CASE_OUTCOMES)
                batches[CaseRow].append({"id": case_id, "opened_at": when, "status": status, "updated_at": now,
                                         "outcome": closed if status == "closed" else None,
                                         "closed_how": how if status == "closed" else None})
            batches[Call].append({
                "id": call_id, "call_sid": f"CA{n:032d}", "from_number": f"+1937{rng.randint(2000000, 9999999)}",
                "to_number": "+19375550100", "source": rng.choice(SOURCES),
                "started_at": when, "ended_at": when + timedelta(minutes=5), "language": rng.choice(["en", "en", "en", "es"]),
                "category": rng.choice(categories), "caller_name": rng.choice(NAMES), "location": "Main St",
                "callback_number": None, "description": "seeded", "outcome": outcome, "wants_callback": False,
                "specialist_id": rng.choice(ids) if connected else None,
                "connected_at": when + timedelta(seconds=rng.randint(5, 90)) if connected else None,
                "escalation_reason": rng.choice(RETURNS) if outcome == "escalated" else None, "case_id": case_id,
                "zip_code": rng.choice(ZIPS) if rng.random() < .7 else None,
                "street": rng.choice(STREETS) if rng.random() < .6 else None,
            })
            if outcome in ("bridged", "abandoned") and rng.random() < .5:
                batches[Hold].append({"call_id": call_id, "language": "en", "status": "done", "arrived_at": when,
                                      "enqueued_at": when + timedelta(seconds=20), "asked": "", "updated_at": now})
            if outcome in ("callback_completed", "callback_queued", "unreachable"):
                status = {"callback_completed": "completed", "callback_queued": "pending",
                          "unreachable": "unreachable"}[outcome]
                made = when + timedelta(minutes=1)
                batches[CallbackRequest].append({
                    "call_id": call_id, "language": "en", "status": status, "due_at": made, "arrived_at": when,
                    "attempts": rng.randint(1, 3) if status != "pending" else 0, "created_at": made, "updated_at": now,
                    "completed_at": made + timedelta(minutes=rng.randint(2, 240)) if status != "pending" else None})
            if connected and rng.random() < .1:
                batches[Referral].append({"call_id": call_id, "service_id": rng.randint(1, 4),
                                          "accepted": rng.random() < .7, "given_at": when})
            if len(batches[Call]) == 20000:
                flush(conn, batches)
        flush(conn, batches)
        if db_ext.engine.dialect.name == "postgresql":
            # The ids were given, so the sequences have not moved: the next row must not take one of them.
            conn.execute(text("SELECT setval(pg_get_serial_sequence('calls', 'id'), (SELECT max(id) FROM calls))"))
            conn.execute(text("SELECT setval(pg_get_serial_sequence('cases', 'id'), (SELECT max(id) FROM cases))"))
    # Fresh statistics, so each planner picks its indexes as it would on a database that grew slowly.
    with db_ext.engine.begin() as conn:
        conn.execute(text("ANALYZE"))
    checkpoint(app)
    print(f"seeded {rows - have} calls in {time.monotonic() - started:.0f} s")


def checkpoint(app) -> None:
    """SQLite: move the seed out of the write-ahead log into the database file, as its checkpoints do in service;
    reading a million rows back through a gigabyte of log would time the log, not the pages."""
    engine = app.extensions["db"].engine
    if engine.dialect.name == "sqlite":
        engine.dispose()
        with engine.connect() as conn:
            conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")


def flush(conn, batches: dict) -> None:
    """Insert what each table has waiting (cases before the calls that point at them)."""
    for model, rows in batches.items():
        if rows:
            conn.execute(insert(model), rows)
            rows.clear()


def shifts(rng: random.Random, ids: list[int], now: datetime):
    """Three years of shifts: most days, most specialists are on for eight hours from 8 a.m. or noon (UTC+5)."""
    for day in range(3 * 365):
        start_of_day = (now - timedelta(days=day)).replace(hour=13, minute=0, second=0, microsecond=0)
        for specialist in ids:
            if rng.random() < .7:
                begin = start_of_day + timedelta(hours=rng.choice([0, 4]))
                yield {"specialist_id": specialist, "started_at": begin, "ended_at": begin + timedelta(hours=8)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--database-url", default="")
    parser.add_argument("--explain", action="store_true", help="print the plan of each call log query")
    parser.add_argument("--fresh", action="store_true", help="drop the tables of --database-url first")
    args = parser.parse_args()
    url = args.database_url or f"sqlite:///{Path(tempfile.gettempdir()) / f'bench-dashboard-{args.rows}.db'}"
    redis_url, embedded = ensure_redis(os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/8"))
    app = create_app({"TWILIO_ACCOUNT_SID": "AC" + "0" * 32, "TWILIO_AUTH_TOKEN": "x", "TWILIO_PHONE_NUMBER": "+19375550100",
                      "DISPATCH_TRANSFER_NUMBER": "+19375550911", "PUBLIC_BASE_URL": "http://localhost",
                      "SECRET_KEY": "bench", "REDIS_URL": redis_url, "DATABASE_URL": url, "WTF_CSRF_ENABLED": False,
                      "RATELIMIT_LOGIN": "1000 per minute"})
    logging.getLogger("alembic").setLevel(logging.WARNING)
    if args.database_url and args.fresh:
        Base.metadata.drop_all(app.extensions["db"].engine)
    app.extensions["db"].upgrade()
    seed(app, args.rows)
    from voice.dashboard.auth import create_user
    from voice.models import User

    with app.app_context():
        db = app.extensions["db"].session()
        if not db.scalar(select(User).where(User.email == "bench@city.gov")):
            create_user(db, "bench@city.gov", "bench-password", "coordinator")
            db.commit()
    client = app.test_client()
    client.post("/dashboard/login", data={"email": "bench@city.gov", "password": "bench-password"})
    first = client.get("/dashboard/calls").get_data(as_text=True)
    import re

    cursor = re.search(r"after=([^&\"]+)", first).group(1)
    with app.app_context():
        db = app.extensions["db"].session()
        middle = db.scalar(select(Call).order_by(Call.id).offset(args.rows // 2).limit(1))
        deep_cursor = f"{middle.started_at.isoformat()}_{middle.id}"
        phone = middle.from_number
    today = utcnow().date()
    pages = {
        "call log, first page": "/dashboard/calls",
        "call log, page 2": f"/dashboard/calls?after={cursor}",
        "call log, half-way down": f"/dashboard/calls?after={deep_cursor}",
        "filter: category": "/dashboard/calls?category=parking",
        "filter: outcome + language": "/dashboard/calls?outcome=escalated&language=es",
        "filter: specialist": "/dashboard/calls?specialist=1",
        "filter: one week": f"/dashboard/calls?start={today - timedelta(days=7)}&end={today}",
        "search: phone number": f"/dashboard/calls?q={phone}",
        "search: name": "/dashboard/calls?q=Mar",
        "search: name, no match": "/dashboard/calls?q=Zelda",
        "live board": "/dashboard/board/live",
        "reports: this month": "/dashboard/reports",
        "reports: 3 months": f"/dashboard/reports?start={today - timedelta(days=90)}&end={today}",
        "reports: a year": f"/dashboard/reports?start={today - timedelta(days=364)}&end={today}",
    }
    print(f"{args.rows} calls in {app.extensions['db'].engine.dialect.name}")
    print(f"{'page':<30}{'median ms':>10}{'max ms':>9}")
    for name, path in pages.items():
        times = []
        for _ in range(5):
            started = time.perf_counter()
            response = client.get(path)
            times.append((time.perf_counter() - started) * 1000)
            assert response.status_code == 200, (path, response.status_code)
        print(f"{name:<30}{statistics.median(times):>10.1f}{max(times):>9.1f}")
        if args.explain and path.startswith("/dashboard/calls"):
            explain(app, client, path)
    time_exports(client, today)
    if embedded:
        embedded.stop()
    return 0


def time_exports(client, today) -> None:
    """Each export of a month and of a year, streamed to the end: time and rows; then, in runs of their own,
    the most Python memory held at once while streaming (tracemalloc slows a run, so it is not timed)."""
    print(f"{'export':<30}{'seconds':>10}{'rows':>10}{'peak MB':>10}")
    for name, path in (("open data", "/dashboard/reports/open-data.csv"), ("full call log", "/dashboard/calls.csv")):
        for span, days in (("a month", 30), ("a year", 364)):
            url = f"{path}?start={today - timedelta(days=days - 1)}&end={today}"
            started = time.perf_counter()
            rows = stream(client, url)
            seconds = time.perf_counter() - started
            tracemalloc.start()
            stream(client, url)
            peak = tracemalloc.get_traced_memory()[1] / 1e6
            tracemalloc.stop()
            print(f"{name + ', ' + span:<30}{seconds:>10.1f}{rows:>10}{peak:>10.1f}")


def stream(client, url: str) -> int:
    """Read a streamed download chunk by chunk, keeping none of it; returns its rows."""
    response = client.get(url)
    assert response.status_code == 200, (url, response.status_code)
    lines = sum(chunk.count(b"\n") for chunk in response.iter_encoded())
    response.close()
    return lines - 1


def explain(app, client, path: str) -> None:
    """Print the database's plan for the call log query a page runs (to see which index it uses)."""
    from sqlalchemy import event

    engine = app.extensions["db"].engine
    seen: list[tuple[str, object]] = []

    def record(conn, cursor, statement, parameters, context, executemany):
        if "FROM calls" in statement and "ORDER BY calls.started_at DESC" in statement:
            seen.append((statement, parameters))

    event.listen(engine, "before_cursor_execute", record)
    try:
        client.get(path)
    finally:
        event.remove(engine, "before_cursor_execute", record)
    if not seen:
        return
    statement, parameters = seen[-1]
    prefix = "EXPLAIN QUERY PLAN " if engine.dialect.name == "sqlite" else "EXPLAIN "
    with engine.connect() as conn:
        for row in conn.exec_driver_sql(prefix + statement, parameters):
            print("    " + str(row[-1]))


if __name__ == "__main__":
    raise SystemExit(main())
