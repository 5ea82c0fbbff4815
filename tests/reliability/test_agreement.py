import math

import numpy as np
import pytest
from sklearn.metrics import cohen_kappa_score

from w2s.labels.agreement import cohen_kappa, krippendorff_alpha, pairwise_kappa


def test_cohen_kappa_hand_computed():
    x = ["a", "a", "b", "b", "a"]
    y = ["a", "b", "b", "b", "a"]
    # p_o = 4/5 agree; x has a:3 b:2, y has a:2 b:3 -> p_e = (3*2 + 2*3) / 25 = 12/25
    # kappa = (4/5 - 12/25) / (1 - 12/25) = (8/25) / (13/25) = 8/13
    assert cohen_kappa(x, y) == pytest.approx(8 / 13)
    assert cohen_kappa(x, y) == pytest.approx(cohen_kappa_score(x, y))


def test_cohen_kappa_matches_sklearn_with_ties():
    rng = np.random.default_rng(0)
    x = list(rng.choice(["a", "b", "tie"], size=200))
    y = [v if rng.random() < 0.7 else str(rng.choice(["a", "b", "tie"])) for v in x]
    assert cohen_kappa(x, y) == pytest.approx(cohen_kappa_score(x, y))


def test_cohen_kappa_edges():
    assert cohen_kappa(["a", "b"], ["a", "b"]) == pytest.approx(1.0)
    assert cohen_kappa(["a", "b"], ["b", "a"]) == pytest.approx(-1.0)
    assert math.isnan(cohen_kappa([], []))
    assert math.isnan(cohen_kappa(["a", "a"], ["a", "a"]))  # no variation: undefined
    with pytest.raises(ValueError, match="length"):
        cohen_kappa(["a"], ["a", "b"])


def test_pairwise_kappa_uses_shared_units_only():
    units = {
        "p1": {"ann": "a", "bob": "a", "cy": "b"},
        "p2": {"ann": "b", "bob": "b"},
        "p3": {"ann": "a", "bob": "b", "cy": "a"},
        "p4": {"ann": "b", "cy": "b"},
    }
    k = pairwise_kappa(units)
    assert set(k) == {("ann", "bob"), ("ann", "cy"), ("bob", "cy")}
    # ann vs bob on p1..p3: a/a, b/b, a/b -> p_o = 2/3; ann a:2 b:1, bob a:1 b:2 -> p_e = 4/9
    assert k[("ann", "bob")] == pytest.approx((2 / 3 - 4 / 9) / (1 - 4 / 9))
    # ann vs cy on p1, p3, p4: a/b, a/a, b/b -> same counts as above
    assert k[("ann", "cy")] == pytest.approx((2 / 3 - 4 / 9) / (1 - 4 / 9))
    # bob vs cy on p1, p3: a/b, b/a -> p_o = 0, p_e = 1/2 -> -1
    assert k[("bob", "cy")] == pytest.approx(-1.0)
    assert pairwise_kappa({"p1": {"solo": "a"}}) == {}


def test_krippendorff_alpha_hand_computed():
    units = {
        "u1": {"x": "a", "y": "a"},
        "u2": {"x": "a", "y": "b"},
        "u3": {"x": "b", "y": "b"},
        "u4": {"x": "b", "y": "b"},
        "u5": {"x": "a"},  # one label: not pairable, drops out
    }
    # coincidences: o_aa = 2, o_ab = o_ba = 1, o_bb = 4; n_a = 3, n_b = 5, n = 8
    # D_o = 2/8; D_e = 2 * 3 * 5 / (8 * 7) = 30/56; alpha = 1 - (2/8) / (30/56) = 1 - 14/30 = 8/15
    assert krippendorff_alpha(units) == pytest.approx(8 / 15)


def test_krippendorff_alpha_matches_package_example():
    # the nominal example of the krippendorff package's docstring (coders x units, NaN = missing)
    nan = None
    data = [
        ["very low", "low", "mid", "mid", "low", "very low", "high", "very low", "low", nan, nan, nan],
        ["very low", "low", "mid", "mid", "low", "low", "high", "very low", "low", "very high", nan, "mid"],
        [nan, "mid", "mid", "mid", "low", "mid", "high", "low", "low", "very high", "very low", nan],
        [
            "very low",
            "low",
            "mid",
            "mid",
            "low",
            "high",
            "high",
            "very low",
            "low",
            "very high",
            "very low",
            nan,
        ],
    ]
    units = {
        f"u{j}": {f"c{i}": row[j] for i, row in enumerate(data) if row[j] is not None} for j in range(12)
    }
    assert krippendorff_alpha(units) == pytest.approx(0.743, abs=5e-4)


def test_krippendorff_alpha_undefined_cases():
    assert math.isnan(krippendorff_alpha({"u1": {"x": "a", "y": "a"}, "u2": {"x": "a", "y": "a"}}))
    assert math.isnan(krippendorff_alpha({"u1": {"x": "a"}, "u2": {"x": "b"}}))
    assert math.isnan(krippendorff_alpha({}))
    # variation only in unpairable units
    assert math.isnan(krippendorff_alpha({"u1": {"x": "a", "y": "a"}, "u2": {"x": "b"}}))
