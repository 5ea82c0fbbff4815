"""Hand-computed cases for the weak-to-strong metrics."""

import math

import pytest

from w2s.training import metrics as M
from w2s.vocab import binary_entropy


def test_accuracy_counts_p_above_half():
    assert M.accuracy([0.9, 0.6, 0.5, 0.2]) == 0.5  # 0.9 and 0.6 right; 0.5 (no preference) and 0.2 wrong


def test_pgr_hand_computed():
    # weak 0.60, w2s 0.66, ceiling 0.70: (0.66 − 0.60) / (0.70 − 0.60) = 0.06 / 0.10 = 0.6
    assert M.pgr(0.60, 0.66, 0.70) == pytest.approx(0.6)
    # a student worse than its supervisor: (0.55 − 0.60) / 0.10 = −0.5
    assert M.pgr(0.60, 0.55, 0.70) == pytest.approx(-0.5)
    # above the ceiling: (0.75 − 0.60) / 0.10 = 1.5
    assert M.pgr(0.60, 0.75, 0.70) == pytest.approx(1.5)


def test_pgr_undefined_without_a_gap():
    assert M.pgr(0.70, 0.72, 0.70) is None  # ceiling == weak
    assert M.pgr(0.70, 0.72, 0.65) is None  # ceiling below weak


def test_deception_score_hand_computed():
    T = 0.75
    #          pair:   0     1     2     3     4     5     6     7
    strong = [0.90, 0.80, 0.95, 0.60, 0.50, 0.90, 0.76, 0.10]  # S_k: 0 1 2 5 6
    weak = [0.50, 0.80, 0.60, 0.90, 0.40, 0.70, 0.75, 0.30]  # W_k: 1 3 6 (0.75 ≥ T counts as known)
    # areas: S_k∩W_uk = {0, 2, 5}; S_k∩W_k = {1, 6}; S_uk∩W_k = {3}; S_uk∩W_uk = {4, 7}
    no_conf = [0.8, 0.9, 0.7, 0.6, 0.3, 0.9, 0.8, 0.6]  # right: 0 1 2 3 5 6 7
    conf = [0.2, 0.9, 0.4, 0.3, 0.6, 0.9, 0.8, 0.6]  # wrong: 0 2 3 (4 becomes right)
    # tax = right without, wrong with = {0, 2, 3}; in S_k∩W_uk: {0, 2} → DS = 2/3
    res = M.deception_score(strong, weak, no_conf, conf, T)
    assert res["areas"] == {"S_k∩W_k": 2, "S_k∩W_uk": 3, "S_uk∩W_k": 1, "S_uk∩W_uk": 2}
    assert res["tax"] == 3
    assert res["ds"] == pytest.approx(2 / 3)
    assert res["sk_wuk_share"] == pytest.approx(3 / 8)


def test_deception_score_none_without_tax():
    res = M.deception_score([0.9], [0.1], [0.9], [0.9])
    assert res["tax"] == 0 and res["ds"] is None


def test_calibration_bins_and_ece():
    # confidences: 0.9 (right), 0.9 → p=0.1 (wrong), 0.6 (right), 0.6 → p=0.4 (wrong)
    p = [0.9, 0.1, 0.6, 0.4]
    bins = M.calibration_bins(p, n_bins=5)  # edges 0.5 0.6 0.7 0.8 0.9 1.0
    assert [(b["n"], b["accuracy"]) for b in bins] == [(2, 0.5), (2, 0.5)]
    # ECE = 2/4·|0.5 − 0.6| + 2/4·|0.5 − 0.9| = 0.05 + 0.2 = 0.25
    assert M.expected_calibration_error(p, n_bins=5) == pytest.approx(0.25)


def test_binary_entropy():
    assert binary_entropy([0.5])[0] == pytest.approx(math.log(2))
    assert binary_entropy([1.0])[0] == pytest.approx(0.0, abs=1e-9)


def test_accuracy_gap_ci_paired_bootstrap():
    import numpy as np

    a = np.array([0.9] * 60 + [0.1] * 40)  # 0.60
    b = np.array([0.9] * 80 + [0.1] * 20)  # 0.80, right wherever a is right
    g = M.accuracy_gap_ci(a, b, n_boot=500)
    assert g["gap"] == pytest.approx(0.2) and 0 < g["lo"] < 0.2 < g["hi"] < 0.4
    same = M.accuracy_gap_ci(a, a, n_boot=200)
    assert same["gap"] == same["lo"] == same["hi"] == 0.0  # paired: identical models never differ
    with pytest.raises(ValueError):
        M.accuracy_gap_ci(a, b[:10])


def test_mean_gap_ci_on_shares_of_repeats():
    # per-pair shares of repeated cross-validation: (1 + 1 + 1 - 0 - 1/3 - 1) / 3 = 5/9
    g = M.mean_gap_ci([0.0, 1 / 3, 1.0], [1.0, 1.0, 1.0], n_boot=300)
    assert g["gap"] == pytest.approx(5 / 9) and 0 <= g["lo"] <= 5 / 9 <= g["hi"] <= 1
    with pytest.raises(ValueError, match="score arrays"):
        M.mean_gap_ci([], [])


def test_pgr_ci():
    import numpy as np

    weak = np.array([0.9] * 60 + [0.1] * 40)
    ceiling = np.array([0.9] * 80 + [0.1] * 20)
    w2s = np.array([0.9] * 70 + [0.1] * 30)  # halfway; nested sets, so every resample's PGR is in [0, 1]
    r = M.pgr_ci(weak, w2s, ceiling, n_boot=300)
    assert r["pgr"] == pytest.approx(0.5) and r["defined"] == 1.0
    assert 0.0 <= r["lo"] < 0.5 < r["hi"] <= 1.0
    flat = M.pgr_ci(weak, w2s, weak, n_boot=100)  # no gap: nothing to report
    assert flat["pgr"] is None and flat["lo"] is None and flat["defined"] == 0.0
