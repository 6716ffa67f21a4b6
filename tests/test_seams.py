"""The seams between the app, its workers and Twilio, checked on the source itself."""

from __future__ import annotations

import ast
from pathlib import Path

from voice import tasks
from voice.line import routing
from voice.models import utcnow

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


def test_nothing_in_the_app_imports_the_workers():
    offenders = {str(path.relative_to(ROOT)): sorted(m for m in imported_modules(path) if m.split(".")[0] == "workers")
                 for path in (ROOT / "voice").rglob("*.py")}
    assert {path: mods for path, mods in offenders.items() if mods} == {}


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
