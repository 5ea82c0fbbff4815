"""Inter-annotator agreement: Cohen's kappa (two annotators) and Krippendorff's alpha (any number,
missing labels allowed), on nominal labels such as 'a' / 'b' / 'tie'.

`units` maps pair_id -> {annotator -> label}. Agreement is undefined when there is no variation to
agree on (every label the same, or nothing shared); the functions then return NaN rather than guess.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Mapping, Sequence
from itertools import combinations

import numpy as np

Units = Mapping[str, Mapping[str, str]]


def cohen_kappa(x: Sequence[str], y: Sequence[str]) -> float:
    """Cohen's kappa = (p_o - p_e) / (1 - p_e) for two annotators labelling the same items in order.

    p_o is the share of items where they agree; p_e = sum_k P(x=k) P(y=k), the agreement expected by
    chance from each annotator's own label frequencies. NaN when empty or when p_e = 1.
    """
    if len(x) != len(y):
        raise ValueError(f"cohen_kappa: the label sequences differ in length ({len(x)} vs {len(y)})")
    n = len(x)
    if n == 0:
        return math.nan
    p_o = sum(a == b for a, b in zip(x, y)) / n
    cx, cy = Counter(x), Counter(y)
    p_e = sum(cx[k] * cy[k] for k in cx) / (n * n)
    if p_e == 1.0:
        return math.nan
    return (p_o - p_e) / (1.0 - p_e)


def pairwise_kappa(units: Units) -> dict[tuple[str, str], float]:
    """Cohen's kappa for every two annotators (names sorted, key (a, b) with a < b) over the units both
    labelled. Annotator pairs with no unit in common are left out."""
    by_annotator: dict[str, dict[str, str]] = {}
    for unit, labels in units.items():
        for annotator, label in labels.items():
            by_annotator.setdefault(annotator, {})[unit] = label
    out: dict[tuple[str, str], float] = {}
    for a, b in combinations(sorted(by_annotator), 2):
        shared = sorted(by_annotator[a].keys() & by_annotator[b].keys())
        if shared:
            out[(a, b)] = cohen_kappa(
                [by_annotator[a][u] for u in shared], [by_annotator[b][u] for u in shared]
            )
    return out


def krippendorff_alpha(units: Units) -> float:
    """Krippendorff's alpha, nominal level, computed by the `krippendorff` package from per-unit label
    counts (units with a single label are not pairable and drop out, as the definition says).

    NaN when fewer than two distinct labels occur or no unit has two labels."""
    import krippendorff

    domain = sorted({label for labels in units.values() for label in labels.values()})
    if len(domain) < 2:
        return math.nan
    counts = np.array(
        [[Counter(labels.values())[v] for v in domain] for labels in units.values()], dtype=float
    )
    if not (counts.sum(axis=1) >= 2).any():
        return math.nan
    with np.errstate(invalid="ignore", divide="ignore"):  # pairable units without variation: 0/0
        alpha = krippendorff.alpha(value_counts=counts, value_domain=domain, level_of_measurement="nominal")
    return float(alpha)
