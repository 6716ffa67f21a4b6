"""The SQL database: its engine, the per-request session, migrations, and the write path every request shares.

The write path, in the order a webhook meets it:
- **Reads that need none of the request's pending changes** run under `no_autoflush`, so a webhook takes SQLite's
  write lock once, at its commit, not at its first read.
- **Call events** (`voice.line.calls.record_event`, the only way to write one) wait in the session's `info` and go
  in as one INSERT: at the transaction's next flush, before a read that would autoflush (so a query in the same
  transaction sees them, as it sees pending ORM objects; never from inside a flush, nor for the ORM's own lazy
  loads), or at commit. A rollback drops them. `flush_with_events` writes them even when no row changed (a bare
  flush would not). The listeners that do this are attached to this app's own sessionmaker, so no other
  session in the process (a script's, another app's) is touched.
- **A webhook's last commit** (`final_commit`) writes rows that changed only columns as plain UPDATEs, then
  commits; anything else goes through the ORM's flush.
"""

from __future__ import annotations

import functools
import select
from datetime import datetime
from pathlib import Path

from alembic import command
from alembic.config import Config
from flask import Flask, current_app
from sqlalchemy import bindparam, create_engine, event, insert, inspect, update
from sqlalchemy.engine import Engine
from sqlalchemy.exc import DisconnectionError
from sqlalchemy.orm import Session, scoped_session, sessionmaker
from sqlalchemy.orm.exc import StaleDataError

from voice.models import Call, CallEvent

MIGRATIONS_DIR = Path(__file__).parent / "migrations"


class Database:
    """One engine and one thread-scoped session factory per app."""

    def __init__(self, url: str):
        self.url = url
        self.engine = make_engine(url)
        self.sessionmaker = sessionmaker(bind=self.engine, class_=LineSession, expire_on_commit=False)
        listen_for_events(self.sessionmaker)
        self.session = scoped_session(self.sessionmaker)

    def upgrade(self, revision: str = "head") -> None:
        """Migrate the database to `revision` with Alembic."""
        command.upgrade(alembic_config(self.url), revision)

    def dispose(self) -> None:
        self.session.remove()
        self.engine.dispose()


class LineSession(Session):
    """The app's session; it knows when it is flushing, so pending call events are never written from inside one."""

    flushing = False

    def flush(self, objects=None) -> None:
        self.flushing = True
        try:
            super().flush(objects)
        finally:
            self.flushing = False


# --- call events: pending in the session, written in one INSERT (see the module's docstring) --------------------

PENDING_EVENTS = "pending_call_events"
INSERT_EVENTS = insert(CallEvent.__table__)


def pend_event(db: Session, call: Call, at: datetime, kind: str, detail: str) -> None:
    """Hold one timeline event until the transaction's next flush, autoflushing read or commit."""
    if not db.in_transaction():
        db.begin()  # so a rollback before any SQL still takes the events with it
    db.info.setdefault(PENDING_EVENTS, []).append((call, at, kind, detail))


def write_events(db: Session, _flush_context=None) -> None:
    pending = db.info.pop(PENDING_EVENTS, None)
    if pending:
        # A webhook writes one or two events; the ORM's unit of work cost more than the rest of its SQL.
        db.connection().execute(INSERT_EVENTS, [
            {"call_id": call.id, "at": at, "kind": kind, "detail": detail} for call, at, kind, detail in pending])


def flush_with_events(db: Session) -> None:
    """Flush, and write the transaction's pending events even when no row changed (a bare flush would not)."""
    # The flush gives new calls their ids, and writes the events itself when anything else changed.
    db.flush()
    write_events(db)


def _write_events_before_a_read(state) -> None:
    # As autoflush would write pending ORM objects: a query in the same transaction sees them.
    db = state.session
    if (db.info.get(PENDING_EVENTS) and db.autoflush and not getattr(db, "flushing", False)
            and not (state.is_relationship_load or state.is_column_load)):
        flush_with_events(db)


def _write_events_before_commit(db: Session) -> None:
    if db.info.get(PENDING_EVENTS):
        flush_with_events(db)


def _drop_events(db: Session, previous_transaction) -> None:
    if not previous_transaction.nested:
        db.info.pop(PENDING_EVENTS, None)


