"""Several answers per pair -> one label per pair: majority vote, soft vote, Dawid–Skene.

Humans, models and prompt variants are all "workers": a worker is one (method, annotator, producer,
variant) (w2s.vocab.worker_key), so the A/B-swapped variant of a model gets its own confusion matrix in
Dawid–Skene (position bias flips with the swap), and so does each config of a method.

Tie policy (the same for every method, never random, so a rebuild gives the same label set):
- a draw between the top labels gives the label 'tie' (majority: equal top counts; soft vote:
  mean P(A) exactly 0.5; Dawid–Skene: equal top posteriors). A 'tie' vote counts as half A, half B in
  the soft label, and is a label of its own in the answer distribution, the entropy and Dawid–Skene.
- 'tie' labels are kept in the label set; export skips them (a tie names no chosen response).

Every method also returns the empirical answer distribution's entropy and the reliability weight of
the chosen label (w2s.labels.reliability), so that filtering and re-weighting work on top of any method.
"""

from __future__ import annotations

import math
import warnings
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from w2s.labels.reliability import answer_distribution, reliability_weights
from w2s.vocab import LABELS, TIE_EPS, entropy, label_from_p_a, p_a_of, worker_key

METHODS = ("majority", "soft", "dawid-skene")


@dataclass(frozen=True)
class Vote:
    """One answer: `p_a` is the worker's P(A is better) when it recorded one (soft vote uses it)."""

    pair_id: str
    worker: str
    label: str
    p_a: float | None = None

    def prob_a(self) -> float:
        return p_a_of(self.label, p_a=self.p_a)


@dataclass
class PairLabel:
    """The aggregate of one pair, as the LabelSet table stores it."""

    pair_id: str
    label: str
    soft_label: float  # P(A is better)
    entropy: float  # of the empirical answer distribution, nats
    weight: float  # reliability weight of `label` (1.0 without re-weighting)
    n_votes: int
    votes: dict[str, int] = field(default_factory=dict)  # answer -> count
    answer_weights: dict[str, float] = field(default_factory=dict)  # answer -> softmax weight


# ------------------------------------------------------------------------------------- per-pair rules


def majority_label(labels: Sequence[str]) -> str:
    """The most frequent label; a draw between the top labels is 'tie'."""
    counts = Counter(labels).most_common()
    if not counts:
        raise ValueError("majority_label: no labels")
    top = [k for k, c in counts if c == counts[0][1]]
    return top[0] if len(top) == 1 else "tie"


def soft_label_of(labels: Sequence[str]) -> float:
    """P(A) from hard labels: a = 1, b = 0, tie = 1/2, averaged."""
    return sum(p_a_of(x) for x in labels) / len(labels)


def argmax_label(posterior: Mapping[str, float]) -> str:
    """The label of highest posterior; a draw at the top is 'tie'."""
    best = max(posterior.values())
    top = [k for k, p in posterior.items() if best - p <= TIE_EPS]
    return top[0] if len(top) == 1 else "tie"


# ------------------------------------------------------------------------------------- Dawid–Skene


@dataclass
class DawidSkeneResult:
    posteriors: dict[str, dict[str, float]]  # pair_id -> {label: P(true label)}
    errors: dict[str, dict[tuple[str, str], float]]  # worker -> {(observed, true): P(observed | true)}
    priors: dict[str, float]

    def worker_accuracy(self) -> dict[str, float]:
        """P(worker's answer = true label) = sum_c prior_c P(observed = c | true = c)."""
        return {
            w: sum(self.priors[c] * err.get((c, c), 0.0) for c in self.priors)
            for w, err in self.errors.items()
        }


def dawid_skene(votes: Sequence[Vote], n_iter: int = 100, tol: float = 1e-5) -> DawidSkeneResult:
    """Dawid & Skene (1979) by EM, through crowd-kit's `DawidSkene` (initialised from majority vote)."""
    import pandas as pd
    from crowdkit.aggregation import DawidSkene

    if not votes:
        return DawidSkeneResult({}, {}, {})
    df = pd.DataFrame(
        {
            "task": [v.pair_id for v in votes],
            "worker": [v.worker for v in votes],
            "label": [v.label for v in votes],
        }
    )
    model = DawidSkene(n_iter=n_iter, tol=tol)
    with warnings.catch_warnings():  # crowd-kit 1.4.2 uses pandas keywords that pandas 4 will remove
        warnings.simplefilter("ignore", getattr(pd.errors, "Pandas4Warning", DeprecationWarning))
        probas = model.fit_predict_proba(df)
    labels = [str(c) for c in probas.columns]
    posteriors = {
        str(task): dict(zip(labels, map(float, row))) for task, row in zip(probas.index, probas.to_numpy())
    }
    errors: dict[str, dict[tuple[str, str], float]] = defaultdict(dict)
    for (worker, observed), row in model.errors_.iterrows():
        for true, p in row.items():
            errors[str(worker)][(str(observed), str(true))] = float(p)
    priors = {str(k): float(v) for k, v in model.priors_.items()}
    return DawidSkeneResult(posteriors, dict(errors), priors)


# ------------------------------------------------------------------------------------- aggregate


def group_votes(votes: Iterable[Vote]) -> dict[str, list[Vote]]:
    by_pair: dict[str, list[Vote]] = defaultdict(list)
    for v in votes:
        if v.label not in LABELS:
            raise ValueError(
                f"vote on pair {v.pair_id} by {v.worker}: label {v.label!r} is not 'a', 'b' or 'tie'"
            )
        by_pair[v.pair_id].append(v)
    return dict(by_pair)


