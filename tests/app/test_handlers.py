"""The app's handlers called directly (no browser, no server): what each page event does."""

from __future__ import annotations

import pytest
from app_helpers import make_pairs, make_tree, setup
from sqlmodel import select

from w2s.store import Annotation, Draft, Tree, session_scope
from w2s.store.auth import add_user
from w2s_app import queue as Q
from w2s_app.handlers import AdminPage, Handlers, PairPage, Refused


@pytest.fixture
def h(db_url) -> Handlers:
    ids = make_pairs(db_url, 3)
    for pid in ids:
        make_tree(db_url, pid, [("Avoid harm", 0.9, 0.7, 0.4), ("Honesty", 0.3, 0.5, 0.1)])
    setup(db_url, Q.QueueConfig(overlap=1, gold_rate=0.0, quota=0))
    add_user("alice", "annotator", "alice-pw", url=db_url)
    add_user("boss", "admin", "boss-pw", url=db_url)
    return Handlers(db_url)


def test_users_are_checked(h):
    with pytest.raises(Refused, match="Please log in"):
        h.welcome(None)
    with pytest.raises(Refused, match="Unknown or inactive user"):
        h.welcome("mallory")
    with pytest.raises(Refused, match="Only admins"):
        h.admin_page("alice")
    assert isinstance(h.admin_page("boss"), AdminPage)


def test_submit_records_the_tree_the_page_was_served(h, db_url):
    page = h.welcome("alice").page
    assert isinstance(page, PairPage) and page.view.pair_id and page.tree.count('<div class="w2s-node"') == 2
    served = page.view.tree_id
    with session_scope(db_url) as s:  # a newer tree arrives while alice reads
        s.add(Tree(pair_id=page.view.pair_id, strong_model="test-strong", config_hash="newer"))
    first = _node_ids(db_url, served)[0]
    view, html = h.node_action(
        page.view, f'{{"action": "prune", "node_id": {first}, "reason": "irrelevant"}}'
    )
    assert "w2s-node-pruned" in html and "Avoid harm" in html and 'data-action="restore"' in html
    with pytest.raises(Refused, match="prune reason"):
        h.prune(view, first, "boring")
    with pytest.raises(Refused, match="node action"):
        h.node_action(view, '{"action": "delete", "node_id": 1}')
    with pytest.raises(Refused, match="Choose A, B or tie"):
        h.submit("alice", view, None, 4, "")
    revealed = h.submit("alice", view, "b", 4, "looks off")  # evidence first: the first submit shows verdicts
    assert revealed.view.pair_id == page.view.pair_id and "w2s-bar" in revealed.tree
    after = h.submit("alice", revealed.view, "b", 4, "looks off")
    assert after.status.startswith("Saved B.") and after.view.pair_id != page.view.pair_id
    with session_scope(db_url) as s:
        ann = s.exec(select(Annotation).where(Annotation.annotator == "alice")).one()
        assert ann.tree_id == served and ann.label == "b" and ann.pruned[0]["reason"] == "irrelevant"


def test_evidence_first_keeps_both_labels_and_hides_every_verdict_until_the_first(h, db_url):
    page = h.welcome("alice").page
    assert page.view.revealed is False and "Evidence first" in page.status
    assert "w2s-bar" not in page.tree and "P(A)" not in page.tree and "%" not in page.tree
    reloaded = h.show_queue("alice")  # a reload before choosing still shows no verdict
    assert "w2s-bar" not in reloaded.tree
    revealed = h.submit("alice", page.view, "a", 2, "")
    assert revealed.view.revealed and revealed.view.initial["label"] == "a" and "w2s-bar" in revealed.tree
    assert "Your first label: A" in revealed.status and revealed.label == "a"
    again = h.show_queue("alice")  # a reload after the reveal cannot take the initial label back
    assert again.view.initial["label"] == "a" and "w2s-bar" in again.tree
    h.submit("alice", again.view, "b", 5, "changed my mind")
    with session_scope(db_url) as s:
        ann = s.exec(select(Annotation).where(Annotation.annotator == "alice")).one()
    assert ann.label == "b" and ann.meta["initial"]["label"] == "a" and ann.meta["initial"]["rating"] == 2
    assert ann.meta["rating"] == 5 and ann.seconds >= ann.meta["initial"]["seconds"]
    # undo brings the pair back revealed, with the initial label the withdrawn row carried
    undone = h.undo("alice")
    assert undone.view.revealed and undone.view.initial["label"] == "a"


