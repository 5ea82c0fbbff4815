"""Queue logic against a real SQLite store, no browser."""

from __future__ import annotations

import math
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import pytest
from app_helpers import label_all, make_pairs, make_tree, setup
from sqlmodel import select

from w2s.store import Annotation, Draft, QueueItem, QueuePool, current_annotations, session_scope
from w2s_app import queue as Q


def test_overlap_least_annotated_first_and_never_twice(db_url):
    make_pairs(db_url, 6)
    setup(db_url, Q.QueueConfig(overlap=2, gold_rate=0.0, quota=0))
    ann1 = label_all(db_url, "ann1")
    assert sorted(ann1) == [f"p{i:05d}" for i in range(6)]  # one annotator gets every pair once
    ann2_first = label_all(db_url, "ann2", limit=3)
    ann3 = label_all(db_url, "ann3")
    # least annotated first: ann3 gets the three pairs ann2 did not take (1 label) before any with 2
    assert set(ann3[:3]) == set(ann1) - set(ann2_first)
    ann2_rest = label_all(db_url, "ann2")
    counts = Counter(ann1 + ann2_first + ann3 + ann2_rest)
    assert all(c == 2 for c in counts.values()) and len(counts) == 6  # exactly k=2 per pair
    assert len(set(ann2_first + ann2_rest)) == len(ann2_first + ann2_rest)  # nobody sees a pair twice
    with session_scope(db_url) as s:
        assert Q.next_item(s, "ann4") is None  # every pair has its k annotators


def test_unique_constraint_blocks_second_assignment(db_url):
    make_pairs(db_url, 1)
    setup(db_url, Q.QueueConfig(gold_rate=0.0))
    with session_scope(db_url) as s:
        s.add(QueueItem(user="u", pair_id="p00000"))
    from sqlalchemy.exc import IntegrityError

    with pytest.raises(IntegrityError), session_scope(db_url) as s:
        s.add(QueueItem(user="u", pair_id="p00000"))


def test_concurrent_next_pair_respects_overlap(db_url):
    make_pairs(db_url, 10)
    setup(db_url, Q.QueueConfig(overlap=1, gold_rate=0.0, quota=0))

    def grab(user):
        return label_all(db_url, user)

    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(grab, ["u1", "u2", "u3", "u4"]))
    all_ids = [pid for r in results for pid in r]
    assert sorted(all_ids) == [f"p{i:05d}" for i in range(10)]  # each pair exactly once (k=1)


def test_gold_rate_mixes_attention_pairs_and_accuracy(db_url):
    make_pairs(db_url, 200)
    make_pairs(db_url, 40, split="gold", gold="a", prefix="g")
    setup(db_url, Q.QueueConfig(overlap=1, gold_rate=0.25, quota=100))
    got = label_all(db_url, "ann", label="a")
    assert len(got) == 100  # the quota
    n_gold = sum(pid.startswith("g") for pid in got)
    assert 12 <= n_gold <= 40  # about a quarter, drawn at random
    with session_scope(db_url) as s:
        items = s.exec(select(QueueItem).where(QueueItem.user == "ann")).all()
        assert sum(it.is_gold for it in items) == n_gold
        # gold pairs ignore the overlap: a second annotator also gets attention checks
        Q.save_config(s, Q.QueueConfig(overlap=1, gold_rate=1.0, quota=5))
    got2 = label_all(db_url, "ann2")
    assert all(pid.startswith("g") for pid in got2) and len(got2) == 5

    from w2s_app.stats import annotator_table

    with session_scope(db_url) as s:
        rows = {r["annotator"]: r for r in annotator_table(s)}
    assert rows["ann"]["gold_checks"] == n_gold and rows["ann"]["gold_check_accuracy"] == 1.0


