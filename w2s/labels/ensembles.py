"""Bootstrap ensembles of weak supervisors (Ye et al. 2024, pilot study; Sang et al. 2024).

M weak supervisors are trained on M bootstrap samples (drawn with replacement) of the ground-truth
split; each labels the pairs; the labels are combined by

    hard voting:  P(A) = share of members whose P_m(A) > 1/2 (a member at exactly 1/2 counts half)
    soft voting:  P(A) = mean_m P_m(A)

A weak supervisor is anything with `p_chosen(rows) -> array`: the probability that `chosen` beats
`rejected` for each row `{prompt, chosen, rejected}` (to score a pair A/B, pass chosen=A, rejected=B).
`train_fn(rows) -> scorer` trains one. Provided here: `LinearRewardModel`, a Bradley–Terry model that is
linear in hashed word n-gram features (sklearn, trains in seconds on CPU), and `ModelScorer`, which
wraps any backend `Model` (`score_choices`) as a zero-shot judge. The training engineer's reward models
fit through `train_fn` too.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from w2s.vocab import average_orders, label_of, producer_hash

VOTING = ("hard", "soft")


class PairScorer(Protocol):
    def p_chosen(self, rows: Sequence[dict]) -> np.ndarray:
        """P(chosen is better than rejected), one per row."""
        ...


TrainFn = Callable[[list[dict]], PairScorer]


@dataclass
class EnsembleConfig:
    n_members: int = 5
    """M, the number of bootstrap members."""
    sample_size: int | None = None
    """Rows per bootstrap sample; default: the size of the training split."""
    voting: str = "soft"
    """'hard' (majority of member labels) or 'soft' (mean member probability)."""
    seed: int = 0


# ------------------------------------------------------------------------------------- pure parts


def bootstrap_indices(
    n: int, n_members: int, sample_size: int | None = None, seed: int = 0
) -> list[np.ndarray]:
    """`n_members` samples of `sample_size` (default n) indices into range(n), drawn with replacement."""
    if n <= 0 or n_members <= 0:
        raise ValueError(f"bootstrap_indices: need n > 0 and n_members > 0, got {n}, {n_members}")
    rng = np.random.default_rng(seed)
    return [rng.integers(0, n, size=sample_size or n) for _ in range(n_members)]


def hard_vote(p: np.ndarray) -> np.ndarray:
    """p: (members, items) member probabilities -> share of members voting for the first option."""
    p = np.asarray(p, dtype=float)
    return np.mean(np.where(p > 0.5, 1.0, np.where(p < 0.5, 0.0, 0.5)), axis=0)


def soft_vote(p: np.ndarray) -> np.ndarray:
    """p: (members, items) -> the mean member probability."""
    return np.mean(np.asarray(p, dtype=float), axis=0)


def combine(p: np.ndarray, voting: str = "soft") -> np.ndarray:
    if voting not in VOTING:
        raise ValueError(f"unknown voting {voting!r}; choose hard or soft")
    return hard_vote(p) if voting == "hard" else soft_vote(p)


# ------------------------------------------------------------------------------------- the ensemble


@dataclass
class Ensemble:
    members: list
    voting: str = "soft"

    def member_p(self, rows: Sequence[dict]) -> np.ndarray:
        """(members, rows) P(chosen better) of every member."""
        return np.stack([np.asarray(m.p_chosen(rows), dtype=float) for m in self.members])

    def p_chosen(self, rows: Sequence[dict]) -> np.ndarray:
        return combine(self.member_p(rows), self.voting)


def train_ensemble(
    rows: Sequence[dict], train_fn: TrainFn, config: EnsembleConfig | None = None, progress: bool = False
) -> Ensemble:
    """Train `config.n_members` weak supervisors, each on a bootstrap sample of `rows`."""
    from tqdm.auto import tqdm

    config = config or EnsembleConfig()
    rows = list(rows)
    samples = bootstrap_indices(len(rows), config.n_members, config.sample_size, config.seed)
    members = [
        train_fn([rows[i] for i in idx]) for idx in tqdm(samples, desc="ensemble", disable=not progress)
    ]
    return Ensemble(members, config.voting)


# ------------------------------------------------------------------------------------- weak supervisors


class LinearRewardModel:
    """Bradley–Terry with a linear reward r(x) = w·φ(x): P(chosen > rejected) = σ(w·(φ(chosen) − φ(rejected))).

    φ = L2-normalised hashed word uni- and bigram counts of the response (the prompt is shared by both
    sides, so it cancels in the difference). Fit by L2-regularised logistic regression without intercept
    on both orientations of every pair, so the model has no position preference."""

    def __init__(self, C: float = 0.1, n_features: int = 2**18, seed: int = 0) -> None:
        from sklearn.feature_extraction.text import HashingVectorizer
        from sklearn.linear_model import LogisticRegression

        self.vectorizer = HashingVectorizer(n_features=n_features, ngram_range=(1, 2), alternate_sign=False)
        self.model = LogisticRegression(C=C, fit_intercept=False, max_iter=1000, random_state=seed)

    def _diff(self, rows: Sequence[dict]):
        return self.vectorizer.transform([r["chosen"] for r in rows]) - self.vectorizer.transform(
            [r["rejected"] for r in rows]
        )

    def fit(self, rows: Sequence[dict]) -> LinearRewardModel:
        import scipy.sparse as sp

        d = self._diff(rows)
        self.model.fit(sp.vstack([d, -d]), np.r_[np.ones(len(rows)), np.zeros(len(rows))])
        return self

    def p_chosen(self, rows: Sequence[dict]) -> np.ndarray:
        if not rows:
            return np.zeros(0)
        return self.model.predict_proba(self._diff(rows))[:, 1]


def train_linear(rows: list[dict], C: float = 0.1) -> LinearRewardModel:
    """A `train_fn`: a LinearRewardModel fitted on `rows`."""
    return LinearRewardModel(C=C).fit(rows)


class ModelScorer:
    """Any backend model as a zero-shot weak judge: P(chosen) from `score_choices` over 'A'/'B' with the
    shared `judge` prompt template, averaged over both presentation orders (position bias cancels)."""

    def __init__(self, model, question: str | None = None) -> None:
        from w2s.backends import get_model
        from w2s.trees.principles import DEFAULT_LIBRARY, load_library

        self.model = get_model(model) if isinstance(model, str) else model
        self.question = question or load_library(DEFAULT_LIBRARY).question

    def p_chosen(self, rows: Sequence[dict]) -> np.ndarray:
        from w2s.templates import render

        prompts = []
        for r in rows:
            for first, second in ((r["chosen"], r["rejected"]), (r["rejected"], r["chosen"])):
                prompts.append(
                    render("judge", prompt=r["prompt"], first=first, second=second, question=self.question)
                )
        probs = np.asarray(self.model.score_choices(prompts, ["A", "B"]), dtype=float).reshape(
            len(rows), 2, 2
        )
        # P(first shown is better) with chosen first, then with chosen second
        return average_orders(probs[:, 0, 0], probs[:, 1, 0])


# ------------------------------------------------------------------------------------- the store


def annotate_pairs(session, scorer: PairScorer, pairs: Sequence, *, method: str, annotator: str) -> int:
    """Label store `Pair`s with one scorer as model annotations (p_a = P(A better)); idempotent through
    dedup keys. Store every ensemble member this way (annotator 'NAME#i') and `w2s labels build
    --methods METHOD --method majority|soft` is hard / soft voting over the members."""
    from w2s.store import Annotation, add_annotation, annotation_key

    rows = [{"prompt": p.prompt, "chosen": p.response_a, "rejected": p.response_b} for p in pairs]
    p_a = scorer.p_chosen(rows) if rows else []
    # the scorer's own training is not described here: name members apart (annotator) per ensemble
    producer = producer_hash({"method": method, "annotator": annotator, "scorer": type(scorer).__name__})
    added = 0
    for pair, pa in zip(pairs, p_a):
        label, confidence = label_of(float(pa))
        row = Annotation(
            pair_id=pair.id,
            annotator=annotator,
            annotator_kind="model",
            label=label,
            confidence=confidence,
            p_a=float(pa),
            method=method,
            producer=producer,
            dedup_key=annotation_key(method, annotator, producer, "", pair.id),
        )
        added += add_annotation(session, row) is not None
    return added


def annotate_with_ensemble(
    session, ensemble: Ensemble, pairs: Sequence, *, method: str = "bootstrap", name: str = "linear-bt"
) -> int:
    """Every member's labels as annotations: annotator f'{name}#{i}', method `method`."""
    return sum(
        annotate_pairs(session, m, pairs, method=method, annotator=f"{name}#{i}")
        for i, m in enumerate(ensemble.members)
    )
