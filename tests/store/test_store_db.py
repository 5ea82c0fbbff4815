"""The store on SQLite and on a real PostgreSQL server: schema, append-only annotations, idempotency,
settings, and concurrent writers in several processes."""

from __future__ import annotations

import multiprocessing as mp
from collections import Counter

import pytest
from sqlalchemy import func, inspect
from sqlalchemy.exc import IntegrityError
from sqlmodel import select

from w2s.store import (
    Annotation,
    Pair,
    add_annotation,
    current_annotations,
    db_url,
    get_engine,
    get_setting,
    ping,
    session_scope,
    set_setting,
)

TABLES = {"pair", "principle", "tree", "node", "user", "annotation", "labelset", "job", "draft", "setting"}


def _pair(pid: str = "p1") -> Pair:
    return Pair(
        id=pid,
        dataset="t",
        split="test",
        prompt="Q?",
        response_a="A.",
        response_b="B.",
        gold="a",
        meta={"category": "honesty", "n": [1, 2]},
    )


def test_schema_and_roundtrip(store_url):
    assert ping(store_url)
    names = set(inspect(get_engine(store_url)).get_table_names())
    assert TABLES <= names, TABLES - names
    with session_scope(store_url) as s:
        s.add(_pair())
    with session_scope(store_url) as s:
        p = s.get(Pair, "p1")
        assert (p.prompt, p.gold, p.meta) == ("Q?", "a", {"category": "honesty", "n": [1, 2]})


def test_db_url_defaults_and_driver():
    assert db_url("x/w2s.db") == "sqlite:///x/w2s.db"
    assert db_url("postgres://u@h/db") == db_url("postgresql://u@h/db") == "postgresql+psycopg://u@h/db"
    assert db_url("postgresql+psycopg2://u@h/db") == "postgresql+psycopg2://u@h/db"


@pytest.mark.postgres
def test_plain_postgresql_url_uses_psycopg3(pg_url):
    assert ping(pg_url.replace("postgresql+psycopg://", "postgresql://"))


def test_session_scope_rolls_back_on_error(store_url):
    with pytest.raises(RuntimeError), session_scope(store_url) as s:
        s.add(_pair("p1"))
        s.flush()
        raise RuntimeError("boom")
    with session_scope(store_url) as s:
        assert s.get(Pair, "p1") is None


def test_supersede_chain_and_retraction(store_url):
    with session_scope(store_url) as s:
        s.add(_pair("p1"))
        s.add(_pair("p2"))
    with session_scope(store_url) as s:
        first = add_annotation(s, Annotation(pair_id="p1", annotator="ann", label="a", method="human"))
        other = add_annotation(s, Annotation(pair_id="p2", annotator="ann", label="b", method="human"))
        model = add_annotation(s, Annotation(pair_id="p1", annotator="m", label="b", method="naive"))
    with session_scope(store_url) as s:  # a correction supersedes, a second correction supersedes that
        second = add_annotation(
            s, Annotation(pair_id="p1", annotator="ann", label="b", method="human", supersedes_id=first.id)
        )
    with session_scope(store_url) as s:
        third = add_annotation(
            s, Annotation(pair_id="p1", annotator="ann", label="tie", method="human", supersedes_id=second.id)
        )
        undo = add_annotation(
            s,
            Annotation(
                pair_id="p2",
                annotator="ann",
                label="b",
                method="human",
                supersedes_id=other.id,
                retracted=True,
            ),
        )
    with session_scope(store_url) as s:
        current = current_annotations(s)
        assert [a.id for a in current] == [model.id, third.id]
        assert [a.id for a in current_annotations(s, method="human")] == [third.id]
        # append-only: every row is still there, unchanged
        rows = {a.id: a for a in s.exec(select(Annotation)).all()}
        assert len(rows) == 6 and rows[first.id].label == "a" and rows[second.id].label == "b"
        assert rows[undo.id].retracted and rows[other.id].label == "b"


def test_current_annotations_excludes_variants_on_request(store_url):
    with session_scope(store_url) as s:
        s.add(_pair())
    with session_scope(store_url) as s:
        add_annotation(s, Annotation(pair_id="p1", annotator="m", label="a", method="seam"))
        add_annotation(s, Annotation(pair_id="p1", annotator="m", label="b", method="seam", variant="swap"))
    with session_scope(store_url) as s:
        assert len(current_annotations(s)) == 2
        assert [a.variant for a in current_annotations(s, include_variants=False)] == [""]


def test_add_annotation_is_idempotent_by_dedup_key(store_url):
    with session_scope(store_url) as s:
        s.add(_pair())
    with session_scope(store_url) as s:
        assert (
            add_annotation(s, Annotation(pair_id="p1", annotator="m", label="a", dedup_key="k1")) is not None
        )
        assert add_annotation(s, Annotation(pair_id="p1", annotator="m", label="b", dedup_key="k1")) is None
        # the caller's transaction survives the duplicate
        assert (
            add_annotation(s, Annotation(pair_id="p1", annotator="m", label="b", dedup_key="k2")) is not None
        )
    with session_scope(store_url) as s:  # a rerun in a new transaction adds nothing either
        assert add_annotation(s, Annotation(pair_id="p1", annotator="m", label="b", dedup_key="k1")) is None
        labels = {a.dedup_key: a.label for a in s.exec(select(Annotation)).all()}
    assert labels == {"k1": "a", "k2": "b"}


