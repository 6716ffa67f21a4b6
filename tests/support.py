"""What the tests share: the line's test numbers and settings, a fresh app, the whole line in one process
(app, simulated phone, fake REST API, a real RQ worker), and helpers that read the line's state as a user
would see it. Test modules import from here, never from each other; `conftest.py` builds its fixtures on it.
"""

from __future__ import annotations

import calendar
import importlib.util
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta
from pathlib import Path

from flask import Flask
from honcho.environ import parse_procfile
from rq import SimpleWorker
from rq.job import Job
from rq.timeouts import TimerDeathPenalty
from sqlalchemy import func, select
from twilio.request_validator import RequestValidator
from werkzeug.serving import make_server

from voice import create_app, tasks
from voice.line import routing, specialists
from voice.models import Base, Call, CallbackRequest, CallEvent, Hold, Specialist
from voice.simulator import Dispatcher, FlaskTransport, ScriptedCaller, SimulatedPhone, SpecialistPhone
from voice.simulator.fake_twilio import FakeTwilio

# The line and the people on it.
LINE = "+19375550100"
DISPATCH = "+19375550911"
AUTH_TOKEN = "test-auth-token"
ACCOUNT_SID = "AC" + "0" * 32
PUBLIC = "https://line.example.org"
CALLER = "+19375550123"
ALICE = "+19375550201"
BRUNO = "+19375550202"
ANA = "+19375550203"
PASSWORD = "correct horse battery"

# The short path: safe (2), noise (1). Then they hold, or a specialist takes them.
SHORT = ["2", "1"]
# Nobody is on: safe, the kind of problem, then the callback questions: name, location, callback number
# (the caller ID), a few words, and when (1: as soon as possible).
INTAKE = ["2", "6", "Dana Whitfield", "400 West Third Street", "1", "The landlord shut off the heat", "1"]


def settings(redis_url: str, database_url: str, **extra) -> dict:
    config = {
        "TESTING": True,
        "TWILIO_ACCOUNT_SID": ACCOUNT_SID,
        "TWILIO_AUTH_TOKEN": AUTH_TOKEN,
        "TWILIO_PHONE_NUMBER": LINE,
        "DISPATCH_TRANSFER_NUMBER": DISPATCH,
        "PUBLIC_BASE_URL": PUBLIC,
        "SECRET_KEY": "test-secret",
        "RETENTION_DAYS": 365,
        "REDIS_URL": redis_url,
        "DATABASE_URL": database_url,
        "WTF_CSRF_ENABLED": True,
    }
    config.update(extra)
    return config


def add_to_roster(app: Flask, phone: SimulatedPhone, name: str, number: str, languages=("en",), on: bool = True,
                  level: int = 1, skills=(), **behaviour) -> SpecialistPhone:
    """Put a specialist on the roster and their phone on the network; switched on unless told otherwise."""
    with app.app_context():
        session = app.extensions["db"].session()
        specialist = specialists.add_specialist(session, name, number, list(languages), list(skills), level)
        session.commit()
        if on:
            specialists.set_available(session, app.extensions["redis"], specialist, True)
    party = SpecialistPhone(name, **behaviour)
    phone.network[number] = party
    return party


@contextmanager
def fresh_app(config: dict) -> Iterator[Flask]:
    """An app on an empty Redis db and empty tables, cleaned up again afterwards."""
    app = create_app(config)
    r = app.extensions["redis"]
    r.flushdb()
    db = app.extensions["db"]
    with db.engine.begin() as conn:
        for table in reversed(Base.metadata.sorted_tables):
            conn.execute(table.delete())
    try:
        yield app
    finally:
        r.flushdb()
        db.dispose()