def test_zero_gold_rate_never_serves_gold(db_url):
    make_pairs(db_url, 5)
    make_pairs(db_url, 5, split="gold", gold="b", prefix="g")
    setup(db_url, Q.QueueConfig(overlap=1, gold_rate=0.0, quota=0))
    assert all(pid.startswith("p") for pid in label_all(db_url, "u"))


def test_routing_sends_only_least_reliable_weak_labels(db_url):
    ids = make_pairs(db_url, 10)
    with session_scope(db_url) as s:
        for i, pid in enumerate(ids):
            # P(A) from 0.95 (confident) down to 0.5 (coin flip) as i grows
            s.add(
                Annotation(
                    pair_id=pid,
                    annotator="weak",
                    annotator_kind="model",
                    label="a",
                    confidence=0.95 - 0.05 * i,
                    p_a=0.95 - 0.05 * i,
                    method="seam",
                )
            )
    setup(db_url, Q.QueueConfig(overlap=1, gold_rate=0.0, quota=0, routing="uncertain", route_fraction=0.3))
    got = label_all(db_url, "u")
    # the three most uncertain pairs (P(A) nearest 0.5), most uncertain first
    assert got == ["p00009", "p00008", "p00007"]


def test_weak_uncertainty_hand_computed():
    # in nats, like every entropy in w2s
    assert Q.weak_uncertainty([]) == pytest.approx(math.log(2))
    assert Q.weak_uncertainty([0.5]) == pytest.approx(math.log(2))
    assert Q.weak_uncertainty([1.0, 1.0]) == 0.0
    # H(0.8) = -(0.8 ln 0.8 + 0.2 ln 0.2) = 0.5004
    assert Q.weak_uncertainty([0.9, 0.7]) == pytest.approx(0.5004, abs=1e-4)


def test_submit_is_idempotent_and_undo_supersedes(db_url):
    pid = make_pairs(db_url, 2)[0]
    tree_id, node_ids = make_tree(db_url, pid, [("harm", 0.9, 0.8, 0.5), ("honesty", 0.4, 0.6, 0.1)])
    setup(db_url, Q.QueueConfig(overlap=1, gold_rate=0.0, quota=0))
    with session_scope(db_url) as s:
        item = Q.next_item(s, "u")
        assert item.pair_id == pid
        token = Q.make_token(item)
        ann, created = Q.submit(
            s,
            "u",
            token,
            "b",
            confidence=0.9,
            tree_id=tree_id,
            pruned=[{"node_id": node_ids[1], "reason": "irrelevant"}],
        )
        assert created and ann.consulted_node_ids == [node_ids[0]]
        assert ann.pruned == [{"node_id": node_ids[1], "reason": "irrelevant"}]
    with session_scope(db_url) as s:  # the same submit again (a retry) stores nothing
        again, created = Q.submit(s, "u", token, "b", confidence=0.9, tree_id=tree_id)
        assert not created and again.id == ann.id
    with session_scope(db_url) as s:
        reopened = Q.undo_last(s, "u")
        assert reopened.pair_id == pid and reopened.status == "open"
    with session_scope(db_url) as s:
        assert [a.id for a in current_annotations(s, method="human")] == []
        assert Q.next_item(s, "u").pair_id == pid  # the undone pair comes back first
        old, created = Q.submit(s, "u", token, "b", confidence=0.9)  # a late retry of the undone submit
        assert not created and old.id == ann.id
        with pytest.raises(Q.QueueError, match="changed since it was shown"):
            Q.submit(s, "u", token, "a")  # the old token with another label: stale, not silently dropped
        new, created = Q.submit(s, "u", Q.make_token(Q.next_item(s, "u")), "a")
    with session_scope(db_url) as s:
        rows = s.exec(select(Annotation).order_by(Annotation.id)).all()
        assert [(r.label, r.retracted, r.supersedes_id) for r in rows] == [
            ("b", False, None),
            ("b", True, rows[0].id),
            ("a", False, rows[1].id),
        ]
        assert [a.id for a in current_annotations(s, method="human")] == [new.id]


