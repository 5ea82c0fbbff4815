"""The pure math of SEAM against hand-computed numbers."""

import math

import pytest

from annotators.base import label_of, p_a_from_first, present
from w2s.labels.quality import (
    corrections,
    decisive_exit_label,
    decisive_exit_p_a,
    exit_label,
    wilson_interval,
)
from w2s.labels.variants import CANONICAL, Variant
from w2s.store import Pair, annotation_key
from w2s.trees import PRUNED, TreeConfig, info, node_role, swap_labels
from w2s.vocab import average_orders, entropy


def test_entropy_in_nats():
    assert entropy([0.5, 0.5]) == pytest.approx(math.log(2))
    assert entropy([1.0, 0.0]) == 0.0
    # -(0.8 ln 0.8 + 0.2 ln 0.2) = 0.178515 + 0.321888
    assert entropy([0.8, 0.2]) == pytest.approx(0.500402, abs=1e-6)


def test_info_formula():
    # info = r (1 - H/ln2); H(0.8, 0.2)/ln 2 = 0.721928 bits
    assert info(0.9, [0.8, 0.2]) == pytest.approx(0.9 * (1 - 0.721928), abs=1e-6)
    assert info(1.0, [0.5, 0.5]) == pytest.approx(0.0)
    assert info(0.4, [1.0, 0.0]) == pytest.approx(0.4)
    assert info(0.0, [1.0, 0.0]) == 0.0


def test_both_orders_average_cancels_position_bias():
    # a model that always says "first" (0.9) carries no preference: P(A) = 0.5
    assert average_orders(0.9, 0.9) == pytest.approx(0.5)
    # P(first)=0.9 with A first, 0.3 with B first -> P(A) = (0.9 + 0.7) / 2
    assert average_orders(0.9, 0.3) == pytest.approx(0.8)


def test_node_roles():
    cfg = TreeConfig(tau_exit=0.75, tau_rel=0.3, tau_uniform=0.55)
    assert node_role(0.9, (0.8, 0.2), cfg) == "exit"
    assert node_role(0.9, (0.75, 0.25), cfg) == "exit"  # max(v) >= tau_exit
    assert node_role(0.9, (0.3, 0.7), cfg) == "continue"
    assert node_role(0.29, (0.95, 0.05), cfg) == "pruned_by_search"  # post-thought relevance < tau_rel
    assert node_role(0.9, (0.52, 0.48), cfg) == "pruned_by_search"  # near-uniform verdict


def test_config_hash_changes_with_any_knob():
    assert TreeConfig().hash() == TreeConfig().hash()
    assert TreeConfig(tau_exit=0.8).hash() != TreeConfig().hash()
    assert TreeConfig(library="honesty").hash() != TreeConfig().hash()


def test_swap_labels():
    text = "Reply A refuses, while Reply B complies; Response A is safer. A plan."
    assert swap_labels(text) == "Reply B refuses, while Reply A complies; Response B is safer. A plan."
    assert swap_labels(swap_labels(text)) == text


def test_labels_and_presentation():
    assert label_of(0.7) == ("a", 0.7)
    assert label_of(0.2) == ("b", pytest.approx(0.8))
    assert label_of(0.5) == ("tie", 0.5)
    pair = Pair(id="x", dataset="d", prompt="p", response_a="ra", response_b="rb")
    assert present(pair) == ("ra", "rb")
    assert present(pair, swap=True) == ("rb", "ra")
    assert p_a_from_first(0.8, swap=True) == pytest.approx(0.2)
    assert (
        annotation_key("seam", "transformers:smollm2", "f00", CANONICAL.id, "x")
        == "seam|transformers:smollm2|f00||x"
    )
    assert annotation_key("naive", "m", "f00", Variant(id="swap", swap=True).id, "x") == "naive|m|f00|swap|x"


def test_wilson_interval_hand_computed():
    # 8 of 10: centre (0.8 + 3.84146/20)/(1 + 3.84146/10) = 0.71675, half-width 0.22658
    lo, hi = wilson_interval(8, 10)
    assert lo == pytest.approx(0.49016, abs=1e-4)
    assert hi == pytest.approx(0.94330, abs=1e-4)
    assert wilson_interval(0, 0) == (0.0, 1.0)
    lo, hi = wilson_interval(0, 5)
    assert lo == 0.0 and 0.4 < hi < 0.45


def test_corrections():
    gold = {"p1": "a", "p2": "a", "p3": "b", "p4": "b"}
    naive = {"p1": "a", "p2": "b", "p3": "b", "p4": "a"}
    method = {"p1": "b", "p2": "a", "p3": "b", "p4": "b"}
    assert corrections(naive, method, gold) == {"compared": 4, "risky": 1, "good": 2, "net": 1}


def test_exit_label_reads_the_exit_node():
    assert exit_label([(PRUNED, 0.9), ("continue", 0.3), ("exit", 0.8)]) == "a"
    assert exit_label([("continue", 0.9), ("exit", 0.2)]) == "b"
    assert exit_label([("exit", 0.5)]) == "tie"
    assert exit_label([(PRUNED, 0.9)]) is None  # a search that kept no chain node has no answer


def test_decisive_exit_is_the_one_the_search_stopped_on():
    assert decisive_exit_label([(PRUNED, 0.9), ("exit", 0.2)], 0.75) == "b"  # 1 - 0.2 = 0.8 >= 0.75
    assert decisive_exit_label([("exit", 0.75)], 0.75) == "a"
    assert (
        decisive_exit_label([("continue", 0.7), ("exit", 0.6)], 0.75) is None
    )  # the tail: the search ran out
    assert exit_label([("continue", 0.7), ("exit", 0.6)]) == "a"  # still the tree's answer
    assert decisive_exit_label([(PRUNED, 0.9)], 0.75) is None
    assert decisive_exit_p_a([(PRUNED, 0.9), ("exit", 0.2)], 0.75) == 0.2  # what seam-gate labels with
    assert decisive_exit_p_a([("continue", 0.7), ("exit", 0.6)], 0.75) is None
    assert decisive_exit_p_a([("continue", 0.7), ("exit", 0.6)], 0.6) == 0.6  # replayed at a lower tau_exit