def listen_for_events(factory: sessionmaker) -> None:
    """Attach the event write path to one sessionmaker's sessions (the app's own)."""
    event.listen(factory, "after_flush", write_events)
    event.listen(factory, "do_orm_execute", _write_events_before_a_read)
    event.listen(factory, "before_commit", _write_events_before_commit)
    event.listen(factory, "after_soft_rollback", _drop_events)


def make_engine(url: str) -> Engine:
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"timeout": 30})

        # WAL lets the web process read while a worker writes; foreign keys are off by default in SQLite.
        # synchronous=NORMAL is SQLite's recommended setting under WAL: a commit is written to the WAL before
        # COMMIT returns, so it survives any crash of the app, and the fsync moves to the checkpoint instead
        # of every commit (only a power cut or OS crash can lose the last commits). FULL, the default, made
        # each webhook wait for the disk while holding the one write lock all web threads share.
        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_connection, _record):
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute("PRAGMA busy_timeout=30000")
            cursor.close()

        return engine
    # A connection the server has dropped (a restart, a killed backend) must never reach a caller's request.
    # pool_pre_ping would ask the server on every checkout, one more round trip on every webhook; a dropped
    # connection shows without asking, as something to read on a socket where nothing is expected.
    engine = create_engine(url)

    @event.listens_for(engine, "checkout")
    def _refuse_dropped_connections(dbapi_connection, _record, _proxy):
        if was_dropped(dbapi_connection):
            # The pool throws it away and checks out another (SQLAlchemy's documented disconnect handling).
            raise DisconnectionError("the database server closed this pooled connection")

    return engine


def was_dropped(dbapi_connection) -> bool:
    """Whether an idle pooled connection was closed by the server: its socket has a goodbye or end of file."""
    if getattr(dbapi_connection, "closed", 0):
        return True
    try:
        readable, _, _ = select.select([dbapi_connection.fileno()], [], [], 0)
    except (AttributeError, OSError, ValueError):
        return True
    return bool(readable)


def alembic_config(url: str):
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return config


def session() -> Session:
    """The current app's session for this thread."""
    return current_app.extensions["db"].session()


def final_commit(db: Session) -> None:
    """A webhook's last commit: rows that only changed columns go in as plain UPDATEs, then the commit.

    The session is thrown away after it (the rows written are expunged), and the ORM's unit of work cost
    a webhook more than its SQL did. New or deleted rows, or a changed relationship anywhere, and the whole
    commit takes the ORM's flush.
    """
    if not db.new and not db.deleted:
        changes = [_column_changes(obj) for obj in db.dirty]
        if all(change is not None for change in changes):
            for obj, statement, values in changes:
                result = db.connection().execute(statement, values)
                if result.rowcount != 1:
                    # As the ORM's flush does: the row is gone, and nothing may be written as if it were there.
                    raise StaleDataError(f"UPDATE of {obj!r} matched {result.rowcount} rows")
                db.expunge(obj)  # written: the ORM's flush must not write it again
    db.commit()


def _column_changes(obj: object) -> tuple[object, object, dict] | None:
    """The UPDATE that writes `obj`'s changed columns and its parameters; None if only the ORM may write it."""
    state = inspect(obj)
    mapper = state.mapper
    attributes, columns = _attribute_keys(mapper)
    changed = attributes - state.unmodified
    if mapper.version_id_col is not None or len(mapper.primary_key) != 1 or not changed <= columns:
        return None
    statement = _update_statement(mapper, frozenset(changed))
    return obj, statement, {"pk_": state.identity[0], **{name: state.dict[name] for name in changed}}


@functools.cache
def _update_statement(mapper, changed: frozenset[str]):
    """UPDATE of these columns by primary key, built once per set of columns."""
    (primary_key,) = mapper.primary_key
    assignments = {mapper.column_attrs[name].columns[0].key: bindparam(name) for name in changed}
    # Column onupdate defaults (updated_at) apply as in the ORM's own UPDATE.
    return update(mapper.local_table).where(primary_key == bindparam("pk_")).values(assignments)


@functools.cache
def _attribute_keys(mapper) -> tuple[frozenset[str], frozenset[str]]:
    """A mapper's attributes, and those that are plain columns."""
    return frozenset(mapper.attrs.keys()), frozenset(mapper.column_attrs.keys())


def init_app(app: Flask) -> None:
    db = Database(app.config["DATABASE_URL"])
    app.extensions["db"] = db

    @app.teardown_appcontext
    def _remove_session(exc):
        if exc is not None:
            db.session.rollback()
        db.session.remove()

