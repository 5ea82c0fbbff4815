"""The page and the API are two views of one labelling service: the same evidence-first rule, the same
stored annotation for the same submission, and a resubmission never overwrites what was stored."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest
from app_helpers import make_pairs, make_tree, setup
from sqlalchemy import update
from sqlmodel import select

from w2s.store import Annotation, QueueItem, annotation_key, session_scope
from w2s.store.auth import add_user
from w2s_app import queue as Q
from w2s_app.handlers import Handlers, Refused

CFG = Q.QueueConfig(overlap=1, gold_rate=0.0, quota=0)


def seeded(url: str) -> Handlers:
    for pid in make_pairs(url, 3):
        make_tree(url, pid, [("Avoid harm", 0.9, 0.7, 0.4), ("Honesty", 0.3, 0.5, 0.1)])
    make_pairs(url, 1, prefix="q")  # a pair without a tree, served last
    setup(url, CFG)
    add_user("alice", "annotator", "alice-pw", url=url)
    return Handlers(url)


@pytest.fixture
def h(db_url) -> Handlers:
    return seeded(db_url)


def verdicts_seen(h: Handlers, user: str) -> bool:
    """Whether the page and the API show the verdicts of the user's current pair; they must agree."""
    page = h.show_queue(user)
    api = h.api_next_pair(user)
    assert page.view.pair_id == api["pair_id"]
    on_page = "w2s-bar" in page.tree
    assert page.view.revealed == on_page or not api["nodes"]
    assert all(("p_a" in n) == (not api["verdicts_hidden"]) for n in api["nodes"])
    assert page.view.revealed == (not api["verdicts_hidden"])
    return page.view.revealed


def test_the_page_and_the_api_apply_one_evidence_first_rule(h, db_url):
    assert not verdicts_seen(h, "alice")  # a fresh pair: no verdict before a label
    view = h.show_queue("alice").view
    h.save_draft("alice", view, "b", 2, "thinking")
    assert not verdicts_seen(h, "alice")  # a draft is not a committed label
    h.api_reveal("alice", view.token, "b", 2)
    assert verdicts_seen(h, "alice")  # committed through the API: the page shows them too
    h.submit("alice", h.show_queue("alice").view, "a", 4, "")

    fresh = h.show_queue("alice").view
    assert not verdicts_seen(h, "alice")
    h.submit("alice", fresh, "a", 3, "")  # committed on the page: the API hands them over too
    assert verdicts_seen(h, "alice")
    h.submit("alice", h.show_queue("alice").view, "a", 3, "")
    h.undo("alice")  # the label withdrawn: its verdicts were seen, so both keep showing them
    assert h.show_queue("alice").view.pair_id == fresh.pair_id and verdicts_seen(h, "alice")
    h.submit("alice", h.show_queue("alice").view, "b", 3, "")

    with session_scope(db_url) as s:
        Q.save_config(s, replace(CFG, evidence_first=False))
    assert h.show_queue("alice").view.tree_id is not None
    assert verdicts_seen(h, "alice")  # the mode off: shown at once
    h.submit("alice", h.show_queue("alice").view, "tie", 3, "")
    with session_scope(db_url) as s:
        Q.save_config(s, CFG)
    assert h.show_queue("alice").view.tree_id is None
    assert verdicts_seen(h, "alice")  # no tree: nothing to hold back


def stored_row(url: str) -> dict:
    """The one human annotation in a store, without what depends on the clock."""
    with session_scope(url) as s:
        (ann,) = s.exec(select(Annotation)).all()
        row = ann.model_dump(exclude={"created_at", "seconds"})
    row["meta"]["initial"].pop("seconds")
    return row