def test_with_evidence_first_off_verdicts_show_at_once(db_url):
    ids = make_pairs(db_url, 1)
    make_tree(db_url, ids[0], [("Avoid harm", 0.9, 0.7, 0.4)])
    setup(db_url, Q.QueueConfig(overlap=1, gold_rate=0.0, quota=0, evidence_first=False))
    add_user("alice", "annotator", "alice-pw", url=db_url)
    h = Handlers(db_url)
    page = h.welcome("alice").page
    assert page.view.revealed and "w2s-bar" in page.tree
    assert h.submit("alice", page.view, "a", 3, "").status.startswith("Saved A.")
    with session_scope(db_url) as s:
        assert "initial" not in s.exec(select(Annotation)).one().meta


def test_queue_settings_saved_before_evidence_first_keep_it_off(db_url):
    from w2s.store import set_setting

    with session_scope(db_url) as s:
        assert Q.load_config(s).evidence_first is True  # a new project
        set_setting(s, "queue", {"overlap": 3, "blind": True})  # saved by an older w2s
    with session_scope(db_url) as s:
        assert Q.load_config(s).evidence_first is False and Q.load_config(s).overlap == 3


def test_draft_history_and_undo(h, db_url):
    page = h.welcome("alice").page
    assert h.save_draft("alice", page.view, "a", 2, "hmm") == "Draft saved."
    with session_scope(db_url) as s:
        assert s.exec(select(Draft)).one().state["comment"] == "hmm"
    again = h.show_queue("alice")
    assert again.view.pair_id == page.view.pair_id and again.label == "a" and "Draft restored" in again.status
    h.submit("alice", h.submit("alice", again.view, "a", 5, "").view, "a", 5, "")
    back = h.history("alice", h.show_queue("alice").view, -1)
    assert back.view.pair_id == page.view.pair_id and back.view.hist == 0 and back.label == "a"
    undone = h.undo("alice")
    assert (
        "Undone: your last label is withdrawn." in undone.status and undone.view.pair_id == page.view.pair_id
    )


@pytest.mark.parametrize("tree_id", ["abc", 1.5, True, [1]])
def test_api_tree_id_must_be_an_integer(h, tree_id):
    token = h.api_next_pair("alice")["token"]
    with pytest.raises(Refused, match="tree_id must be an integer"):
        h.api_submit("alice", token, "a", 3, "", "[]", tree_id)


def _node_ids(url, tree_id):
    from w2s.store import Node

    with session_scope(url) as s:
        return [n.id for n in s.exec(select(Node).where(Node.tree_id == tree_id).order_by(Node.position))]