def aggregate(
    votes: Iterable[Vote], method: str = "majority", temperature: float | None = 0.2
) -> list[PairLabel]:
    """One PairLabel per pair (sorted by pair id). `temperature=None` turns re-weighting off (weight 1)."""
    if method not in METHODS:
        raise ValueError(f"unknown aggregation method {method!r}; choose one of {', '.join(METHODS)}")
    by_pair = group_votes(votes)
    ds = dawid_skene([v for vs in by_pair.values() for v in vs]) if method == "dawid-skene" else None
    out = []
    for pair_id in sorted(by_pair):
        vs = by_pair[pair_id]
        labels = [v.label for v in vs]
        if method == "majority":
            label, soft = majority_label(labels), soft_label_of(labels)
        elif method == "soft":
            soft = sum(v.prob_a() for v in vs) / len(vs)
            label = label_from_p_a(soft)
        else:
            post = ds.posteriors[pair_id]
            label, soft = argmax_label(post), post.get("a", 0.0) + 0.5 * post.get("tie", 0.0)
        dist = answer_distribution(labels)
        weights = reliability_weights(dist, temperature) if temperature is not None else {}
        weight = 1.0 if temperature is None else weights.get(label, max(weights.values()))
        out.append(
            PairLabel(
                pair_id=pair_id,
                label=label,
                soft_label=soft,
                entropy=entropy(dist),
                weight=weight,
                n_votes=len(vs),
                votes=dict(Counter(labels)),
                answer_weights=weights,
            )
        )
    return out


def parse_weights(spec: str) -> float | None:
    """'softmax:T' -> T, 'softmax' -> 0.2, 'none' -> None."""
    spec = spec.strip().lower()
    if spec == "none":
        return None
    if spec == "softmax":
        return 0.2
    if spec.startswith("softmax:"):
        try:
            t = float(spec.split(":", 1)[1])
        except ValueError:
            t = math.nan
        if not t > 0:
            raise ValueError(f"--weights {spec!r}: the temperature after 'softmax:' must be a number > 0")
        return t
    raise ValueError(f"--weights {spec!r}: write softmax:T (e.g. softmax:0.2) or none")


# ------------------------------------------------------------------------------------- the store


def votes_from_store(
    session,
    *,
    annotators: Sequence[str] | None = None,
    methods: Sequence[str] | None = None,
    include_variants: bool = True,
) -> list[Vote]:
    """Current annotations (not superseded, not retracted) as votes, optionally filtered."""
    from w2s.store import current_annotations

    votes = []
    for ann in current_annotations(session, include_variants=include_variants):
        if annotators and ann.annotator not in annotators:
            continue
        if methods and ann.method not in methods:
            continue
        worker = worker_key(ann.method, ann.annotator, ann.variant, ann.producer)
        votes.append(Vote(ann.pair_id, worker, ann.label, ann.p_a))
    return votes


@dataclass
class BuildReport:
    name: str
    method: str
    n_pairs: int  # pairs with at least one vote
    n_written: int  # rows in the label set
    n_filtered: int  # dropped by uncertainty filtering
    n_ties: int
    entropy_threshold: float | None


def build_label_set(
    session,
    *,
    name: str = "default",
    method: str = "majority",
    temperature: float | None = 0.2,
    filter_percentile: float | None = None,
    annotators: Sequence[str] | None = None,
    methods: Sequence[str] | None = None,
    include_variants: bool = True,
) -> BuildReport:
    """Materialise the label set `name`: its old rows are replaced in the caller's transaction, so a
    rebuild is idempotent and a failure leaves the previous set in place. Label sets are derived data."""
    from sqlmodel import delete

    from w2s.labels.reliability import entropy_threshold, filter_by_entropy
    from w2s.store import LabelSet

    votes = votes_from_store(
        session, annotators=annotators, methods=methods, include_variants=include_variants
    )
    labels = aggregate(votes, method=method, temperature=temperature)
    threshold, kept = None, labels
    if filter_percentile is not None and labels:
        entropies = {pl.pair_id: pl.entropy for pl in labels}
        threshold = entropy_threshold(entropies.values(), filter_percentile)
        keep = filter_by_entropy(entropies, filter_percentile)
        kept = [pl for pl in labels if pl.pair_id in keep]
    params = {
        "method": method,
        "temperature": temperature,
        "filter_percentile": filter_percentile,
        "entropy_threshold": threshold,
        "annotators": list(annotators or []),
        "methods": list(methods or []),
        "include_variants": include_variants,
    }
    session.exec(delete(LabelSet).where(LabelSet.name == name))
    session.add_all(
        LabelSet(
            name=name,
            pair_id=pl.pair_id,
            label=pl.label,
            soft_label=pl.soft_label,
            entropy=pl.entropy,
            weight=pl.weight,
            n_votes=pl.n_votes,
            method=method,
            params={**params, "votes": pl.votes, "answer_weights": pl.answer_weights},
        )
        for pl in kept
    )
    session.flush()
    return BuildReport(
        name,
        method,
        len(labels),
        len(kept),
        len(labels) - len(kept),
        sum(pl.label == "tie" for pl in kept),
        threshold,
    )
