"""The features master: it learns which principles to believe, invert or ignore, from gold."""

import json
from dataclasses import replace

import numpy as np
import pytest

from w2s.masters import FEATURES, Master, MasterConfig, MasterInputs, fit_margin, node_features, train_master
from w2s.store import Node, Pair, Tree
from w2s.trees.principles import load_library

LIB = load_library("correctness")
RIGHT, WRONG, NOISE = (p.id for p in LIB.principles[:3])


def synthetic(n: int, seed: int = 0, exits: bool = True):
    """Pairs with gold, and trees whose first principle's verdict is right, second's inverted, third's
    noise (each node on every tree, exits on the first unless `exits` is False)."""
    rng = np.random.default_rng(seed)
    pairs, trees, nodes = [], [], []
    for i in range(n):
        gold = "a" if rng.random() < 0.5 else "b"
        sign = 1.0 if gold == "a" else -1.0
        strength = rng.uniform(0.15, 0.45)
        verdicts = {
            RIGHT: 0.5 + sign * strength,
            WRONG: 0.5 - sign * strength,
            NOISE: rng.uniform(0.05, 0.95),
        }
        tree = Tree(
            id=i,
            pair_id=f"p{i}",
            strong_model="s",
            config_hash="c",
            config={"tau_exit": 0.75, "orders": [[v, v] for v in verdicts.values()]},
        )
        ns = [
            Node(
                id=10 * i + k,
                tree_id=i,
                position=k,
                principle_id=pid,
                relevance=0.8,
                p_a=v,
                p_b=1 - v,
                role="exit" if k == 0 and exits else "continue",
            )
            for k, (pid, v) in enumerate(verdicts.items())
        ]
        pairs.append(
            Pair(id=f"p{i}", dataset="code", prompt=str(i), response_a="a", response_b="b", gold=gold)
        )
        trees.append(tree)
        nodes.append(ns)
    return pairs, trees, nodes


def noise_features(pairs):
    """An uninformative weak model: feature differences that do not depend on gold."""
    rng = np.random.default_rng(len(pairs))
    return rng.normal(size=(len(pairs), 8))


def fit(n=160, seed=0, principle_weights="per-principle"):
    pairs, trees, nodes = synthetic(n, seed)
    cfg = MasterConfig(
        strong="s", tree_config="c", library="correctness", seed=seed, principle_weights=principle_weights
    )
    return train_master(MasterInputs(pairs, trees, nodes, LIB), cfg, features=noise_features), (
        pairs,
        trees,
        nodes,
    )


def test_node_features_are_signed_and_masked_by_role():
    _, trees, nodes = synthetic(1)
    x = node_features(trees[0], nodes[0], LIB).reshape(len(LIB.principles), len(FEATURES))
    v = nodes[0][0].p_a - 0.5
    assert x[0] == pytest.approx([v, v, v, v * 0.8])  # exit, both orders agree, relevance 0.8
    assert x[1][1] == 0.0  # a continue node has no exit feature
    assert (x[3:] == 0).all()  # principles without a node


def test_a_shared_margin_fit_gives_the_same_master():
    pairs, trees, nodes = synthetic(80, seed=3)
    cfg = MasterConfig(strong="s", tree_config="c", library="correctness", principle_weights="shared")
    alone = train_master(MasterInputs(pairs, trees, nodes, LIB), cfg, features=noise_features)
    shared = train_master(
        MasterInputs(pairs, trees, nodes, LIB),
        cfg,
        features=noise_features,
        margin=fit_margin(pairs, noise_features, cfg),
    )
    assert shared == alone
    with pytest.raises(ValueError, match="margin fit is of 80 pairs, not these 40"):
        train_master(
            MasterInputs(pairs[:40], trees[:40], nodes[:40], LIB),
            cfg,
            features=noise_features,
            margin=fit_margin(pairs, noise_features, cfg),
        )


def test_master_believes_inverts_and_ignores():
    master, _ = fit()
    trust = {row["principle"]: row["trust"] for row in master.metrics["trust"]}
    assert trust[RIGHT] > 1.0
    assert trust[WRONG] < -1.0
    assert abs(trust[NOISE]) < 0.25 * min(trust[RIGHT], -trust[WRONG])
    assert master.metrics["train_accuracy_master"] > 0.95
    assert master.metrics["train_accuracy_twin"] < 0.7  # the weak model alone knows nothing here


