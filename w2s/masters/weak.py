"""The weak side of a master: h(prompt, response) from the weak model's frozen features, and the margin
m = wᵀ(h(prompt, A) − h(prompt, B)), a Bradley–Terry head fitted on the gold pairs (out-of-fold for the
master's own fit, so that the master does not learn to over-trust an over-fitted margin)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from w2s.masters.config import MasterConfig
from w2s.masters.estimators import TwinMaster
from w2s.masters.features import gold_labels
from w2s.masters.linear import fit_logistic, standardise
from w2s.store import Pair


class WeakFeatures:
    """h(prompt, response): the weak model's pooled hidden state, from `w2s.training`'s frozen reward
    model (its cache computes each text once per process). Called on pairs, it gives one row of
    h(prompt, A) − h(prompt, B) per pair."""

    def __init__(self, cfg: MasterConfig):
        import torch

        from w2s.training.config import RewardConfig
        from w2s.training.models import build_model

        self.cfg = cfg
        rm = RewardConfig(
            model=cfg.weak,
            freeze_backbone=True,
            pooling=cfg.pooling,
            max_length=cfg.max_length,
            seed=cfg.seed,
        )
        self.tok, self.model = build_model(rm)
        self.model.eval()
        self.torch = torch

    def __call__(self, pairs: Sequence[Pair], prompts: Sequence[str] | None = None) -> np.ndarray:
        """h(prompt, A) − h(prompt, B), one row per pair (`prompts` replace the pairs' own)."""
        from w2s.training.data import encode_pair_side, pad_batch

        prompts = prompts if prompts is not None else [p.prompt for p in pairs]
        seqs = [
            encode_pair_side(self.tok, q, r, self.cfg.max_length)[0]
            for p, q in zip(pairs, prompts)
            for r in (p.response_a, p.response_b)
        ]
        pad = self.tok.pad_token_id
        self.model.fill(seqs, pad, batch_size=8)
        feats = []
        with self.torch.no_grad():
            for i in range(0, len(seqs), 64):
                ids, mask = pad_batch(seqs[i : i + 64], pad)
                feats.append(self.model.cached_pooled(ids, mask).float().numpy())
        h = np.concatenate(feats)
        return h[0::2] - h[1::2]


_SHARED: dict[tuple, WeakFeatures] = {}


def shared_features(cfg: MasterConfig) -> WeakFeatures:
    """The process's one `WeakFeatures` of the config's weak model, pooling and length: every master
    trained or applied here then reads each text once (e.g. across the folds of a cross-validation)."""
    key = (cfg.weak, cfg.pooling, cfg.max_length)
    if key not in _SHARED:
        _SHARED[key] = WeakFeatures(cfg)
    return _SHARED[key]


@dataclass
class MarginFit:
    """The part of a master that reads the pair alone: the weak margin's head and the twin. It depends on
    the training pairs, the weak model and `folds`/`seed` only, so masters of other tree configs or weight
    sharings on the same pairs can share one (bench/master_cv.py does)."""

    scale: np.ndarray
    weights: np.ndarray
    oof: np.ndarray
    """Out-of-fold margins on the training pairs: what the master learns its margin weight from."""
    twin: float


def fit_margin(pairs: Sequence[Pair], features, cfg: MasterConfig) -> MarginFit:
    """The margin head on the pairs' feature differences, its out-of-fold margins, and the twin on them."""
    from sklearn.model_selection import StratifiedKFold

    y = gold_labels(pairs, cfg.folds)
    diffs = features(pairs)
    scale = standardise(diffs)
    z = diffs / scale
    # out-of-fold margins: what the master sees at test time is a margin on pairs the head never saw
    oof = np.zeros(len(pairs))
    for fit_idx, held in StratifiedKFold(cfg.folds, shuffle=True, random_state=cfg.seed).split(z, y):
        w = fit_logistic(z[fit_idx], y[fit_idx], cfg.seed)
        oof[held] = z[held] @ w
    twin = TwinMaster(cfg).fit(oof[:, None], y)
    return MarginFit(scale=scale, weights=fit_logistic(z, y, cfg.seed), oof=oof, twin=float(twin.coef_[0]))