class ThreadWorker(threading.Thread):
    """A real RQ SimpleWorker, draining the queue every few milliseconds in a background thread of this process.

    The same process as the app under test, so jobs run with its settings; RQ's signal handlers belong to the
    main thread, so this worker installs none.
    """

    class _Worker(SimpleWorker):
        # SIGALRM timeouts need the main thread; a timer thread enforces job timeouts instead.
        death_penalty_class = TimerDeathPenalty

        def _install_signal_handlers(self):
            pass

    def __init__(self, app, with_scheduler: bool = False):
        super().__init__(daemon=True)
        self.app = app
        # As the Procfile's `rq worker --with-scheduler`: jobs queued for a time (RQ's enqueue_at) run when it comes.
        self.with_scheduler = with_scheduler
        self.stopping = threading.Event()
        self.failures: list[str] = []

    def run(self) -> None:
        r = self.app.extensions["redis"]
        with self.app.app_context():
            while not self.stopping.is_set():
                worker = self._Worker([tasks.queue(r)], connection=r)
                worker.work(burst=True, logging_level="WARNING", with_scheduler=self.with_scheduler)
                self.app.extensions["db"].session.remove()
                failed = tasks.queue(r).failed_job_registry
                self.failures = list(failed.get_job_ids())
                self.stopping.wait(0.01)

    def stop(self) -> None:
        self.stopping.set()
        self.join(10)


class Line:
    """The whole line in one process: the app, the phone network, the fake Twilio REST API, an RQ worker."""

    def __init__(self, app, phone: SimulatedPhone, fake, worker: ThreadWorker):
        self.app = app
        self.phone = phone
        self.fake = fake
        self.worker = worker

    def add_specialist(self, name: str, number: str, languages=("en",), on: bool = True, level: int = 1, skills=(),
                       **behaviour) -> SpecialistPhone:
        return add_to_roster(self.app, self.phone, name, number, languages, on, level, skills, **behaviour)

    def events(self, sid: str, kind: str) -> list[dict]:
        """The details of one kind of event on a call's timeline, in order."""
        return [json.loads(event.detail) for event in load_call(self.app, sid).events if event.kind == kind]

    def wait_until_holding(self, count: int, timeout: float = 20) -> None:
        """Wait until `count` callers have reached their queue (Twilio asked for their hold music)."""
        deadline = time.monotonic() + timeout
        with self.app.app_context():
            session = self.app.extensions["db"].session()
            while time.monotonic() < deadline:
                held = session.scalar(select(func.count(Hold.id)).where(Hold.enqueued_at.is_not(None)))
                session.rollback()
                if held >= count:
                    return
                time.sleep(0.02)
        raise AssertionError(f"fewer than {count} callers reached the queue")

    def max_offers_at_once_per_specialist(self) -> int:
        """The most offers any one specialist had open at one moment, from the app's own timeline.

        An offer is open from the moment the app rang the specialist for a caller until Twilio reported
        that call over (which is when the app frees them for the next caller).
        """
        with self.app.app_context():
            events = self.app.extensions["db"].session().scalars(select(CallEvent).order_by(CallEvent.id)).all()
            spans: dict[int, list[list]] = {}
            for event in events:
                detail = json.loads(event.detail)
                who = detail.get("specialist_id")
                if event.kind == "specialist_offered":
                    spans.setdefault(who, []).append([event.id, None, event.call_id])
                elif event.kind == "offer_leg_status":
                    open_span = next((span for span in spans.get(who, []) if span[1] is None and span[2] == event.call_id),
                                     None)
                    if open_span is not None:
                        open_span[1] = event.id
        most = 0
        for offers in spans.values():
            for start, _, _ in offers:
                most = max(most, sum(1 for s, e, _ in offers if s <= start and (e is None or e > start)))
        return most

    def settle(self, timeout: float = 20) -> None:
        """Wait until every call the app placed has ended, Twilio's conference events are answered, and the worker
        has nothing left to do."""
        r = self.app.extensions["redis"]
        queue = tasks.queue(r)

        def idle() -> bool:
            # A job being run is in neither the queue nor the calls yet (it may be about to place one).
            return (self.fake.wait_for_calls(0.05) and self.phone.settle(timeout) and queue.count == 0
                    and queue.started_job_registry.count == 0)

        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if idle():
                time.sleep(0.1)
                if idle():
                    failed = tasks.queue(r).failed_job_registry.get_job_ids()
                    assert failed == [], f"jobs failed in the worker: {failed}"
                    return
            time.sleep(0.05)
        raise AssertionError("the line did not settle")