def test_shared_weights_pool_principles_and_shrunk_ones_keep_them_apart():
    """Shared weights are one set for every principle; shrunk ones still tell the right principle from
    the inverted one; the trust table shows each principle's effective weights."""
    shared, _ = fit(principle_weights="shared")
    rows = shared.metrics["trust"]
    assert len(shared.tree_weights) == 1 + len(FEATURES)
    assert all(r["trust"] == rows[0]["trust"] for r in rows)  # the same for every principle
    shrunk, _ = fit(principle_weights="shrunk")
    assert len(shrunk.tree_weights) == 1 + len(FEATURES) * (1 + len(LIB.principles))
    trust = {row["principle"]: row["trust"] for row in shrunk.metrics["trust"]}
    assert trust[RIGHT] > 1.0 and trust[WRONG] < -1.0
    w = np.asarray(shrunk.tree_weights[1:])
    f = len(FEATURES)
    assert trust[RIGHT] == pytest.approx(w[:f].sum() + w[f : 2 * f].sum())  # shared + the principle's offset
    assert shrunk.metrics["train_accuracy_master"] > 0.95


def test_auto_chooses_weights_that_can_invert_a_principle_when_one_is_inverted():
    """Without exits, a right and an inverted principle cancel under shared weights: cross-validation on
    the training pairs must prefer weights per principle, and the master is then that master."""
    pairs, trees, nodes = synthetic(160, exits=False)
    cfg = MasterConfig(strong="s", tree_config="c", library="correctness", principle_weights="auto")
    auto = train_master(MasterInputs(pairs, trees, nodes, LIB), cfg, features=noise_features)
    losses = auto.metrics["principle_weights_cv_log_loss"]
    assert set(losses) == {"per-principle", "shared", "shrunk", "none"}
    assert auto.principle_weights == min(losses, key=losses.get) != "shared"
    assert losses["shared"] > 0.6 > max(losses["per-principle"], losses["shrunk"])
    chosen = train_master(
        MasterInputs(pairs, trees, nodes, LIB),
        replace(cfg, principle_weights=auto.principle_weights),
        features=noise_features,
    )
    assert chosen.tree_weights == auto.tree_weights and chosen.run_id != auto.run_id


def test_auto_falls_back_to_the_twin_when_the_trees_carry_nothing():
    """Trees whose every verdict is noise, a weak margin that knows gold: cross-validation on the training
    pairs must find that no tree weights beat none, and the master is then its twin, pair for pair."""
    pairs, trees, nodes = synthetic(400, seed=1)
    rng = np.random.default_rng(2)
    for ns in nodes:
        for n in ns:
            n.p_a = rng.uniform(0.05, 0.95)
            n.p_b = 1 - n.p_a
    gold = np.array([1.0 if p.gold == "a" else -1.0 for p in pairs])

    def knowing_features(ps):
        return gold[: len(ps), None] * 0.3 + np.random.default_rng(3).normal(size=(len(ps), 8))

    cfg = MasterConfig(strong="s", tree_config="c", library="correctness", principle_weights="auto")
    auto = train_master(MasterInputs(pairs, trees, nodes, LIB), cfg, features=knowing_features)
    losses = auto.metrics["principle_weights_cv_log_loss"]
    assert auto.principle_weights == "none" == min(losses, key=losses.get)
    assert len(auto.tree_weights) == 1 and all(r["trust"] == 0.0 for r in auto.metrics["trust"])
    d = knowing_features(pairs)
    x = np.stack([node_features(t, ns, LIB) for t, ns in zip(trees, nodes)])
    assert auto.p_a(d, x) == pytest.approx(auto.p_a_alone(d))
    assert auto.metrics["train_accuracy_master"] == auto.metrics["train_accuracy_twin"] > 0.7
    # the informative trees of the other tests are kept: `auto` drops trees only when they do not help
    assert fit(principle_weights="auto")[0].principle_weights != "none"


def test_unknown_principle_weights_is_a_clear_error():
    pairs, trees, nodes = synthetic(20)
    with pytest.raises(ValueError, match="unknown principle_weights 'pooled'.*or auto"):
        train_master(
            MasterInputs(pairs, trees, nodes, LIB),
            MasterConfig(principle_weights="pooled"),
            features=noise_features,
        )


@pytest.mark.parametrize("principle_weights", ["per-principle", "shared", "shrunk", "none"])
def test_master_is_antisymmetric_in_a_and_b(principle_weights):
    master, (pairs, trees, nodes) = fit(principle_weights=principle_weights)
    d = noise_features(pairs)
    x = np.stack([node_features(t, ns, LIB) for t, ns in zip(trees, nodes)])
    assert master.p_a(-d, -x) == pytest.approx(1 - master.p_a(d, x))


def test_twin_never_sees_tree_features():
    master, (pairs, trees, nodes) = fit()
    for ns in nodes:  # every verdict flipped: the master changes, the twin must not
        for n in ns:
            n.p_a, n.p_b = n.p_b, n.p_a
    flipped = train_master(MasterInputs(pairs, trees, nodes, LIB), master.config, features=noise_features)
    assert flipped.twin_weight == master.twin_weight
    assert flipped.margin_weights == master.margin_weights
    assert flipped.tree_weights != master.tree_weights


