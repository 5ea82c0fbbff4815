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


def p_a_of_label(label: str) -> float:
    try:
        return LABEL_P_A[label]
    except KeyError:
        raise ValueError(f"label {label!r} is not one of {', '.join(LABELS)}") from None


def entropy(probs: Iterable[float] | Mapping[Any, float]) -> float:
    """Shannon entropy in nats (0 ln 0 = 0), of a sequence of probabilities or a distribution dict."""
    values = probs.values() if isinstance(probs, Mapping) else probs
    return -sum(p * math.log(p) for p in values if p > 0.0)


def binary_entropy(p_a: float) -> float:
    """Entropy of (P(A), 1 - P(A)) in nats: 0 when decided, ln 2 at 1/2."""
    return entropy((p_a, 1.0 - p_a))


# ------------------------------------------------------------------------------------- presentation order


def present(pair, swap: bool = False) -> tuple[str, str]:
    """A pair's responses (any object with `response_a`, `response_b`) in the order shown, (first,
    second): B first when `swap`."""
    return (pair.response_b, pair.response_a) if swap else (pair.response_a, pair.response_b)


def p_a_from_first(p_first: float, swap: bool) -> float:
    """Map P(first-shown response is better) back to P(A is better)."""
    return 1.0 - p_first if swap else p_first


def average_orders(p_first_ab: float, p_first_ba: float) -> float:
    """P(A better) from P(first better) asked with A shown first and with B shown first: position bias cancels."""
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
