"""Does the dashboard stay fast with a million calls? Seeds a database, then times each page.

  python scripts/bench_dashboard.py --rows 1000000                      # a SQLite file
  python scripts/bench_dashboard.py --database-url postgresql+psycopg2://postgres@127.0.0.1/test
  python scripts/bench_dashboard.py --explain                           # and each page's query plan

Prints the time of each page (the median of 5 requests through the Flask app, logged in as a coordinator).
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
from datetime import timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from sqlalchemy import func, insert, select, text  # noqa: E402

from voice import create_app  # noqa: E402
from voice.line import specialists  # noqa: E402
from voice.models import Base, Call, utcnow  # noqa: E402
from voice.script import CATEGORIES  # noqa: E402
from voice.simulator.embedded_redis import ensure_redis  # noqa: E402

OUTCOMES = ["bridged"] * 6 + ["callback_completed"] * 2 + ["escalated", "abandoned", "callback_queued"]
NAMES = ["Dana Whitfield", "María López", "Eli Brooks", "Sam Carter", "Ana Ruiz", "Tom Nguyen", "Rosa Díaz"]


def seed(app, rows: int) -> None:
    db_ext = app.extensions["db"]
    with db_ext.engine.begin() as conn:
        have = conn.scalar(select(func.count(Call.id)))
    if have >= rows:
        print(f"database already has {have} calls")
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
    batch = []
    with db_ext.engine.begin() as conn:
        for n in range(have, rows):
            when = now - timedelta(seconds=rng.randint(0, 3 * 365 * 86400))
            outcome = rng.choice(OUTCOMES)
            batch.append({
                "call_sid": f"CA{n:032d}", "from_number": f"+1937{rng.randint(2000000, 9999999)}", "to_number": "+19375550100",
                "started_at": when, "ended_at": when + timedelta(minutes=5), "language": rng.choice(["en", "en", "en", "es"]),
                "category": rng.choice(categories), "caller_name": rng.choice(NAMES), "location": "Main St",
                "callback_number": None, "description": "seeded", "outcome": outcome, "wants_callback": False,
                "specialist_id": rng.choice(ids) if outcome in ("bridged", "callback_completed") else None,
                "connected_at": when + timedelta(seconds=rng.randint(5, 60)) if outcome == "bridged" else None,
            })
            if len(batch) == 20000:
                conn.execute(insert(Call), batch)
                batch = []
        if batch:
            conn.execute(insert(Call), batch)
    # Fresh statistics, so each planner picks its indexes as it would on a database that grew slowly.
    with db_ext.engine.begin() as conn:
        conn.execute(text("ANALYZE"))
    print(f"seeded {rows - have} calls in {time.monotonic() - started:.0f} s")


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
    if embedded:
        embedded.stop()
    return 0


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
