"""TreeSelector: one rule for which tree a pair is read with (w2s/trees/selection.py), in a real SQLite store."""

from __future__ import annotations

import pytest

from w2s.store import Node, Pair, Tree, session_scope
from w2s.trees import latest_tree
from w2s.trees.selection import TreeSelector


@pytest.fixture
def store(db_url):
    """Four pairs; `add(pair, model, config)` stores a tree (ids grow in the order of the calls)."""
    with session_scope(db_url) as s:
        for i in range(4):
            s.add(Pair(id=f"p{i}", dataset="d", prompt=str(i), response_a="a", response_b="b", gold="a"))

    def add(pair: str, model: str, config: str) -> int:
        with session_scope(db_url) as s:
            tree = Tree(pair_id=pair, strong_model=model, config_hash=config)
            s.add(tree)
            s.flush()
            s.add(Node(tree_id=tree.id, position=1, principle_id="x/b", relevance=0.5))
            s.add(Node(tree_id=tree.id, position=0, principle_id="x/a", relevance=0.5))
            return tree.id

    return db_url, add


def settle(url, pair_ids, model=None, config=None) -> dict[str, tuple[str, str]]:
    with session_scope(url) as s:
        return {
            pid: (t.strong_model, t.config_hash)
            for pid, t in TreeSelector(model, config).settle(s, pair_ids).items()
        }


def test_the_choice_with_the_most_trees_wins_over_a_newer_one(store):
    url, add = store
    for p in ("p0", "p1", "p2"):
        add(p, "m1", "old")
    add("p0", "m1", "new")  # newer, but on one pair only
    add("p3", "m2", "new")
    assert settle(url, ["p0", "p1", "p2", "p3"]) == {p: ("m1", "old") for p in ("p0", "p1", "p2")}


def test_a_tie_goes_to_the_newest(store):
    url, add = store
    add("p0", "m1", "c1")
    add("p1", "m1", "c1")
    add("p0", "m1", "c2")
    add("p2", "m1", "c2")  # two pairs each: c2 has the newest tree
    assert settle(url, ["p0", "p1", "p2"]) == {"p0": ("m1", "c2"), "p2": ("m1", "c2")}


def test_filters_by_model_and_config_first(store):
    url, add = store
    for p in ("p0", "p1", "p2"):
        add(p, "m1", "c1")
    add("p0", "m2", "c1")
    add("p0", "m2", "c2")
    add("p1", "m2", "c2")
    assert settle(url, ["p0", "p1", "p2"], model="m2") == {"p0": ("m2", "c2"), "p1": ("m2", "c2")}
    assert settle(url, ["p0", "p1", "p2"], model="m2", config="c1") == {"p0": ("m2", "c1")}
    assert settle(url, ["p0", "p1", "p2"], config="c1") == {p: ("m1", "c1") for p in ("p0", "p1", "p2")}
    assert settle(url, ["p0"], model="nobody") == {}
    with session_scope(url) as s:
        assert TreeSelector("nobody").choice(s, ["p0"]) is None
        assert TreeSelector("m2").choice(s, ["p0", "p1", "p2"]) == ("m2", "c2")


def test_one_pair_gets_its_newest_tree_with_its_nodes_in_order(store):
    """For one pair every choice has one tree: the tie goes to the newest (what the app serves)."""
    url, add = store
    add("p0", "m1", "c1")
    newest = add("p0", "m2", "c9")
    add("p1", "m1", "c2")
    with session_scope(url) as s:
        tree, nodes = TreeSelector().tree(s, "p0")
        assert tree.id == newest and [n.position for n in nodes] == [0, 1]
        assert latest_tree(s, "p0")[0].id == newest
        assert latest_tree(s, "p0", "m1")[0].config_hash == "c1"
        assert TreeSelector().tree(s, "p3") == (None, [])
