"""The experiment report: one Markdown file with the results table and PNG plots."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from w2s.machine import machine
from w2s.training import metrics as M

LABELS = {
    "weak": "weak supervisor (trained on gt)",
    "w2s_naive": "naive w2s (weak soft labels)",
    "w2s_aux_conf": "w2s + AuxConf",
    "w2s_filtered": "w2s, uncertainty-filtered",
    "w2s_reweighted": "w2s, reliability re-weighted",
    "w2s_seam": "w2s on SEAM labels",
    "w2s_aligned": "w2s on aligned weak labels (no tree)",
    "intermediate": "intermediate model (bootstrap step)",
    "w2s_bootstrap": "w2s bootstrapped via intermediate",
    "w2s_conflict": "w2s under explicit conflict",
    "ceiling": "strong ceiling (trained on gt)",
}


# The paired gaps an experiment reports, by results key
GAPS = {
    "ceiling_minus_weak": "ceiling − weak on test",
    "seam_minus_aligned": "w2s on SEAM labels − w2s on aligned weak labels (same pairs)",
}


def label_gaps(results: dict) -> dict[str, dict]:
    """ "a - b" -> the paired gap of the student on label set a over the one on b (`results["label_gaps"]`);
    results written before that table read their one gap, `seam_minus_aligned`, as "seam - aligned"."""
    gaps = dict(results.get("label_gaps") or {})
    if not gaps and results.get("seam_minus_aligned"):
        gaps["seam - aligned"] = results["seam_minus_aligned"]
    return gaps


def gap_line(key: str, g: dict) -> str:
    """One gap's line: `key` a GAPS key, or a label gap "a - b"."""
    a, sep, b = key.partition(" - ")
    what = (
        GAPS.get(key)
        or GAPS.get(key.replace(" - ", "_minus_"))
        or (f"w2s on {a} labels − w2s on {b} labels (same pairs)" if sep else key)
    )
    return f"{what}: {g['gap']:+.3f} (paired bootstrap {g['level']:.0%} interval {g['lo']:+.3f} … {g['hi']:+.3f})"


def _fmt(x, nd=3):
    return "undefined" if x is None else f"{x:.{nd}f}"


def pgr_cell(p, ci: dict | None) -> str:
    """A PGR table cell: the point value and its bootstrap interval, or "undefined"."""
    if p is None:
        return "undefined"
    if not ci or ci.get("lo") is None:
        return f"{p:+.3f}"
    return f"{p:+.3f} [{ci['lo']:+.2f}, {ci['hi']:+.2f}]"


