"""What a webhook costs in CPU instructions, the line against the floor: a figure this noisy machine cannot move.

  python scripts/count_webhook_instructions.py [--calls 20] [--redis-url redis://127.0.0.1:6379/14]

Plays the calls of scripts/bench_webhooks.py (half with nobody on, half holding) through the line in one
process with the simulated phone, then replays those very requests, in process and without a server, to the
line (fresh SQLite and Redis) and to the floor (scripts/floor_app.py), each under valgrind's callgrind with
counting switched on only for the timed replay. Instructions do not drift with the machine's load the way
milliseconds do, so this is the figure to compare one change with the next; bench_webhooks.py gives the
milliseconds through gunicorn that the targets are set in. Needs valgrind (Debian: apt-get install valgrind).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "scripts"))

import bench_webhooks as bench  # noqa: E402
from twilio.request_validator import RequestValidator  # noqa: E402

from voice.simulator.embedded_redis import EmbeddedRedis  # noqa: E402

PUBLIC = "http://line.bench"


def line_app(redis_url: str, workdir: Path):
    from voice import create_app

    app = create_app(bench.line_settings(PUBLIC, redis_url, f"sqlite:///{workdir / 'line.db'}"))
    logging.getLogger("alembic").setLevel(logging.WARNING)
    app.extensions["db"].upgrade()
    return app


def record(redis_url: str, workdir: Path, calls: int) -> list[list[tuple[str, dict, str]]]:
    """Each call's requests as (path, parameters, signature), played once through the line in process."""
    from voice.simulator import FlaskTransport, ScriptedCaller

    app = line_app(redis_url, workdir)
    bench.fresh_line(app)
    validator = RequestValidator(bench.TOKEN)
    played = []
    for n in range(calls):
        inputs = bench.hold_call(2) if n % 2 else bench.CALLBACK_CALL
        phone = bench.BenchPhone(FlaskTransport(app), bench.TOKEN, bench.SID, bench.LINE, PUBLIC, max_wait_cycles=50)
        result = phone.call_line(f"+1937556{n:04d}", ScriptedCaller(inputs))
        if result.problems:
            raise SystemExit(f"count: call {n} went wrong: {result.problems}")
        played.append([(e.url.removeprefix(PUBLIC), e.params, validator.compute_signature(e.url, e.params))
                       for e in result.exchanges])
    app.extensions["redis"].flushdb()
    app.extensions["db"].dispose()
    return played


def replay(target: str, calls_file: Path, redis_url: str, workdir: Path) -> None:
    """Run under callgrind: a warm-up pass, then one counted pass of every request."""
    played = json.loads(calls_file.read_text())
    if target == "line":
        app = line_app(redis_url, workdir)
        reset = lambda: bench.fresh_line(app)  # noqa: E731
    else:
        os.environ.update(PUBLIC_BASE_URL=PUBLIC, TWILIO_AUTH_TOKEN=bench.TOKEN)
        import floor_app

        app = floor_app.create_app()
        reset = lambda: None  # noqa: E731
    client = app.test_client()

    def one_pass() -> int:
        count = 0
        for call in played:
            for path, params, signature in call:
                response = client.post(path, data=params, headers={"X-Twilio-Signature": signature})
                problem = bench.answer_problem(response.status_code, response.get_data(as_text=True), target == "line")
                response.close()
                if problem:
                    raise SystemExit(f"count: {target} {path}: {problem}")
                count += 1
        return count

    reset()
    one_pass()
    reset()
    callgrind("--instr=on")
    count = one_pass()
    callgrind("--instr=off")
    print(f"requests {count}")


def callgrind(switch: str) -> None:
    # callgrind_control is answered by this process, so it must keep running (not block) until it returns.
    control = subprocess.Popen(["callgrind_control", switch, str(os.getpid())], stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL)
    while control.poll() is None:
        time.sleep(0.005)


def count(target: str, calls_file: Path, redis_url: str, workdir: Path) -> tuple[int, int]:
    """(instructions, requests) of one counted replay."""
    argv = ["valgrind", "--tool=callgrind", "--instr-atstart=no", f"--callgrind-out-file={workdir / 'callgrind.%p'}",
            sys.executable, __file__, "--replay", target, "--calls-file", str(calls_file), "--redis-url", redis_url,
            "--workdir", str(workdir)]
    done = subprocess.run(argv, capture_output=True, text=True, cwd=ROOT)
    instructions = re.search(r"Collected : (\d+)", done.stderr)
    requests_seen = re.search(r"requests (\d+)", done.stdout)
    if done.returncode or not instructions or not requests_seen:
        raise SystemExit(f"count: the {target} replay failed:\n{done.stdout[-2000:]}{done.stderr[-2000:]}")
    return int(instructions.group(1)), int(requests_seen.group(1))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=20)
    parser.add_argument("--redis-url", help="an empty Redis database (default: an embedded redis-server)")
    parser.add_argument("--replay", choices=("line", "floor"), help=argparse.SUPPRESS)
    parser.add_argument("--calls-file", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--workdir", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.replay:
        replay(args.replay, args.calls_file, args.redis_url, args.workdir)
        return 0
    if not shutil.which("valgrind"):
        print("count: needs valgrind (apt-get install valgrind)", file=sys.stderr)
        return 2
    embedded = None if args.redis_url else EmbeddedRedis()
    redis_url = args.redis_url or embedded.url
    workdir = Path(tempfile.mkdtemp(prefix="count-webhooks-"))
    try:
        calls_file = workdir / "calls.json"
        calls_file.write_text(json.dumps(record(redis_url, workdir, args.calls)))
        figures = {target: count(target, calls_file, redis_url, workdir) for target in ("line", "floor")}
    finally:
        if embedded:
            bench.stop_embedded_redis(embedded)
        shutil.rmtree(workdir, ignore_errors=True)
    (line, requests_made), (floor, _) = figures["line"], figures["floor"]
    print(f"{args.calls} calls, {requests_made} requests, replayed in process (no server), SQLite + Redis")
    print(f"instructions per request: the line {line / requests_made / 1e6:.2f} M, the floor "
          f"{floor / requests_made / 1e6:.2f} M, ratio {line / floor:.2f}x")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
