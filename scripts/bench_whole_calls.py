"""Whole calls at once, as production runs them: how long each webhook takes while callers and specialists
talk, with the RQ worker and cron running.

  python scripts/bench_whole_calls.py [--calls 64 --concurrency 16 --specialists 16 --time-scale 0.02]
  python scripts/bench_whole_calls.py --database-url postgresql+psycopg2://postgres@127.0.0.1:5432/bench
  python scripts/bench_whole_calls.py --profile /tmp/profiles   # py-spy on every web worker and the RQ worker

The line runs as the demo runs it (scripts/demo.py: every Procfile process with the Procfile's own command,
the fake Twilio REST API, an embedded Redis unless REDIS_URL names an empty database). The simulated phone
drives --concurrency callers at once until --calls have called: each says everyone is safe, picks a kind of
problem, and talks with the specialist who took them for --talk seconds on the phone's clock; every specialist
answers, hears the whisper, presses 1. The phone's clock runs --time-scale real seconds per second, so the
whole mix (callers' keys, the specialists' whispers, the worker ringing them, status callbacks) arrives as
fast as that scale makes it.

Prints every request's latency as the phone saw it (p50, p95, p99, max), by webhook and in all, the requests
per second, and the CPU the web workers and the RQ worker spent per request. With --profile, py-spy samples
each process for the whole run and writes one speedscope file per process (open at https://www.speedscope.app)
and prints the functions of this project that took the most samples. A benchmark, not a test: it prints figures.
"""

from __future__ import annotations

import argparse
import contextlib
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter, defaultdict
from pathlib import Path
from urllib.parse import urlsplit

import psutil

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "scripts"))

import demo  # noqa: E402  (scripts/, beside this file)

from voice.simulator import ScriptedCaller, SpecialistPhone  # noqa: E402


class TimedTransport:
    """The phone's transport, noting how long each request took to answer, by path."""

    def __init__(self, inner):
        self.inner = inner
        self.lock = threading.Lock()
        self.timings: dict[str, list[float]] = defaultdict(list)

    def __getattr__(self, name):
        return getattr(self.inner, name)

    def post(self, url: str, data: dict, headers: dict):
        started = time.perf_counter()
        try:
            return self.inner.post(url, data, headers)
        finally:
            elapsed = 1000 * (time.perf_counter() - started)
            with self.lock:
                self.timings[urlsplit(url).path].append(elapsed)


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


def cpu_seconds(pids: list[int]) -> float:
    total = 0.0
    for pid in pids:
        with contextlib.suppress(psutil.NoSuchProcess):
            process = psutil.Process(pid)
            for one in [process, *process.children(recursive=True)]:
                with contextlib.suppress(psutil.NoSuchProcess):
                    times = one.cpu_times()
                    total += times.user + times.system
    return total


def python_processes(line: demo.Line, name: str) -> list[int]:
    """The Python processes behind one Procfile line (gunicorn's workers, or the RQ worker and its work-horses)."""
    root = psutil.Process(line.processes[name].pid)
    found = [root, *root.children(recursive=True)]
    return [p.pid for p in found if "python" in (p.name() + " ".join(p.cmdline()[:1]))]


def start_profiles(pids: list[int], folder: Path) -> list[tuple[subprocess.Popen, Path]]:
    folder.mkdir(parents=True, exist_ok=True)
    spy = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
    runs = []
    for pid in pids:
        out = folder / f"py-spy-{pid}.speedscope.json"
        runs.append((subprocess.Popen([spy, "record", "--pid", str(pid), "--format", "speedscope", "--rate", "200",
                                       "--output", str(out), "--nonblocking"],
                                      stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL), out))
    return runs


def stop_profiles(runs: list[tuple[subprocess.Popen, Path]]) -> None:
    for process, _ in runs:
        process.send_signal(2)  # SIGINT: py-spy writes its file and exits
    for process, _ in runs:
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(30)