def plot_calibration(p_test: dict[str, np.ndarray], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5, 5))
    ax.plot([0.5, 1], [0.5, 1], "k--", lw=1, label="perfectly calibrated")
    for name, p in p_test.items():
        bins = M.calibration_bins(p, n_bins=5)
        ax.plot([b["confidence"] for b in bins], [b["accuracy"] for b in bins], "o-", label=name)
    ax.set(
        xlabel="confidence max(p, 1−p)",
        ylabel="accuracy",
        title="Calibration on the test split",
        ylim=(0, 1.02),
    )
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_entropy(p_pool: np.ndarray, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    bins = M.entropy_accuracy_bins(p_pool, n_bins=5)
    fig, ax = plt.subplots(figsize=(5, 3.5))
    ax.bar(range(len(bins)), [b["accuracy"] for b in bins])
    ax.set_xticks(
        range(len(bins)), [f"{b['entropy_lo']:.2f}–{b['entropy_hi']:.2f}" for b in bins], fontsize=7
    )
    ax.axhline(0.5, color="k", ls="--", lw=1)
    ax.set(
        xlabel="weak-label entropy (nats), quintiles",
        ylabel="weak-label accuracy",
        ylim=(0, 1),
        title="Weak labels on train_w2s: entropy vs accuracy",
    )
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_accuracy(acc: dict[str, float], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = list(acc)
    fig, ax = plt.subplots(figsize=(7, 3.5))
    ax.bar(
        range(len(names)),
        [acc[n] for n in names],
        color=["tab:gray" if not n.startswith("w2s") else "tab:blue" for n in names],
    )
    ax.set_xticks(range(len(names)), names, rotation=30, ha="right", fontsize=8)
    ax.axhline(0.5, color="k", ls="--", lw=1)
    ax.set(ylabel="test accuracy", ylim=(0, 1), title="Weak, students and ceiling")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def model_order(keys) -> list[str]:
    """The models of a results table in LABELS order, students on other label sets after the named ones."""
    keys = list(keys)
    return [k for k in LABELS if k in keys] + [k for k in keys if k not in LABELS]


def label_of(key: str) -> str:
    return LABELS.get(key) or (f"w2s on {key[4:]} labels" if key.startswith("w2s_") else key)


def write_report(out: Path, results: dict, p_test: dict[str, np.ndarray], p_pool: np.ndarray, cfg) -> Path:
    order = model_order(p_test)
    acc, pgr, ece, tim = results["accuracy"], results["pgr"], results["ece"], results["timings"]
    plot_calibration({k: p_test[k] for k in order}, out / "calibration.png")
    plot_entropy(p_pool, out / "entropy_accuracy.png")
    plot_accuracy({k: acc[k] for k in order}, out / "accuracy.png")
    s = results["sizes"]
    lines = [
        "# Weak-to-strong experiment",
        "",
        f"- weak: `{cfg.weak}`; strong: `{cfg.strong}`; data: `{cfg.data}`",
        (
            f"- sizes: train_gt {s['train_gt']} "
            f"(the weak supervisor's share: {s.get('weak_train_gt', s['train_gt'])}), "
            f"train_w2s {s['train_w2s']}, test {s['test_dev']} pairs; "
            f"epochs {cfg.epochs}, batch {cfg.batch_size}, max_length {cfg.max_length}, seed {cfg.seed}"
        ),
        f"- weak-label accuracy on train_w2s: {results['weak_label_accuracy']:.3f}",
        f"- {gap_line('ceiling_minus_weak', results['ceiling_minus_weak'])}",
        *(f"- {gap_line(key, g)}" for key, g in label_gaps(results).items()),
        f"- machine: {machine()}; peak RSS {results['peak_rss_mb']:.0f} MiB",
        "",
        "| model | train rows | test accuracy | PGR [95% interval] | ECE "
        "| train pairs/s | frozen-layers pass pairs/s | train s |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for k in order:
        t = tim.get(k, {})
        pgr_text = pgr_cell(pgr.get(k), results.get("pgr_ci", {}).get(k)) if k.startswith("w2s_") else ""
        lines.append(
            f"| {label_of(k)} | {t.get('rows', '')} | {acc[k]:.3f} | {pgr_text} "
            f"| {ece[k]:.3f} | {_fmt(t.get('pairs_per_s'), 2) if t else ''} "
            f"| {_fmt(t['prefix_pairs_per_s'], 2) if t.get('prefix_pairs_per_s') else ''} "
            f"| {_fmt(t.get('seconds'), 0) if t else ''} |"
        )
    lines += [
        "",
        "PGR = (w2s − weak) / (ceiling − weak); undefined unless the ceiling beats the weak model.",
        "",
    ]
    d = results.get("deception")
    if d:
        lines += (
            [f"## Deception (T = {d['T']})", "", "| area | pairs |", "|---|---|"]
            + [f"| {a} | {n} |" for a, n in d["areas"].items()]
            + [
                "",
                f"- conflict tax (right without conflict, wrong with it): {d['tax']} pairs",
                f"- deception score DS = share of the tax in S_k∩W_uk: {_fmt(d['ds'])}",
                f"- |S_k∩W_uk| / all: {_fmt(d['sk_wuk_share'])}",
                "",
            ]
        )
    lines += [
        "![accuracy](accuracy.png)",
        "",
        "![calibration](calibration.png)",
        "",
        "![entropy](entropy_accuracy.png)",
        "",
    ]
    path = out / "report.md"
    path.write_text("\n".join(lines))
    return path
