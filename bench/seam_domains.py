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
seam-aligned (the features master with the tree), seam-aligned-rm (the rm master reading the tree) and
cot-v1/v2/v3-aligned (the same kind of master reading cot-vN's reasoning instead of the tree; cot-vN is
then labelled too). Gaps are paired-bootstrap 95% intervals over the test pairs.
The principle library is chosen by the files' dataset name unless --principles names one.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import replace
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import (
    dataset_of,
    default_corpus,
    gold_side,
    import_corpus,
    import_sample,
    load_model,
    machine,
    save_corpus,
    sqlite_url,
)
from trees_dev import config_from

COTS = ["cot-v1", "cot-v2", "cot-v3"]
COT_ALIGNED = {f"{c}-aligned": c for c in COTS}
"""Each CoT decided by an aligned master reading its reasoning (a master of kind cot-vN)."""
TREE_MASTERS = {"aligned": "features", "seam-aligned": "features", "seam-aligned-rm": "rm"}
METHODS = ["naive", "strong", *COTS, "seam", "aligned", "seam-aligned", "seam-aligned-rm", *COT_ALIGNED]
GAPS = [("seam-aligned", "aligned"), ("seam-aligned", "strong"), ("seam-aligned", "best-cot"),
        ("seam-aligned", "best-cot-aligned"), ("seam-aligned-rm", "aligned"), ("seam-aligned-rm", "best-cot-aligned")]


def add_best(probs: dict[str, list[float]], accuracy: dict[str, float]) -> None:
    """Add "best-cot" and "best-cot-aligned": the most accurate of each group on these test pairs, so that
    the gap against it is the hardest one."""
    for best, group in (("best-cot", COTS), ("best-cot-aligned", list(COT_ALIGNED))):
        present = [m for m in group if m in probs]
        if present:
            probs[best] = probs[max(present, key=lambda m: accuracy[m])]


def save_master(master, root: Path, what: str) -> Path:
    """Write a trained master to root/<run id> (unless it is there already) and print what it learnt."""
    run = root / master.run_id
    if not (run / "master.json").exists():
        master.save(run)
    m = master.metrics
    sharing = f"{master.principle_weights} weights, " if master.config.kind == "features" else ""
    print(f"{what} master {master.run_id} on {m['train_pairs']} train pairs ({sharing}training accuracy "
          f"{m['train_accuracy_master']:.3f}, twin {m['train_accuracy_twin']:.3f})"
          + "".join(f"; {r['name']} {r['trust']:+.2f}" for r in m["trust"]))
    return run


def build(strong, ids: list[str], cfg, url: str, deadline: float | None, label: str,
          extend_from: str | None = None) -> int:  # fmt: skip
    """Build the missing trees of `ids` one pair at a time (llama.cpp keeps one prefix cached), going on
    from a tree of `extend_from` where a pair has one; returns how many were built."""
    from w2s.store import session_scope
    from w2s.trees import build_trees, stored_pair_ids

    with session_scope(url) as s:
        have = stored_pair_ids(s, strong.spec, cfg.hash()) & set(ids)
    todo = [p for p in ids if p not in have]
    built, tty = 0, sys.stdout.isatty()
    start = time.monotonic()
    for pid in todo:
        if deadline is not None and time.monotonic() > deadline:
            break
        built += build_trees(strong, [pid], cfg, url=url, in_flight=1, extend_from=extend_from)
        rate = (time.monotonic() - start) / max(1, built)
        # one line per tree in a log file, one updated line on a terminal
        print(f"\r{label} trees: built {built}/{len(todo)} ({rate:.1f} s/tree)", end="" if tty else "\n", flush=True)
    if todo and tty:
        print()
    return built


