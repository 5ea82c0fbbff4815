"""The labelling service: what an annotator may see of a pair and what they may do with it, written once for
the annotator page (`w2s_app.handlers`, laid out by `w2s_app.ui`) and the HTTP API, which are thin views over
these functions.

Each function works in the caller's store session and takes the signed-in user's name (the handlers check
who signs in). A refusal meant for the user (a bad label, a stale token) is raised as `Refused`.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlmodel import Session

from w2s.store import Annotation, Node, Pair, QueueItem, Tree
from w2s.vocab import LABELS
from w2s_app import queue as Q
from w2s_app import security

CONF_MIN, CONF_MAX = 1, 5
SERVER_DRAFT_KEYS = ("initial", "revealed", "tree_id")
"""What evidence first commits in a draft; only `reveal` and the page (whose state lives on the server) write
them, so that the over-reliance report reads what annotators committed."""


class Refused(Exception):
    """A message for the user; not a server fault."""


def rating_to_confidence(rating: float) -> float:
    """1..5 on the page -> probability-like confidence 0.5..1.0 in the store (a weak model's scale)."""
    rating = min(max(float(rating), CONF_MIN), CONF_MAX)
    return 0.5 + 0.5 * (rating - CONF_MIN) / (CONF_MAX - CONF_MIN)


def confidence_to_rating(conf: float) -> int:
    return round(CONF_MIN + (min(max(conf, 0.5), 1.0) - 0.5) / 0.5 * (CONF_MAX - CONF_MIN))


def checked(label: str | None, rating, comment, what: str = "label") -> tuple[str, int | float, str]:
    """A submitted label, its rating (1..5; an integer when whole, as the page's slider gives it) and
    comment, or `Refused` saying what is wrong (`what`: the label's name for the caller)."""
    if label not in LABELS:
        raise Refused(f"{what} must be 'a', 'b' or 'tie', got {label!r}")
    try:
        value = security.check_rating(rating, CONF_MIN, CONF_MAX)
        comment = security.check_comment(comment)
    except security.InputError as e:
        raise Refused(str(e)) from None
    return label, int(value) if value.is_integer() else value, comment


def verdicts_shown(cfg: Q.QueueConfig, nodes: list[Node], work: dict) -> bool:
    """Evidence first: no verdict of the strong model (P(A), or what is read off it) reaches the annotator
    before their own label of the pair is committed (`reveal`, kept in the draft so that a reload cannot
    undo the order) or was given once (a label in their history, or withdrawn by undo)."""
    return not (cfg.evidence_first and nodes) or bool(work.get("revealed") or work.get("initial"))


def initial_of(s: Session, ann: Annotation) -> dict | None:
    """The initial (pre-verdict) label an annotation carried; for an undo's row, the withdrawn label's."""
    if ann.retracted and ann.supersedes_id:
        ann = s.get(Annotation, ann.supersedes_id) or ann
    return (ann.meta or {}).get("initial")


def work_on(s: Session, user: str, item: QueueItem) -> tuple[dict, str]:
    """The annotator's work on an item's pair and where it comes from: their draft ('draft'), else the label
    the item holds ('your label', or 'withdrawn label' after an undo), else nothing yet ({}, '')."""
    draft = Q.load_draft(s, user, item.pair_id)
    if draft is not None:
        return draft, "draft"
    if not item.annotation_id:
        return {}, ""
    ann = s.get(Annotation, item.annotation_id)
    work = {
        "label": ann.label,
        "rating": (ann.meta or {}).get("rating", confidence_to_rating(ann.confidence)),
        "comment": "" if ann.retracted else ann.comment,
        "pruned": {str(p["node_id"]): p["reason"] for p in ann.pruned or []},
        "initial": initial_of(s, ann),
        "revealed": True,  # labelled once: the verdicts were seen
    }
    return work, "withdrawn label" if ann.retracted else "your label"


@dataclass
class ItemView:
    """What the annotator may see of one queue item now."""

    item: QueueItem
    pair: Pair
    tree: Tree | None
    """The tree shown (`queue.item_tree`)."""
    nodes: list[Node]
    """Its nodes, most informative first."""
    work: dict
    """The annotator's work on the pair (`work_on`): label, rating, comment, pruned, initial, revealed."""
    source: str
    verdicts: bool
    """False while evidence first holds the strong model's verdicts back (`verdicts_shown`)."""


def view_item(s: Session, user: str, item: QueueItem, cfg: Q.QueueConfig) -> ItemView:
    work, source = work_on(s, user, item)
    tree, nodes = Q.item_tree(s, item)
    return ItemView(
        item, s.get(Pair, item.pair_id), tree, nodes, work, source, verdicts_shown(cfg, nodes, work)
    )


def next_view(s: Session, user: str, cfg: Q.QueueConfig) -> ItemView | None:
    """The pair the user should label now (None: the queue is empty)."""
    item = Q.next_item(s, user, cfg)
    return None if item is None else view_item(s, user, item, cfg)


def item_for(s: Session, user: str, token: str) -> QueueItem:
    try:
        return Q.item_for(s, user, token)
    except Q.QueueError as e:
        raise Refused(str(e)) from None


def served_tree(s: Session, item: QueueItem, tree_id: int | None) -> Tree | None:
    """The tree the annotator was served, by id (whatever has been built since), checked to be the pair's."""
    if tree_id is None:
        return None
    tree = s.get(Tree, tree_id)
    if tree is None or tree.pair_id != item.pair_id:
        raise Refused(f"tree {tree_id} is not a tree of pair {item.pair_id}")
    return tree


def keep_committed(s: Session, user: str, pair_id: str, state: dict) -> dict:
    """`state` with what evidence first committed for this pair (the initial label, its reveal, the tree it
    was made on) as stored: a later draft (another tab, the API) never drops or rewrites it."""
    stored = Q.load_draft(s, user, pair_id) or {}
    if not stored.get("initial"):
        return state
    return {**state, **{k: stored[k] for k in SERVER_DRAFT_KEYS if k in stored}}


def save_draft(s: Session, user: str, pair_id: str, state: dict) -> None:
    """Keep the annotator's unsaved work on a pair; what evidence first committed stays as it was."""
    Q.save_draft(s, user, pair_id, keep_committed(s, user, pair_id, state))


def reveal(
    s: Session,
    user: str,
    token: str,
    label: str,
    rating,
    *,
    tree_id: int | None,
    comment: str | None = None,
    pruned: dict | None = None,
    seconds: float | None = None,
    what: str = "label",
) -> tuple[QueueItem, dict]:
    """Evidence first: commit the label chosen before any verdict was shown (with its rating and the time
    taken) on the tree served, in the draft, so that it survives a reload; a comment or prunes given are
    kept in the draft too. The first commitment stays: a second reveal (another tab, a retried call) keeps
    it. Returns the item and its draft."""
    label, rating, checked_comment = checked(label, rating, comment, what)
    item = item_for(s, user, token)
    tree = served_tree(s, item, tree_id)
    work = {"label": label, "rating": rating}
    if comment is not None:
        work["comment"] = checked_comment
    if pruned is not None:
        work["pruned"] = pruned
    initial = {"label": label, "rating": rating, "seconds": seconds}
    draft = {
        **(Q.load_draft(s, user, item.pair_id) or {}),
        **work,
        "initial": initial,
        "revealed": True,
        "tree_id": tree.id if tree else None,
    }
    draft = keep_committed(s, user, item.pair_id, draft)
    Q.save_draft(s, user, item.pair_id, draft)
    return item, draft


def submit(
    s: Session,
    user: str,
    token: str,
    label: str | None,
    rating,
    *,
    tree_id: int | None,
    comment: str = "",
    pruned: list[dict] | None = None,
    seconds: float | None = None,
) -> tuple[Annotation, bool]:
    """Store a label (rating 1..5) with its prunes against the tree served, and the initial label evidence
    first committed for it. Returns (annotation, created): resending a token stores nothing new and never
    overwrites what it stored (`queue.submit`)."""
    label, rating, comment = checked(label, rating, comment)
    item = item_for(s, user, token)
    tree = served_tree(s, item, tree_id)
    meta = {"rating": rating}
    work, _ = work_on(s, user, item)
    if work.get("initial"):  # committed before the verdicts were shown
        meta["initial"] = work["initial"]
    try:
        return Q.submit(
            s,
            user,
            token,
            label,
            confidence=rating_to_confidence(rating),
            comment=comment,
            pruned=pruned or [],
            tree_id=tree.id if tree else None,
            seconds=seconds,
            meta=meta,
        )
    except Q.QueueError as e:
        raise Refused(str(e)) from None


def skip(s: Session, user: str, token: str) -> QueueItem:
    """Give an open pair back; it never comes back to this user."""
    try:
        return Q.skip(s, user, token)
    except Q.QueueError as e:
        raise Refused(str(e)) from None


def undo(s: Session, user: str) -> QueueItem | None:
    """Withdraw the user's last label and reopen its pair (None: nothing to undo)."""
    return Q.undo_last(s, user)
