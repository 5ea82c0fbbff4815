"""Prompt variations end to end: an annotator run under N variants, each answer its own row, then the
label set's entropy and weights; and option permutation for multiple-choice tasks."""

import math

import pytest
from reliability_helpers import ScriptedModel  # noqa: F401  (registers the 'positional' backend)
from sqlmodel import select

from annotators.base import Annotator, Decision, p_a_from_first, present
from annotators.variants import (
    annotate_variants,
    ask_multiple_choice,
    map_back,
    option_order,
    permute_options,
)
from w2s.backends import get_model
from w2s.labels.aggregate import build_label_set
from w2s.labels.variants import CANONICAL, Variant, make_variants
from w2s.store import Annotation, LabelSet, Pair, session_scope


class FirstImpression(Annotator):
    """Asks once, in the variant's order (no order averaging), so position bias shows across variants."""

    name = "first-impression"

    def decide(self, pairs, variant, session):
        prompts = ["{}\n1) {}\n2) {}".format(p.prompt, *present(p, variant.swap)) for p in pairs]
        probs = self.weak.score_choices(prompts, ["1", "2"])
        return [Decision(p_a=p_a_from_first(p[0], variant.swap)) for p in probs]


def test_option_permutation_hand_cases():
    opts = ["x", "y", "z"]
    assert permute_options(opts, CANONICAL) == (["x", "y", "z"], [0, 1, 2])
    assert permute_options(opts, Variant("swap", swap=True)) == (["z", "y", "x"], [2, 1, 0])
    # the model put 0.7 on the first shown option, which is z: mapped back, z (index 2) gets 0.7
    assert map_back([0.7, 0.2, 0.1], [2, 1, 0]) == [0.1, 0.2, 0.7]
    for v in make_variants(6, seed=3):
        shown, order = permute_options(opts, v)
        assert sorted(order) == [0, 1, 2] and shown == [opts[i] for i in order]
        assert option_order(3, v) == order  # deterministic per variant
        one_hot = [1.0 if opts[i] == "y" else 0.0 for i in order]
        assert map_back(one_hot, order) == [0.0, 1.0, 0.0]
    with pytest.raises(ValueError):
        map_back([0.5, 0.5], [0, 1, 2])


def mc_prompt(options, letters):
    return "Which is right?\n" + "\n".join(f"{letter}) {o}" for letter, o in zip(letters, options))


def test_multiple_choice_answers_map_back():
    options = ["wrong one", "RIGHT one", "also wrong", "nope"]
    variants = make_variants(5, seed=1)
    # a model that reads the options answers the same original option under every permutation
    for probs in ask_multiple_choice(get_model("positional:reader"), mc_prompt, options, variants):
        assert probs.index(max(probs)) == 1 and sum(probs) == pytest.approx(1.0)
    # a position-biased model's answer moves with the permutation: the variants disagree
    biased = ask_multiple_choice(get_model("positional:first"), mc_prompt, options, variants)
    picks = [p.index(max(p)) for p in biased]
    assert picks == [option_order(4, v)[0] for v in variants] and len(set(picks)) > 1


def add_pairs(url, n=6):
    with session_scope(url) as s:
        for i in range(n):
            s.add(
                Pair(
                    id=f"q{i}",
                    dataset="synth",
                    prompt=f"prompt {i}",
                    response_a=f"A{i}",
                    response_b=f"B{i}",
                    gold="a",
                )
            )
    return [f"q{i}" for i in range(n)]


def test_annotate_variants_stores_one_row_per_variant(db_url):
    ids = add_pairs(db_url)
    annotator = FirstImpression(weak=get_model("positional:first"))
    added = annotate_variants(annotator, ids, n=5, seed=0, url=db_url, batch_size=4)
    assert added == {"": 6, "swap": 6, "v2": 6, "v3": 6, "v4": 6}
    assert annotate_variants(annotator, ids, n=5, seed=0, url=db_url) == dict.fromkeys(added, 0)  # resumable
    with session_scope(db_url) as s:
        rows = s.exec(select(Annotation).where(Annotation.pair_id == "q0")).all()
        assert sorted(r.variant for r in rows) == ["", "swap", "v2", "v3", "v4"]
        # position bias: every unswapped variant says A, every swapped one says B (mapped back)
        variants = {v.id: v for v in make_variants(5, 0)}
        assert all(r.label == ("b" if variants[r.variant].swap else "a") for r in rows)
        assert {r.method for r in rows} == {"first-impression"}
        build_label_set(s, method="majority", temperature=0.2)
        ls = s.exec(select(LabelSet).where(LabelSet.pair_id == "q0")).one()
    # answers {a, b, a, b, a}: the hand case, H = 0.6730117 nats, w_a = 1 / (1 + e^-1)
    assert ls.label == "a" and ls.n_votes == 5
    assert ls.entropy == pytest.approx(0.6730117, abs=1e-7)
    assert ls.weight == pytest.approx(1 / (1 + math.exp(-1)))
    with pytest.raises(ValueError):
        annotate_variants(annotator, ids, n=0, url=db_url)