def test_correction_from_history_supersedes(db_url):
    make_pairs(db_url, 2)
    setup(db_url, Q.QueueConfig(overlap=1, gold_rate=0.0, quota=0))
    label_all(db_url, "u", label="a")
    with session_scope(db_url) as s:
        first = Q.history(s, "u")[0]
        old = first.annotation_id
        fixed, created = Q.submit(s, "u", Q.make_token(first), "tie")
        assert created and fixed.supersedes_id == old
    with session_scope(db_url) as s:
        labels = sorted(a.label for a in current_annotations(s, method="human"))
        assert labels == ["a", "tie"]


def test_skip_frees_the_slot_and_drafts_persist(db_url):
    make_pairs(db_url, 1)
    setup(db_url, Q.QueueConfig(overlap=1, gold_rate=0.0, quota=0))
    with session_scope(db_url) as s:
        item = Q.next_item(s, "u1")
        Q.save_draft(s, "u1", item.pair_id, {"label": "a", "comment": "half done"})
    with session_scope(db_url) as s:
        assert Q.load_draft(s, "u1", item.pair_id) == {"label": "a", "comment": "half done"}
        assert Q.next_item(s, "u2") is None  # k=1 and u1 holds it
        Q.skip(s, "u1", Q.make_token(item))
    with session_scope(db_url) as s:
        assert Q.next_item(s, "u1") is None  # never shown twice
        item2 = Q.next_item(s, "u2")
        assert item2.pair_id == item.pair_id
        Q.save_draft(s, "u2", item2.pair_id, {"label": "b"})
        Q.submit(s, "u2", Q.make_token(item2), "b")
    with session_scope(db_url) as s:
        assert s.exec(select(Draft).where(Draft.user == "u2")).first() is None  # a submit clears the draft
        assert s.get(QueuePool, item.pair_id).n_assigned == 1


def test_bad_input_is_refused(db_url):
    pid = make_pairs(db_url, 1)[0]
    tree_id, node_ids = make_tree(db_url, pid, [("harm", 0.9, 0.8, 0.5)])
    setup(db_url, Q.QueueConfig(gold_rate=0.0))
    with session_scope(db_url) as s:
        token = Q.make_token(Q.next_item(s, "u"))
        with pytest.raises(Q.QueueError, match="label"):
            Q.submit(s, "u", token, "c")
        with pytest.raises(Q.QueueError, match="not in your queue"):
            Q.submit(s, "intruder", token, "a")
        with pytest.raises(Q.QueueError, match="not in this pair's tree"):
            Q.submit(s, "u", token, "a", tree_id=tree_id, pruned=[{"node_id": 999, "reason": "other"}])
        with pytest.raises(Q.QueueError, match="reason"):
            Q.submit(s, "u", token, "a", tree_id=tree_id, pruned=[{"node_id": node_ids[0], "reason": "meh"}])
        with pytest.raises(Q.QueueError, match="malformed"):
            Q.submit(s, "u", "x", "a")
    with pytest.raises(Q.QueueError):
        Q.QueueConfig(routing="sometimes")


def test_progress_counts_done_and_remaining(db_url):
    make_pairs(db_url, 8)
    setup(db_url, Q.QueueConfig(overlap=1, gold_rate=0.0, quota=5))
    with session_scope(db_url) as s:
        assert Q.progress(s, "u") == {"done": 0, "skipped": 0, "remaining": 5, "total": 5}
    label_all(db_url, "u", limit=2)
    with session_scope(db_url) as s:
        assert Q.progress(s, "u")["done"] == 2 and Q.progress(s, "u")["remaining"] == 3
        # another annotator sees only what is left beyond u's share
        assert Q.progress(s, "v")["remaining"] == 5


