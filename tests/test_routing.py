"""Who gets the call: the atomic claim in real Redis, leases, and specialists racing callers."""

from __future__ import annotations

import threading
import time

from sqlalchemy import select

from voice.line import routing, specialists
from voice.models import Call, Specialist
from voice.redisdb import Keys
from voice.simulator import ScriptedCaller

SHORT = ["2", "1"]  # safe, noise


def roster(app, count: int, languages=("en",)) -> list[int]:
    with app.app_context():
        db = app.extensions["db"].session()
        ids = []
        first = len(db.scalars(select(Specialist)).all())
        for n in range(first, first + count):
            s = specialists.add_specialist(db, f"Specialist {n}", f"+1937555{1000 + n:04d}", list(languages))
            db.commit()
            specialists.set_available(db, app.extensions["redis"], s, True)
            ids.append(s.id)
            time.sleep(0.002)  # distinct idle-since times
        return ids


def test_longest_idle_speaker_of_the_language_is_claimed_first(app, r):
    english = roster(app, 2, ("en",))
    spanish = roster(app, 1, ("es", "en"))
    assert routing.claim_next_specialist(r, "es", "call:A", 60) == spanish[0]
    assert routing.claim_next_specialist(r, "en", "call:B", 60) == english[0]
    assert routing.claim_next_specialist(r, "en", "call:C", 60) == english[1]
    assert routing.claim_next_specialist(r, "en", "call:D", 60) is None


def test_a_released_specialist_goes_to_the_back_of_the_queue(app, r):
    first, second = roster(app, 2)
    assert routing.claim_next_specialist(r, "en", "call:A", 60) == first
    assert routing.release_specialist(r, first, "call:A")
    assert routing.claim_next_specialist(r, "en", "call:B", 60) == second


def test_only_the_holder_can_release(app, r):
    (only,) = roster(app, 1)
    assert routing.claim_next_specialist(r, "en", "call:A", 60) == only
    assert not routing.release_specialist(r, only, "call:stale")
    assert routing.lease_holder(r, only) == "call:A"


def test_a_lost_release_expires_with_the_lease(app, r):
    (only,) = roster(app, 1)
    # A lease long enough that a stalled machine cannot lose it between the first two claims.
    assert routing.claim_next_specialist(r, "en", "call:A", 0.8) == only
    assert routing.claim_next_specialist(r, "en", "call:B", 60) is None
    time.sleep(0.9)  # Redis expires the lease on its own clock, so this one wait is real
    assert routing.claim_next_specialist(r, "en", "call:B", 60) == only


def test_fifty_simultaneous_claims_never_share_a_specialist(app, r):
    pool = set(roster(app, 5))
    barrier = threading.Barrier(50)
    won: list[int] = []
    lock = threading.Lock()

    def claim(n: int):
        barrier.wait()
        got = routing.claim_next_specialist(r, "en", f"call:{n}", 60)
        if got is not None:
            with lock:
                won.append(got)

    threads = [threading.Thread(target=claim, args=(n,)) for n in range(50)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(won) == sorted(pool)


def test_switching_off_removes_from_every_queue_and_a_late_release_keeps_them_off(app, r, db):
    (only,) = roster(app, 1, ("en", "es"))
    assert routing.claim_next_specialist(r, "en", "call:A", 60) == only
    specialists.set_available(db, r, db.get(Specialist, only), False)
    routing.release_specialist(r, only, "call:A")
    assert r.zscore(Keys.available("en"), only) is None and r.zscore(Keys.available("es"), only) is None


def test_idle_queues_are_rebuilt_from_sql_after_redis_is_flushed(app, r, db):
    ids = roster(app, 3)
    r.flushdb()
    assert specialists.sync_idle_queues(db, r) == 3
    assert routing.claim_next_specialist(r, "en", "call:A", 60) == ids[0]


def test_two_callers_racing_for_one_specialist_are_both_served_one_after_the_other(line):
    line.add_specialist("Alice Mediator", "+19375550201")
    records = []

    def call(n: int):
        records.append(line.phone.call_line(f"+1937555013{n}", ScriptedCaller(SHORT)))

    threads = [threading.Thread(target=call, args=(n,)) for n in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    line.settle()

    assert all(rec.problems == [] for rec in records)
    assert [rec.bridged_with for rec in records] == [["+19375550201"], ["+19375550201"]]
    with line.app.app_context():
        outcomes = sorted(c.outcome for c in line.app.extensions["db"].session().scalars(select(Call)))
    assert outcomes == ["bridged", "bridged"]
    # Whoever reached Alice second held until she was free: her phone never rang for both at once.
    assert line.max_offers_at_once_per_specialist() == 1


def test_a_specialist_in_the_whisper_is_not_rung_for_a_second_caller(line):
    """Hold Alice's phone in the whisper while a second caller arrives: the second holds, and is not rung to her."""
    from voice.simulator import SpecialistPhone

    in_whisper = threading.Event()
    release = threading.Event()

    class SlowAlice(SpecialistPhone):
        def respond(self, prompt, kinds):
            in_whisper.set()
            release.wait(10)
            return super().respond(prompt, kinds)

    line.add_specialist("Alice Mediator", "+19375550201")
    line.phone.network["+19375550201"] = SlowAlice("Alice Mediator")
    first: list = []
    thread = threading.Thread(target=lambda: first.append(line.phone.call_line("+19375550131", ScriptedCaller(SHORT))))
    thread.start()
    assert in_whisper.wait(10)
    second: list = []
    other = threading.Thread(target=lambda: second.append(line.phone.call_line("+19375550132", ScriptedCaller(SHORT))))
    other.start()
    line.wait_until_holding(2)
    assert len(line.fake.calls) == 1  # only the first caller's offer is ringing Alice
    release.set()
    thread.join(30)
    other.join(60)
    line.settle()
    assert first[0].bridged_with == ["+19375550201"] and second[0].bridged_with == ["+19375550201"]
    assert line.max_offers_at_once_per_specialist() == 1
