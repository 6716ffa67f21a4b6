"""A webhook's last commit (db.final_commit): column changes as plain UPDATEs, everything else by the ORM."""

from __future__ import annotations

import time

import pytest
from sqlalchemy import delete, select, text
from sqlalchemy.orm.exc import StaleDataError

from voice import db as database
from voice.line import calls, holds
from voice.models import Call, Hold, Specialist


def fresh_copy(app, model, row_id):
    """The row as stored, read on a connection of its own."""
    other = app.extensions["db"].engine
    with other.connect() as connection:
        return connection.execute(select(model.__table__).where(model.__table__.c.id == row_id)).one()


def new_call(db, sid: str) -> Call:
    call = calls.start_call(db, sid, "+19375550123", "+19375550100")
    db.commit()
    return call


def test_column_changes_and_events_are_written_and_onupdate_applies(app, db):
    call = new_call(db, "CA" + "a" * 32)
    hold = Hold(call_id=call.id, language="en")
    db.add(hold)
    db.commit()
    stamped = fresh_copy(app, Hold, hold.id).updated_at
    time.sleep(0.01)

    call.step, call.category = "name", "noise"
    hold.asked = "name"
    calls.record_event(db, call, "intake_answer", step="category")
    database.final_commit(db)

    stored = fresh_copy(app, Call, call.id)
    assert (stored.step, stored.category) == ("name", "noise")
    stored_hold = fresh_copy(app, Hold, hold.id)
    assert stored_hold.asked == "name" and stored_hold.updated_at > stamped  # the column's onupdate ran
    with app.extensions["db"].engine.connect() as connection:
        kinds = connection.execute(text("select kind from call_events where call_id = :c order by id"),
                                   {"c": call.id}).scalars().all()
    assert kinds == ["call_started", "intake_answer"]


def test_a_changed_relationship_and_new_rows_go_through_the_orm(app, db):
    call = new_call(db, "CA" + "b" * 32)
    specialist = Specialist(name="Ana", phone="+19375550142", languages="en")
    db.add(specialist)
    db.commit()

    call.specialist = specialist  # a relationship: only the ORM's flush sets specialist_id from it
    call.step = None
    database.final_commit(db)
    assert fresh_copy(app, Call, call.id).specialist_id == specialist.id

    db = app.extensions["db"].session()
    call = db.scalar(calls.CALL_BY_SID, {"sid": "CA" + "b" * 32})
    call.category = "parking"
    db.add(Hold(call_id=call.id, language="en"))  # a new row in the same commit: all of it by the ORM
    database.final_commit(db)
    assert fresh_copy(app, Call, call.id).category == "parking"
    assert holds.hold_of(app.extensions["db"].session(), call) is not None


def test_a_row_deleted_meanwhile_is_an_error_not_a_silent_no_op(app, db):
    call = new_call(db, "CA" + "c" * 32)
    call.step = "window"
    with app.extensions["db"].engine.begin() as connection:
        connection.execute(delete(Call.__table__).where(Call.__table__.c.id == call.id))
    with pytest.raises(StaleDataError):
        database.final_commit(db)
    db.rollback()
