"""Many `w2s trees build` / `w2s annotate` processes on one store (real subprocesses with the scripted
backend, whose per-call delay keeps them running long enough to overlap or be killed): every pair is
built once, a killed worker's chunk goes to another, a lost race is a quiet skip, and on SQLite a second
builder waits for the first one's chunk with a clear message."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import sqlalchemy as sa
from pg import pg_url, postgres_server  # noqa: F401  (fixtures; tests/ is on sys.path under pytest)
from seam_scripted import add_pairs
from sqlmodel import Session, func, select

from w2s.store import Annotation, Tree, WorkItem, make_engine, session_scope
from w2s.trees import TreeConfig

HERE = Path(__file__).parent
SCRIPT = {
    "relevance": {"No help with crime": 0.9, "Respect privacy": 0.8},
    "verdict": {"No help with crime": [0.7, 0.5], "Respect privacy": [0.9, 0.2]},
    "judge": [0.9, 0.3],
}
STRONG = "scripted:workers"
DEADLINE_S = (
    180  # every wait below gives up after this long (a hung worker fails the test, it does not hang it)
)


def start(url: str, log: Path, *args: str, delay: float = 0.05) -> subprocess.Popen:
    env = {**os.environ, "W2S_DB": url, "W2S_SCRIPT": json.dumps({**SCRIPT, "delay": delay})}
    with open(log, "w") as f:
        return subprocess.Popen(
            [sys.executable, str(HERE / "scripted_cli.py"), *args], env=env, stdout=f, stderr=f
        )


def build(url: str, log: Path, worker: str, *extra: str, delay: float = 0.05) -> subprocess.Popen:
    return start(
        url,
        log,
        "trees",
        "build",
        "--strong",
        STRONG,
        "--principles",
        "harmlessness",
        "--batch-size",
        "2",
        "--chunk-size",
        "2",
        "--worker-id",
        worker,
        *extra,
        delay=delay,
    )


def finish(proc: subprocess.Popen, log: Path) -> str:
    try:
        proc.wait(timeout=DEADLINE_S)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    text = log.read_text()
    assert proc.returncode == 0 and "Traceback" not in text, text
    return text


def wait_until(condition, what: str) -> None:
    deadline = time.monotonic() + DEADLINE_S
    while not condition():
        assert time.monotonic() < deadline, f"gave up waiting for {what}"
        time.sleep(0.05)


def built(text: str) -> int:
    return int(re.search(r"built (\d+) trees", text).group(1))


def trees_per_pair(url: str) -> dict[str, int]:
    with session_scope(url) as s:
        return dict(s.exec(select(Tree.pair_id, func.count()).group_by(Tree.pair_id)).all())


@pytest.mark.postgres
def test_three_workers_build_every_tree_once(pg_url, tmp_path):
    ids = add_pairs(pg_url, 18)
    logs = [tmp_path / f"w{i}.log" for i in range(3)]
    procs = [build(pg_url, log, f"w{i}") for i, log in enumerate(logs)]
    texts = [finish(p, log) for p, log in zip(procs, logs)]
    assert trees_per_pair(pg_url) == {pid: 1 for pid in ids}
    assert sum(built(t) for t in texts) == len(ids), texts  # no pair built twice (a lost race is not a build)


@pytest.mark.postgres
def test_a_worker_killed_mid_chunk_loses_nothing(pg_url, tmp_path):
    ids = add_pairs(pg_url, 12)

    def leased_by(worker: str) -> list[str]:
        with session_scope(pg_url) as s:
            return list(
                s.exec(select(WorkItem.item).where(WorkItem.worker == worker, WorkItem.done == False))
            )  # noqa: E712

    doomed = build(pg_url, tmp_path / "doomed.log", "doomed", "--lease-seconds", "2", delay=0.2)
    try:
        wait_until(lambda: leased_by("doomed") or doomed.poll() is not None, "the worker's first claim")
        doomed.send_signal(signal.SIGKILL)
        doomed.wait()
    finally:
        if doomed.poll() is None:
            doomed.kill()
    lost = leased_by("doomed")
    assert lost, (tmp_path / "doomed.log").read_text()
    rescuer = build(pg_url, tmp_path / "rescuer.log", "rescuer", "--lease-seconds", "2")
    finish(rescuer, tmp_path / "rescuer.log")
    assert trees_per_pair(pg_url) == {pid: 1 for pid in ids}
    with session_scope(pg_url) as s:
        took = s.exec(
            select(WorkItem.item).where(WorkItem.item.in_(lost), WorkItem.worker == "rescuer")
        ).all()
    assert sorted(took) == sorted(
        lost
    )  # the killed worker's chunk went to the other one when its lease ended


@pytest.mark.postgres
def test_a_lost_race_is_a_quiet_skip(pg_url, tmp_path):
    """Another worker saves pair000's tree while this one builds it: the save waits on the unique index,
    gets the IntegrityError when the other commits, and skips the pair."""
    ids = add_pairs(pg_url, 2)
    engine = make_engine(pg_url)
    other = Session(engine)
    other.add(
        Tree(
            pair_id=ids[0],
            strong_model=STRONG,
            library="harmlessness",
            config_hash=TreeConfig(library="harmlessness").hash(),
            config={"by": "the other worker"},
        )
    )
    other.flush()  # inserted, not committed: the builder cannot see it yet
    log = tmp_path / "w.log"
    proc = build(pg_url, log, "w", delay=0)
    try:

        def blocked() -> bool:
            with engine.connect() as conn:
                waiting = sa.text(
                    "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
                    "AND query ILIKE 'INSERT INTO tree %'"
                )
                return conn.execute(waiting).scalar() > 0 or proc.poll() is not None

        wait_until(blocked, "the builder's save to wait for the other worker's")
        other.commit()
    finally:
        other.close()
    text = finish(proc, log)
    engine.dispose()
    assert "built 1 trees (0 already stored, 1 built by other workers)" in text
    with session_scope(pg_url) as s:
        assert s.exec(select(Tree.config).where(Tree.pair_id == ids[0])).one() == {"by": "the other worker"}
    assert trees_per_pair(pg_url) == {pid: 1 for pid in ids}


def test_on_sqlite_a_second_builder_waits_for_the_first_ones_chunk(db_url, tmp_path):
    """The test holds a chunk as a first builder would (the same job: same strong model, config and
    pairs); the builder does the rest, says it waits, and takes the chunk once it is given back."""
    from w2s.cli.trees import tree_queue

    ids = add_pairs(db_url, 6)
    first = tree_queue(
        STRONG, TreeConfig(library="harmlessness"), ids, worker="first", chunk_size=2, heartbeat=False
    )
    held = first.claim()
    log = tmp_path / "second.log"
    second = build(db_url, log, "second", delay=0)
    try:
        wait_until(
            lambda: "waits" in log.read_text() or second.poll() is not None, "the second builder to wait"
        )
        assert "worker second waits: 2 left, 2 leased by other workers" in log.read_text()
        assert set(trees_per_pair(db_url)) == set(ids) - set(held)  # it built the rest, not the held chunk
    finally:
        first.close()  # the first builder stops cleanly: its chunk goes back
    text = finish(second, log)
    assert "built 6 trees" in text and trees_per_pair(db_url) == {pid: 1 for pid in ids}


@pytest.mark.postgres
def test_two_annotate_workers_write_each_annotation_once(pg_url, tmp_path):
    ids = add_pairs(pg_url, 16)
    args = ["annotate", "--annotator", "naive", "--weak", "scripted:ann", "--batch-size", "2"]
    logs = [tmp_path / f"a{i}.log" for i in range(2)]
    procs = [start(pg_url, log, *args, "--worker-id", f"a{i}") for i, log in enumerate(logs)]
    texts = [finish(p, log) for p, log in zip(procs, logs)]
    with session_scope(pg_url) as s:
        rows = s.exec(select(Annotation.pair_id, Annotation.dedup_key)).all()
    assert sorted(p for p, _ in rows) == ids and len({k for _, k in rows}) == len(ids)
    assert sum(int(re.search(r"added (\d+) annotations", t).group(1)) for t in texts) == len(ids), texts