def own_frames(runs: list[tuple[subprocess.Popen, Path]], top: int = 25) -> list[tuple[str, int]]:
    """This project's functions by the samples in which they were on the stack (inclusive)."""
    import json

    counts: Counter = Counter()
    for _, path in runs:
        if not path.exists():
            continue
        data = json.loads(path.read_text())
        frames = data["shared"]["frames"]
        for profile in data["profiles"]:
            for sample, weight in zip(profile["samples"], profile["weights"], strict=True):
                seen = set()
                for index in sample:
                    frame = frames[index]
                    where = frame.get("file", "")
                    if ("/voice/" in where or "/workers/" in where) and "/simulator/" not in where:
                        seen.add(f"{frame['name']} ({Path(where).parent.name}/{Path(where).name})")
                for name in seen:
                    counts[name] += weight
    return counts.most_common(top)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--calls", type=int, default=64)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--specialists", type=int, default=16)
    parser.add_argument("--talk", type=float, default=60.0, help="seconds each conversation lasts (phone clock)")
    parser.add_argument("--time-scale", type=float, default=0.02,
                        help="real seconds per second of phone clock (default 0.02: 50x faster than life)")
    parser.add_argument("--database-url", help="an empty database (default: the demo's new SQLite file)")
    parser.add_argument("--profile", type=Path, help="a folder for py-spy's profiles of every process")
    args = parser.parse_args()

    import logging

    logging.disable(logging.WARNING)
    demo.say = lambda text="": None
    workdir = Path(tempfile.mkdtemp(prefix="bench-whole-calls-"))
    line = demo.Line(workdir, database_url=args.database_url)
    problems: list[str] = []
    try:
        line.start()
        line.seed()
        line.phone.echo = None
        numbers = [f"+1937555{3000 + n:04d}" for n in range(args.specialists)]
        with line.app.app_context():
            from voice.line import specialists

            db = line.app.extensions["db"].session()
            for n, number in enumerate(numbers):
                specialists.add_specialist(db, f"Specialist {n}", number, ["en"])
            db.commit()
        for n, number in enumerate(numbers):
            line.phone.network[number] = SpecialistPhone(f"Specialist {n}", talk_seconds=args.talk)
            line.phone.send_sms(number, "ON")
        timed = TimedTransport(line.phone.transport)
        line.phone.transport = timed
        line.phone.time_scale = args.time_scale
        line.phone.started = time.monotonic()
        web, worker = python_processes(line, "web"), python_processes(line, "worker")
        profiles = start_profiles(web + worker, args.profile) if args.profile else []
        callers = iter(f"+1937555{4000 + n:04d}" for n in range(args.calls))
        lock = threading.Lock()

        def caller_thread() -> None:
            while True:
                with lock:
                    number = next(callers, None)
                if number is None:
                    return
                record = line.phone.call_line(number, ScriptedCaller(["2", "1"], talk_seconds=args.talk))
                if record.problems or not record.bridged_with:
                    with lock:
                        problems.append(f"{number}: bridged {record.bridged_with}, problems {record.problems}")

        web_before, worker_before = cpu_seconds(web), cpu_seconds(worker)
        started = time.monotonic()
        threads = [threading.Thread(target=caller_thread) for _ in range(args.concurrency)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        line.fake.wait_for_calls(60)
        elapsed = time.monotonic() - started
        web_cpu, worker_cpu = cpu_seconds(web) - web_before, cpu_seconds(worker) - worker_before
        if profiles:
            stop_profiles(profiles)
    finally:
        line.stop()

    everything = [ms for values in timed.timings.values() for ms in values]
    engine = "PostgreSQL" if (args.database_url or "").startswith("postgresql") else "SQLite"
    print(f"{args.calls} whole calls, {args.concurrency} at once, {args.specialists} specialists, {args.talk:.0f} s "
          f"talks; phone clock at {args.time_scale} (x{1 / args.time_scale:.0f}); {engine}; every Procfile process")
    print(f"problems: {len(problems)}")
    for problem in problems[:10]:
        print(f"  {problem}")
    print(f"{len(everything)} requests in {elapsed:.1f} s: {len(everything) / elapsed:.0f} requests/s; "
          f"web CPU {1000 * web_cpu / len(everything):.2f} ms and worker CPU {1000 * worker_cpu / len(everything):.2f} "
          f"ms per request")
    print()
    print(f"{'webhook':<34}{'requests':>9}{'p50 ms':>9}{'p95 ms':>9}{'p99 ms':>9}{'max ms':>9}")
    for path, values in sorted(timed.timings.items()) + [("(all)", everything)]:
        print(f"{path:<34}{len(values):>9}{statistics.median(values):>9.1f}{percentile(values, 0.95):>9.1f}"
              f"{percentile(values, 0.99):>9.1f}{max(values):>9.1f}")
    if args.profile:
        print()
        print(f"py-spy: the project's functions by samples on the stack (profiles in {args.profile})")
        for name, samples in own_frames(profiles):
            print(f"{samples:>8}  {name}")
    shutil.rmtree(workdir, ignore_errors=True)
    return 1 if problems else 0


if __name__ == "__main__":
    raise SystemExit(main())
