"""Admin dashboard figures: progress, agreement, pruning statistics, exports. Plain functions over a session."""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from pathlib import Path

from sqlmodel import Session, select

from w2s.labels.evidence_first import Decision, reliance_report, report_row
from w2s.labels.quality import exit_label
from w2s.store import (
    Annotation,
    LabelSet,
    Node,
    Pair,
    QueueItem,
    QueuePool,
    User,
    current_annotations,
    export,
    select_in,
)


def human_annotations(session: Session) -> list[Annotation]:
    return [a for a in current_annotations(session, method="human") if a.annotator_kind == "human"]


def units(anns: list[Annotation]) -> dict[str, dict[str, str]]:
    """pair_id -> {annotator -> label}, the input of the agreement measures."""
    out: dict[str, dict[str, str]] = defaultdict(dict)
    for a in anns:
        out[a.pair_id][a.annotator] = a.label
    return dict(out)


def weak_majority(session: Session) -> dict[str, str]:
    """The weak model's majority label per pair (over its methods and prompt variants)."""
    votes: dict[str, Counter] = defaultdict(Counter)
    for a in current_annotations(session):
        if a.annotator_kind == "model":
            votes[a.pair_id][a.label] += 1
    return {pid: c.most_common(1)[0][0] for pid, c in votes.items()}


def _share(hits: int, n: int) -> float | None:
    return hits / n if n else None


def annotator_table(session: Session, anns: list[Annotation] | None = None) -> list[dict]:
    """One row per user: queue progress, speed, accuracy on gold checks and all gold, agreement with weak."""
    anns = human_annotations(session) if anns is None else anns
    gold = dict(session.exec(select(Pair.id, Pair.gold).where(Pair.gold.is_not(None))).all())
    weak = weak_majority(session)
    items = session.exec(select(QueueItem)).all()
    status: dict[str, Counter] = defaultdict(Counter)
    gold_items: dict[str, set[str]] = defaultdict(set)
    for it in items:
        status[it.user][it.status] += 1
        if it.is_gold:
            gold_items[it.user].add(it.pair_id)
    by_user: dict[str, list[Annotation]] = defaultdict(list)
    for a in anns:
        by_user[a.annotator].append(a)
    names = sorted(set(session.exec(select(User.name)).all()) | set(status) | set(by_user))
    rows = []
    for name in names:
        mine = by_user.get(name, [])
        checks = [a for a in mine if a.pair_id in gold_items[name]]
        with_gold = [a for a in mine if a.pair_id in gold]
        with_weak = [a for a in mine if a.pair_id in weak]
        rows.append(
            {
                "annotator": name,
                "labels": len(mine),
                "done": status[name]["done"],
                "open": status[name]["open"],
                "skipped": status[name]["skipped"],
                "mean_seconds": (sum(a.seconds for a in mine) / len(mine)) if mine else None,
                "gold_checks": len(checks),
                "gold_check_accuracy": _share(sum(a.label == gold[a.pair_id] for a in checks), len(checks)),
                "gold_accuracy": _share(sum(a.label == gold[a.pair_id] for a in with_gold), len(with_gold)),
                "weak_agreement": _share(sum(a.label == weak[a.pair_id] for a in with_weak), len(with_weak)),
            }
        )
    return rows


def overall(session: Session, anns: list[Annotation] | None = None) -> dict:
    anns = human_annotations(session) if anns is None else anns
    pool = session.exec(select(QueuePool)).all()
    per_pair = Counter(a.pair_id for a in anns)
    eligible = [p for p in pool if p.eligible and not p.is_gold]
    return {
        "pairs_for_humans": len(eligible),
        "gold_pairs": sum(p.is_gold for p in pool),
        "pairs_labelled": len(per_pair),
        "human_labels": len(anns),
        "pairs_with_2plus": sum(n >= 2 for n in per_pair.values()),
    }


def agreement(anns: list[Annotation]) -> dict:
    """Cohen's kappa per pair of annotators and Krippendorff's alpha over all, from `w2s.labels.agreement`."""
    try:
        from w2s.labels.agreement import krippendorff_alpha, pairwise_kappa
    except ImportError:
        return {"available": False, "kappa": {}, "alpha": None}
    u = units(anns)
    multi = {pid: labels for pid, labels in u.items() if len(labels) >= 2}
    kappa: dict = {}
    alpha = None
    if multi:
        try:
            kappa = pairwise_kappa(multi)
            alpha = krippendorff_alpha(multi)
        except (ValueError, ZeroDivisionError):  # e.g. every label identical: agreement undefined
            pass
    return {"available": True, "kappa": kappa, "alpha": alpha}