def test_training_is_deterministic_and_round_trips(tmp_path):
    a, _ = fit(seed=3)
    b, _ = fit(seed=3)
    assert a.tree_weights == b.tree_weights and a.run_id == b.run_id
    a.save(tmp_path / "run")
    loaded = Master.load(tmp_path / "run")
    assert loaded == a
    with pytest.raises(FileNotFoundError, match="not a master run directory"):
        Master.load(tmp_path)


def test_a_run_from_before_principle_weights_loads_as_per_principle(tmp_path):
    """Run directories written before the option existed name neither field: they were per principle."""
    master, (pairs, trees, nodes) = fit()
    master.save(tmp_path / "old")
    for name, key in (("config.json", "principle_weights"), ("master.json", "principle_weights")):
        path = tmp_path / "old" / name
        path.write_text(json.dumps({k: v for k, v in json.loads(path.read_text()).items() if k != key}))
    old = Master.load(tmp_path / "old")
    assert old.config.principle_weights == old.principle_weights == "per-principle"
    x = np.stack([node_features(t, ns, LIB) for t, ns in zip(trees, nodes)])
    assert old.p_a(noise_features(pairs), x) == pytest.approx(master.p_a(noise_features(pairs), x))


def test_too_few_pairs_is_a_clear_error():
    pairs, trees, nodes = synthetic(6)
    with pytest.raises(ValueError, match="at least 10 gold pairs"):
        train_master(MasterInputs(pairs, trees, nodes, LIB), MasterConfig(), features=noise_features)


def test_rm_master_reads_the_notes_and_keeps_the_twin():
    """The rm kind reads the pair with the tree's notes as text: here the weak model's 'features' are
    the verdict word the notes carry, so it learns to follow them; its twin is the pair-only head."""
    pairs, trees, nodes = synthetic(60)

    def features(ps, prompts=None):
        if prompts is None:
            return noise_features(ps)
        first = [1.0 if "Reply A" in q.split("(verdict: ")[1][:7] else -1.0 for q in prompts]
        return np.column_stack([first, noise_features(ps)[:, :3]])

    cfg = MasterConfig(kind="rm", strong="s", tree_config="c", library="correctness")
    master = train_master(MasterInputs(pairs, trees, nodes, LIB), cfg, features=features)
    assert master.metrics["trust"] == [] and master.metrics["margin_weight"] is None
    assert master.metrics["train_accuracy_master"] > 0.95  # the first note's verdict is right
    features_master, _ = fit(n=60)
    assert master.twin_weight == features_master.twin_weight  # the same pair-only twin


def reasoned(n: int, seed: int = 0, right: float = 1.0):
    """Pairs with gold and a reasoning text that names the gold reply with probability `right`."""
    rng = np.random.default_rng(seed)
    pairs, texts = [], []
    for i in range(n):
        gold = "a" if rng.random() < 0.5 else "b"
        named = gold if rng.random() < right else {"a": "b", "b": "a"}[gold]
        pairs.append(
            Pair(id=f"r{i}", dataset="code", prompt=str(i), response_a="a", response_b="b", gold=gold)
        )
        texts.append(f"Step by step, Reply {named.upper()} is correct.")
    return pairs, texts


def reading_features(ps, prompts=None):
    """A weak model whose only signal is the reply the reasoning names (noise on the pair alone)."""
    if prompts is None:
        return noise_features(ps)
    named = [1.0 if "Reply A is correct" in q else -1.0 for q in prompts]
    return np.column_stack([named, noise_features(ps)[:, :3]])


def test_cot_master_reads_the_reasoning_and_keeps_the_twin():
    pairs, texts = reasoned(60)
    cfg = MasterConfig(kind="cot-v1", strong="s", reasoning_max_tokens=64)
    master = train_master(MasterInputs(pairs, reasoning=texts), cfg, features=reading_features)
    assert master.metrics["train_accuracy_master"] > 0.95 and master.metrics["trust"] == []
    assert master.metrics["train_accuracy_twin"] < 0.7
    twin = fit_margin(pairs, reading_features, cfg)
    assert master.twin_weight == twin.twin  # the pair-only twin, as for a tree master
    # its run id names the reasoning it read: other texts (or another budget) give another master
    flipped = [
        t.replace("Reply A", "Reply X").replace("Reply B", "Reply A").replace("Reply X", "Reply B")
        for t in texts
    ]
    assert (
        train_master(MasterInputs(pairs, reasoning=flipped), cfg, features=reading_features).run_id
        != master.run_id
    )
    other_budget = replace(cfg, reasoning_max_tokens=96)
    assert (
        train_master(MasterInputs(pairs, reasoning=texts), other_budget, features=reading_features).run_id
        != master.run_id
    )


