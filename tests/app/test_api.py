"""The app's HTTP API through gradio_client against a real `w2s serve`, including a SIGKILL mid-session."""

from __future__ import annotations

import json
import signal

import pytest
from app_helpers import make_pairs, make_tree
from sqlmodel import select

from w2s.store import Annotation, Draft, QueueItem, session_scope
from w2s_app import queue as Q

pytestmark = pytest.mark.slow


def client_for(base, name, password):
    from gradio_client import Client

    return Client(base, auth=(name, password), verbose=False, analytics_enabled=False)


@pytest.fixture
def store(db_url):
    from w2s.store.auth import add_user

    ids = make_pairs(db_url, 8)
    make_tree(db_url, ids[0], [("Avoid harm", 0.9, 0.7, 0.4), ("Honesty", 0.3, 0.5, 0.0)])
    with session_scope(db_url) as s:
        Q.save_config(s, Q.QueueConfig(overlap=1, gold_rate=0.0, quota=0))
    add_user("alice", "annotator", "alice-pw", url=db_url)
    add_user("bob", "annotator", "bob-pw", url=db_url)
    return db_url


def test_submit_once_and_kill_loses_nothing(store, server_factory):
    srv = server_factory(store)
    alice = client_for(srv.base, "alice", "alice-pw")
    submitted = []
    for i in range(3):
        nxt = alice.predict(api_name="/next_pair")
        assert nxt["progress"]["done"] == i
        pruned = (
            json.dumps([{"node_id": nxt["nodes"][1]["id"], "reason": "irrelevant"}]) if nxt["nodes"] else "[]"
        )
        if nxt["nodes"]:  # evidence first (the default): verdicts only after the initial label
            assert nxt["verdicts_hidden"] and "p_a" not in nxt["nodes"][0]
            shown = alice.predict(nxt["token"], "b", 3, api_name="/reveal")
            assert shown["initial"]["label"] == "b" and "p_a" in shown["nodes"][0]
        first = alice.predict(nxt["token"], "a", 4, f"c{i}", pruned, api_name="/submit")
        retry = alice.predict(nxt["token"], "a", 4, f"c{i}", pruned, api_name="/submit")
        assert first["created"] and not retry["created"] and retry["annotation_id"] == first["annotation_id"]
        submitted.append(nxt["pair_id"])
    assert [n["principle"] for n in Q_nodes(store, submitted[0])] == ["Avoid harm", "Honesty"]
    open_pair = alice.predict(api_name="/next_pair")
    alice.predict(open_pair["token"], json.dumps({"label": "b", "comment": "draft"}), api_name="/save_draft")

    # bob cannot use alice's token
    bob = client_for(srv.base, "bob", "bob-pw")
    with pytest.raises(Exception, match="not in your queue"):
        bob.predict(open_pair["token"], "b", 3, "", "[]", api_name="/submit")

    srv.kill(signal.SIGKILL)  # no shutdown hook runs
    with session_scope(store) as s:
        rows = s.exec(select(Annotation).where(Annotation.annotator == "alice")).all()
        assert sorted(r.pair_id for r in rows) == sorted(submitted)
        assert rows[0].pruned == [{"node_id": rows[0].pruned[0]["node_id"], "reason": "irrelevant"}]
        assert [r.comment for r in rows] == ["c0", "c1", "c2"]
        drafts = s.exec(select(Draft)).all()
        assert [(d.user, d.pair_id, d.state) for d in drafts] == [
            ("alice", open_pair["pair_id"], {"label": "b", "comment": "draft"})
        ]

    srv2 = server_factory(store)
    alice = client_for(srv2.base, "alice", "alice-pw")
    again = alice.predict(api_name="/next_pair")
    assert again["pair_id"] == open_pair["pair_id"]  # the open pair survives the restart
    assert again["progress"]["done"] == 3
    done = alice.predict(again["token"], "tie", 2, "", "[]", api_name="/submit")
    assert done["created"]
    with session_scope(store) as s:
        assert s.exec(select(Draft)).all() == []
        items = s.exec(select(QueueItem).where(QueueItem.user == "alice")).all()
        assert len({it.pair_id for it in items}) == len(items) == 4 and all(
            it.status == "done" for it in items
        )


def test_submit_records_the_tree_that_was_served(store, server_factory):
    from w2s.store import Tree

    srv = server_factory(store)
    alice = client_for(srv.base, "alice", "alice-pw")
    nxt = alice.predict(api_name="/next_pair")
    served = nxt["tree_id"]
    assert served is not None
    with session_scope(store) as s:  # a strong model finishes a newer tree while alice reads
        newer = Tree(pair_id=nxt["pair_id"], strong_model="test-strong", config_hash="newer")
        s.add(newer)
        s.flush()
        newer_id = newer.id
    with pytest.raises(Exception, match="is not a tree of pair"):
        alice.predict(nxt["token"], "a", 4, "", "[]", 10_000, api_name="/submit")
    done = alice.predict(nxt["token"], "a", 4, "", "[]", served, api_name="/submit")
    with session_scope(store) as s:
        assert s.get(Annotation, done["annotation_id"]).tree_id == served != newer_id


def test_wrong_password_is_refused(store, server_factory):
    srv = server_factory(store)
    with pytest.raises(ValueError, match="Could not login"):  # gradio_client's error for a refused login
        client_for(srv.base, "alice", "wrong")


def Q_nodes(url, pair_id):
    with session_scope(url) as s:
        _, nodes = Q.tree_to_serve(s, pair_id)
        return [{"principle": n.principle_name} for n in nodes]
