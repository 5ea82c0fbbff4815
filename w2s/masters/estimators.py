"""The masters as estimators in the scikit-learn style: `fit(X, y)` returns the estimator, fitted
attributes end in `_`, and `predict_proba(X)` has two columns: column 0 is P(B better) (class 0), column 1
P(A better) (class 1), as `classes_ = [0, 1]` says. y is 1 where A is better (gold a), 0 where B is.

`FeaturesMaster` (docs/design.md#aligned-masters) is a logistic model over what the tree says plus
the aligned weak model's margin on the pair:

    P(A better) = σ( a·m + Σ_p [ w_p·v_p + x_p·v_p·exit_p + b_p·v_p·both_p + c_p·v_p·r_p ] )

with X's rows as `w2s.masters.features.features_x` builds them (column 0 the weak margin m, then the
4·K tree features). `principle_weights` sets how the weights are shared: one set per principle (above),
one set for every principle (w_p = w: a node's evidence counts the same whatever its principle),
`shrunk`, w_p = w + δ_p with the L2 penalty on δ_p pulling each principle toward the shared set, or
`none` (no tree weights: the master is its twin); `auto` picks one by cross-validation on the training
pairs, so a master whose trees do not lower the held-out log-loss falls back to its twin rather than add
their noise. Per-principle weights need data on every principle, and deeper trees spread their nodes
over more principles (docs/results/seam_domains.md).

There is no intercept and the training rows are used in both orders, so the master is antisymmetric in
A and B. A weight may be negative: the master can learn to *invert* a principle whose verdicts are
reliably wrong, or to ignore one (≈ 0). `TwinMaster` is the same logistic model on m alone (X one
column). Both choose their L2 strength by cross-validation (scikit-learn's LogisticRegressionCV).
"""

from __future__ import annotations

import numpy as np

from w2s.masters.config import FEATURES, PRINCIPLE_WEIGHTS, MasterConfig, check_principle_weights
from w2s.masters.features import design, principle_weight_rows
from w2s.masters.linear import cv_log_loss, fit_logistic, sigmoid, two_columns


class _Logistic:
    """What the masters share: a linear score, P(A better) its sigmoid."""

    classes_ = np.array([0, 1])
    coef_: np.ndarray

    def __init__(self, cfg: MasterConfig | None = None):
        self.cfg = cfg or MasterConfig()

    def _inputs(self, X: np.ndarray) -> np.ndarray:
        return np.asarray(X, dtype=float)

    def decision_function(self, X: np.ndarray) -> np.ndarray:
        """The score whose sigmoid is P(A better), one per row."""
        if not hasattr(self, "coef_"):
            raise ValueError(f"this {type(self).__name__} is not fitted: call fit(X, y) first")
        return self._inputs(X) @ self.coef_

    def p_a(self, X: np.ndarray) -> np.ndarray:
        """P(A better), one per row (`predict_proba(X)[:, 1]`)."""
        return sigmoid(self.decision_function(X))

    def predict_proba(self, X: np.ndarray) -> np.ndarray:
        """(n, 2): column 0 P(B better), column 1 P(A better)."""
        return two_columns(self.p_a(X))

    def predict(self, X: np.ndarray) -> np.ndarray:
        """1 where A is the more likely better, else 0."""
        return (self.p_a(X) > 0.5).astype(int)


class TwinMaster(_Logistic):
    """The no-tree twin ("aligned weak alone"): P(A better) = σ(w·m) on the weak margin m (X: one column).

    Fitted: `coef_` (shape (1,), w)."""

    def fit(self, X: np.ndarray, y: np.ndarray) -> TwinMaster:
        self.coef_ = fit_logistic(self._inputs(X), np.asarray(y, dtype=float), self.cfg.seed)
        return self

    @classmethod
    def fitted(cls, weight: float, cfg: MasterConfig | None = None) -> TwinMaster:
        """The twin of a stored weight."""
        twin = cls(cfg)
        twin.coef_ = np.array([float(weight)])
        return twin


class FeaturesMaster(_Logistic):
    """The features master over X = [m, tree features] (see the module docstring); `cfg.principle_weights`
    ('auto' or one of PRINCIPLE_WEIGHTS), `cfg.folds` and `cfg.seed` set how it is fitted.

    Fitted: `principle_weights_` (the sharing fitted: the config's, or the one `auto` chose),
    `cv_log_loss_` ({sharing: held-out log-loss}, when `auto` compared them), `coef_` (the margin weight,
    then the weights of `design(principle_weights_)`), `margin_weight_` (coef_[0]), `n_principles_` (K),
    `weights_` (K × 4: each principle's effective FEATURES weights) and `trust_` (K: their sums)."""

    def _inputs(self, X: np.ndarray) -> np.ndarray:
        X = np.asarray(X, dtype=float)
        k = (X.shape[1] - 1) // len(FEATURES)
        if X.shape[1] != 1 + k * len(FEATURES):
            raise ValueError(f"a features master's X has 1 + {len(FEATURES)}·K columns, not {X.shape[1]}")
        if hasattr(self, "n_principles_") and k != self.n_principles_:
            raise ValueError(f"this master was fitted on {self.n_principles_} principles; X has {k}")
        return self._design(X, getattr(self, "principle_weights_", "per-principle"))

    @staticmethod
    def _design(X: np.ndarray, principle_weights: str) -> np.ndarray:
        k = (X.shape[1] - 1) // len(FEATURES)
        return np.column_stack([X[:, 0], design(X[:, 1:], principle_weights, k)])

    def fit(self, X: np.ndarray, y: np.ndarray) -> FeaturesMaster:
        pw = self.cfg.principle_weights
        check_principle_weights(pw)
        X, y = np.asarray(X, dtype=float), np.asarray(y, dtype=float)
        for attr in ("n_principles_", "principle_weights_"):  # a refit starts afresh
            self.__dict__.pop(attr, None)
        self._inputs(X)  # the shape check
        candidates = PRINCIPLE_WEIGHTS if pw == "auto" else (pw,)
        inputs = {c: self._design(X, c) for c in candidates}
        cfg = self.cfg
        self.cv_log_loss_ = (
            {c: cv_log_loss(x, y, cfg.folds, cfg.seed) for c, x in inputs.items()} if len(inputs) > 1 else {}
        )
        sharing = min(self.cv_log_loss_, key=self.cv_log_loss_.get) if self.cv_log_loss_ else pw
        return self._set(
            fit_logistic(inputs[sharing], y, cfg.seed), sharing, (X.shape[1] - 1) // len(FEATURES)
        )

    def _set(self, coef: np.ndarray, principle_weights: str, k: int) -> FeaturesMaster:
        self.coef_ = np.asarray(coef, dtype=float)
        self.principle_weights_ = principle_weights
        self.n_principles_ = k
        self.margin_weight_ = float(self.coef_[0])
        self.weights_ = principle_weight_rows(self.coef_[1:], principle_weights, k)
        self.trust_ = self.weights_.sum(1)
        if not hasattr(self, "cv_log_loss_"):
            self.cv_log_loss_ = {}
        return self

    @classmethod
    def fitted(
        cls, coef, principle_weights: str, n_principles: int, cfg: MasterConfig | None = None
    ) -> FeaturesMaster:
        """A master of stored weights (as `Master.tree_weights` holds them)."""
        return cls(cfg)._set(np.asarray(coef, dtype=float), principle_weights, n_principles)
