"""w2s.vocab: the one home of labels, P(A) <-> label, entropy, presentation order, workers, producers."""

import math

import numpy as np
import pytest

from w2s.labels.reliability import majority_weight
from w2s.vocab import (
    average_orders,
    binary_entropy,
    entropy,
    label_of,
    p_a_from_first,
    p_a_of,
    producer_hash,
    worker_key,
)


def test_p_a_and_labels_both_ways():
    assert label_of(0.5 + 1e-12) == ("tie", 0.5) and label_of(0.7) == ("a", 0.7)
    assert label_of(0.2) == ("b", pytest.approx(0.8))
    assert [p_a_of(x) for x in ("a", "b", "tie")] == [1.0, 0.0, 0.5]
    assert p_a_of("b", confidence=0.75) == 0.25 and p_a_of("a", 0.75, p_a=0.6) == 0.6
    with pytest.raises(ValueError, match="label 'x' is not one of a, b, tie"):
        p_a_of("x")


def test_entropy_is_in_nats_for_every_shape():
    assert entropy({"a": 0.5, "b": 0.5}) == pytest.approx(math.log(2))
    assert entropy([1.0, 0.0]) == 0.0
    assert binary_entropy(0.5) == pytest.approx(math.log(2)) and binary_entropy(1.0) == 0.0
    h = binary_entropy(np.array([0.0, 0.25, 0.5]))
    assert h == pytest.approx([0.0, entropy([0.25, 0.75]), math.log(2)])


def test_both_orders_cancel_a_position_bias():
    # the judge says "first" with 0.9 when A is first and 0.7 when B is first: A wins by (0.9 + 0.3) / 2
    assert average_orders(0.9, 0.7) == pytest.approx(0.6)
    assert average_orders(np.array([0.9, 0.5]), np.array([0.7, 0.5])) == pytest.approx([0.6, 0.5])
    assert p_a_from_first(0.8, swap=True) == pytest.approx(0.2)


def test_majority_weight_is_the_softmax_weight_of_the_larger_share():
    # answers (0.8, 0.2) at T = 0.2: logits 4 and 1, weight 1 / (1 + e^-3)
    assert majority_weight(0.8) == pytest.approx(1 / (1 + math.exp(-3)))
    assert majority_weight(np.array([0.8, 0.2])) == pytest.approx([1 / (1 + math.exp(-3))] * 2)


def test_workers_and_producers():
    assert worker_key("human", "alice") == "human:alice"
    assert worker_key("seam", "m", "swap", "ab12") == "seam:m#ab12@swap"
    h = producer_hash({"method": "seam", "options": {"top_k": 2}})
    assert len(h) == 16 and h == producer_hash({"options": {"top_k": 2}, "method": "seam"})
    assert h != producer_hash({"method": "seam", "options": {"top_k": 3}})
