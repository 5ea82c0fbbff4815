"""`Master`: a trained master and its twin, as a run directory and the store keep it, and
`train_master`, which fits one on gold pairs."""

from __future__ import annotations

import hashlib
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from w2s.masters.config import MasterConfig, check_principle_weights
from w2s.masters.estimators import FeaturesMaster, TwinMaster
from w2s.masters.experimental.text import TextMaster
from w2s.masters.features import FEATURES, MasterInputs, features_x, gold_labels, trust_table
from w2s.masters.kinds import get_kind
from w2s.masters.runs import data_hash, read_run, run_id, write_run
from w2s.masters.weak import MarginFit, fit_margin, shared_features


@dataclass
class Master:
    """A trained master and its twin: the fitted state of its estimators, in the stored format."""

    config: MasterConfig
    run_id: str
    margin_weights: list[float]
    """The BT head on (standardised) feature differences: m = w·(d / scale)."""
    margin_scale: list[float]
    twin_weight: float
    """The twin: P(A) = σ(twin_weight · m)."""
    tree_weights: list[float]
    """The master: `features`: [a, then the weights of `design(principle_weights)`]; a text kind: the BT
    head on the (standardised) feature differences of the pair read with its text."""
    tree_scale: list[float] = field(default_factory=list)
    """A text kind: the scale of those differences."""
    metrics: dict = field(default_factory=dict)
    principle_weights: str = "per-principle"
    """`features`: the weight sharing fitted (the config's, or the one `auto` chose)."""

    @property
    def kind(self):
        return get_kind(self.config.kind)

    def margin(self, diffs: np.ndarray) -> np.ndarray:
        """The weak margin m of the pairs' feature differences h(prompt, A) − h(prompt, B)."""
        return (diffs / np.asarray(self.margin_scale)) @ np.asarray(self.margin_weights)

    def twin(self) -> TwinMaster:
        return TwinMaster.fitted(self.twin_weight, self.config)

    def estimator(self, n_principles: int | None = None):
        """The fitted master: a FeaturesMaster (of `n_principles` K, by default the library's) or a TextMaster."""
        if self.kind.reads_text:
            return TextMaster.fitted(self.tree_weights, self.tree_scale, self.config)
        if n_principles is None:
            from w2s.trees.principles import load_library

            n_principles = len(load_library(self.config.library).principles)
        return FeaturesMaster.fitted(self.tree_weights, self.principle_weights, n_principles, self.config)

    def p_a_alone(self, diffs: np.ndarray) -> np.ndarray:
        """The twin's P(A better) from the pairs' feature differences."""
        return self.twin().p_a(self.margin(diffs)[:, None])

    def p_a(self, diffs: np.ndarray, tree_x: np.ndarray) -> np.ndarray:
        """P(A better) from the pair's feature differences and what its kind reads (`Kind.x`)."""
        if self.kind.reads_text:
            return self.estimator().p_a(tree_x)
        k = len(tree_x[0]) // len(FEATURES) if len(tree_x) else 0
        return self.estimator(k).p_a(features_x(self.margin(diffs), tree_x))

    def state(self) -> dict:
        """Everything but the config, as master.json holds it."""
        return {k: v for k, v in asdict(self).items() if k != "config"}

    @classmethod
    def from_state(cls, config: MasterConfig, state: dict) -> Master:
        return cls(config=config, **state)

    def save(self, out: Path) -> None:
        """Write the run directory `out` (config.json, master.json)."""
        write_run(out, asdict(self.config), self.state())

    @classmethod
    def load(cls, run_dir: str | Path) -> Master:
        config, state = read_run(run_dir)
        return cls.from_state(config, state)


def train_master(
    inputs: MasterInputs, cfg: MasterConfig, features=None, margin: MarginFit | None = None
) -> Master:
    """Fit the margin head, the twin and the master on gold pairs with what the config's kind reads (their
    trees, or for a cot-* kind their `reasoning`). `features`: the weak model's feature differences
    (the process's `shared_features(cfg)` by default); `margin`: a `fit_margin` of these same pairs and
    config, reused instead of fitted again."""
    kind = get_kind(cfg.kind)
    if (kind.reads == "reasoning") != (inputs.reasoning is not None):
        raise ValueError(
            f"a {cfg.kind} master {'reads' if kind.reads == 'reasoning' else 'does not read'} reasoning"
        )
    check_principle_weights(cfg.principle_weights)
    pairs = inputs.pairs
    y = gold_labels(pairs, cfg.folds)  # before the weak model loads
    features = features or shared_features(cfg)
    if margin is None:
        margin = fit_margin(pairs, features, cfg)
    elif len(margin.oof) != len(pairs):
        raise ValueError(f"the margin fit is of {len(margin.oof)} pairs, not these {len(pairs)}")
    x = kind.x(features, inputs)
    if kind.estimator is FeaturesMaster:
        est = FeaturesMaster(cfg).fit(features_x(margin.oof, x), y)
        oof_master = est.p_a(features_x(margin.oof, x))
        tree_scale, sharing, cv_loss = [], est.principle_weights_, est.cv_log_loss_
    else:
        est = kind.estimator(cfg).fit(x, y)
        oof_master = est.p_a(x)
        tree_scale, sharing, cv_loss = est.scale_.tolist(), "", {}
    data = data_hash(pairs, inputs.trees, inputs.reasoning)
    m = Master(
        config=cfg,
        run_id=run_id(cfg, data),
        margin_weights=margin.weights.tolist(),
        margin_scale=margin.scale.tolist(),
        twin_weight=margin.twin,
        tree_weights=est.coef_.tolist(),
        tree_scale=tree_scale,
        principle_weights=sharing,
    )
    oof_twin = TwinMaster.fitted(margin.twin).p_a(margin.oof[:, None])
    is_features = kind.estimator is FeaturesMaster
    m.metrics = {
        "train_pairs": len(pairs),
        "data_hash": data,
        "pair_ids_hash": hashlib.sha256("\n".join(p.id for p in pairs).encode()).hexdigest()[:12],
        # in-sample on the training pairs (the margin out-of-fold); test accuracy comes from `w2s annotate`
        "train_accuracy_twin": float(((oof_twin > 0.5) == (y == 1)).mean()),
        "train_accuracy_master": float(((oof_master > 0.5) == (y == 1)).mean()),
        "margin_weight": est.margin_weight_ if is_features else None,
        "trust": trust_table(est.coef_[1:], inputs.library, sharing) if is_features else [],
        "principle_weights_cv_log_loss": cv_loss,
    }
    return m