@contextmanager
def whole_line(redis_url: str, database_url: str, with_scheduler: bool = False, **extra) -> Iterator[Line]:
    """The whole line (see Line) on fresh storage, with any settings changed (and RQ's scheduler, if asked)."""
    fake = FakeTwilio(None, ACCOUNT_SID, AUTH_TOKEN, LINE)
    url = fake.start()
    with fresh_app(settings(redis_url, database_url, TWILIO_API_BASE_URL=url, **extra)) as app:
        phone = SimulatedPhone(FlaskTransport(app), AUTH_TOKEN, ACCOUNT_SID, LINE, PUBLIC,
                               network={DISPATCH: Dispatcher()})
        fake.phone = phone
        worker = ThreadWorker(app, with_scheduler)
        worker.start()
        try:
            yield Line(app, phone, fake, worker)
        finally:
            worker.stop()
            fake.stop()


def wait_for(condition, timeout: float = 20) -> None:
    """Wait (polling) until `condition()` is true; fail after `timeout` seconds of real time."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


def load_call(app, sid: str) -> Call:
    with app.app_context():
        session = app.extensions["db"].session()
        call = session.scalar(select(Call).where(Call.call_sid == sid))
        call.events  # noqa: B018 (load the timeline while the session is open)
        call.specialist  # noqa: B018
        session.expunge_all()
        return call


def kinds(call: Call) -> list[str]:
    return [event.kind for event in call.events]


def hold_row(app, call: Call) -> Hold:
    with app.app_context():
        session = app.extensions["db"].session()
        hold = session.scalar(select(Hold).where(Hold.call_id == call.id))
        session.expunge_all()
        return hold


def leases(app) -> dict[str, str | None]:
    """Who holds each specialist right now, by name (ids differ between SQLite and PostgreSQL runs)."""
    with app.app_context():
        roster = app.extensions["db"].session().scalars(select(Specialist)).all()
        return {s.name: routing.lease_holder(app.extensions["redis"], s.id) for s in roster}


def work(app) -> None:
    """A real RQ worker drains the queue (in this process, so `responses` sees its REST calls)."""
    r = app.extensions["redis"]
    with app.app_context():
        SimpleWorker([tasks.queue(r)], connection=r).work(burst=True)
        app.extensions["db"].session.remove()


def request_row(app) -> CallbackRequest:
    with app.app_context():
        session = app.extensions["db"].session()
        row = session.scalar(select(CallbackRequest))
        row.call  # noqa: B018 (load it while the session is open)
        session.expunge_all()
        return row


def text_on(app, phone, number: str, name: str, languages=("en",), **behaviour) -> SpecialistPhone:
    with app.app_context():
        session = app.extensions["db"].session()
        specialists.add_specialist(session, name, number, list(languages))
        session.commit()
    party = SpecialistPhone(name, **behaviour)
    phone.network[number] = party
    status, _ = phone.send_sms(number, "ON")
    assert status == 200
    return party


def queued_caller(app, phone, inputs=INTAKE, status: str = "pending"):
    """A caller who reached nobody live, their request `status` ("scheduled" for a later window); they are on
    the phone network to be called back, and press 1 at the callback's "press 1 to talk" screen."""
    phone.network[CALLER] = ScriptedCaller(["1"], label="caller")
    record = phone.call_line(CALLER, ScriptedCaller(inputs))
    assert record.problems == []
    assert request_row(app).status == status
    return record


TOKEN = re.compile(r'name="csrf_token"[^>]*value="([^"]+)"')


def csrf(client, path: str = "/dashboard/login") -> str:
    return TOKEN.search(client.get(path).get_data(as_text=True)).group(1)


def login(client, email: str, password: str = PASSWORD):
    return client.post("/dashboard/login", data={"email": email, "password": password, "csrf_token": csrf(client)})


def signed(client, path: str, params: dict, token: str = AUTH_TOKEN):
    signature = RequestValidator(token).compute_signature(PUBLIC + path, params)
    response = client.post(path, data=params, headers={"X-Twilio-Signature": signature})
    response.get_data()
    response.close()  # as a WSGI server does once the answer is sent (the replay guard stores it then)
    return response


def incoming(sid: str = "CA" + "1" * 32, **extra) -> dict:
    return {"AccountSid": ACCOUNT_SID, "CallSid": sid, "From": CALLER, "To": LINE, "CallStatus": "ringing", **extra}


