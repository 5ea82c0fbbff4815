"""Admin figures against hand-computed cases."""

from __future__ import annotations

import json

import pytest
from app_helpers import make_pairs, make_tree

from w2s.store import Annotation, Pair, session_scope
from w2s.store.export import HUMAN_COLUMNS
from w2s_app import stats


def human(pid, who, label, **kw):
    return Annotation(pair_id=pid, annotator=who, annotator_kind="human", method="human", label=label, **kw)


@pytest.fixture
def labelled(db_url):
    ids = make_pairs(db_url, 4)
    _, nodes = make_tree(db_url, ids[0], [("harm", 0.9, 0.8, 0.5), ("honesty", 0.3, 0.5, 0.0)])
    with session_scope(db_url) as s:
        for pid, gold in zip(ids, "aabb"):
            s.get(Pair, pid).gold = gold
        for pid, x, y in zip(ids, "aabb", "abbb"):
            s.add(
                human(
                    pid,
                    "x",
                    x,
                    consulted_node_ids=[nodes[0]] if pid == ids[0] else [],
                    pruned=[{"node_id": nodes[1], "reason": "irrelevant"}] if pid == ids[0] else [],
                )
            )
            s.add(human(pid, "y", y, consulted_node_ids=nodes if pid == ids[0] else []))
            s.add(Annotation(pair_id=pid, annotator="weak", annotator_kind="model", method="seam", label="a"))
        s.flush()
        old = human(ids[3], "z", "a")
        s.add(old)
        s.flush()
        s.add(human(ids[3], "z", "a", retracted=True, supersedes_id=old.id))  # an undo: z has no label
    return db_url, ids


def test_annotator_table_gold_and_weak_agreement(labelled):
    url, _ = labelled
    with session_scope(url) as s:
        rows = {r["annotator"]: r for r in stats.annotator_table(s)}
    assert rows["x"]["gold_accuracy"] == 1.0 and rows["y"]["gold_accuracy"] == 0.75
    assert rows["x"]["weak_agreement"] == 0.5 and rows["y"]["weak_agreement"] == 0.25
    assert "z" not in rows or rows["z"]["gold_accuracy"] is None


def test_pruning_stats_per_principle(labelled):
    url, _ = labelled
    with session_scope(url) as s:
        rows = {r["principle"]: r for r in stats.pruning_stats(s, stats.human_annotations(s))}
    # harm: consulted by x and y; honesty: pruned by x, consulted by y
    assert rows["harm"] == {"principle": "harm", "shown": 2, "pruned": 0, "prune_rate": 0.0, "reasons": ""}
    assert rows["honesty"]["shown"] == 2 and rows["honesty"]["pruned"] == 1
    assert rows["honesty"]["prune_rate"] == 0.5 and rows["honesty"]["reasons"] == "irrelevant: 1"


def test_agreement_uses_w2s_agreement(labelled):
    pytest.importorskip("w2s.labels.agreement")
    url, _ = labelled
    with session_scope(url) as s:
        agr = stats.agreement(stats.human_annotations(s))
    # x = a a b b, y = a b b b: po = 3/4, pe = .5*.25 + .5*.75 = .5, kappa = (.75 - .5) / .5 = .5
    assert agr["available"] and list(agr["kappa"].values()) == [pytest.approx(0.5)]
    assert agr["alpha"] is not None


def test_exports(labelled, tmp_path):
    url, _ = labelled
    with session_scope(url) as s:
        n_cur = stats.export_annotations(s, tmp_path / "cur.jsonl")
        n_raw = stats.export_annotations(s, tmp_path / "raw.jsonl", raw=True)
        n_set = stats.export_label_set(s, tmp_path / "set.jsonl")
        n_all = stats.export_raw(s, tmp_path / "all.jsonl")
    assert n_cur == 8 and n_raw == 10  # z's label and its retraction appear only in the raw export
    assert n_all == 14  # every row, the weak model's too
    raw = [json.loads(line) for line in (tmp_path / "raw.jsonl").read_text().splitlines()]
    assert sum(r["retracted"] for r in raw) == 1
    assert all(
        list(r) == [c.name for c in HUMAN_COLUMNS] for r in raw
    )  # the columns w2s.store.export defines
    assert n_set == len((tmp_path / "set.jsonl").read_text().splitlines())


def test_reliance_table_reads_initial_labels_strong_exits_and_gold(db_url):
    """Pairs p0, p1 (gold a) with trees exiting on B (wrong), p2 (gold b) exiting on B (right), p3 no gold."""
    ids = make_pairs(db_url, 4)
    trees = {}
    for pid, exit_pa in zip(ids, (0.1, 0.2, 0.1, 0.9)):
        trees[pid], _ = make_tree(db_url, pid, [("harm", 0.9, 0.5, 0.0), ("exit", 0.8, exit_pa, 0.4)])
    with session_scope(db_url) as s:
        for pid, gold in zip(ids, ("a", "a", "b", None)):
            s.get(Pair, pid).gold = gold
        first = {"label": "a", "rating": 3, "seconds": 4.0}
        s.add(human(ids[0], "x", "b", tree_id=trees[ids[0]], meta={"initial": first}))  # over-reliance
        s.add(human(ids[1], "x", "a", tree_id=trees[ids[1]], meta={"initial": first}))  # resisted
        s.add(human(ids[2], "x", "b", tree_id=trees[ids[2]], meta={"initial": first}))  # useful reliance
        s.add(human(ids[3], "x", "b", tree_id=trees[ids[3]], meta={"initial": first}))  # no gold: left out
        s.add(human(ids[0], "y", "a", tree_id=trees[ids[0]]))  # no initial label: not evidence-first
    with session_scope(db_url) as s:
        rows = stats.reliance_table(s, stats.human_annotations(s))
    assert [r["annotator"] for r in rows] == ["x", "all"]
    x = rows[0]
    assert (
        x["gold pairs"] == 3
        and x["accuracy before"] == round(2 / 3, 3)
        and x["accuracy after"] == round(2 / 3, 3)
    )
    assert x["over-reliance (to wrong strong)"] == "1/2" and x["useful reliance (to right strong)"] == "1/1"
    assert x["strong accuracy"] == round(1 / 3, 3) and x["changed"] == "2/3"
