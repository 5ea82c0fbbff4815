"""Annotator queues as plain functions over a store session (no Gradio here, so tests need no browser).

- Each annotator has a queue of `QueueItem`s; a pair goes to at most `overlap` (k) queues, least assigned
  first, never twice to the same person (a unique constraint, not just a check).
- Gold/attention pairs (pairs of `gold_split` with known gold) are mixed in at `gold_rate`.
- Routing: with `routing="uncertain"` only the `route_fraction` of pairs whose weak-model labels are least
  reliable (highest entropy of the mean P(A)) may go to humans.
- Submissions are append-only `Annotation` rows. A submit carries the token it was served with, so a retried
  submit is stored once; an undo is a superseding `retracted` row; a correction supersedes the old row.
"""

from __future__ import annotations

import math
import random
from collections import defaultdict
from dataclasses import asdict, dataclass, fields
from datetime import UTC
from typing import Any

from sqlalchemy import func, text, update
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, select

from w2s.store import (
    Annotation,
    Draft,
    Node,
    QueueItem,
    QueuePool,
    Tree,
    add_annotation,
    annotation_key,
    current_annotations,
    get_setting,
    set_setting,
    utcnow,
)
from w2s.trees.selection import TreeSelector
from w2s.vocab import LABELS, binary_entropy, p_a_of

HUMAN_METHOD = "human"
PRUNE_REASONS = ("irrelevant", "wrong reasoning", "other")


class QueueError(ValueError):
    """A request the queue cannot honour (not your pair, stale token, bad label)."""


@dataclass
class QueueConfig:
    """Project-wide queue settings, stored as the `queue` Setting and edited on the admin page."""

    overlap: int = 2
    """k: how many annotators label each (non-gold) pair."""
    gold_rate: float = 0.1
    """Share of a queue drawn from the gold/attention pairs."""
    gold_split: str = "gold"
    """Pairs of this split that have a known gold label are the gold/attention pairs."""
    quota: int = 200
    """Pairs per annotator queue; 0 means no limit."""
    routing: str = "all"
    """'all': every pair may go to humans; 'uncertain': only the least reliable weak-model labels."""
    route_fraction: float = 0.2
    """With routing='uncertain', the share of (non-gold) pairs sent to humans."""
    blind: bool = True
    """Blind mode: annotators never see other people's labels."""
    evidence_first: bool = True
    """Annotators see the principles and thoughts, commit an initial label, and only then the strong model's
    verdicts; both labels are stored (the initial one in the annotation's `meta["initial"]`)."""

    def __post_init__(self) -> None:
        if self.overlap < 1:
            raise QueueError("overlap must be at least 1")
        if not 0.0 <= self.gold_rate <= 1.0 or not 0.0 <= self.route_fraction <= 1.0:
            raise QueueError("gold_rate and route_fraction must lie in [0, 1]")
        if self.routing not in ("all", "uncertain"):
            raise QueueError("routing must be 'all' or 'uncertain'")
        if self.quota < 0:
            raise QueueError("quota must be >= 0")


def load_config(session: Session) -> QueueConfig:
    stored = get_setting(session, "queue", {}) or {}
    known = {f.name for f in fields(QueueConfig)}
    if stored and "evidence_first" not in stored:
        # queue settings saved before evidence-first existed: the project keeps the page its annotators
        # know (verdicts shown at once) until an admin turns the mode on; new projects get it by default
        stored = {**stored, "evidence_first": False}
    return QueueConfig(**{k: v for k, v in stored.items() if k in known})


def save_config(session: Session, cfg: QueueConfig) -> None:
    set_setting(session, "queue", asdict(cfg))


# ----------------------------------------------------------------------------------------- the pool


def weak_uncertainty(p_as: list[float]) -> float:
    """Entropy (nats, in [0, ln 2]) of the mean P(A) of a pair's weak labels; no weak label counts as ln 2."""
    if not p_as:
        return math.log(2)
    return binary_entropy(sum(p_as) / len(p_as))


def annotation_p_a(ann: Annotation) -> float:
    return p_a_of(ann.label, ann.confidence, ann.p_a)


def add_new_pairs(session: Session, cfg: QueueConfig) -> int:
    """Put pairs imported since the last sync into the pool; returns how many. Cheap enough to run often.

    Under routing='uncertain' a new pair has no weak label yet, so it counts as most uncertain.
    """
    result = session.exec(
        text(
            "INSERT INTO queuepool (pair_id, is_gold, eligible, n_assigned, priority) "
            "SELECT id, (split = :gs AND gold IS NOT NULL), TRUE, 0, :pr FROM pair "
            "WHERE id NOT IN (SELECT pair_id FROM queuepool)"
        ).bindparams(gs=cfg.gold_split, pr=-1.0 if cfg.routing == "uncertain" else 0.0)
    )
    return max(result.rowcount or 0, 0)