def load_script(name: str):
    path = Path(__file__).parent.parent / "scripts" / f"{name}.py"
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def serve_app(app) -> tuple[str, object]:
    """Serve `app` over HTTP on a free loopback port, in a thread: (its base URL, the server)."""
    server = make_server("127.0.0.1", 0, app, threaded=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return f"http://127.0.0.1:{server.server_port}", server


def kill_session(session_id: int) -> int:
    """SIGKILL every process of the worker's session: RQ's work-horse has its own process group, not session."""
    killed = 0
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                if os.getsid(int(entry)) == session_id:
                    os.kill(int(entry), signal.SIGKILL)
                    killed += 1
            except (ProcessLookupError, PermissionError):
                continue
    return killed


WCAG_AA = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]


def axe_violations(page) -> list[str]:
    """WCAG 2.0/2.1 A and AA violations on the page as it is now, one readable line per failing element."""
    result = page.evaluate("""async (tags) => {
        const r = await axe.run(document, { runOnly: { type: "tag", values: tags }, resultTypes: ["violations"] });
        return r.violations.map((v) => v.nodes.map((n) => v.id + ": " + n.target.join(" ") + " — " + n.failureSummary.replace(/\\s+/g, " "))).flat();
    }""", WCAG_AA)
    return result


def assert_accessible(page, what: str) -> None:
    page.wait_for_load_state("load")
    violations = axe_violations(page)
    assert not violations, f"{what} ({page.url}):\n" + "\n".join(violations)


def tab_to(page, selector: str, limit: int = 80) -> None:
    """Press Tab until the focused element matches `selector` (as someone without a mouse would)."""
    for _ in range(limit):
        page.keyboard.press("Tab")
        if page.evaluate("(s) => !!document.activeElement && document.activeElement.matches(s)", selector):
            return
    raise AssertionError(f"Tab never reached {selector}")


def sign_in(page, base: str, email: str, password: str = PASSWORD) -> None:
    page.goto(base + "/dashboard/login")
    page.fill("input[name=email]", email)
    page.fill("input[name=password]", password)
    page.click("button.primary")
    page.wait_for_url(base + "/dashboard/")


def procfile() -> dict[str, str]:
    """The Procfile's lines by name, as honcho reads them."""
    return dict(parse_procfile((Path(__file__).resolve().parent.parent / "Procfile").read_text()).processes)


def start_worker(config: dict, burst: bool = True, output=subprocess.PIPE) -> subprocess.Popen:
    """The Procfile's worker line (in burst mode unless told), as its own session so it can be killed whole.

    A worker left running writes to `output` (a file): a pipe nobody reads would fill and stop it."""
    env = {**os.environ, **{k: str(v) for k, v in config.items() if k.isupper() and k != "TESTING"},
           "TWILIO_AUTH_TOKEN": AUTH_TOKEN}
    return subprocess.Popen(
        [sys.executable, "-m", "rq.cli", "worker", "-c", "workers.settings", "--with-scheduler",
         *(["--burst"] if burst else []), "--url", config["REDIS_URL"], "callbacks"],
        env=env, start_new_session=True, stdout=output, stderr=subprocess.STDOUT,
    )


def running(pid: int) -> bool:
    """Alive and not a zombie waiting for its parent."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] != "Z"
    except (FileNotFoundError, ProcessLookupError):
        return False


class FieldClock:
    """The line's clock for a test (monkeypatch it over `voice.clock.now`): it stands still until moved on."""

    def __init__(self, start: datetime):
        self.moment = start

    def __call__(self) -> datetime:
        return self.moment

    def advance(self, minutes: float) -> None:
        self.moment += timedelta(minutes=minutes)


def fire_due_timers(app, moment: datetime) -> list[str]:
    """Do what RQ's scheduler does when the clock reaches `moment` (naive UTC): queue the jobs due by then.

    The test's clock is not the scheduler's, so the test moves them; the worker then runs them as always.
    """
    r = app.extensions["redis"]
    queue = tasks.queue(r)
    registry = queue.scheduled_job_registry
    due = registry.get_jobs_to_schedule(calendar.timegm(moment.utctimetuple()))
    for job_id in due:
        registry.remove(job_id)
        queue.enqueue_job(Job.fetch(job_id, connection=r))
    return due