def test_the_project_serves_the_trees_of_the_strong_model_it_chose(db_url):
    from w2s_app.cli import choose_trees

    pid = make_pairs(db_url, 1)[0]
    big, _ = make_tree(db_url, pid, [("big-node", 0.9, 0.8, 0.5)], strong_model="big", config_hash="c1")
    big2, _ = make_tree(db_url, pid, [("big2-node", 0.9, 0.8, 0.5)], strong_model="big", config_hash="c2")
    small, _ = make_tree(db_url, pid, [("small-node", 0.9, 0.8, 0.5)], strong_model="small", config_hash="c1")
    setup(db_url, Q.QueueConfig(overlap=1, gold_rate=0.0, quota=0))
    add_user("alice", "annotator", "alice-pw", url=db_url)
    h = Handlers(db_url)

    def served():
        page = h.show_queue("alice")
        assert h.api_next_pair("alice")["tree_id"] == page.view.tree_id
        return page

    page = served()  # nothing chosen: the newest tree of any model
    assert page.view.tree_id == small and "small-node" in page.tree
    assert "Tree by `small` (config c1)" in page.status
    assert "newest tree of any strong model (1 of 1 pairs" in choose_trees(db_url, None, None)
    assert "of big (1 of 1 pairs" in choose_trees(db_url, "big", None)
    page = served()  # the chosen model's newest tree, though another model built one since
    assert page.view.tree_id == big2 and "big2-node" in page.tree
    assert "Tree by `big` (config c2)" in page.status
    assert h.api_next_pair("alice")["strong_model"] == "big"
    choose_trees(db_url, None, "c1")  # a config alone keeps the chosen model
    assert served().view.tree_id == big
    with session_scope(db_url) as s:
        assert Q.load_tree_source(s) == Q.TreeSource("big", "c1")
    message = choose_trees(db_url, "huge", None)  # a new model alone drops the old model's config
    assert "(0 of 1 pairs" in message and "big (config c1), big (config c2), small (config c1)" in message
    page = served()
    assert page.view.tree_id is None and "No principle tree" in page.tree
    choose_trees(db_url, "any", None)
    assert served().view.tree_id == small


def test_history_shows_the_tree_the_label_recorded(h, db_url):
    page = h.welcome("alice").page
    pid, served = page.view.pair_id, page.view.tree_id
    node = _node_ids(db_url, served)[0]
    with session_scope(db_url) as s:  # labelled with a prune through the queue, whatever steps the page takes
        prune = [{"node_id": node, "reason": "other"}]
        Q.submit(s, "alice", page.view.token, "a", tree_id=served, pruned=prune)
    newer, _ = make_tree(db_url, pid, [("Newer principle", 0.9, 0.9, 0.9)], strong_model="newer-strong")

    back = h.history("alice", h.show_queue("alice").view, -1)
    assert back.view.pair_id == pid and back.view.tree_id == served
    assert "Avoid harm" in back.tree and "Newer principle" not in back.tree and "w2s-node-pruned" in back.tree
    assert "Tree by `test-strong`" in back.status
    h.submit("alice", back.view, "b", 4, "on reflection")  # a correction records the tree it was made on
    undone = h.undo("alice")  # reopened: the withdrawn label's tree and prunes come back
    assert undone.view.pair_id == pid and undone.view.tree_id == served
    assert "w2s-node-pruned" in undone.tree
    with session_scope(db_url) as s:
        rows = s.exec(select(Annotation).where(Annotation.pair_id == pid).order_by(Annotation.id)).all()
        assert [a.tree_id for a in rows] == [served, served, served]
    assert h.api_next_pair("alice")["tree_id"] == served  # the reopened item, as the page shows it
    with session_scope(db_url) as s:  # while a pair not labelled before is served the newest tree
        assert Q.tree_to_serve(s, pid)[0].id == newer


def test_api_evidence_first_hides_p_a_until_reveal_and_stores_the_initial_label(h, db_url):
    nxt = h.api_next_pair("alice")
    assert (
        nxt["verdicts_hidden"]
        and nxt["nodes"]
        and all("p_a" not in n and "info" not in n for n in nxt["nodes"])
    )
    with pytest.raises(Refused, match="initial_label"):
        h.api_reveal("alice", nxt["token"], "maybe")
    shown = h.api_reveal("alice", nxt["token"], "b", 2)
    assert shown["initial"]["label"] == "b" and all("p_a" in n for n in shown["nodes"])
    assert h.api_reveal("alice", nxt["token"], "a")["initial"]["label"] == "b"  # the first one stays
    again = h.api_next_pair("alice")
    assert again["token"] == nxt["token"] and not again["verdicts_hidden"] and "p_a" in again["nodes"][0]
    h.api_submit("alice", nxt["token"], "a", 4, "", "[]", nxt["tree_id"])
    with session_scope(db_url) as s:
        ann = s.exec(select(Annotation).where(Annotation.annotator == "alice")).one()
    assert ann.label == "a" and ann.meta["initial"] == {"label": "b", "rating": 2.0, "seconds": None}


