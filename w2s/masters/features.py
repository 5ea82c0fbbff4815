"""What a master reads, as arrays: pure functions from pairs, trees and nodes (`MasterInputs`, detached
from the store; w2s.masters.data loads them) to the rows of X.

A features master's row of a pair is [m, node_features(tree)]: the weak margin m, then 4·K numbers, for
each of the library's K principles (in library order) v, v·exit, v·both_orders, v·relevance of the
tree's node on that principle (FEATURES order):

    v           p_a − ½ of the node (0 when the tree has none on the principle)
    exit        1 when that node is the tree's exit node
    both_orders 1 when its verdict points the same way in both presentation orders
    relevance   its relevance

Every feature is odd under swapping A and B, so a master without intercept is too
(P(A | A,B) = 1 − P(A | B,A)).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from w2s.masters.config import FEATURES, PRINCIPLE_WEIGHTS
from w2s.store import Node, Pair, Tree
from w2s.trees.principles import Library


@dataclass
class MasterInputs:
    """The training (or labelling) pairs and what a master reads of them, detached from the store.

    A tree kind reads `trees` and `nodes` (one tree and its nodes per pair) and `library` (which fixes the
    feature order); a reasoning kind reads `reasoning` (one text per pair) and none of those."""

    pairs: Sequence[Pair]
    trees: Sequence[Tree] = field(default_factory=list)
    nodes: Sequence[Sequence[Node]] = field(default_factory=list)
    library: Library | None = None
    reasoning: Sequence[str] | None = None

    def __post_init__(self):
        if self.reasoning is not None and len(self.reasoning) != len(self.pairs):
            raise ValueError(f"{len(self.reasoning)} reasoning texts for {len(self.pairs)} pairs")
        if self.trees and not (len(self.trees) == len(self.nodes) == len(self.pairs)):
            raise ValueError(
                f"{len(self.trees)} trees and {len(self.nodes)} node lists for {len(self.pairs)} pairs"
            )

    def __len__(self) -> int:
        return len(self.pairs)

    def subset(self, idx: Sequence[int]) -> MasterInputs:
        """The inputs of the pairs at `idx` (in that order)."""

        def pick(xs):
            return None if xs is None else [xs[i] for i in idx] if len(xs) else xs

        return MasterInputs(
            pick(self.pairs), pick(self.trees), pick(self.nodes), self.library, pick(self.reasoning)
        )


def node_features(tree: Tree, nodes: Sequence[Node], library: Library) -> np.ndarray:
    """The tree's 4·K features (K principles of the library, FEATURES order per principle)."""
    index = {p.id: k for k, p in enumerate(library.principles)}
    x = np.zeros((len(library.principles), len(FEATURES)))
    orders = tree.config.get("orders") or []
    for node in nodes:
        k = index.get(node.principle_id)
        if k is None:
            continue
        v = node.p_a - 0.5
        first, second = orders[node.position] if node.position < len(orders) else (node.p_a, node.p_a)
        both = (first - 0.5) * (second - 0.5) > 0
        x[k] = (v, v * (node.role == "exit"), v * both, v * node.relevance)
    return x.reshape(-1)


def tree_features(inputs: MasterInputs) -> np.ndarray:
    """`node_features` of every pair's tree: (n, 4·K)."""
    if inputs.library is None:
        raise ValueError("tree features need the trees' principle library")
    return np.stack(
        [node_features(t, ns, inputs.library) for t, ns in zip(inputs.trees, inputs.nodes, strict=True)]
    )


def features_x(margin: np.ndarray, tree_x: np.ndarray) -> np.ndarray:
    """A features master's X: the weak margin, then the tree features (column 0, then 1 … 4·K)."""
    return np.column_stack([np.asarray(margin, dtype=float), tree_x])


def design(x: np.ndarray, principle_weights: str, k: int) -> np.ndarray:
    """The logistic model's inputs from rows of `node_features` (K principles × FEATURES each)."""
    if principle_weights not in PRINCIPLE_WEIGHTS:
        raise ValueError(f"unknown principle_weights {principle_weights!r}: {', '.join(PRINCIPLE_WEIGHTS)}")
    if principle_weights == "per-principle":
        return x
    if principle_weights == "none":
        return np.zeros((len(x), 0))
    pooled = x.reshape(len(x), k, len(FEATURES)).sum(1)
    return pooled if principle_weights == "shared" else np.column_stack([pooled, x])


def principle_weight_rows(weights: np.ndarray, principle_weights: str, k: int) -> np.ndarray:
    """Each principle's effective FEATURES weights (K × 4) from the fitted `design` weights."""
    f = len(FEATURES)
    if principle_weights == "none":
        return np.zeros((k, f))
    if principle_weights == "shared":
        return np.tile(weights, (k, 1))
    if principle_weights == "shrunk":
        return weights[:f] + weights[f:].reshape(k, f)
    return weights.reshape(k, f)


def trust_table(
    weights: np.ndarray, library: Library, principle_weights: str = "per-principle"
) -> list[dict]:
    """Per principle: its four (effective) weights and `trust`, their sum — the weight of a relevant exit
    verdict that survived both orders (positive: believed, negative: inverted, ≈ 0: ignored)."""
    w = principle_weight_rows(np.asarray(weights), principle_weights, len(library.principles))
    return [
        {"principle": p.id, "name": p.name, **dict(zip(FEATURES, map(float, row))), "trust": float(row.sum())}
        for p, row in zip(library.principles, w)
    ]


def gold_labels(pairs: Sequence[Pair], folds: int) -> np.ndarray:
    """y: 1 where gold is A, 0 where B; an error unless both occur and there are pairs for every fold."""
    y = np.array([1.0 if p.gold == "a" else 0.0 for p in pairs])
    if len(set(y)) < 2 or len(pairs) < 2 * folds:
        raise ValueError(
            f"a master needs at least {2 * folds} gold pairs with both A and B better; got {len(pairs)}"
        )
    return y
