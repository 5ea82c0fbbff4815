import math

import pytest

from w2s.labels.calibration import Bucket, confusion, entropy_buckets, plot_entropy_accuracy, plot_heatmap


def test_buckets_per_distinct_value():
    h = [0.0, 0.0, 0.673, 0.5, 0.673, 0.0]
    ok = [True, True, False, True, True, False]
    b = entropy_buckets(h, ok, n_buckets=5)
    assert [(x.lo, x.n, x.correct) for x in b] == [(0.0, 3, 2), (0.5, 1, 1), (0.673, 2, 1)]
    assert b[0].accuracy == pytest.approx(2 / 3) and b[2].name == "0.673"


def test_equal_width_buckets():
    h = [0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6]
    ok = [True, True, True, False, True, False, False]
    b = entropy_buckets(h, ok, n_buckets=3)  # width 0.2: [0, .2), [.2, .4), [.4, .6]
    assert [(x.n, x.correct) for x in b] == [(2, 2), (2, 1), (3, 1)]
    assert b[2].hi == pytest.approx(0.6)
    assert entropy_buckets([], []) == []
    assert math.isnan(Bucket(0.0, 1.0, 0, 0).accuracy)  # an empty bucket has no accuracy
    with pytest.raises(ValueError):
        entropy_buckets([0.1], [])


def test_confusion_and_plots(tmp_path):
    c = confusion(["a", "a", "b", "tie"], ["a", "b", "b", "a"])
    assert c == [[1, 1, 0], [0, 1, 0], [1, 0, 0]]
    plot_heatmap(c, tmp_path / "h.png")
    plot_entropy_accuracy(entropy_buckets([0.0, 0.5], [True, False]), tmp_path / "e.png")
    for name in ("h.png", "e.png"):
        assert (tmp_path / name).read_bytes()[:4] == b"\x89PNG"