def test_the_served_tree_orders_nodes_by_info(db_url):
    pid = make_pairs(db_url, 1)[0]
    make_tree(db_url, pid, [("low", 0.9, 0.6, 0.1), ("high", 0.8, 0.95, 0.7), ("mid", 0.5, 0.8, 0.3)])
    with session_scope(db_url) as s:
        _, nodes = Q.tree_to_serve(s, pid)
        assert [n.principle_name for n in nodes] == ["high", "mid", "low"]
        assert Q.tree_to_serve(s, "nope") == (None, [])


def test_stale_token_from_a_second_tab_is_refused(db_url):
    make_pairs(db_url, 2)
    setup(db_url, Q.QueueConfig(overlap=1, gold_rate=0.0, quota=0))
    label_all(db_url, "u", label="a", limit=1)
    with session_scope(db_url) as s:
        item = Q.history(s, "u")[0]
        tab1 = tab2 = Q.make_token(item)  # two tabs show the same labelled pair
        Q.submit(s, "u", tab1, "b")  # tab 1 corrects it
    with session_scope(db_url) as s, pytest.raises(Q.QueueError, match="changed since it was shown"):
        Q.submit(s, "u", tab2, "tie", comment="other tab")  # same token, new content: tab 2 must reload


def test_others_labels_only_current_human_rows(db_url):
    pid = make_pairs(db_url, 1)[0]
    with session_scope(db_url) as s:
        old = Annotation(pair_id=pid, annotator="v", annotator_kind="human", method="human", label="a")
        s.add(old)
        s.flush()
        s.add(
            Annotation(
                pair_id=pid,
                annotator="v",
                annotator_kind="human",
                method="human",
                label="b",
                supersedes_id=old.id,
            )
        )
        s.add(Annotation(pair_id=pid, annotator="w", annotator_kind="model", method="seam", label="a"))
        s.add(Annotation(pair_id=pid, annotator="u", annotator_kind="human", method="human", label="tie"))
    with session_scope(db_url) as s:
        assert Q.others_labels(s, "u", pid) == [("v", "b")]


def test_pairs_imported_later_join_the_pool(db_url):
    make_pairs(db_url, 2)
    setup(db_url, Q.QueueConfig(overlap=1, gold_rate=0.0, quota=0))
    assert len(label_all(db_url, "u")) == 2
    make_pairs(db_url, 3, prefix="new")
    make_pairs(db_url, 1, split="gold", gold="a", prefix="g")
    with session_scope(db_url) as s:
        assert Q.add_new_pairs(s, Q.load_config(s)) == 4
        assert Q.add_new_pairs(s, Q.load_config(s)) == 0
        assert s.get(QueuePool, "g00000").is_gold and not s.get(QueuePool, "new00000").is_gold
    assert sorted(label_all(db_url, "u")) == ["new00000", "new00001", "new00002"]


def test_a_prune_redraws_the_served_tree_not_a_newer_one(db_url):
    from w2s.store import Node, Tree
    from w2s_app.handlers import PageState, retree

    pid = make_pairs(db_url, 1)[0]
    served, node_ids = make_tree(db_url, pid, [("served-a", 0.9, 0.8, 0.5), ("served-b", 0.8, 0.7, 0.3)])
    with session_scope(db_url) as s:  # a strong model finishes a tree of another config meanwhile
        newer = Tree(pair_id=pid, strong_model="test-strong", config_hash="newer")
        s.add(newer)
        s.flush()
        s.add(
            Node(
                tree_id=newer.id,
                position=0,
                principle_id="harmlessness/x",
                principle_name="newer-node",
                relevance=0.9,
                info=0.9,
            )
        )
    with session_scope(db_url) as s:
        assert Q.tree_to_serve(s, pid)[0].id != served
        html = retree(s, PageState(pair_id=pid, tree_id=served, pruned={str(node_ids[0]): "irrelevant"}))
    assert (
        "served-a" in html and "served-b" in html and "newer-node" not in html and "w2s-node-pruned" in html
    )
