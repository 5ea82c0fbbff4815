import json
import random

import numpy as np
import pytest
from paths import HH
from reliability_helpers import ScriptedModel
from sqlmodel import select

from w2s.labels.aggregate import build_label_set
from w2s.labels.ensembles import (
    EnsembleConfig,
    LinearRewardModel,
    ModelScorer,
    annotate_with_ensemble,
    bootstrap_indices,
    combine,
    hard_vote,
    soft_vote,
    train_ensemble,
    train_linear,
)
from w2s.store import LabelSet, Pair, session_scope


def hh_rows(name: str, n: int) -> list[dict]:
    rows = []
    with open(HH / f"{name}.jsonl", encoding="utf-8") as f:
        for line, _ in zip(f, range(n)):
            r = json.loads(line)
            cut = r["chosen"].rfind("\n\nAssistant:")
            rows.append(
                {
                    "prompt": r["chosen"][:cut],
                    "chosen": r["chosen"][cut + 12 :].strip(),
                    "rejected": r["rejected"][r["rejected"].rfind("\n\nAssistant:") + 12 :].strip(),
                }
            )
    return rows


def test_bootstrap_indices():
    a = bootstrap_indices(100, 3, seed=7)
    b = bootstrap_indices(100, 3, seed=7)
    assert len(a) == 3 and all(len(x) == 100 for x in a)
    assert all((x == y).all() for x, y in zip(a, b))  # deterministic per seed
    assert all(x.min() >= 0 and x.max() < 100 for x in a)
    assert all(len(set(x.tolist())) < 100 for x in a)  # with replacement: about 63% distinct
    assert not (a[0] == a[1]).all()
    assert len(bootstrap_indices(100, 2, sample_size=10)[0]) == 10
    with pytest.raises(ValueError):
        bootstrap_indices(0, 3)


def test_hard_and_soft_vote_hand_computed():
    p = np.array([[0.9, 0.4, 0.5], [0.6, 0.2, 0.5], [0.3, 0.45, 0.5]])
    # hard: item 0 two of three members above 1/2; item 1 none; item 2 all at exactly 1/2 (half each)
    assert hard_vote(p).tolist() == pytest.approx([2 / 3, 0.0, 0.5])
    # soft: (0.9 + 0.6 + 0.3) / 3, (0.4 + 0.2 + 0.45) / 3, 0.5
    assert soft_vote(p).tolist() == pytest.approx([0.6, 0.35, 0.5])
    assert combine(p, "hard").tolist() == hard_vote(p).tolist()
    with pytest.raises(ValueError):
        combine(p, "median")


def test_linear_reward_model_learns_a_cue_and_has_no_position_bias():
    rng = random.Random(0)
    words = ["the", "a", "reply", "here", "some", "words", "about", "it", "maybe", "then"]
    rows = []
    for _ in range(200):
        filler = lambda: " ".join(rng.choice(words) for _ in range(8))
        rows.append(
            {
                "prompt": "q",
                "chosen": f"{filler()} sorry cannot help {filler()}",
                "rejected": f"{filler()} here is how {filler()}",
            }
        )
    model = train_linear(rows[:150])
    p = model.p_chosen(rows[150:])
    assert (p > 0.5).mean() == 1.0
    flipped = [{**r, "chosen": r["rejected"], "rejected": r["chosen"]} for r in rows[150:]]
    assert model.p_chosen(flipped) == pytest.approx(1 - p)
    assert model.p_chosen([]).shape == (0,)


@pytest.mark.skipif(not HH.exists(), reason="needs the shared HH-harmless split")
def test_bootstrap_ensemble_on_hh_harmless():
    train, test = hh_rows("train_gt", 1500), hh_rows("test_dev", 400)
    ens = train_ensemble(train, train_linear, EnsembleConfig(n_members=4, voting="soft", seed=0))
    members = ens.member_p(test)
    assert members.shape == (4, 400)
    member_acc = (members > 0.5).mean(axis=1)
    soft_acc = (ens.p_chosen(test) > 0.5).mean()
    hard_acc = (hard_vote(members) > 0.5).mean()
    assert (member_acc > 0.55).all(), member_acc  # a weak but real supervisor (chosen = gold here)
    assert soft_acc >= member_acc.min() and hard_acc > 0.55
    # members differ: they saw different bootstrap samples
    assert not np.allclose(members[0], members[1])


@pytest.mark.skipif(not HH.exists(), reason="needs the shared HH-harmless split")
def test_ensemble_labels_flow_through_the_store(db_url):
    train = hh_rows("train_gt", 400)
    ens = train_ensemble(train, train_linear, EnsembleConfig(n_members=3))
    pairs = []
    with session_scope(db_url) as s:
        for i, r in enumerate(hh_rows("test_dev", 20)):
            swap = i % 2 == 1
            a, b = (r["rejected"], r["chosen"]) if swap else (r["chosen"], r["rejected"])
            pairs.append(
                Pair(
                    id=f"hh{i:02d}",
                    dataset="hh-harmless",
                    prompt=r["prompt"],
                    response_a=a,
                    response_b=b,
                    gold="b" if swap else "a",
                )
            )
        s.add_all(pairs)
        s.flush()
        assert annotate_with_ensemble(s, ens, pairs) == 60
        assert annotate_with_ensemble(s, ens, pairs) == 0  # idempotent
        build_label_set(s, name="soft", method="soft", methods=["bootstrap"], temperature=None)
        build_label_set(s, name="hard", method="majority", methods=["bootstrap"], temperature=None)
        sets = {(r.name, r.pair_id): r for r in s.exec(select(LabelSet))}
        rows = [{"prompt": p.prompt, "chosen": p.response_a, "rejected": p.response_b} for p in pairs]
    member_p = ens.member_p(rows)
    for j, p in enumerate(pairs):
        assert sets[("soft", p.id)].n_votes == 3
        assert sets[("soft", p.id)].soft_label == pytest.approx(soft_vote(member_p)[j])
        assert sets[("hard", p.id)].soft_label == pytest.approx(hard_vote(member_p)[j])


def test_model_scorer_cancels_position_bias():
    scorer = ModelScorer(ScriptedModel("first"))
    rows = [{"prompt": "q", "chosen": "x", "rejected": "y"}] * 3
    # P(A) = 0.7 whatever is shown: chosen first gives 0.7, chosen second gives P(B) = 0.3 -> mean 0.5
    assert scorer.p_chosen(rows).tolist() == pytest.approx([0.5] * 3)
    assert isinstance(LinearRewardModel(), LinearRewardModel)