def progress(label: str, total: int):
    """An `annotate_all` callback: one line per committed batch (a log file), or one updated line (a
    terminal). Its first call reports the pairs already labelled, which the rate leaves out."""
    seen, tty, start = [], sys.stdout.isatty(), time.monotonic()

    def on_batch(n: int, _added: int) -> None:
        seen.append(n)
        done = sum(seen)
        rate = (time.monotonic() - start) / max(1, done - seen[0])
        print(f"\r{label}: {done}/{total} pairs ({rate:.1f} s/pair)", end="" if tty and done < total else "\n", flush=True)

    return on_batch


def gold_p(url: str, method_rows: dict[str, dict[str, float]], ids: list[str]) -> dict[str, list[float]]:
    """P(gold response better) per method, in `ids` order."""
    from sqlmodel import select

    from w2s.store import Pair, session_scope

    with session_scope(url) as s:
        gold = dict(s.exec(select(Pair.id, Pair.gold).where(Pair.id.in_(ids))).all())
    return {m: [gold_side(rows[p], gold[p] == "a") for p in ids] for m, rows in method_rows.items()}


def labels_of(url: str, annotators: dict, ids: list[str]) -> dict[str, dict[str, float]]:
    """method -> pair id -> stored p_a of that annotator (by its dedup key)."""
    from sqlmodel import select

    from w2s.store import Annotation, session_scope

    out = {}
    with session_scope(url) as s:
        for name, ann in annotators.items():
            keys = {ann.key(p): p for p in ids}
            rows = s.exec(select(Annotation.dedup_key, Annotation.p_a, Annotation.seconds)
                          .where(Annotation.dedup_key.in_(list(keys))))
            out[name] = {keys[k]: (p_a, sec) for k, p_a, sec in rows}
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--train", required=True)
    ap.add_argument("--test", required=True)
    ap.add_argument("--train-n", type=int, default=None, help="seeded train sample [default: the whole file]")
    ap.add_argument("--test-n", type=int, default=None, help="seeded test sample [default: the rest / whole file]")
    ap.add_argument("--limit", type=int, default=None, help="label at most this many test pairs")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--train-trees", default=None)
    ap.add_argument("--test-trees", default=None)
    ap.add_argument("--save-trees", action="store_true", help="write built trees back to the corpus files")
    ap.add_argument("--no-build", action="store_true", help="build no tree: use the pairs that have one")
    ap.add_argument("--strong", required=True)
    ap.add_argument("--weak", required=True)
    ap.add_argument("--master-weak", default="transformers:smollm2",
                    help="the aligned master's weak model (frozen features, trained on the train split)")
    ap.add_argument("--methods", default=",".join(METHODS))
    ap.add_argument("--principle-weights", default="auto",
                    help="the features master's weight sharing: per-principle, shared, shrunk, none (the twin) "
                         "or auto (by CV on train)")
    ap.add_argument("--principles", default=None)
    ap.add_argument("--set", action="append", default=[], metavar="FIELD=VALUE", help="a TreeConfig field")
    ap.add_argument("--cot-tokens", type=int, default=64)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--db", default=None, help="[default: /tmp/w2s_bench/seam_domains/<train>-<test>.db]")
    ap.add_argument("--max-minutes", type=float, default=None, help="stop starting new work after this")
    ap.add_argument("--json", required=True)
    args = ap.parse_args()

    import torch
    from sqlmodel import select

    torch.set_num_threads(args.threads)
    from annotators.base import annotate_all, get_annotator
    from w2s.backends import get_model
    from w2s.masters import (
        MasterConfig,
        MasterInputs,
        WeakFeatures,
        fit_margin,
        reasoning_rows,
        training_rows,
    )
    from w2s.masters import train_master as fit
    from w2s.principles import fallback_notice, library_for_dataset, load_library
    from w2s.store import Tree, session_scope
    from w2s.w2s_metrics import accuracy_gap_ci

    deadline = time.monotonic() + 60 * args.max_minutes if args.max_minutes is not None else None
    train_ds, train_split = dataset_of(args.train)
    test_ds, test_split = dataset_of(args.test)
    db = args.db or f"/tmp/w2s_bench/seam_domains/{train_ds}-{train_split}--{test_ds}-{test_split}.db"
    url = sqlite_url(db)
    print(f"machine: {machine()}\ndatabase: {url}")
    for ds in {train_ds, test_ds}:
        if not args.principles and fallback_notice(ds):
            print(fallback_notice(ds))
    library = args.principles or library_for_dataset(test_ds)
    cfg = config_from(args, library)
    print(f"tree config {cfg.hash()}: {cfg.as_dict()}")

    # whole files are imported (so every tree of their corpora is kept); the samples are seeded prefixes
    train_all = import_sample(args.train, url, None, args.seed)
    train_ids = train_all[: args.train_n]
    test_all = train_all if Path(args.train).resolve() == Path(args.test).resolve() else import_sample(args.test, url, None, args.seed)
    test_ids = [p for p in test_all if p not in set(train_ids)][: args.test_n][: args.limit]
    print(f"train {len(train_ids)} pairs ({train_ds}/{train_split}), test {len(test_ids)} pairs ({test_ds}/{test_split})")

    corpora = {"train": Path(args.train_trees) if args.train_trees else default_corpus(args.train),
               "test": Path(args.test_trees) if args.test_trees else default_corpus(args.test)}
    reused = sum(import_corpus(url, c) for c in set(corpora.values()))
    strong = load_model(args.strong, args.threads)
    built = {}
    for part, ids in (("train", train_ids), ("test", test_ids)):
        built[part] = build(strong, [] if args.no_build else ids, cfg, url, deadline, part)
        if args.save_trees:
            save_corpus(url, corpora[part], args.train if part == "train" else args.test)
    with session_scope(url) as s:
        tree_of = {t.pair_id: t for t in s.exec(select(Tree).where(
            Tree.strong_model == strong.spec, Tree.config_hash == cfg.hash(), Tree.pair_id.in_(train_ids + test_ids)))}
        for t in tree_of.values():
            s.expunge(t)
    train_ok = [p for p in train_ids if p in tree_of]
    test_ok = [p for p in test_ids if p in tree_of]
    print(f"trees: train {len(train_ok)}/{len(train_ids)}, test {len(test_ok)}/{len(test_ids)} pairs "
          f"({built['train'] + built['test']} built now, {reused} imported from corpora)")

    # the master: trained on the train pairs that have a tree
    with session_scope(url) as s:
        _, pairs, trees, nodes = training_rows(s, train_ok, strong.spec, cfg.hash())
    methods = []
    for m in (m for m in args.methods.split(",") if m):  # a CoT's aligned master reads that CoT's labels
        methods += [c for c in (COT_ALIGNED.get(m), m) if c and c not in methods]
    mcfg = MasterConfig(weak=args.master_weak, seed=args.seed, strong=strong.spec, tree_config=cfg.hash(),
                        library=library, principle_weights=args.principle_weights)
    features = WeakFeatures(mcfg)
    margin = fit_margin(pairs, features, mcfg)  # every master here shares the train pairs' margin and twin

    masters = Path(db).with_suffix("") / "masters"

    runs = {}
    for kind in sorted({k for m, k in TREE_MASTERS.items() if m in methods} | {"features"}):
        master = fit(MasterInputs(pairs, trees, nodes, load_library(library)), replace(mcfg, kind=kind), features, margin)
        runs[kind] = save_master(master, masters, kind)
        if kind == "features":
            features_master = master

    weak = get_model(args.weak) if any(m not in TREE_MASTERS for m in methods) else None
    annotators = {}
    for m in methods:
        if m in TREE_MASTERS:
            annotators[m] = get_annotator(m, None, None, master=str(runs[TREE_MASTERS[m]]))
        elif m in COT_ALIGNED:
            cot = COT_ALIGNED[m]
            if deadline is not None and time.monotonic() > deadline:
                print(f"time budget reached before {cot} on the train pairs: {m} left out")
                continue
            start = time.monotonic()
            added = annotate_all(annotators[cot], train_ok, url=url, batch_size=8,
                                 on_batch=progress(f"{cot} (train)", len(train_ok)))
            print(f"{cot} on the train pairs: {added} labels added in {time.monotonic() - start:.0f} s")
            with session_scope(url) as s:
                _, cot_pairs, reasoning = reasoning_rows(s, train_ok, cot, strong.spec, args.cot_tokens)
            cot_margin = margin if [p.id for p in cot_pairs] == [p.id for p in pairs] else None
            master = fit(MasterInputs(cot_pairs, reasoning=reasoning), replace(mcfg, kind=cot, tree_config="", library="",
                         reasoning_max_tokens=args.cot_tokens), features, cot_margin)
            runs[m] = save_master(master, masters, cot)
            annotators[m] = get_annotator("cot-aligned", None, None, master=str(runs[m]))
        else:
            options = {"seam": {"tree_config": cfg.hash()}}.get(m, {"reasoning_max_tokens": args.cot_tokens}
                                                                   if m in COTS else {})
            annotators[m] = get_annotator(m, weak, strong, **options)
    for name, ann in annotators.items():
        if deadline is not None and time.monotonic() > deadline:
            print(f"time budget reached before {name}")
            break
        start = time.monotonic()
        added = annotate_all(ann, test_ok, url=url, batch_size=8, on_batch=progress(name, len(test_ok)))
        print(f"{name}: {added} labels added in {time.monotonic() - start:.0f} s")

    stored = labels_of(url, annotators, test_ok)
    common = [p for p in test_ok if all(p in stored[m] for m in annotators)]
    result = {"machine": machine(), "train": args.train, "test": args.test, "strong": strong.spec, "weak": args.weak,
              "tree_config": cfg.as_dict(), "tree_config_hash": cfg.hash(),
              "masters": {kind: path.name for kind, path in runs.items()}, "trust": features_master.metrics["trust"],
              "principle_weights": features_master.principle_weights, "trees": {"reused": reused, "built": built,
              "train_with_tree": len(train_ok), "test_with_tree": len(test_ok)}, "methods": {}, "gaps": {}}
    if not common:
        print("no test pair has every method's label yet: rerun to go on")
        Path(args.json).write_text(json.dumps(result, indent=2))
        return
    probs = gold_p(url, {m: {p: v[0] for p, v in rows.items()} for m, rows in stored.items()}, common)
    tree_seconds = sum(tree_of[p].seconds for p in common) / len(common)
    print(f"\n{len(common)} test pairs labelled by every method; trees {tree_seconds:.1f} s/pair on average")
    print(f"{'method':<14} {'acc':>6} {'95% CI':>15} {'n':>4} {'cover':>6} {'s/pair':>7}")
    from w2s.annotation_eval import wilson_interval

    for m in annotators:
        correct = sum(p > 0.5 for p in probs[m])
        lo, hi = wilson_interval(correct, len(common))
        sec = sum(stored[m][p][1] for p in common) / len(common)
        cover = sum(p != 0.5 for p in probs[m]) / len(common)
        result["methods"][m] = {"accuracy": correct / len(common), "ci_low": lo, "ci_high": hi, "n": len(common),
                                "coverage": cover, "s_per_pair": sec}
        print(f"{m:<14} {correct / len(common):>6.3f} [{lo:.3f},{hi:.3f}] {len(common):>4} {cover:>6.2f} {sec:>7.2f}")
    add_best(probs, {m: r["accuracy"] for m, r in result["methods"].items()})
    for a, b in GAPS:
        if a in probs and b in probs:
            gap = accuracy_gap_ci(probs[b], probs[a])
            result["gaps"][f"{a} - {b}"] = gap
            print(f"{a} − {b}: {gap['gap']:+.3f} [{gap['lo']:+.3f}, {gap['hi']:+.3f}]")
    # what bench/pool_runs.py pools over several runs (e.g. every held-out language): P(gold) per pair
    result["per_pair"] = {"ids": common, "p_gold": {m: probs[m] for m in annotators}}
    Path(args.json).write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
