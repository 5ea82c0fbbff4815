"""Calibration reports of a label set against gold: the entropy-bucket vs weak-label accuracy bar chart of
Guo & Yang (2024) and the reliability heatmap (weak label vs gold), as PNG files and tables.

The numbers are pure functions of (entropy, label, gold) triples; plotting and the store come last.
"""

from __future__ import annotations

import csv
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

LABELS = ("a", "b", "tie")


@dataclass
class Bucket:
    lo: float
    hi: float
    n: int
    correct: int

    @property
    def accuracy(self) -> float:
        return self.correct / self.n if self.n else math.nan

    @property
    def name(self) -> str:
        return f"{self.lo:.3f}" if self.hi - self.lo < 1e-9 else f"{self.lo:.3f}–{self.hi:.3f}"


def entropy_buckets(entropies: Sequence[float], correct: Sequence[bool], n_buckets: int = 5) -> list[Bucket]:
    """Accuracy per entropy bucket. With at most `n_buckets` distinct entropies (few votes per pair give
    few values), one bucket per value; otherwise `n_buckets` equal-width bins over [min, max]."""
    if len(entropies) != len(correct):
        raise ValueError("entropy_buckets: entropies and correct differ in length")
    if not entropies:
        return []
    values = sorted({round(h, 9) for h in entropies})
    if len(values) <= n_buckets:
        edges = [(v, v) for v in values]
        index = {v: i for i, v in enumerate(values)}
        which = [index[round(h, 9)] for h in entropies]
    else:
        lo, hi = values[0], values[-1]
        width = (hi - lo) / n_buckets
        edges = [(lo + i * width, lo + (i + 1) * width) for i in range(n_buckets)]
        which = [min(int((h - lo) / width), n_buckets - 1) for h in entropies]
    buckets = [Bucket(lo, hi, 0, 0) for lo, hi in edges]
    for i, ok in zip(which, correct):
        buckets[i].n += 1
        buckets[i].correct += bool(ok)
    return buckets


def confusion(labels: Sequence[str], golds: Sequence[str]) -> list[list[int]]:
    """counts[i][j] = pairs whose weak label is LABELS[i] and gold is LABELS[j]."""
    counts = [[0] * len(LABELS) for _ in LABELS]
    for y, g in zip(labels, golds, strict=True):
        counts[LABELS.index(y)][LABELS.index(g)] += 1
    return counts


# ------------------------------------------------------------------------------------- plots


def plot_entropy_accuracy(buckets: Sequence[Bucket], path: Path, title: str = "") -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4), dpi=100)
    xs = range(len(buckets))
    bars = ax.bar(xs, [0 if b.n == 0 else b.accuracy for b in buckets], color="#4C72B0")
    for bar, b in zip(bars, buckets):
        ax.annotate(
            f"{b.accuracy:.2f}\nn={b.n}" if b.n else "n=0",
            (bar.get_x() + bar.get_width() / 2, bar.get_height()),
            ha="center",
            va="bottom",
            fontsize=8,
        )
    ax.axhline(0.5, color="grey", linestyle="--", linewidth=1)
    ax.text(1.0, 0.5, " chance", transform=ax.get_yaxis_transform(), va="center", fontsize=8, color="grey")
    ax.set_xticks(list(xs), [b.name for b in buckets], rotation=20, fontsize=8)
    ax.set_xlabel("entropy of the answer distribution (nats)")
    ax.set_ylabel("weak-label accuracy vs gold")
    ax.set_ylim(0, 1.12)
    ax.set_title(title or "Weak-label accuracy by entropy bucket")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def plot_heatmap(counts: Sequence[Sequence[int]], path: Path, title: str = "") -> None:
    """Rows: weak label; columns: gold; colour: share of the row; text: share and count."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    c = np.asarray(counts, dtype=float)
    share = c / np.maximum(c.sum(axis=1, keepdims=True), 1)
    fig, ax = plt.subplots(figsize=(5.4, 4), dpi=100, layout="constrained")
    im = ax.imshow(share, cmap="Blues", vmin=0, vmax=1)
    for i in range(len(LABELS)):
        for j in range(len(LABELS)):
            ax.text(
                j,
                i,
                f"{share[i, j]:.2f}\n({int(c[i, j])})",
                ha="center",
                va="center",
                color="white" if share[i, j] > 0.6 else "black",
                fontsize=9,
            )
    ax.set_xticks(range(len(LABELS)), [f"gold {x}" for x in LABELS])
    ax.set_yticks(range(len(LABELS)), [f"weak {x}" for x in LABELS])
    ax.set_title(title or "Reliability heatmap: weak label vs gold")
    fig.colorbar(im, ax=ax, fraction=0.046, label="share of the weak label's row")
    fig.savefig(path)
    plt.close(fig)


# ------------------------------------------------------------------------------------- the store


def label_set_vs_gold(session, label_set: str = "default") -> list[tuple[float, str, str]]:
    """(entropy, weak label, gold) of every pair of the label set that has a gold label."""
    from sqlalchemy import select

    from w2s.store import LabelSet, Pair

    query = (
        select(LabelSet.entropy, LabelSet.label, Pair.gold)
        .join(Pair, Pair.id == LabelSet.pair_id)
        .where(LabelSet.name == label_set, Pair.gold.is_not(None))
        .order_by(LabelSet.pair_id)
    )
    return [(float(h), y, g) for h, y, g in session.execute(query)]


def write_report(session, out_dir: Path, label_set: str = "default", n_buckets: int = 5) -> dict:
    """entropy_accuracy.png/.csv, heatmap.png/.csv and report.md in `out_dir`; returns a summary."""
    rows = label_set_vs_gold(session, label_set)
    if not rows:
        raise ValueError(f"label set {label_set!r} has no pair with a gold label: nothing to report")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    entropies, labels, golds = zip(*rows)
    buckets = entropy_buckets(entropies, [y == g for y, g in zip(labels, golds)], n_buckets)
    counts = confusion(labels, golds)
    plot_entropy_accuracy(buckets, out_dir / "entropy_accuracy.png", f"{label_set}: accuracy by entropy")
    plot_heatmap(counts, out_dir / "heatmap.png", f"{label_set}: weak label vs gold")
    with open(out_dir / "entropy_accuracy.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["entropy_lo", "entropy_hi", "n", "correct", "accuracy"])
        w.writerows([b.lo, b.hi, b.n, b.correct, b.accuracy] for b in buckets)
    with open(out_dir / "heatmap.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["weak\\gold", *LABELS])
        w.writerows([y, *row] for y, row in zip(LABELS, counts))
    accuracy = sum(y == g for y, g in zip(labels, golds)) / len(rows)
    md = [
        f"# Label set `{label_set}` vs gold",
        "",
        f"{len(rows)} pairs with gold; accuracy {accuracy:.3f}.",
        "",
        "| entropy (nats) | n | accuracy |",
        "|---|---:|---:|",
    ]
    md += [f"| {b.name} | {b.n} | {b.accuracy:.3f} |" for b in buckets]
    md += ["", "| weak \\ gold | " + " | ".join(LABELS) + " |", "|---|" + "---:|" * len(LABELS)]
    md += [f"| {y} | " + " | ".join(map(str, row)) + " |" for y, row in zip(LABELS, counts)]
    md += ["", "![entropy vs accuracy](entropy_accuracy.png)", "", "![heatmap](heatmap.png)", ""]
    (out_dir / "report.md").write_text("\n".join(md))
    return {"n": len(rows), "accuracy": accuracy, "buckets": buckets, "confusion": counts}