def sync_pool(session: Session, cfg: QueueConfig) -> int:
    """Add new pairs to the pool and recompute gold flags and routing. Returns the pool size.

    Run at server start and when an admin changes the settings, not per request: it reads every pair.
    """
    add_new_pairs(session, cfg)
    session.exec(
        text(
            "UPDATE queuepool SET is_gold = (SELECT (p.split = :gs AND p.gold IS NOT NULL) "
            "FROM pair p WHERE p.id = queuepool.pair_id)"
        ).bindparams(gs=cfg.gold_split)
    )
    if cfg.routing == "all":
        session.exec(text("UPDATE queuepool SET eligible = TRUE, priority = 0.0"))
    else:
        by_pair: dict[str, list[float]] = defaultdict(list)
        for ann in current_annotations(session):
            if ann.annotator_kind == "model":
                by_pair[ann.pair_id].append(annotation_p_a(ann))
        ids = session.exec(select(QueuePool.pair_id).where(QueuePool.is_gold == False)).all()
        scored = sorted(
            ((weak_uncertainty(by_pair.get(pid, [])), pid) for pid in ids), key=lambda t: (-t[0], t[1])
        )
        n_keep = round(cfg.route_fraction * len(scored))
        rows = [{"pid": pid, "el": i < n_keep, "pr": -u} for i, (u, pid) in enumerate(scored)]
        if rows:
            session.connection().execute(
                text("UPDATE queuepool SET eligible = :el, priority = :pr WHERE pair_id = :pid"), rows
            )
        session.exec(text("UPDATE queuepool SET eligible = TRUE, priority = 0.0 WHERE is_gold"))
    return session.exec(select(func.count()).select_from(QueuePool)).one()


# ---------------------------------------------------------------------------------------- assignment


def _open_items(session: Session, user: str) -> list[QueueItem]:
    return session.exec(
        select(QueueItem)
        .where(QueueItem.user == user, QueueItem.status == "open")
        .order_by(QueueItem.served_at.desc(), QueueItem.id.desc())
    ).all()


def _user_counts(session: Session, user: str) -> dict[str, int]:
    rows = session.exec(
        select(QueueItem.status, QueueItem.is_gold, func.count())
        .where(QueueItem.user == user)
        .group_by(QueueItem.status, QueueItem.is_gold)
    ).all()
    counts = {"open": 0, "done": 0, "skipped": 0, "gold": 0, "total": 0}
    for status, is_gold, n in rows:
        counts[status] = counts.get(status, 0) + n
        counts["total"] += n
        if is_gold:
            counts["gold"] += n
    return counts


def _candidates(user: str, cfg: QueueConfig, gold: bool):
    mine = select(QueueItem.pair_id).where(QueueItem.user == user)
    query = select(QueuePool.pair_id).where(
        QueuePool.is_gold == gold, QueuePool.eligible == True, QueuePool.pair_id.not_in(mine)
    )
    if not gold:  # attention checks go to everyone; other pairs to at most k queues
        query = query.where(QueuePool.n_assigned < cfg.overlap)
    return query


def _gold_turn(user: str, n_assigned: int, rate: float) -> bool:
    # Seeded per user and position: reproducible, but no fixed period an annotator could learn.
    return rate > 0 and random.Random(f"{user}:{n_assigned}").random() < rate


def _assign(session: Session, user: str, cfg: QueueConfig, counts: dict[str, int]) -> QueueItem | None:
    gold_first = _gold_turn(user, counts["total"], cfg.gold_rate)
    for gold in (gold_first, not gold_first):
        if gold and cfg.gold_rate <= 0:
            continue
        for _ in range(20):  # another annotator may take the last slot between our read and our update
            pid = session.exec(
                _candidates(user, cfg, gold)
                .order_by(QueuePool.n_assigned, QueuePool.priority, QueuePool.pair_id)
                .limit(1)
            ).first()
            if pid is None:
                break
            claim = update(QueuePool).where(QueuePool.pair_id == pid)
            if not gold:
                claim = claim.where(QueuePool.n_assigned < cfg.overlap)
            if session.exec(claim.values(n_assigned=QueuePool.n_assigned + 1)).rowcount != 1:
                continue
            now = utcnow()
            item = QueueItem(user=user, pair_id=pid, is_gold=gold, assigned_at=now, served_at=now)
            try:
                with session.begin_nested():
                    session.add(item)
            except IntegrityError:  # the same user asked twice at once; the other request got it
                session.exec(
                    update(QueuePool)
                    .where(QueuePool.pair_id == pid)
                    .values(n_assigned=QueuePool.n_assigned - 1)
                )
                return None
            return item
    return None