def test_the_page_and_the_api_store_the_same_annotation(tmp_path):
    page_url, api_url = (f"sqlite:///{tmp_path / name}.db" for name in ("page", "api"))
    page_h, api_h = seeded(page_url), seeded(api_url)

    view = page_h.show_queue("alice").view
    shown = page_h.submit("alice", view, "b", 2, "")  # evidence first: the initial label
    with session_scope(page_url) as s:
        node_id = Q.served_tree(s, view.tree_id)[1][0].id
    pruned, _ = page_h.prune(shown.view, node_id, "irrelevant")
    page_h.submit("alice", pruned, "a", 4, "on reflection")

    nxt = api_h.api_next_pair("alice")
    assert nxt["token"] == view.token and nxt["tree_id"] == view.tree_id
    api_h.api_reveal("alice", nxt["token"], "b", 2)
    prune = json.dumps([{"node_id": node_id, "reason": "irrelevant"}])
    api_h.api_submit("alice", nxt["token"], "a", 4, "on reflection", prune, nxt["tree_id"])

    row = stored_row(page_url)
    assert row == stored_row(api_url)
    assert row["dedup_key"] == annotation_key("human", "alice", "", "", nxt["pair_id"], "0.0")
    assert row["meta"]["initial"] == {"label": "b", "rating": 2} and row["meta"]["rating"] == 4
    assert row["pruned"] == [{"node_id": node_id, "reason": "irrelevant"}]


def human_rows(url: str) -> list[tuple]:
    with session_scope(url) as s:
        rows = s.exec(select(Annotation).order_by(Annotation.id)).all()
        return [(a.id, a.label, a.comment, a.confidence, a.retracted, a.dedup_key) for a in rows]


def test_a_resubmission_never_overwrites_an_annotation(h, db_url):
    with session_scope(db_url) as s:
        Q.save_config(s, replace(CFG, evidence_first=False))
    nxt = h.api_next_pair("alice")
    first = h.api_submit("alice", nxt["token"], "a", 4, "sure")
    before = human_rows(db_url)
    again = h.api_submit("alice", nxt["token"], "a", 4, "sure")  # a retry: the row it stored
    assert (again["annotation_id"], again["created"]) == (first["annotation_id"], False)
    with pytest.raises(Refused, match="changed since it was shown"):
        h.api_submit("alice", nxt["token"], "b", 1, "other tab")

    page = h.show_queue("alice")
    h.submit("alice", page.view, "b", 2, "")
    with pytest.raises(Refused, match="changed since it was shown"):
        h.submit("alice", page.view, "a", 5, "changed my mind")  # the same page sent again, altered
    h.undo("alice")
    with pytest.raises(Refused, match="changed since it was shown"):
        h.submit("alice", page.view, "a", 5, "")  # its label was withdrawn since
    after = human_rows(db_url)
    assert after[: len(before)] == before and len(after) == len(before) + 2  # the label and its undo


def test_labels_stored_under_the_old_key_format_still_deduplicate(h, db_url):
    nxt = h.api_next_pair("alice")
    h.api_reveal("alice", nxt["token"], "a")
    first = h.api_submit("alice", nxt["token"], "a", 3)
    legacy = f"human|alice|{nxt['pair_id']}|0.0"  # as the app stored human labels before
    with session_scope(db_url) as s:
        s.exec(update(Annotation).where(Annotation.id == first["annotation_id"]).values(dedup_key=legacy))
    again = h.api_submit("alice", nxt["token"], "a", 3)
    assert (again["annotation_id"], again["created"]) == (first["annotation_id"], False)
    assert [r[-1] for r in human_rows(db_url)] == [legacy]


def test_a_skip_through_the_api_is_the_page_skip(h, db_url):
    by_api = h.api_next_pair("alice")
    assert h.api_skip("alice", by_api["token"]) == "ok"
    assert h.api_skip("alice", by_api["token"]) == "ok"  # a retry changes nothing
    by_page = h.show_queue("alice").view
    after = h.skip("alice", by_page)
    assert len({by_api["pair_id"], by_page.pair_id, after.view.pair_id}) == 3
    with pytest.raises(Refused, match="not in your queue"):
        h.api_skip("alice", "999.0.0")
    with session_scope(db_url) as s:
        status = {it.pair_id: it.status for it in s.exec(select(QueueItem).where(QueueItem.user == "alice"))}
    assert status == {by_api["pair_id"]: "skipped", by_page.pair_id: "skipped", after.view.pair_id: "open"}
