import json

import pandas as pd
import pyarrow.parquet as pq
import pytest
from datasets import load_dataset, load_from_disk
from sqlmodel import select

from w2s.labels.aggregate import build_label_set
from w2s.store import Annotation, LabelSet, Pair, session_scope
from w2s.store.export import (
    COLUMNS,
    LABEL_SET_COLUMNS,
    RAW_COLUMNS,
    export_label_set,
    iter_export_rows,
    iter_raw_rows,
    write_raw,
)


@pytest.fixture
def built(crowd):
    with session_scope(crowd.url) as s:
        build_label_set(s, method="majority", temperature=0.2)
    return crowd


def expected_rows(url, **kw):
    with session_scope(url) as s:
        return list(iter_export_rows(s, **kw))


def test_rows_resolve_chosen_and_rejected(built):
    rows = expected_rows(built.url)
    assert len(rows) == 40 and [r["pair_id"] for r in rows] == sorted(r["pair_id"] for r in rows)
    assert all(tuple(r) == COLUMNS for r in rows)
    with session_scope(built.url) as s:
        for r in rows:
            pair = s.get(Pair, r["pair_id"])
            assert {r["chosen"], r["rejected"]} == {pair.response_a, pair.response_b}
            assert r["prompt"] == pair.prompt and r["source"] == pair.dataset
            assert r["soft_label"] >= 0.5  # P(chosen is better) under a majority label
            assert 0.5 <= r["weight"] <= 1.0


@pytest.mark.parametrize("fmt", ["jsonl", "parquet", "hf"])
def test_round_trip(built, tmp_path, fmt):
    want = expected_rows(built.url)
    out = tmp_path / f"export.{fmt}"
    with session_scope(built.url) as s:
        n = export_label_set(s, fmt, out)
    assert n == len(want) == 40
    if fmt == "jsonl":
        got = list(load_dataset("json", data_files=str(out), split="train"))
    elif fmt == "parquet":
        got = pd.read_parquet(out).to_dict("records")
        assert got == list(load_dataset("parquet", data_files=str(out), split="train"))
    else:
        got = list(load_from_disk(str(out)))
    assert got == want  # same rows, same order, same weights (float64 kept exactly)
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temporary leftovers