def test_api_draft_cannot_make_up_or_rewrite_the_initial_label(h, db_url):
    import json

    nxt = h.api_next_pair("alice")
    forged = {"label": "a", "initial": {"label": "a", "rating": 5, "seconds": 1}, "revealed": True}
    h.api_save_draft("alice", nxt["token"], json.dumps(forged))
    assert h.api_next_pair("alice")["verdicts_hidden"]  # a draft is no reveal
    h.api_reveal("alice", nxt["token"], "b", 2)
    h.api_save_draft("alice", nxt["token"], json.dumps({**forged, "comment": "kept", "initial": None}))
    with session_scope(db_url) as s:
        draft = Q.load_draft(s, "alice", nxt["pair_id"])
    assert draft["comment"] == "kept" and draft["initial"]["label"] == "b" and draft["revealed"]
    assert draft["tree_id"] == nxt["tree_id"]
    h.api_submit("alice", nxt["token"], "a", 4, "", "[]", nxt["tree_id"])
    with session_scope(db_url) as s:
        ann = s.exec(select(Annotation).where(Annotation.annotator == "alice")).one()
    assert ann.meta["initial"]["label"] == "b"


def test_a_second_tab_cannot_wipe_or_redo_the_first_label(h, db_url):
    tab1, tab2 = h.welcome("alice").page, h.show_queue("alice")
    assert tab1.view.pair_id == tab2.view.pair_id and not tab2.view.revealed
    h.submit("alice", tab1.view, "a", 2, "")  # committed in tab 1: the verdicts show there
    with pytest.raises(Refused, match="A, B or tie"):
        h.save_draft("alice", tab2.view, "<b>", 3, "")
    assert h.save_draft("alice", tab2.view, "b", 3, "from tab 2") == "Draft saved."
    with session_scope(db_url) as s:
        draft = Q.load_draft(s, "alice", tab1.view.pair_id)
    assert draft["initial"]["label"] == "a" and draft["revealed"] and draft["comment"] == "from tab 2"
    again = h.submit(
        "alice", tab2.view, "b", 4, ""
    )  # tab 2 still hides the verdicts: a reveal, not a second first label
    assert again.view.initial["label"] == "a" and "first label: A" in again.status


def test_a_revealed_draft_keeps_its_tree_when_the_project_chooses_another_model(h, db_url):
    from w2s_app.cli import choose_trees

    page = h.welcome("alice").page
    pid, served = page.view.pair_id, page.view.tree_id
    assert not page.view.revealed and "w2s-node" in page.tree
    shown = h.submit("alice", page.view, "a", 3, "")  # evidence first: keeps the label, shows verdicts
    assert shown.view.revealed and shown.view.initial["label"] == "a"
    assert shown.view.tree_id == served
    make_tree(db_url, pid, [("Newer principle", 0.9, 0.9, 0.9)], strong_model="newer-strong")
    choose_trees(db_url, "newer-strong", None)
    again = h.show_queue("alice")  # a reload: the tree the initial label was made on, not the chosen model's
    assert again.view.pair_id == pid and again.view.tree_id == served and again.view.revealed
    assert "Newer principle" not in again.tree and "Tree by `test-strong`" in again.status
    nxt = h.api_next_pair("alice")  # the API serves the same tree as the page
    assert nxt["tree_id"] == served and nxt["strong_model"] == "test-strong" and not nxt["verdicts_hidden"]
    h.submit("alice", again.view, "b", 4, "")
    with session_scope(db_url) as s:
        ann = s.exec(select(Annotation).where(Annotation.pair_id == pid)).one()
    assert ann.tree_id == served and ann.label == "b" and ann.meta["initial"]["label"] == "a"
    following = h.show_queue("alice")  # a pair without a draft: the chosen model's tree (none here)
    assert following.view.pair_id != pid and following.view.tree_id is None
