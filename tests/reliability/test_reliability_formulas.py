import math

import pytest

from w2s.labels.reliability import (
    answer_distribution,
    entropy_threshold,
    filter_by_entropy,
    reliability_weights,
)
from w2s.vocab import entropy


def test_five_answers_a_a_b_a_b():
    dist = answer_distribution(["A", "A", "B", "A", "B"])
    assert dist == {"A": 3 / 5, "B": 2 / 5}
    # H = -(0.6 ln 0.6 + 0.4 ln 0.4) = 0.6 * 0.5108256 + 0.4 * 0.9162907 = 0.3064954 + 0.3665163 = 0.6730117
    assert entropy(dist) == pytest.approx(0.6730117, abs=1e-7)
    # T = 0.2: logits p/T = 3 and 2; w_A = e^3 / (e^3 + e^2) = 1 / (1 + e^-1) = 0.7310586, w_B = 0.2689414
    w = reliability_weights(dist)
    assert w["A"] == pytest.approx(0.7310586, abs=1e-7)
    assert w["B"] == pytest.approx(0.2689414, abs=1e-7)
    # T = 1: logits 0.6 and 0.4; w_A = 1 / (1 + e^-0.2) = 0.5498340
    assert reliability_weights(dist, temperature=1.0)["A"] == pytest.approx(0.5498340, abs=1e-7)


def test_three_labels_with_tie():
    dist = answer_distribution(["a", "a", "b", "tie"])
    assert dist == {"a": 0.5, "b": 0.25, "tie": 0.25}
    # H = 0.5 ln 2 + 2 * 0.25 ln 4 = 0.5 ln 2 + ln 2 = 1.5 ln 2
    assert entropy(dist) == pytest.approx(1.5 * math.log(2))
    # logits 2.5, 1.25, 1.25 -> w_a = 1 / (1 + 2 e^-1.25) = 1 / 1.5730096 = 0.6357240
    w = reliability_weights(dist, temperature=0.2)
    assert w["a"] == pytest.approx(0.6357240, abs=1e-7)
    assert w["b"] == pytest.approx(w["tie"])
    assert w["b"] == pytest.approx((1 - 0.6357240) / 2, abs=1e-7)
    assert sum(w.values()) == pytest.approx(1.0)


def test_unanimous_and_uniform():
    assert entropy(answer_distribution(["a"] * 4)) == 0.0
    assert reliability_weights({"a": 1.0}) == {"a": 1.0}
    assert entropy({"a": 0.5, "b": 0.5}) == pytest.approx(math.log(2))  # nats, not bits
    assert reliability_weights({"a": 0.5, "b": 0.5}) == {"a": 0.5, "b": 0.5}
    # a large 1/T does not overflow
    assert reliability_weights({"a": 0.9, "b": 0.1}, temperature=1e-4)["a"] == pytest.approx(1.0)


def test_bad_inputs():
    with pytest.raises(ValueError, match="no answers"):
        answer_distribution([])
    with pytest.raises(ValueError, match="temperature"):
        reliability_weights({"a": 1.0}, temperature=0)
    with pytest.raises(ValueError, match="percentile"):
        entropy_threshold([0.1], 150)


def test_filter_by_entropy_at_the_median():
    h = {"p1": 0.0, "p2": 0.5, "p3": 0.6730117, "p4": math.log(2)}
    # 50th percentile of [0, 0.5, 0.673, 0.693], linear: position 1.5 -> 0.5 + 0.5 * (0.673 - 0.5) = 0.5865
    assert entropy_threshold(h.values(), 50) == pytest.approx(0.5 + 0.5 * (0.6730117 - 0.5))
    assert filter_by_entropy(h, 50) == {"p1", "p2"}
    assert filter_by_entropy(h, 100) == set(h)
    assert filter_by_entropy(h, 0) == {"p1"}
    # all equal entropies: every pair sits at the threshold and is kept
    assert filter_by_entropy({"x": 0.3, "y": 0.3}, 50) == {"x", "y"}
    assert filter_by_entropy({}, 50) == set()