def test_min_weight_and_include_variants(built):
    rows = expected_rows(built.url)
    cut = sorted(r["weight"] for r in rows)[len(rows) // 2]
    heavy = expected_rows(built.url, min_weight=cut)
    assert heavy and all(r["weight"] >= cut for r in heavy)
    assert len(heavy) == sum(r["weight"] >= cut for r in rows)

    per_answer = expected_rows(built.url, include_variants=True)
    # one row per distinct answer: unanimous pairs give one row, contested pairs two (A and B chosen)
    with session_scope(built.url) as s:
        sets = {r.pair_id: r for r in s.exec(select(LabelSet))}
        answer_a = {p: s.get(Pair, p).response_a for p in sets}
    assert len(per_answer) == sum(len(ls.params["votes"]) for ls in sets.values())
    for r in per_answer:
        ls = sets[r["pair_id"]]
        answer = "a" if r["chosen"] == answer_a[r["pair_id"]] else "b"
        assert answer in ls.params["votes"]
        assert r["weight"] == pytest.approx(ls.params["answer_weights"][answer])
        assert r["soft_label"] == pytest.approx(ls.soft_label if answer == "a" else 1 - ls.soft_label)
    contested = [p for p, ls in sets.items() if len(ls.params["votes"]) == 2]
    assert contested
    both = [r for r in per_answer if r["pair_id"] == contested[0]]
    assert len(both) == 2 and both[0]["chosen"] == both[1]["rejected"]
    assert sum(r["weight"] for r in both) == pytest.approx(1.0)


def test_ties_are_skipped(db_url):
    from w2s.store import Annotation, add_annotation

    with session_scope(db_url) as s:
        s.add(Pair(id="t1", dataset="d", prompt="p", response_a="x", response_b="y"))
        s.add(Pair(id="t2", dataset="d", prompt="p", response_a="x2", response_b="y2"))
        s.flush()
        for who, lab in (("u1", "a"), ("u2", "b")):
            add_annotation(s, Annotation(pair_id="t1", annotator=who, label=lab, method="human"))
        add_annotation(s, Annotation(pair_id="t2", annotator="u1", label="b", method="human"))
        build_label_set(s)
    rows = expected_rows(db_url)
    assert [r["pair_id"] for r in rows] == ["t2"]
    assert rows[0]["chosen"] == "y2" and rows[0]["soft_label"] == 1.0


def test_raw_export_has_every_row_and_the_nodes(built, tmp_path):
    with session_scope(built.url) as s:
        raw = list(iter_raw_rows(s, chunk_size=13))
        n_jsonl = write_raw(iter_raw_rows(s), tmp_path / "raw.jsonl", "jsonl")
        n_parquet = write_raw(iter_raw_rows(s), tmp_path / "raw.parquet", "parquet")
    assert len(raw) == n_jsonl == n_parquet == built.n_annotations
    assert len({r["id"] for r in raw}) == len(raw)
    seam = [r for r in raw if r["pair_id"] == "p000" and r["method"] == "seam"]
    assert seam and all(r["consulted_nodes"][0]["principle_id"] == "harmlessness/p0" for r in seam)
    assert all(r["pruned_nodes"][0]["reason"] == "irrelevant" for r in seam)
    line = json.loads((tmp_path / "raw.jsonl").read_text().splitlines()[0])
    assert line["dataset"].startswith("synth") and line["gold"] in ("a", "b")
    df = pd.read_parquet(tmp_path / "raw.parquet")
    assert set(df["annotator"]) == {"transformers:smollm2", "alice"}
    assert json.loads(df[df["pair_id"] == "p000"].iloc[0]["pruned_nodes"]) in ([], seam[0]["pruned_nodes"])


# what each export format stores a column kind as
ARROW = {"string": "string", "float": "double", "int": "int64", "bool": "bool", "json": "string"}
HF = {"string": "string", "float": "float64", "int": "int64", "bool": "bool"}
PYTHON = {"string": str, "float": float, "int": int, "bool": bool, "json": (list, dict)}


def assert_jsonl_follows(path, columns):
    for line in path.read_text(encoding="utf-8").splitlines():
        row = json.loads(line)
        assert list(row) == [c.name for c in columns]
        for c in columns:
            assert row[c.name] is None or isinstance(row[c.name], PYTHON[c.kind]), (c, row[c.name])


def test_every_writer_follows_the_shared_columns(built, tmp_path):
    """Each format's columns, in order and with their types, are the ones `w2s.store.export` defines once."""
    with session_scope(built.url) as s:
        for fmt in ("jsonl", "parquet", "hf"):
            export_label_set(s, fmt, tmp_path / f"set.{fmt}")
        for fmt in ("jsonl", "parquet"):
            write_raw(iter_raw_rows(s), tmp_path / f"raw.{fmt}", fmt)
    assert_jsonl_follows(tmp_path / "set.jsonl", LABEL_SET_COLUMNS)
    assert_jsonl_follows(tmp_path / "raw.jsonl", RAW_COLUMNS)
    for name, columns in (("set", LABEL_SET_COLUMNS), ("raw", RAW_COLUMNS)):
        schema = pq.read_schema(tmp_path / f"{name}.parquet")
        assert [(f.name, str(f.type)) for f in schema] == [(c.name, ARROW[c.kind]) for c in columns]
    features = load_from_disk(str(tmp_path / "set.hf")).features
    assert [(k, v.dtype) for k, v in features.items()] == [(c.name, HF[c.kind]) for c in LABEL_SET_COLUMNS]
    # the raw export keeps every annotation field, in the store's order, then the audit's additions
    assert [c.name for c in RAW_COLUMNS][: len(Annotation.model_fields)] == list(Annotation.model_fields)
