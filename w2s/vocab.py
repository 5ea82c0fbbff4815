"""The words every part of w2s shares, in one place: labels, P(A) <-> label, entropy (nats),
presentation order and the averaging over both orders, the aggregation worker, the producer hash.

Pure functions of plain values: no store, no models. Everything else imports these instead of
restating them.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np

LABELS = ("a", "b", "tie")
LABEL_P_A = {"a": 1.0, "b": 0.0, "tie": 0.5}
"""A hard label as P(A is better): a tie counts as half A, half B."""
TIE_EPS = 1e-9
"""P(A) this close to 1/2 is a tie."""


def label_of(p_a: float) -> tuple[str, float]:
    """(label, confidence) of P(A): the argmax over A/B ('tie' at 1/2), confidence = the max probability."""
    if abs(p_a - 0.5) <= TIE_EPS:
        return "tie", 0.5
    return ("a", p_a) if p_a > 0.5 else ("b", 1.0 - p_a)


def label_from_p_a(p_a: float) -> str:
    return label_of(p_a)[0]


def p_a_of(label: str, confidence: float = 1.0, p_a: float | None = None) -> float:
    """P(A) of an answer: its own `p_a` when it recorded one, else its label held with `confidence`
    (a: confidence, b: 1 - confidence, tie: 1/2). With the default confidence 1, LABEL_P_A."""
    if p_a is not None:
        return float(p_a)
    if label not in LABEL_P_A:
        raise ValueError(f"label {label!r} is not one of {', '.join(LABELS)}")
    return 0.5 if label == "tie" else float(confidence) if label == "a" else 1.0 - float(confidence)


def entropy(probs: Iterable[float] | Mapping[Any, float]) -> float:
    """Shannon entropy in nats (0 ln 0 = 0), of a sequence of probabilities or a distribution dict."""
    values = probs.values() if isinstance(probs, Mapping) else probs
    return -sum(p * math.log(p) for p in values if p > 0.0)


def binary_entropy(p_a):
    """Entropy of (P(A), 1 - P(A)) in nats: 0 when decided, ln 2 at 1/2. A float for a float, an
    array for an array."""
    p = np.clip(np.asarray(p_a, dtype=float), 0.0, 1.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        h = -(np.where(p > 0, p * np.log(p), 0.0) + np.where(p < 1, (1 - p) * np.log(1 - p), 0.0))
    return float(h) if h.ndim == 0 else h


# ------------------------------------------------------------------------------------- presentation order


def present(pair, swap: bool = False) -> tuple[str, str]:
    """A pair's responses (any object with `response_a`, `response_b`) in the order shown, (first,
    second): B first when `swap`."""
    return (pair.response_b, pair.response_a) if swap else (pair.response_a, pair.response_b)


def p_a_from_first(p_first: float, swap: bool) -> float:
    """Map P(first-shown response is better) back to P(A is better)."""
    return 1.0 - p_first if swap else p_first


def average_orders(p_first_ab, p_first_ba):
    """P(A better) from P(first better) asked with A shown first and with B shown first: position bias
    cancels. Floats or numpy arrays."""
    return 0.5 * (p_a_from_first(p_first_ab, False) + p_a_from_first(p_first_ba, True))


# ------------------------------------------------------------------------------------- identity


def worker_key(method: str, annotator: str, variant: str = "", producer: str = "") -> str:
    """One aggregation worker: 'seam:transformers:smollm2#3f2a…@swap', 'human:alice'. Two runs of a
    method with different producer configs are two workers."""
    return f"{method}:{annotator}" + (f"#{producer}" if producer else "") + (f"@{variant}" if variant else "")


def producer_hash(producer: Mapping[str, Any]) -> str:
    """16 hex digits over a JSON-able description of what produced a label (see Annotator.producer)."""
    blob = json.dumps(producer, sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]
