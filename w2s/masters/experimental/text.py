"""`TextMaster`: a weak reward model reading a text about the pair.

The `rm` master is the frozen-feature Bradley–Terry head on h(prompt + the tree's notes, response): each
chain node's principle, thought and verdict written under the conversation. A `cot-*` master is the same
head reading the pair with the strong model's free reasoning (that CoT baseline's, as stored with its
labels: w2s.reasoning) instead: tree against free reasoning, decided by the same kind of aligned master.
A head-only reward model on frozen features is a logistic regression on the feature differences (the
head's bias cancels in r(A) − r(B)), so scikit-learn fits it here too. Its twin is the features
master's (the head on the pair alone)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from w2s.masters.estimators import _Logistic
from w2s.masters.features import MasterInputs
from w2s.masters.linear import fit_logistic, standardise
from w2s.store import Node, Pair


class TextMaster(_Logistic):
    """X: the weak model's feature differences h(text, A) − h(text, B), one row per pair (`text_x`).

    Fitted: `scale_` (the per-dimension RMS X is divided by) and `coef_` (the head on X / scale_);
    `predict_proba` as every master's (column 1 P(A better))."""

    def _inputs(self, X: np.ndarray) -> np.ndarray:
        return np.asarray(X, dtype=float) / self.scale_

    def fit(self, X: np.ndarray, y: np.ndarray) -> TextMaster:
        X = np.asarray(X, dtype=float)
        self.scale_ = standardise(X)
        self.coef_ = fit_logistic(X / self.scale_, np.asarray(y, dtype=float), self.cfg.seed)
        return self

    @classmethod
    def fitted(cls, coef, scale, cfg=None) -> TextMaster:
        m = cls(cfg)
        m.coef_, m.scale_ = np.asarray(coef, dtype=float), np.asarray(scale, dtype=float)
        return m


def notes_prompt(pair: Pair, nodes: Sequence[Node]) -> str:
    """The conversation followed by the tree's chain nodes as a reviewer's notes (what `rm` reads)."""
    chain = [n for n in nodes if n.role != "pruned_by_search"] or list(nodes)
    notes = "\n".join(
        f"- {n.principle_name}: {n.thought} (verdict: Reply {'A' if n.p_a >= 0.5 else 'B'}, "
        f"{max(n.p_a, n.p_b):.2f})"
        for n in chain
    )
    return f"{pair.prompt}\n\nA reviewer's notes on Reply A and Reply B:\n{notes}"


def reasoning_prompt(pair: Pair, reasoning: str) -> str:
    """The conversation followed by the strong model's free reasoning (what a cot-* master reads)."""
    return f"{pair.prompt}\n\nA reviewer's reasoning about Reply A and Reply B:\n{reasoning}"


def text_x(features, inputs: MasterInputs, reads: str) -> np.ndarray:
    """A text master's X: the weak model's feature differences on the pairs with their tree's notes
    (`reads` 'notes') or their reasoning ('reasoning')."""
    if reads == "notes":
        prompts = [notes_prompt(p, ns) for p, ns in zip(inputs.pairs, inputs.nodes, strict=True)]
    elif reads == "reasoning":
        if inputs.reasoning is None:
            raise ValueError("a reasoning master needs the pairs' reasoning")
        prompts = [reasoning_prompt(p, r) for p, r in zip(inputs.pairs, inputs.reasoning, strict=True)]
    else:
        raise ValueError(f"a text master reads notes or reasoning, not {reads!r}")
    return features(inputs.pairs, prompts=prompts)
