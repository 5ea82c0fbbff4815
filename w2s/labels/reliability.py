"""Reliability of weak labels (Guo & Yang 2024, "Improving Weak-to-Strong Generalization with
Reliability-Aware Alignment"), as pure functions.

The same question is asked several times (prompt variations, or several annotators). For one pair:

    p_k      = share of the answers that are k                        (empirical answer distribution)
    H        = -sum_k p_k ln p_k                                       (entropy, in nats: natural log)
    w_k      = exp(p_k / T) / sum_j exp(p_j / T)                       (reliability weight of answer k)

The softmax runs over the answers that were actually given (a label nobody chose has no weight).
Uncertainty filtering keeps the pairs whose entropy is at most the P-th percentile of all entropies.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Mapping

import numpy as np

DEFAULT_TEMPERATURE = 0.2
DEFAULT_PERCENTILE = 50.0


def answer_distribution(answers: Iterable[str]) -> dict[str, float]:
    """Empirical distribution of the answers, {answer: frequency}, in order of first appearance."""
    counts = Counter(answers)
    n = sum(counts.values())
    if n == 0:
        raise ValueError("answer_distribution: no answers")
    return {k: c / n for k, c in counts.items()}


def majority_weight(p, temperature: float = DEFAULT_TEMPERATURE):
    """The reliability weight of the majority answer when the answers are {A, B} with frequencies
    (p, 1 - p): what a single soft label gets. A float for a float, an array for an array."""
    p = np.asarray(p, dtype=float)
    w = np.vectorize(lambda x: max(reliability_weights({"a": x, "b": 1.0 - x}, temperature).values()))(p)
    return float(w) if w.ndim == 0 else w


def reliability_weights(
    dist: Mapping[str, float], temperature: float = DEFAULT_TEMPERATURE
) -> dict[str, float]:
    """w_k = softmax_k(p_k / T) over the answers in `dist`. Small T sharpens towards the majority."""
    if temperature <= 0:
        raise ValueError(f"reliability_weights: temperature must be > 0, got {temperature}")
    if not dist:
        return {}
    logits = {k: p / temperature for k, p in dist.items()}
    top = max(logits.values())  # subtract the max: exp never overflows
    exps = {k: math.exp(v - top) for k, v in logits.items()}
    total = sum(exps.values())
    return {k: e / total for k, e in exps.items()}


def entropy_threshold(entropies: Iterable[float], percentile: float = DEFAULT_PERCENTILE) -> float:
    """The P-th percentile of the entropies (numpy's default linear interpolation)."""
    values = np.asarray(list(entropies), dtype=float)
    if values.size == 0:
        raise ValueError("entropy_threshold: no entropies")
    if not 0 <= percentile <= 100:
        raise ValueError(f"percentile must be within [0, 100], got {percentile}")
    return float(np.percentile(values, percentile))


def filter_by_entropy(entropies: Mapping[str, float], percentile: float = DEFAULT_PERCENTILE) -> set[str]:
    """Uncertainty filtering: the keys whose entropy is <= the P-th percentile (ties at the threshold kept)."""
    if not entropies:
        return set()
    threshold = entropy_threshold(entropies.values(), percentile)
    return {key for key, h in entropies.items() if h <= threshold + 1e-12}
