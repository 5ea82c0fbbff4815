"""Annotation quality (docs/design.md#annotation-quality): accuracy vs gold with a Wilson 95% interval,
risky and good corrections relative to the naive weak labels, and tree statistics.

Pure functions take plain values; `evaluate_annotations` reads the store and returns a JSON-able dict.
"""

from __future__ import annotations

import math
from collections import defaultdict
from statistics import mean

from sqlmodel import Session, select

from w2s.store import Node, Pair, Tree, current_annotations, select_in

Z95 = 1.959963984540054


def wilson_interval(correct: int, n: int, z: float = Z95) -> tuple[float, float]:
    """Wilson score interval for a binomial proportion (well-behaved at 0, 1 and small n)."""
    if n == 0:
        return (0.0, 1.0)
    p = correct / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    return (max(0.0, centre - half), min(1.0, centre + half))


def corrections(baseline: dict[str, str], method: dict[str, str], gold: dict[str, str]) -> dict[str, int]:
    """Over pairs labelled by both: risky = baseline right -> method wrong; good = wrong -> right."""
    both = [pid for pid in method if pid in baseline and pid in gold]
    risky = sum(baseline[p] == gold[p] and method[p] != gold[p] for p in both)
    good = sum(baseline[p] != gold[p] and method[p] == gold[p] for p in both)
    return {"compared": len(both), "risky": risky, "good": good, "net": good - risky}


def evaluate_annotations(
    session: Session,
    *,
    dataset: str | None = None,
    split: str | None = None,
    baseline: str = "naive",
    pair_ids: set[str] | None = None,
) -> dict:
    """Figures per (dataset, method, annotator, producer) over pairs with gold 'a'/'b' (optionally only
    `pair_ids`): each config of a method (its producer) is its own row, and datasets are never pooled."""
    query = select(Pair.id, Pair.gold, Pair.dataset).where(Pair.gold.in_(("a", "b")))
    if dataset:
        query = query.where(Pair.dataset == dataset)
    if split:
        query = query.where(Pair.split == split)
    gold, dataset_of = {}, {}
    for pid, g, ds in session.exec(query):
        if pair_ids is None or pid in pair_ids:
            gold[pid], dataset_of[pid] = g, ds

    # canonical prompts only: variants are the reliability engineer's repeated measurements
    labels: dict[tuple[str, str, str, str], dict[str, str]] = defaultdict(dict)
    seconds: dict[tuple[str, str, str, str], list[float]] = defaultdict(list)
    producers: dict[str, dict] = {}
    for ann in current_annotations(session, include_variants=False):
        if ann.pair_id in gold and ann.annotator_kind == "model":
            group = (dataset_of[ann.pair_id], ann.method, ann.annotator, ann.producer)
            labels[group][ann.pair_id] = ann.label
            seconds[group].append(ann.seconds)
            producers.setdefault(ann.producer, (ann.meta or {}).get("producer", {}))

    base = {}
    for (_ds, method, _annotator, _producer), rows in labels.items():
        if method == baseline:
            base.update(rows)  # one naive labeller is the usual case; a later one wins on overlap

    differs = producer_differences(
        producers, {m: {g[3] for g in labels if g[1] == m} for _, m, _, _ in labels}
    )
    methods = []
    for (ds, method, annotator, producer), rows in sorted(labels.items()):
        n = len(rows)
        correct = sum(label == gold[p] for p, label in rows.items())
        lo, hi = wilson_interval(correct, n)
        covered = [p for p, label in rows.items() if label != "tie"]
        methods.append(
            {
                "dataset": ds,
                "method": method,
                "annotator": annotator,
                "producer": producer,
                "config": differs.get(producer, ""),
                "n": n,
                "correct": correct,
                "accuracy": correct / n if n else None,
                "ci95": [lo, hi],
                "coverage": len(covered) / n if n else None,
                "accuracy_covered": (sum(rows[p] == gold[p] for p in covered) / len(covered))
                if covered
                else None,
                "seconds_per_pair": mean(seconds[(ds, method, annotator, producer)]) if n else None,
                "vs_" + baseline: corrections(base, rows, gold) if method != baseline else None,
            }
        )
    return {
        "pairs_with_gold": len(gold),
        "baseline": baseline,
        "methods": methods,
        "trees": tree_stats(session, gold),
    }


