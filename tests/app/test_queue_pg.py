"""The queue's SQL on a real PostgreSQL server (booleans, conditional claims, bulk routing updates)."""

from __future__ import annotations

from collections import Counter

import pytest
from app_helpers import label_all, make_pairs, make_tree, setup
from pg import pg_url, postgres_server  # noqa: F401

from w2s.store import Annotation, current_annotations, session_scope
from w2s_app import queue as Q

pytestmark = pytest.mark.postgres


def test_queue_on_postgres(pg_url):  # noqa: F811
    ids = make_pairs(pg_url, 6)
    make_pairs(pg_url, 2, split="gold", gold="a", prefix="g")
    make_tree(pg_url, ids[0], [("harm", 0.9, 0.8, 0.5)])
    with session_scope(pg_url) as s:
        for i, pid in enumerate(ids):
            s.add(
                Annotation(
                    pair_id=pid,
                    annotator="weak",
                    annotator_kind="model",
                    label="a",
                    p_a=0.95 - 0.08 * i,
                    method="seam",
                )
            )
    setup(pg_url, Q.QueueConfig(overlap=2, gold_rate=0.0, quota=0, routing="uncertain", route_fraction=0.5))
    assert label_all(pg_url, "u1") == ["p00005", "p00004", "p00003"]  # most uncertain weak labels first
    got = label_all(pg_url, "u2") + label_all(pg_url, "u3")
    assert Counter(got) == {"p00005": 1, "p00004": 1, "p00003": 1}  # k=2 in all
    with session_scope(pg_url) as s:
        item = Q.undo_last(s, "u1")
    with session_scope(pg_url) as s:
        assert Q.next_item(s, "u1").id == item.id
        Q.submit(s, "u1", Q.make_token(item), "b")
    with session_scope(pg_url) as s:
        assert len([a for a in current_annotations(s, method="human")]) == 6
        Q.save_config(s, Q.QueueConfig(overlap=2, gold_rate=1.0, quota=0))
        Q.sync_pool(s, Q.load_config(s))
    assert label_all(pg_url, "u4") == [
        "g00000",
        "g00001",
        "p00000",
        "p00001",
        "p00002",
    ]  # gold first, then free