def test_a_cot_master_needs_reasoning_and_a_tree_master_none():
    pairs, texts = reasoned(20)
    with pytest.raises(ValueError, match="a cot-v2 master reads reasoning"):
        train_master(MasterInputs(pairs), MasterConfig(kind="cot-v2"), features=reading_features)
    tree_pairs, trees, nodes = synthetic(20)
    with pytest.raises(ValueError, match="a features master does not read reasoning"):
        train_master(
            MasterInputs(tree_pairs, trees, nodes, LIB, reasoning=texts),
            MasterConfig(),
            features=noise_features,
        )
    with pytest.raises(ValueError, match="unknown master kind 'cot-v9'"):
        train_master(
            MasterInputs(pairs, reasoning=texts), MasterConfig(kind="cot-v9"), features=reading_features
        )


def test_a_tree_masters_run_id_ignores_the_reasoning_budget():
    """Tree masters trained before cot-* masters existed keep their run ids (and so their labels)."""
    master, (pairs, trees, nodes) = fit(n=40)
    again = train_master(
        MasterInputs(pairs, trees, nodes, LIB),
        replace(master.config, reasoning_max_tokens=64),
        features=noise_features,
    )
    assert again.run_id == master.run_id


def test_features_master_is_an_estimator():
    """fit(X, y) returns it; predict_proba has P(B), P(A) columns; fitted attributes end in `_`."""
    from w2s.masters import FeaturesMaster, TwinMaster, features_x, tree_features

    pairs, trees, nodes = synthetic(80)
    y = np.array([p.gold == "a" for p in pairs], dtype=float)
    margin = noise_features(pairs)[:, 0]
    X = features_x(margin, tree_features(MasterInputs(pairs, trees, nodes, LIB)))
    k = len(LIB.principles)
    assert X.shape == (80, 1 + len(FEATURES) * k)
    est = FeaturesMaster(MasterConfig(principle_weights="per-principle"))
    with pytest.raises(ValueError, match="not fitted"):
        est.predict_proba(X)
    assert est.fit(X, y) is est
    proba = est.predict_proba(X)
    assert proba.shape == (80, 2) and np.allclose(proba.sum(1), 1) and list(est.classes_) == [0, 1]
    assert (est.predict(X) == (proba[:, 1] > 0.5)).all() and ((proba[:, 1] > 0.5) == (y == 1)).mean() > 0.95
    assert est.coef_.shape == (1 + len(FEATURES) * k,) and est.margin_weight_ == est.coef_[0]
    assert est.weights_.shape == (k, len(FEATURES)) and est.trust_.shape == (k,)
    assert est.principle_weights_ == "per-principle" and est.n_principles_ == k and est.cv_log_loss_ == {}
    assert est.trust_[0] > 1.0 > -1.0 > est.trust_[1]  # believes the right principle, inverts the wrong one
    np.testing.assert_allclose(est.predict_proba(-X)[:, 1], proba[:, 0])  # antisymmetric in A and B
    with pytest.raises(ValueError, match="fitted on"):
        est.predict_proba(X[:, :5])
    auto = FeaturesMaster(MasterConfig(principle_weights="auto")).fit(X, y)
    assert set(auto.cv_log_loss_) == {"per-principle", "shared", "shrunk", "none"}
    assert auto.principle_weights_ == min(auto.cv_log_loss_, key=auto.cv_log_loss_.get)
    twin = TwinMaster(MasterConfig()).fit(margin[:, None], y)
    assert twin.coef_.shape == (1,) and twin.predict_proba(margin[:, None]).shape == (80, 2)


def test_text_master_is_an_estimator():
    from w2s.masters import TextMaster

    rng = np.random.default_rng(0)
    y = (rng.random(60) < 0.5).astype(float)
    X = np.column_stack([(2 * y - 1) * 3.0, rng.normal(size=(60, 3))])
    est = TextMaster(MasterConfig(kind="rm")).fit(X, y)
    assert est.scale_.shape == (4,) and est.coef_.shape == (4,)
    assert est.predict_proba(X).shape == (60, 2) and (est.predict(X) == y).mean() > 0.95


def test_the_kinds_registry():
    from w2s.masters import KINDS, FeaturesMaster, TextMaster, get_kind

    assert list(KINDS) == ["features", "rm", "cot-v1", "cot-v2", "cot-v3"]
    assert get_kind("features").estimator is FeaturesMaster and not get_kind("features").experimental
    assert get_kind("rm").reads == "notes" and get_kind("cot-v2").reads == "reasoning"
    assert all(KINDS[k].estimator is TextMaster and KINDS[k].experimental for k in ("rm", "cot-v1"))
    with pytest.raises(ValueError, match="unknown master kind 'x': features, rm, cot-v1"):
        get_kind("x")
