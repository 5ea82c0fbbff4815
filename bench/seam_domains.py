"""Does SEAM beat the aligned weak model alone? Any train/test pair files, every method, one table.

    taskset -c 1 python bench/seam_domains.py --train ../shared/data/code-humanevalpack/js.jsonl \\
        --test ../shared/data/code-humanevalpack/python.jsonl --strong llamacpp:qwen2.5-coder-1.5b \\
        --weak transformers:smollm2 --json /tmp/code.json

Steps (each resumable: the database keeps every tree and label, so a rerun or a killed run goes on):
1. import a seeded sample of each file (dataset = the file's folder, split = its stem; when train and
   test are one file, the test sample never overlaps the train sample);
2. import the tree corpora given (--train-trees/--test-trees; by default `bench/trees/<dataset>-<split>.jsonl.gz`
   when it exists) and build only the missing trees, train pairs first (--save-trees writes them back);
3. train the aligned masters (`features`, and `rm` when seam-aligned-rm is asked for) and the no-tree
   twin on the train pairs' gold and trees (`w2s.masters`); for cot-vN-aligned, label the train pairs
   with cot-vN (the strong model's reasoning, stored with the labels) and train a master reading it;
4. label the test pairs with every method and score them on the pairs every method labelled.

Methods: naive (weak zero-shot), strong (strong zero-shot), cot-v1/v2/v3 (strong reasoning, weak
decides), seam (zero-shot weak master over the tree), aligned (the masters' twin, pair only),
seam-aligned (the features master with the tree), seam-gate (the tree's verdict where its search exits,
the twin elsewhere: nothing fitted on the tree), seam-aligned-rm (the rm master reading the tree) and
cot-v1/v2/v3-aligned (the same kind of master reading cot-vN's reasoning instead of the tree; cot-vN is
then labelled too). Gaps are paired-bootstrap 95% intervals over the test pairs.
The principle library is chosen by the files' dataset name unless --principles names one.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common as C

from w2s import pipeline as P
from w2s.machine import machine


def default_db(trains: list[str], test: str) -> str:
    """Where a run keeps its store unless --db names one: by its train and test files' (dataset, split)."""
    train_name = "+".join(f"{d}-{s}" for d, s in map(P.dataset_of, trains))
    test_ds, test_split = P.dataset_of(test)
    return f"/tmp/w2s_bench/seam_domains/{train_name}--{test_ds}-{test_split}.db"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument(
        "--train",
        required=True,
        action="append",
        help="a train pair file; repeat to train the masters on several (e.g. two languages)",
    )
    ap.add_argument("--test", required=True)
    ap.add_argument(
        "--train-n", type=int, default=None, help="seeded train sample of each train file [default: all]"
    )
    ap.add_argument(
        "--test-n", type=int, default=None, help="seeded test sample [default: the rest / whole file]"
    )
    ap.add_argument("--limit", type=int, default=None, help="label at most this many test pairs")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--train-trees", default=None, help="the train file's corpus (one --train only)")
    ap.add_argument("--test-trees", default=None)
    ap.add_argument("--save-trees", action="store_true", help="write built trees back to the corpus files")
    ap.add_argument("--no-build", action="store_true", help="build no tree: use the pairs that have one")
    ap.add_argument("--strong", required=True)
    ap.add_argument("--weak", required=True)
    ap.add_argument(
        "--master-weak",
        default="transformers:smollm2",
        help="the aligned master's weak model (frozen features, trained on the train split)",
    )
    ap.add_argument("--methods", default=",".join(C.METHODS))
    ap.add_argument(
        "--principle-weights",
        default="auto",
        help="the features master's weight sharing: per-principle, shared, shrunk, none (the twin) "
        "or auto (by CV on train)",
    )
    ap.add_argument("--principles", default=None)
    ap.add_argument("--set", action="append", default=[], metavar="FIELD=VALUE", help="a TreeConfig field")
    ap.add_argument("--cot-tokens", type=int, default=64)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--db", default=None, help="[default: /tmp/w2s_bench/seam_domains/<train>-<test>.db]")
    ap.add_argument("--max-minutes", type=float, default=None, help="stop starting new work after this")
    ap.add_argument("--json", required=True)
    args = ap.parse_args()

    import torch

    torch.set_num_threads(args.threads)
    from w2s.backends import get_model
    from w2s.trees.principles import fallback_notice, library_for_dataset

    deadline = time.monotonic() + 60 * args.max_minutes if args.max_minutes is not None else None
    if args.train_trees and len(args.train) > 1:
        raise SystemExit("--train-trees names one file's corpus: give one --train with it")
    trains = [P.dataset_of(t) for t in args.train]
    test_ds, test_split = P.dataset_of(args.test)
    url = P.sqlite_url(db := args.db or default_db(args.train, args.test))
    print(f"machine: {machine()}\ndatabase: {url}")
    for ds in {*(d for d, _ in trains), test_ds}:
        if not args.principles and fallback_notice(ds):
            print(fallback_notice(ds))
    library = args.principles or library_for_dataset(test_ds)
    cfg = C.config_from(args, library)
    print(f"tree config {cfg.hash()}: {cfg.as_dict()}")

    # whole files are imported (so every tree of their corpora is kept); the samples are seeded prefixes
    train_all = {t: P.import_pairs(url, t, seed=args.seed) for t in args.train}
    same = next((t for t in args.train if Path(t).resolve() == Path(args.test).resolve()), None)
    test_all = train_all[same] if same else P.import_pairs(url, args.test, seed=args.seed)
    train_ids = [p for ids in train_all.values() for p in ids[: args.train_n]]
    train_ids, test_ids = P.train_test_ids(train_ids, test_all, test_n=args.test_n)
    test_ids = test_ids[: args.limit]
    print(
        f"train {len(train_ids)} pairs ({', '.join(f'{d}/{s}' for d, s in trains)}), "
        f"test {len(test_ids)} pairs ({test_ds}/{test_split})"
    )

    corpora = {t: Path(args.train_trees) if args.train_trees else C.default_corpus(t) for t in args.train}
    corpora[args.test] = Path(args.test_trees) if args.test_trees else C.default_corpus(args.test)
    reused = sum(P.import_tree_corpus(url, c) for c in set(corpora.values()))
    strong = C.load_model(args.strong, args.threads)
    built = {}
    for part, ids in (("train", train_ids), ("test", test_ids)):
        built[part] = P.ensure_trees(
            url, strong, [] if args.no_build else ids, cfg, deadline=deadline, label=part
        )
        for path in args.train if part == "train" else [args.test]:
            if args.save_trees:
                P.save_tree_corpus(url, corpora[path], *P.dataset_of(path))
    tree_of = P.trees_of(url, train_ids + test_ids, strong.spec, cfg.hash())
    train_ok, test_ok = [p for p in train_ids if p in tree_of], [p for p in test_ids if p in tree_of]
    print(
        f"trees: train {len(train_ok)}/{len(train_ids)}, test {len(test_ok)}/{len(test_ids)} pairs "
        f"({built['train'] + built['test']} built now, {reused} imported from corpora)"
    )

    methods = []
    for m in (m for m in args.methods.split(",") if m):  # a CoT's aligned master reads that CoT's labels
        methods += [c for c in (C.COT_ALIGNED.get(m), m) if c and c not in methods]
    # the masters, trained on the train pairs that have a tree, share the weak features and the margin fit
    masters, cache = Path(db).with_suffix("") / "masters", {}
    shared = {
        "strong": strong.spec,
        "weak": args.master_weak,
        "seed": args.seed,
        "cache": cache,
        "principle_weights": args.principle_weights,
    }
    trained = {
        kind: P.train_master(url, train_ok, kind=kind, tree_config=cfg.hash(), library=library, **shared)
        for kind in sorted({k for m, k in C.TREE_MASTERS.items() if m in methods} | {"features"})
    }
    runs = {kind: P.save_master(master, masters) for kind, master in trained.items()}
    features_master = trained["features"]
    weak = get_model(args.weak) if any(m not in C.TREE_MASTERS for m in methods) else None
    annotators = {}
    for m in methods:
        if m in C.TREE_MASTERS:
            annotators[m] = P.annotator(m, master=runs[C.TREE_MASTERS[m]])
        elif m in C.COT_ALIGNED:
            cot = C.COT_ALIGNED[m]
            if deadline is not None and time.monotonic() > deadline:
                print(f"time budget reached before {cot} on the train pairs: {m} left out")
                continue
            start = time.monotonic()
            added = P.annotate(url, annotators[cot], train_ok, label=f"{cot} (train)")
            print(f"{cot} on the train pairs: {added} labels added in {time.monotonic() - start:.0f} s")
            runs[m] = P.save_master(
                P.train_master(url, train_ok, kind=cot, cot_tokens=args.cot_tokens, **shared), masters
            )
            annotators[m] = P.annotator("cot-aligned", master=runs[m])
        else:
            options = {"seam": {"tree_config": cfg.hash()}}.get(
                m, {"reasoning_max_tokens": args.cot_tokens} if m in C.COTS else {}
            )
            annotators[m] = P.annotator(m, weak=weak, strong=strong, **options)
    for name, ann in annotators.items():
        if deadline is not None and time.monotonic() > deadline:
            print(f"time budget reached before {name}")
            break
        start = time.monotonic()
        added = P.annotate(url, ann, test_ok, label=name)
        print(f"{name}: {added} labels added in {time.monotonic() - start:.0f} s")

    scores = P.score_methods(url, annotators, test_ok)
    common_ids = scores["pairs"]
    result = {
        "machine": machine(),
        "database": url,
        "train": args.train,
        "test": args.test,
        "strong": strong.spec,
        "weak": args.weak,
        "tree_config": cfg.as_dict(),
        "tree_config_hash": cfg.hash(),
        "masters": {kind: path.name for kind, path in runs.items()},
        "trust": features_master.metrics["trust"],
        "principle_weights": features_master.principle_weights,
        "trees": {
            "reused": reused,
            "built": built,
            "train_with_tree": len(train_ok),
            "test_with_tree": len(test_ok),
        },
        "methods": {},
        "gaps": {},
    }
    if not common_ids:
        print("no test pair has every method's label yet: rerun to go on")
        Path(args.json).write_text(json.dumps(result, indent=2))
        return
    tree_seconds = sum(tree_of[p].seconds for p in common_ids) / len(common_ids)
    print(
        f"\n{len(common_ids)} test pairs labelled by every method; trees {tree_seconds:.1f} s/pair on average"
    )
    print("\n".join(P.score_table(scores)))
    result["methods"] = scores["methods"]
    probs = dict(scores["p_gold"])
    C.add_best(probs, {m: r["accuracy"] for m, r in result["methods"].items()})
    result["gaps"] = P.label_gaps(probs, C.GAPS)
    for name, gap in result["gaps"].items():
        print(f"{name.replace(' - ', ' − ')}: {gap['gap']:+.3f} [{gap['lo']:+.3f}, {gap['hi']:+.3f}]")
    # what bench/pool_runs.py pools over several runs (e.g. every held-out language): P(gold) per pair
    result["per_pair"] = {"ids": common_ids, "p_gold": scores["p_gold"]}
    Path(args.json).write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
