import numpy as np
import pytest

from w2s.labels.aggregate import (
    Vote,
    aggregate,
    argmax_label,
    dawid_skene,
    majority_label,
    parse_weights,
)
from w2s.vocab import label_from_p_a


def synthetic_crowd(accuracies: dict[str, float], n_tasks: int = 400, seed: int = 0):
    """Binary tasks with a known truth; worker w answers right with probability accuracies[w]."""
    rng = np.random.default_rng(seed)
    truth = {f"t{i:04d}": str(rng.choice(["a", "b"])) for i in range(n_tasks)}
    votes = []
    for task, y in truth.items():
        for w, acc in accuracies.items():
            right = rng.random() < acc
            votes.append(Vote(task, w, y if right else ("b" if y == "a" else "a")))
    return truth, votes


def accuracy(labels, truth) -> float:
    return float(np.mean([pl.label == truth[pl.pair_id] for pl in labels]))


def test_majority_and_tie_policy():
    assert majority_label(["a", "a", "b"]) == "a"
    assert majority_label(["a", "b"]) == "tie"  # a draw is a tie, never a coin flip
    assert majority_label(["a", "b", "tie", "tie"]) == "tie"
    assert majority_label(["b", "b", "tie"]) == "b"
    assert label_from_p_a(0.5) == "tie"
    assert label_from_p_a(0.51) == "a"
    assert argmax_label({"a": 0.4, "b": 0.4, "tie": 0.2}) == "tie"
    with pytest.raises(ValueError):
        majority_label([])


def test_aggregate_majority_soft_hand_computed():
    votes = [
        Vote("p1", "w1", "a", p_a=0.9),
        Vote("p1", "w2", "a", p_a=0.6),
        Vote("p1", "w3", "b", p_a=0.2),
        Vote("p2", "w1", "a"),
        Vote("p2", "w2", "b"),
        Vote("p3", "w1", "b", p_a=0.45),
        Vote("p3", "w2", "tie"),
    ]
    maj = {pl.pair_id: pl for pl in aggregate(votes, "majority", temperature=0.2)}
    assert maj["p1"].label == "a"
    assert maj["p1"].soft_label == pytest.approx(2 / 3)
    assert maj["p1"].n_votes == 3
    assert maj["p1"].votes == {"a": 2, "b": 1}
    # p = (2/3, 1/3): w_a = 1 / (1 + exp(-(1/3) / 0.2)) = 1 / (1 + e^(-5/3))
    assert maj["p1"].weight == pytest.approx(1 / (1 + np.exp(-5 / 3)))
    assert maj["p1"].entropy == pytest.approx(-(2 / 3 * np.log(2 / 3) + 1 / 3 * np.log(1 / 3)))
    assert maj["p2"].label == "tie" and maj["p2"].soft_label == 0.5 and maj["p2"].weight == pytest.approx(0.5)
    assert maj["p3"].label == "tie"  # b vs tie draw
    assert maj["p3"].soft_label == pytest.approx(0.25)

    soft = {pl.pair_id: pl for pl in aggregate(votes, "soft", temperature=None)}
    # soft vote uses the recorded P(A): (0.9 + 0.6 + 0.2) / 3
    assert soft["p1"].soft_label == pytest.approx(1.7 / 3) and soft["p1"].label == "a"
    assert soft["p2"].label == "tie"
    # p3: 0.45 and tie (no p_a recorded -> 0.5): mean 0.475 -> b
    assert soft["p3"].soft_label == pytest.approx(0.475) and soft["p3"].label == "b"
    assert all(pl.weight == 1.0 for pl in soft.values())


def test_bad_votes_and_specs():
    with pytest.raises(ValueError, match="label 'x'"):
        aggregate([Vote("p1", "w", "x")])
    with pytest.raises(ValueError, match="unknown aggregation"):
        aggregate([], method="median")
    assert parse_weights("softmax:0.5") == 0.5
    assert parse_weights("softmax") == 0.2
    assert parse_weights("none") is None
    for bad in ("softmax:0", "softmax:x", "linear"):
        with pytest.raises(ValueError):
            parse_weights(bad)


def test_dawid_skene_recovers_known_accuracies():
    accs = {"w0": 0.9, "w1": 0.85, "w2": 0.8, "w3": 0.75, "w4": 0.7, "w5": 0.6, "w6": 0.55}
    _, votes = synthetic_crowd(accs, n_tasks=2000, seed=1)
    result = dawid_skene(votes)
    est = result.worker_accuracy()
    # sampling noise of one worker's accuracy over 2000 tasks is ~0.01; EM adds a little
    for w, acc in accs.items():
        assert est[w] == pytest.approx(acc, abs=0.035), (w, est[w], acc)
    # posteriors are distributions
    for post in result.posteriors.values():
        assert sum(post.values()) == pytest.approx(1.0)


def test_dawid_skene_beats_majority_with_adversaries():
    # two adversarial workers (systematically wrong) and three weak-but-honest ones
    accs = {"h0": 0.75, "h1": 0.7, "h2": 0.7, "adv0": 0.15, "adv1": 0.2}
    truth, votes = synthetic_crowd(accs, n_tasks=500, seed=2)
    maj = accuracy(aggregate(votes, "majority"), truth)
    ds_labels = aggregate(votes, "dawid-skene")
    ds = accuracy(ds_labels, truth)
    assert ds > maj + 0.1, (ds, maj)
    assert ds > 0.9
    est = dawid_skene(votes).worker_accuracy()
    assert est["adv0"] == pytest.approx(0.15, abs=0.05)
    assert est["h0"] == pytest.approx(0.75, abs=0.05)
    # the soft label is the posterior P(A) (no ties in this crowd)
    for pl in ds_labels:
        assert (pl.soft_label > 0.5) == (pl.label == "a")


def test_variants_are_workers_of_their_own():
    # a position-biased model: its canonical variant always says 'a', its swapped variant always 'b'
    # (mapped back), an honest worker is 80% right. DS learns the two variants carry no information.
    rng = np.random.default_rng(3)
    votes, truth = [], {}
    for i in range(300):
        t, y = f"t{i}", str(rng.choice(["a", "b"]))
        truth[t] = y
        votes += [Vote(t, "m", "a"), Vote(t, "m@swap", "b")]
        votes.append(Vote(t, "human", y if rng.random() < 0.8 else ("b" if y == "a" else "a")))
    ds = accuracy(aggregate(votes, "dawid-skene"), truth)
    assert ds == pytest.approx(0.8, abs=0.06)