def pruning_stats(session: Session, anns: list[Annotation]) -> list[dict]:
    """Per principle: how often humans saw its node, pruned it, and why."""
    shown: Counter = Counter()
    pruned: dict[str, Counter] = defaultdict(Counter)
    node_ids = set()
    for a in anns:
        node_ids.update(int(n) for n in a.consulted_node_ids or [])
        node_ids.update(int(p["node_id"]) for p in a.pruned or [])
    if not node_ids:
        return []
    principle = dict(session.exec(select(Node.id, Node.principle_name).where(Node.id.in_(node_ids))).all())
    for a in anns:
        for nid in a.consulted_node_ids or []:
            shown[principle.get(int(nid), "?")] += 1
        for p in a.pruned or []:
            name = principle.get(int(p["node_id"]), "?")
            shown[name] += 1
            pruned[name][p["reason"]] += 1
    rows = []
    for name in sorted(shown, key=lambda n: (-sum(pruned[n].values()), n)):
        n_pruned = sum(pruned[name].values())
        rows.append(
            {
                "principle": name,
                "shown": shown[name],
                "pruned": n_pruned,
                "prune_rate": n_pruned / shown[name],
                "reasons": ", ".join(f"{r}: {c}" for r, c in pruned[name].most_common()),
            }
        )
    return rows


def strong_verdicts(session: Session, tree_ids: set[int]) -> dict[int, str | None]:
    """tree id -> the strong model's verdict in it (its exit node's, `w2s.labels.quality.exit_label`)."""
    by_tree: dict[int, list[tuple[str, float]]] = defaultdict(list)
    ids = sorted(tree_ids)
    query = select(Node.tree_id, Node.role, Node.p_a).order_by(Node.tree_id, Node.position)
    for tree_id, role, p_a in select_in(session, query, Node.tree_id, ids):
        by_tree[tree_id].append((role, p_a))
    return {t: exit_label(by_tree.get(t, [])) for t in ids}


def reliance_decisions(session: Session, anns: list[Annotation]) -> dict[str, list[Decision]]:
    """annotator -> their evidence-first annotations of gold pairs (initial, final, strong verdict, gold)."""
    firsts = [a for a in anns if (a.meta or {}).get("initial")]
    if not firsts:
        return {}
    gold = dict(session.exec(select(Pair.id, Pair.gold).where(Pair.gold.is_not(None))).all())
    firsts = [a for a in firsts if a.pair_id in gold]
    strong = strong_verdicts(session, {a.tree_id for a in firsts if a.tree_id is not None})
    out: dict[str, list[Decision]] = defaultdict(list)
    for a in firsts:
        out[a.annotator].append(
            Decision(a.meta["initial"]["label"], a.label, strong.get(a.tree_id), gold[a.pair_id])
        )
    return dict(out)


def reliance_table(session: Session, anns: list[Annotation]) -> list[dict]:
    """Do trees help? One row per annotator and one for everyone: accuracy before and after the verdicts,
    over-reliance and useful reliance (`w2s.labels.evidence_first`)."""
    by_user = reliance_decisions(session, anns)
    rows = [report_row(name, reliance_report(ds)) for name, ds in sorted(by_user.items())]
    if rows:
        rows.append(report_row("all", reliance_report(d for ds in by_user.values() for d in ds)))
    return rows


# ---------------------------------------------------------------------------------------------- export


def export_annotations(session: Session, path: Path, *, raw: bool = False) -> int:
    """JSONL of human annotations: the current ones, or with `raw` every row (retractions and corrections too)."""
    if raw:
        anns = session.exec(
            select(Annotation).where(Annotation.method == "human").order_by(Annotation.id)
        ).all()
    else:
        anns = human_annotations(session)
    with open(path, "w", encoding="utf-8") as f:
        rows = (export.annotation_row(a, export.HUMAN_COLUMNS) for a in anns)
        f.writelines(json.dumps(row, ensure_ascii=False) + "\n" for row in rows)
    return len(anns)


def export_label_set(session: Session, path: Path, label_set: str = "default", fmt: str = "jsonl") -> int:
    """The aggregated label set in the export format of `w2s.store.export` (JSONL or Parquet)."""
    return export.export_label_set(session, fmt, path, label_set=label_set)


def export_raw(session: Session, path: Path, fmt: str = "jsonl") -> int:
    """Every annotation row ever written (human and model, superseded and retracted ones flagged)."""
    return export.write_raw(export.iter_raw_rows(session), path, fmt)


def label_set_names(session: Session) -> list[str]:
    return list(session.exec(select(LabelSet.name).distinct().order_by(LabelSet.name)).all())