def next_item(session: Session, user: str, cfg: QueueConfig | None = None) -> QueueItem | None:
    """The pair this user should label now: an open item (the most recently reopened first), else a new one."""
    cfg = cfg or load_config(session)
    open_items = _open_items(session, user)
    if open_items:
        return open_items[0]
    counts = _user_counts(session, user)
    if cfg.quota and counts["done"] + counts["open"] >= cfg.quota:
        return None
    item = _assign(session, user, cfg, counts)
    if item is None:
        open_items = _open_items(session, user)
        return open_items[0] if open_items else None
    return item


def progress(session: Session, user: str, cfg: QueueConfig | None = None) -> dict[str, int]:
    """Done and remaining in the user's queue (remaining = open + what can still be assigned, up to quota)."""
    cfg = cfg or load_config(session)
    counts = _user_counts(session, user)
    room = (cfg.quota - counts["done"] - counts["open"]) if cfg.quota else 10_000
    available = 0
    if room > 0:
        sub = _candidates(user, cfg, False).limit(room).subquery()
        available = session.exec(select(func.count()).select_from(sub)).one()
        if cfg.gold_rate > 0 and available < room:
            sub = _candidates(user, cfg, True).limit(room - available).subquery()
            available += session.exec(select(func.count()).select_from(sub)).one()
    return {
        "done": counts["done"],
        "skipped": counts["skipped"],
        "remaining": counts["open"] + available,
        "total": counts["done"] + counts["open"] + available,
    }


# ------------------------------------------------------------------------------------------ tokens


def make_token(item: QueueItem) -> str:
    """What a submit must send back: the item and the state it was served in (attempt, latest row)."""
    return f"{item.id}.{item.attempt}.{item.annotation_id or 0}"


def _parse_token(token: str) -> tuple[int, int, int]:
    try:
        item_id, attempt, ann_id = (int(x) for x in str(token).split("."))
    except ValueError:
        raise QueueError(f"malformed token {token!r}") from None
    return item_id, attempt, ann_id


def item_for(session: Session, user: str, token: str) -> QueueItem:
    item_id, _, _ = _parse_token(token)
    item = session.get(QueueItem, item_id)
    if item is None or item.user != user:
        raise QueueError("that pair is not in your queue")
    return item


# --------------------------------------------------------------------------------------- submissions


def _clean_pruned(session: Session, tree_id: int | None, pruned: list[dict]) -> list[dict]:
    node_ids = set()
    if tree_id is not None:
        node_ids = set(session.exec(select(Node.id).where(Node.tree_id == tree_id)).all())
    out = []
    for p in pruned or []:
        nid, reason = int(p["node_id"]), str(p.get("reason", "other"))
        if nid not in node_ids:
            raise QueueError(f"node {nid} is not in this pair's tree")
        if reason not in PRUNE_REASONS:
            raise QueueError(f"prune reason must be one of {PRUNE_REASONS}, got {reason!r}")
        out.append({"node_id": nid, "reason": reason})
    return out


def human_keys(user: str, pair_id: str, revision: str) -> tuple[str, str]:
    """The dedup key of a human's label (`annotation_key`), and the key the app stored such rows under before
    that format (`human|user|pair|revision`): a row stored under either counts as stored, so a submit retried
    across the upgrade stores nothing new."""
    return annotation_key(HUMAN_METHOD, user, "", "", pair_id, revision), f"human|{user}|{pair_id}|{revision}"


