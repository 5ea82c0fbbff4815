"""The logistic models every master is made of: L2, no intercept, fitted on both A/B orders."""

from __future__ import annotations

import numpy as np


def sigmoid(z: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-np.clip(z, -50, 50)))


def mirrored(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The rows in both A/B orders: features are odd under the swap, so (x, y) -> (−x, 1 − y)."""
    return np.vstack([x, -x]), np.concatenate([y, 1 - y])


def fit_logistic(x: np.ndarray, y: np.ndarray, seed: int) -> np.ndarray:
    """Weights of an L2 logistic model without intercept, strength by 5-fold CV on log-loss."""
    from sklearn.linear_model import LogisticRegressionCV

    xs, ys = mirrored(x, y)
    model = LogisticRegressionCV(
        Cs=10,
        cv=5,
        fit_intercept=False,
        scoring="neg_log_loss",
        max_iter=2000,
        random_state=seed,
        l1_ratios=(0.0,),
        use_legacy_attributes=False,
    )
    model.fit(xs, ys)
    return model.coef_[0]


def cv_log_loss(x: np.ndarray, y: np.ndarray, folds: int, seed: int) -> float:
    """Mean held-out log-loss of `fit_logistic` over stratified folds (how `auto` compares sharings)."""
    from sklearn.metrics import log_loss
    from sklearn.model_selection import StratifiedKFold

    losses = [
        log_loss(y[held], sigmoid(x[held] @ fit_logistic(x[fit_idx], y[fit_idx], seed)), labels=[0, 1])
        for fit_idx, held in StratifiedKFold(folds, shuffle=True, random_state=seed).split(x, y)
    ]
    return float(np.mean(losses))


def standardise(d: np.ndarray) -> np.ndarray:
    """Scale feature differences to unit RMS per dimension (no centring: the differences stay odd)."""
    return np.sqrt((d**2).mean(0)) + 1e-8


def two_columns(p_a: np.ndarray) -> np.ndarray:
    """`predict_proba`'s (n, 2) from P(A better): column 0 is P(B better) (class 0), column 1 P(A better)."""
    return np.column_stack([1.0 - p_a, p_a])