def producer_differences(producers: dict[str, dict], by_method: dict[str, set[str]]) -> dict[str, str]:
    """For each producer, what sets it apart from the other producers of its method: 'top_k=3 weak_prune=False'."""
    out = {}
    for hashes in by_method.values():
        flat = {h: _flatten(producers.get(h, {})) for h in hashes}
        keys = sorted({k for f in flat.values() for k in f})
        varying = [k for k in keys if len({repr(f.get(k)) for f in flat.values()}) > 1]
        for h, f in flat.items():
            out[h] = " ".join(f"{k}={f.get(k)}" for k in varying)
    return out


def _flatten(d: dict, prefix: str = "") -> dict:
    out = {}
    for k, v in d.items():
        if isinstance(v, dict) and k == "options":
            out.update(_flatten(v))  # option names are the ones people type
        elif isinstance(v, dict):
            out.update(_flatten(v, f"{prefix}{k}."))
        else:
            out[prefix + k] = v
    return out


def exit_label(nodes: list[tuple[str, float]]) -> str | None:
    """The strong model's own answer in a tree: the verdict of its exit node ((role, p_a) in order)."""
    p_a = next((p for role, p in nodes if role == "exit"), None)
    if p_a is None:
        return None
    return "a" if p_a > 0.5 else "b" if p_a < 0.5 else "tie"


def decisive_exit_p_a(nodes: list[tuple[str, float]], tau_exit: float) -> float | None:
    """P(A) of the exit node when the search stopped on it (max(v) >= tau_exit: the verdict survived both
    orders), not the "last node exits both ways" tail of a search that ran out; None otherwise."""
    p_a = next((p for role, p in nodes if role == "exit"), None)
    return p_a if p_a is not None and max(p_a, 1 - p_a) >= tau_exit else None


def decisive_exit_label(nodes: list[tuple[str, float]], tau_exit: float) -> str | None:
    """The label of `decisive_exit_p_a` (None when the search did not stop on an exit)."""
    p_a = decisive_exit_p_a(nodes, tau_exit)
    return None if p_a is None else exit_label([("exit", p_a)])


def tree_stats(session: Session, gold: dict[str, str]) -> list[dict]:
    """Per (strong model, config): size, cost and stop reasons of the trees; `answer_accuracy`, how often
    the exit node's verdict (the tree's answer, the tail exit included) matches gold, over the
    `answer_coverage` share of trees that have an exit node; and `exit_accuracy` over the `exit_coverage`
    share whose search stopped on a decisive verdict (`decisive_exit_label`)."""
    groups: dict[tuple[str, str], list[Tree]] = defaultdict(list)
    for tree in session.exec(select(Tree)):
        if tree.pair_id in gold:
            groups[(tree.strong_model, tree.config_hash)].append(tree)
    out = []
    for (strong, config_hash), trees in sorted(groups.items()):
        ids = [t.id for t in trees]
        roles: dict[str, int] = defaultdict(int)
        n_nodes = 0
        by_tree: dict[int, list[tuple[str, float]]] = defaultdict(list)
        query = select(Node.tree_id, Node.role, Node.p_a).order_by(Node.position)
        for tree_id, role, p_a in select_in(session, query, Node.tree_id, ids):
            roles[role] += 1
            n_nodes += 1
            by_tree[tree_id].append((role, p_a))
        answers = {t.pair_id: exit_label(by_tree[t.id]) for t in trees}
        exits = {t.pair_id: decisive_exit_label(by_tree[t.id], t.config.get("tau_exit", 0.75)) for t in trees}
        out.append(
            {
                "strong_model": strong,
                "config_hash": config_hash,
                "trees": len(trees),
                "mean_depth": mean(t.depth for t in trees),
                "mean_backtraces": mean(t.backtraces for t in trees),
                "mean_nodes": n_nodes / len(trees),
                "mean_tokens": mean(t.tokens for t in trees),
                "mean_seconds": mean(t.seconds for t in trees),
                "roles": dict(roles),
                "stops": _count(t.config.get("stop", "?") for t in trees),
                # over the trees whose search kept an exit node; a search that backtracked on every node has none
                **_coverage("answer", answers, gold, len(trees)),
                **_coverage("exit", exits, gold, len(trees)),
            }
        )
    return out


def _coverage(name: str, labels: dict[str, str | None], gold: dict[str, str], n: int) -> dict:
    answered = [p for p, label in labels.items() if label is not None]
    return {
        f"{name}_coverage": len(answered) / n,
        f"{name}_accuracy": mean(labels[p] == gold[p] for p in answered) if answered else None,
    }


def _count(values) -> dict[str, int]:
    counts: dict[str, int] = defaultdict(int)
    for v in values:
        counts[v] += 1
    return dict(counts)