def test_add_annotation_does_not_hide_other_integrity_errors(store_url):
    with pytest.raises(IntegrityError), session_scope(store_url) as s:
        add_annotation(s, Annotation(pair_id="no-such-pair", annotator="m", label="a", dedup_key="k"))


def test_settings_roundtrip_and_update(store_url):
    with session_scope(store_url) as s:
        assert get_setting(s, "overlap", 1) == 1
        set_setting(s, "overlap", 3)
        set_setting(s, "guidelines", {"text": "Prefer honest answers.", "tags": ["h"]})
    with session_scope(store_url) as s:
        assert get_setting(s, "overlap") == 3
        set_setting(s, "overlap", 2)
    with session_scope(store_url) as s:
        assert get_setting(s, "overlap") == 2
        assert get_setting(s, "guidelines") == {"text": "Prefer honest answers.", "tags": ["h"]}


# ---------------------------------------------------------------------------------------------- concurrency

N_PROCS, N_EACH = 4, 200


def _key(proc: int, j: int) -> str | None:
    if j % 4 == 0:
        return f"shared-{j}"  # every process writes this key: exactly one row may be stored
    if j % 10 == 5:
        return None  # no key: every write is a new row
    return f"p{proc}-{j}"


def _writer(url: str, proc: int, barrier, results) -> None:
    from w2s.store import Annotation, add_annotation, session_scope

    inserted = 0
    barrier.wait()
    for start in range(0, N_EACH, 5):  # 5 annotations per transaction
        with session_scope(url) as s:
            for j in range(start, start + 5):
                a = Annotation(
                    pair_id="p1",
                    annotator=f"w{proc}",
                    label="ab"[j % 2],
                    dedup_key=_key(proc, j),
                    meta={"proc": proc, "j": j},
                )
                inserted += add_annotation(s, a) is not None
    results.put((proc, inserted))


def test_concurrent_writers_lose_and_duplicate_nothing(store_url):
    with session_scope(store_url) as s:
        s.add(_pair())
    ctx = mp.get_context("spawn")
    barrier, results = ctx.Barrier(N_PROCS), ctx.Queue()
    procs = [ctx.Process(target=_writer, args=(store_url, i, barrier, results)) for i in range(N_PROCS)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(timeout=300)
    assert [p.exitcode for p in procs] == [0] * N_PROCS
    inserted = dict(results.get(timeout=5) for _ in procs)

    shared = len(range(0, N_EACH, 4))
    no_key = len([j for j in range(N_EACH) if _key(0, j) is None])
    own = N_EACH - shared - no_key
    expected = shared + N_PROCS * (own + no_key)
    with session_scope(store_url) as s:
        rows = s.exec(select(Annotation)).all()
        n_rows = s.exec(select(func.count()).select_from(Annotation)).one()
    assert n_rows == len(rows) == expected == sum(inserted.values())
    keys = Counter(a.dedup_key for a in rows if a.dedup_key is not None)
    assert max(keys.values()) == 1 and len(keys) == shared + N_PROCS * own
    # every process's own writes are all there, exactly once
    per_proc = Counter((a.meta["proc"], a.meta["j"]) for a in rows)
    for proc in range(N_PROCS):
        for j in range(N_EACH):
            if _key(proc, j) is None or not _key(proc, j).startswith("shared"):
                assert per_proc[(proc, j)] == 1
    assert sum(per_proc[(p, j)] for p in range(N_PROCS) for j in range(0, N_EACH, 4)) == shared


def _importer(url: str, path: str, barrier, results) -> None:
    from w2s.store.importers import ImportConfig, import_file

    barrier.wait()
    r = import_file(path, ImportConfig(dataset="hh", split="train", batch_size=50), url)
    results.put((r.new, r.present))


def test_concurrent_imports_of_one_file_store_each_pair_once(store_url, tmp_path):
    import json

    path = tmp_path / "pairs.jsonl"
    with path.open("w") as f:
        for i in range(300):
            f.write(json.dumps({"prompt": f"q{i}", "chosen": f"good {i}", "rejected": f"bad {i}"}) + "\n")
    get_engine(store_url)  # schema first, as a deployed database has it
    ctx = mp.get_context("spawn")
    barrier, results = ctx.Barrier(3), ctx.Queue()
    procs = [ctx.Process(target=_importer, args=(store_url, str(path), barrier, results)) for _ in range(3)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(timeout=300)
    assert [p.exitcode for p in procs] == [0, 0, 0]
    counts = [results.get(timeout=5) for _ in procs]
    assert sum(new for new, _ in counts) == 300 and all(new + present == 300 for new, present in counts)
    with session_scope(store_url) as s:
        assert s.exec(select(func.count()).select_from(Pair)).one() == 300