def submit(
    session: Session,
    user: str,
    token: str,
    label: str,
    *,
    confidence: float = 1.0,
    comment: str = "",
    pruned: list[dict] | None = None,
    tree_id: int | None = None,
    consulted_node_ids: list[int] | None = None,
    seconds: float | None = None,
    meta: dict | None = None,
) -> tuple[Annotation, bool]:
    """Store a label for the item named by `token`. Returns (annotation, created).

    A token already used returns the row it stored (created=False): a retried submit is stored once.
    A token for a labelled item (from one's history) stores a correction that supersedes the old row.
    """
    if label not in LABELS:
        raise QueueError(f"label must be one of {LABELS}, got {label!r}")
    if not 0.0 <= float(confidence) <= 1.0:
        raise QueueError("confidence must lie in [0, 1]")
    item = item_for(session, user, token)
    _, attempt, ann_id = _parse_token(token)
    keys = human_keys(user, item.pair_id, f"{attempt}.{ann_id}")
    stale = QueueError("this pair changed since it was shown (undone or relabelled elsewhere); reload it")

    def stored() -> Annotation | None:
        """The row this token stored: a retry of that submit returns it, another tab's different one is stale;
        neither overwrites it."""
        existing = session.exec(select(Annotation).where(Annotation.dedup_key.in_(keys))).first()
        if existing is not None and (existing.label, existing.comment, existing.confidence) != (
            label,
            comment or "",
            float(confidence),
        ):
            raise stale
        return existing

    existing = stored()
    if existing is not None:
        return existing, False
    if (item.attempt, item.annotation_id or 0) != (attempt, ann_id):
        raise stale
    if item.status == "skipped":
        raise QueueError("this pair was skipped")
    pruned = _clean_pruned(session, tree_id, pruned or [])
    if consulted_node_ids is None and tree_id is not None:
        pruned_ids = {p["node_id"] for p in pruned}
        shown = session.exec(select(Node.id).where(Node.tree_id == tree_id)).all()
        consulted_node_ids = [nid for nid in shown if nid not in pruned_ids]
    now = utcnow()
    if seconds is None:
        served = item.served_at or item.assigned_at
        if served.tzinfo is None:  # SQLite hands datetimes back naive
            served = served.replace(tzinfo=UTC)
        seconds = max((now - served).total_seconds(), 0.0)
    ann = Annotation(
        pair_id=item.pair_id,
        annotator=user,
        annotator_kind="human",
        label=label,
        confidence=float(confidence),
        p_a=p_a_of(label, confidence),
        method=HUMAN_METHOD,
        tree_id=tree_id,
        consulted_node_ids=list(consulted_node_ids or []),
        pruned=pruned,
        comment=comment or "",
        seconds=float(seconds),
        supersedes_id=ann_id or None,
        dedup_key=keys[0],
        meta={**(meta or {}), "gold_check": bool(item.is_gold)},
        created_at=now,
    )
    if add_annotation(session, ann) is None:  # a concurrent request with this token stored it first
        return stored(), False
    item.status, item.annotation_id, item.done_at = "done", ann.id, now
    session.add(item)
    draft = session.exec(select(Draft).where(Draft.user == user, Draft.pair_id == item.pair_id)).first()
    if draft is not None:
        session.delete(draft)
    return ann, True


def skip(session: Session, user: str, token: str) -> QueueItem:
    """Give an open pair back: the slot goes to someone else, and the pair never comes back to this user."""
    item = item_for(session, user, token)
    if item.status != "open":
        return item  # already skipped (a retry) or labelled: nothing to do
    item.status, item.done_at = "skipped", utcnow()
    session.add(item)
    if not item.is_gold:
        session.exec(
            update(QueuePool)
            .where(QueuePool.pair_id == item.pair_id)
            .values(n_assigned=QueuePool.n_assigned - 1)
        )
    return item


def undo_last(session: Session, user: str) -> QueueItem | None:
    """Withdraw the user's most recent submission with a superseding `retracted` row and reopen the pair."""
    item = session.exec(
        select(QueueItem)
        .where(QueueItem.user == user, QueueItem.status == "done")
        .order_by(QueueItem.done_at.desc(), QueueItem.id.desc())
    ).first()
    if item is None:
        return None
    last = session.get(Annotation, item.annotation_id)
    now = utcnow()
    retraction = Annotation(
        pair_id=item.pair_id,
        annotator=user,
        annotator_kind="human",
        label=last.label,
        confidence=last.confidence,
        method=HUMAN_METHOD,
        tree_id=last.tree_id,
        consulted_node_ids=list(last.consulted_node_ids or []),
        pruned=list(last.pruned or []),  # what was withdrawn, so the reopened page shows it again
        supersedes_id=last.id,
        retracted=True,
        dedup_key=human_keys(user, item.pair_id, f"undo.{last.id}")[0],
        comment="undo",
        created_at=now,
    )
    if add_annotation(session, retraction) is None:  # a concurrent undo of the same label came first
        return item
    item.status, item.attempt, item.annotation_id = "open", item.attempt + 1, retraction.id
    item.done_at, item.served_at = None, now
    session.add(item)
    return item


