"""SEAM labels for a weak-to-strong pool: the aligned master trained on the gold split's trees labels the
pool's pairs that have a tree, and so does its no-tree twin; both label sets are exported for the same
pairs, to train two strong students side by side:

    H=../shared/data/hh-harmless-single-turn
    python bench/seam_labels.py --gt $H/train_gt.jsonl --pool $H/train_w2s.jsonl --strong llamacpp:qwen2.5-coder-1.5b \\
        --set max_backtraces=1 --set max_depth=2 --out /tmp/seam_labels
    python bench/w2s_hh.py --seam-labels /tmp/seam_labels/seam-aligned.jsonl \\
        --aligned-labels /tmp/seam_labels/aligned.jsonl

Any pair files: trees come from their committed corpora (`bench/trees/`, grown by bench/build_corpus.py),
and the missing ones of the seeded samples are built unless --no-build (resumable: a killed run keeps what
it built, a rerun goes on). The labels are the product's own: `w2s annotate -a seam-aligned|aligned`,
aggregated into a label set per master (`soft`: each label set keeps P(chosen) as its soft label) and
exported as `w2s export` writes it.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import config_from, default_corpus, load_model

from w2s import pipeline as P
from w2s.machine import machine

LABELLERS = ("seam-aligned", "aligned")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument(
        "--gt", required=True, help="pair file with gold: the master trains on its pairs with a tree"
    )
    ap.add_argument("--pool", required=True, help="pair file the master labels (its pairs with a tree)")
    ap.add_argument("--gt-n", type=int, default=300, help="seeded sample of the gold file")
    ap.add_argument("--pool-n", type=int, default=300, help="seeded sample of the pool file")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--strong", required=True, help="the strong model whose trees the master reads")
    ap.add_argument("--master-weak", default="transformers:smollm2")
    ap.add_argument("--principle-weights", default="auto")
    ap.add_argument("--principles", default=None)
    ap.add_argument("--set", action="append", default=[], metavar="FIELD=VALUE", help="a TreeConfig field")
    ap.add_argument("--no-build", action="store_true", help="build no tree: use the pairs that have one")
    ap.add_argument("--max-minutes", type=float, default=None, help="start no tree after this")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--db", default=None, help="[default: /tmp/w2s_bench/seam_labels/<gt>--<pool>.db]")
    ap.add_argument("--out", required=True, help="folder for the master and the two exports")
    args = ap.parse_args()

    import torch

    torch.set_num_threads(args.threads)
    from w2s.trees.principles import library_for_dataset

    (gt_ds, gt_split), (pool_ds, pool_split) = P.dataset_of(args.gt), P.dataset_of(args.pool)
    url = P.sqlite_url(args.db or f"/tmp/w2s_bench/seam_labels/{gt_ds}-{gt_split}--{pool_ds}-{pool_split}.db")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    print(f"machine: {machine()}\ndatabase: {url}")
    library = args.principles or library_for_dataset(gt_ds)
    cfg = config_from(args, library)
    print(f"tree config {cfg.hash()}: {cfg.as_dict()}")

    samples = {
        "gt": P.import_pairs(url, args.gt, seed=args.seed)[: args.gt_n],
        "pool": P.import_pairs(url, args.pool, seed=args.seed)[: args.pool_n],
    }
    if set(samples["gt"]) & set(samples["pool"]):
        raise SystemExit(
            f"{args.gt} and {args.pool} share pairs: the master would label its own training pairs"
        )
    for f in {args.gt, args.pool}:
        P.import_tree_corpus(url, default_corpus(f))
    deadline = time.monotonic() + 60 * args.max_minutes if args.max_minutes is not None else None
    if not args.no_build:
        strong = load_model(args.strong, args.threads)
        for part, ids in samples.items():
            P.ensure_trees(url, strong, ids, cfg, deadline=deadline, label=part)
    have = P.trees_of(url, samples["gt"] + samples["pool"], args.strong, cfg.hash())
    gt_ok = [p for p in samples["gt"] if p in have]
    pool_ok = [p for p in samples["pool"] if p in have]
    print(f"trees: gold {len(gt_ok)}/{len(samples['gt'])}, pool {len(pool_ok)}/{len(samples['pool'])} pairs")
    if not gt_ok or not pool_ok:
        raise SystemExit(
            "no trees to learn from or to label: build them (bench/build_corpus.py) or drop --no-build"
        )

    master = P.train_master(
        url,
        gt_ok,
        strong=args.strong,
        tree_config=cfg.hash(),
        library=library,
        weak=args.master_weak,
        seed=args.seed,
        principle_weights=args.principle_weights,
    )
    run = P.save_master(master, out / "masters")
    exports, annotators = {}, {}
    for name in LABELLERS:
        ann = annotators[name] = P.annotator(name, master=run)
        added = P.annotate(url, ann, pool_ok, label=name)
        # only this master's labels, P(chosen) kept as the soft label
        label_set = P.build_labels(url, f"{name}-{master.run_id}", ann, method="soft")
        exports[name] = out / f"{name}.jsonl"
        n = P.export_labels(url, label_set, exports[name], pool_ok)
        print(f"{name}: {added} labels added; {n} rows exported to {exports[name]}")
    # how right each set of labels is against the pool's gold (the students never see it)
    scores = P.score_methods(url, annotators, pool_ok)
    accuracy = {m: r["accuracy"] for m, r in scores["methods"].items()}
    gap = P.label_gaps(scores["p_gold"], [("seam-aligned", "aligned")])["seam-aligned - aligned"]
    print(
        "labels against the pool's gold: "
        + ", ".join(f"{m} {a:.3f}" for m, a in accuracy.items())
        + f"; seam-aligned − aligned {gap['gap']:+.3f} ({gap['lo']:+.3f} … {gap['hi']:+.3f}), {len(pool_ok)} pairs"
    )
    summary = {
        "machine": machine(),
        "gt": args.gt,
        "pool": args.pool,
        "strong": args.strong,
        "tree_config": cfg.as_dict(),
        "tree_config_hash": cfg.hash(),
        "master": master.run_id,
        "trust": master.metrics["trust"],
        "gt_pairs": len(gt_ok),
        "pool_pairs": len(pool_ok),
        "exports": {k: str(v) for k, v in exports.items()},
        "label_accuracy": accuracy,
        "label_gap": gap,
    }
    (out / "summary.json").write_text(json.dumps(summary, indent=2))
    print(
        f"next: python bench/w2s_hh.py --seam-labels {exports['seam-aligned']} --aligned-labels {exports['aligned']}"
    )


if __name__ == "__main__":
    main()
