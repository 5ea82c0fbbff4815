"""Which tree a pair is read with: the one rule the app, the annotators, the masters and the CLI share.

A pair may have trees by several strong models and configs (at most one per model and config: the store's
unique constraint). `TreeSelector(strong_model, config_hash).settle(session, pair_ids)` answers for a set
of pairs at once:

1. keep the trees by `strong_model` and of `config_hash`, each where given;
2. of those, choose one (strong model, config): the one with trees on the most of these pairs, a tie going
   to the one with the newest tree (the highest tree id);
3. each pair gets its newest tree of that choice (pairs without one are left out).

Why: one (model, config) for the whole set, so that a run of labels or a master reads trees made one way
(and its producer can name the config); the most trees, so that as few pairs as possible go without.
For a single pair, step 2 is a tie between all its trees, so the answer is its newest one (allowed by the
filters): what the app serves.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sqlmodel import Session, select

from w2s.store import Node, Tree, chunks, select_in


@dataclass(frozen=True)
class TreeSelector:
    """The rule of this module, with its filters: '' or None means any strong model / any config."""

    strong_model: str | None = None
    config_hash: str | None = None

    def _query(self, pair_ids: Sequence[str]):
        query = select(Tree).where(Tree.pair_id.in_(pair_ids))
        if self.strong_model:
            query = query.where(Tree.strong_model == self.strong_model)
        if self.config_hash:
            query = query.where(Tree.config_hash == self.config_hash)
        return query

    def candidates(self, session: Session, pair_ids: Sequence[str]) -> list[Tree]:
        """Every tree of these pairs that the filters allow, oldest first."""
        ids = list(dict.fromkeys(pair_ids))
        trees = [t for chunk in chunks(ids) for t in session.exec(self._query(chunk))]
        return sorted(trees, key=lambda t: t.id)

    @staticmethod
    def choose(trees: Sequence[Tree]) -> tuple[str, str] | None:
        """Step 2 on these trees: the (strong model, config hash) on the most pairs, ties to the newest."""
        pairs: dict[tuple[str, str], set[str]] = {}
        newest: dict[tuple[str, str], int] = {}
        for t in trees:
            key = (t.strong_model, t.config_hash)
            pairs.setdefault(key, set()).add(t.pair_id)
            newest[key] = max(newest.get(key, -1), t.id)
        if not pairs:
            return None
        return max(pairs, key=lambda k: (len(pairs[k]), newest[k]))

    def choice(self, session: Session, pair_ids: Sequence[str]) -> tuple[str, str] | None:
        """The (strong model, config hash) these pairs are read with; None when no tree is allowed."""
        return self.choose(self.candidates(session, pair_ids))

    def settle(self, session: Session, pair_ids: Sequence[str]) -> dict[str, Tree]:
        """pair id -> its tree under the rule (pairs without one are absent)."""
        trees = self.candidates(session, pair_ids)
        chosen = self.choose(trees)
        out: dict[str, Tree] = {}
        for t in trees:  # oldest first: the newest of the choice wins
            if (t.strong_model, t.config_hash) == chosen:
                out[t.pair_id] = t
        return out

    def settle_with_nodes(
        self, session: Session, pair_ids: Sequence[str]
    ) -> dict[str, tuple[Tree, list[Node]]]:
        """As `settle`, each tree with its nodes in position order."""
        trees = self.settle(session, pair_ids)
        nodes = nodes_of(session, list(trees.values()))
        return {pid: (t, ns) for (pid, t), ns in zip(trees.items(), nodes)}

    def tree(self, session: Session, pair_id: str) -> tuple[Tree | None, list[Node]]:
        """One pair's tree and its nodes ((None, []) when it has none allowed)."""
        return self.settle_with_nodes(session, [pair_id]).get(pair_id, (None, []))


def nodes_of(session: Session, trees: Sequence[Tree]) -> list[list[Node]]:
    """The nodes of each tree, in position order."""
    by_tree: dict[int, list[Node]] = {t.id: [] for t in trees}
    for n in select_in(session, select(Node).order_by(Node.position), Node.tree_id, list(by_tree)):
        by_tree[n.tree_id].append(n)
    return [by_tree[t.id] for t in trees]
