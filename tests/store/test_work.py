"""w2s.store.work: a job's items handed out in leased chunks to many workers, on SQLite and PostgreSQL.
Lease expiry is driven by an injected clock (no sleeping); concurrency by real threads on a real store."""

from __future__ import annotations

import threading

import pytest
from sqlmodel import func, select

from w2s.store import Pair, WorkItem, session_scope
from w2s.store.work import WorkQueue, drain

ITEMS = [f"p{i:02d}" for i in range(10)]


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def queue(url, clock, worker, items=ITEMS, **kw) -> WorkQueue:
    kw.setdefault("chunk_size", 3)
    kw.setdefault("lease_seconds", 10)
    return WorkQueue(url, "test job", items, worker=worker, clock=clock, heartbeat=False, **kw)


def test_workers_get_disjoint_chunks_until_the_job_is_finished(store_url):
    clock = Clock()
    a, b = queue(store_url, clock, "a"), queue(store_url, clock, "b")
    assert a.job_id == b.job_id
    got = {"a": [], "b": []}
    while chunk := a.claim():
        got["a"] += chunk
        got["b"] += b.claim()
    assert got["a"] == ["p00", "p01", "p02", "p06", "p07", "p08"] and got["b"] == ["p03", "p04", "p05", "p09"]
    assert b.claim() == [] and not a.finished()  # all leased, none done
    assert a.status() == "10 left, 4 leased by other workers"
    a.done(got["a"])
    b.done(got["b"])
    assert a.finished() and b.finished() and a.claim() == []


def test_a_dead_workers_chunk_returns_when_its_lease_runs_out_and_a_heartbeat_keeps_it(store_url):
    clock = Clock()
    dead, live, other = (
        queue(store_url, clock, "dead"),
        queue(store_url, clock, "live"),
        queue(store_url, clock, "other"),
    )
    lost = dead.claim()
    kept = live.claim()
    clock.now += 8
    assert live.extend() == 3  # the heartbeat: live's lease now runs to t+18
    rest = []
    while chunk := other.claim():
        rest += chunk
    assert set(rest) == set(ITEMS) - set(lost) - set(kept)
    other.done(rest)
    assert not other.finished() and other.status() == "6 left, 6 leased by other workers"
    clock.now += 3  # t+11: dead's lease is over, live's is not
    assert other.claim() == lost and other.claim() == []
    assert dead.extend() == 0  # too late: the chunk is someone else's now
    other.done(lost)
    live.done(kept)
    assert other.finished()


def test_close_gives_back_what_is_not_done(store_url):
    clock = Clock()
    a, b = queue(store_url, clock, "a"), queue(store_url, clock, "b")
    first = a.claim()
    a.done(first[:1])
    a.close()
    assert b.claim()[:2] == first[1:]  # at once, not after the lease


def test_items_with_a_result_are_done_at_enqueue_and_at_claim(store_url):
    clock = Clock()
    results = {"p00", "p01"}
    a = queue(store_url, clock, "a", stored=lambda session, ids: results & set(ids))
    assert a.counts()["left"] == 8
    results |= {"p02", "p03", "p04", "p05"}  # built elsewhere since (e.g. by another selection's job)
    assert a.claim() == ["p06", "p07"]  # p02-p04 and then p05 were claimed, found done and passed over
    # a result deleted by hand: the next worker to open the job finds the item to do again
    results -= {"p00"}
    b = queue(store_url, clock, "b", stored=lambda session, ids: results & set(ids))
    assert b.claim() == ["p00", "p08", "p09"]


def test_another_item_list_is_another_job(store_url):
    clock = Clock()
    assert queue(store_url, clock, "a").job_id != queue(store_url, clock, "b", items=ITEMS[:5]).job_id


def test_drain_waits_for_other_workers_leases_then_takes_a_dead_ones_chunk(store_url):
    clock = Clock()
    dead, worker = queue(store_url, clock, "dead"), queue(store_url, clock, "worker")
    lost = dead.claim()
    worked, said = [], []

    def sleep(seconds: float) -> None:
        clock.now += seconds

    drain(worker, worked.extend, on_wait=said.append, poll_seconds=4, sleep=sleep)
    assert sorted(worked) == ITEMS and worked[-3:] == lost
    assert said == ["3 left, 3 leased by other workers"]  # said once, not at every poll


@pytest.mark.postgres
def test_concurrent_workers_enqueue_and_claim_each_item_once(pg_url):
    """Eight threads, each its own worker, open the same job at once and drain it on PostgreSQL."""
    items = [f"q{i:03d}" for i in range(200)]
    with session_scope(pg_url) as s:  # the store exists before the threads race to open it
        s.exec(select(func.count()).select_from(Pair)).one()
    claimed: dict[str, list[str]] = {}
    errors = []
    start = threading.Barrier(8)

    def run(name: str) -> None:
        try:
            start.wait(timeout=60)
            with WorkQueue(pg_url, "race", items, worker=name, chunk_size=5, heartbeat=False) as q:
                mine = claimed.setdefault(name, [])
                drain(q, mine.extend, poll_seconds=0.01)
        except Exception as e:  # collected, so the assertion names it
            errors.append(e)

    threads = [threading.Thread(target=run, args=(f"w{i}",)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert errors == []
    every = [i for c in claimed.values() for i in c]
    assert sorted(every) == items  # each item once: none lost, none twice
    with session_scope(pg_url) as s:
        assert s.exec(select(func.count()).select_from(WorkItem)).one() == 200