def history(session: Session, user: str) -> list[QueueItem]:
    """The user's labelled items in the order they were first given to the user."""
    return session.exec(
        select(QueueItem).where(QueueItem.user == user, QueueItem.status == "done").order_by(QueueItem.id)
    ).all()


# -------------------------------------------------------------------------------------------- drafts


def save_draft(session: Session, user: str, pair_id: str, state: dict[str, Any]) -> None:
    draft = session.exec(select(Draft).where(Draft.user == user, Draft.pair_id == pair_id)).first()
    if draft is None:
        draft = Draft(user=user, pair_id=pair_id)
    draft.state, draft.updated_at = dict(state), utcnow()
    session.add(draft)


def load_draft(session: Session, user: str, pair_id: str) -> dict[str, Any] | None:
    draft = session.exec(select(Draft).where(Draft.user == user, Draft.pair_id == pair_id)).first()
    return None if draft is None else dict(draft.state)


# ------------------------------------------------------------------------------------------ reading


@dataclass(frozen=True)
class TreeSource:
    """Which of a pair's trees the app serves: the newest built by `strong_model` (under `config_hash` when
    given); with neither set, the newest of any strong model (`w2s.trees.selection.TreeSelector`'s rule for one
    pair). A project setting (the `trees` Setting, set
    by `w2s serve --strong SPEC [--tree-config HASH]`), so that every server of a project serves the same
    trees."""

    strong_model: str = ""
    config_hash: str = ""

    def describe(self) -> str:
        model = self.strong_model or "any strong model"
        return f"{model}, config {self.config_hash}" if self.config_hash else model


def load_tree_source(session: Session) -> TreeSource:
    stored = get_setting(session, "trees", {}) or {}
    return TreeSource(str(stored.get("strong_model") or ""), str(stored.get("config_hash") or ""))


def save_tree_source(session: Session, source: TreeSource) -> None:
    set_setting(session, "trees", asdict(source))


def tree_to_serve(
    session: Session, pair_id: str, source: TreeSource | None = None
) -> tuple[Tree | None, list[Node]]:
    """The tree a pair is served with now, the newest one the project's `TreeSource` allows, and its nodes
    ordered by info (most informative first). The one place the app picks a tree for a pair."""
    source = source or load_tree_source(session)
    tree, nodes = TreeSelector(source.strong_model or None, source.config_hash or None).tree(session, pair_id)
    return tree, _by_info(nodes)


def item_tree(
    session: Session, item: QueueItem, source: TreeSource | None = None
) -> tuple[Tree | None, list[Node]]:
    """The tree an item's page (and the API) shows; the one place that decides it. A saved draft shows the
    tree it was made on: its prunes, and an evidence-first initial label, name that tree. A labelled item
    (in one's history) shows the tree its label recorded, not one built or chosen since: that is what the
    annotator judged, and what its prunes name. So does an item reopened by undo, whose withdrawn prunes
    come back. Any other item gets `tree_to_serve`."""
    draft_tree = (load_draft(session, item.user, item.pair_id) or {}).get("tree_id")
    if draft_tree is not None:
        tree, nodes = served_tree(session, draft_tree)
        if tree is not None and tree.pair_id == item.pair_id:
            return tree, nodes
    ann = session.get(Annotation, item.annotation_id) if item.annotation_id else None
    if ann is not None and (ann.tree_id is not None or not ann.retracted):
        return served_tree(session, ann.tree_id)
    return tree_to_serve(session, item.pair_id, source)


def served_tree(session: Session, tree_id: int | None) -> tuple[Tree | None, list[Node]]:
    """The tree a page was served (by id, whatever has been built since) and its nodes ordered by info."""
    tree = session.get(Tree, tree_id) if tree_id is not None else None
    if tree is None:
        return None, []
    return tree, _by_info(session.exec(select(Node).where(Node.tree_id == tree.id)).all())


def _by_info(nodes) -> list[Node]:
    return sorted(nodes, key=lambda n: (-n.info, n.position))


def others_labels(session: Session, user: str, pair_id: str) -> list[tuple[str, str]]:
    """Other humans' current labels on a pair (shown only when blind mode is off, or to admins)."""
    rows = session.exec(
        select(Annotation).where(Annotation.pair_id == pair_id, Annotation.annotator_kind == "human")
    ).all()
    superseded = {a.supersedes_id for a in rows if a.supersedes_id}
    return sorted(
        (a.annotator, a.label)
        for a in rows
        if a.annotator != user and a.id not in superseded and not a.retracted
    )
