"""Choose on train data only: repeated k-fold cross-validation of the aligned master and its no-tree twin
on one pair file's gold pairs and trees, for each tree config and weight sharing asked for.

    python bench/master_cv.py ../shared/data/code-humanevalpack/js.jsonl --strong llamacpp:qwen2.5-coder-1.5b \\
        --configs 60de9d4fff52,65c34f6375d4 --principle-weights auto,per-principle

Every config is scored on the same pairs (those with a gold label and a tree of every config given) and
the same folds. Inside each fold the master is trained by `w2s.masters.train_master` as `w2s master train` trains
it (its own out-of-fold margin, its own `auto` choice) and scores the held-out fold. Printed, and written
to --json: accuracy and log-loss of each (config, sharing) and of the twin, what `auto` chose, and the
paired-bootstrap gap of each row against the first row and against the twin, over per-pair shares of
correct held-out answers across the repeats. Each config also gets a `gate` row: the seam-gate rule (the
tree's verdict where its search stopped on an exit, the fold's twin elsewhere; nothing fitted on the tree).
The pair file's tree corpus (bench/trees/) is read; no tree is built here.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import default_corpus, gold_side, import_corpus, import_sample, machine, sqlite_url


def corpus_configs(url: str, strong: str, ids: list[str]) -> list[str]:
    """The tree configs of `strong` that the pairs have, most trees first."""
    from sqlmodel import func, select

    from w2s.store import Tree, session_scope

    with session_scope(url) as s:
        rows = s.exec(
            select(Tree.config_hash, func.count())
            .where(Tree.strong_model == strong, Tree.pair_id.in_(ids))
            .group_by(Tree.config_hash)
            .order_by(func.count().desc())
        )
        return [h for h, _ in rows]


def gap_text(g: dict | None) -> str:
    return f"{g['gap']:+.3f} ({g['lo']:+.3f}…{g['hi']:+.3f})" if g else ""


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("file", help="a pair file (JSONL) with gold labels")
    ap.add_argument("--strong", required=True, help="the strong model whose trees the master reads")
    ap.add_argument(
        "--configs", default=None, help="comma-separated tree config hashes [default: every one stored]"
    )
    ap.add_argument(
        "--principle-weights",
        default="auto",
        help="comma-separated: per-principle, shared, shrunk, none, auto",
    )
    ap.add_argument(
        "--weak", default="transformers:smollm2", help="the master's weak model (frozen features)"
    )
    ap.add_argument(
        "--n", type=int, default=None, help="the first N pairs of the seeded order [default: all]"
    )
    ap.add_argument("--folds", type=int, default=5)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--corpus", default=None, help="[default: bench/trees/<dataset>-<split>.jsonl.gz]")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--db", default=None, help="[default: a fresh temporary database]")
    ap.add_argument("--json", default=None)
    args = ap.parse_args()

    import tempfile

    import numpy as np
    import torch
    from sklearn.model_selection import StratifiedKFold
    from tqdm import tqdm

    from w2s.labels.quality import decisive_exit_p_a
    from w2s.masters import (
        MasterConfig,
        MasterInputs,
        fit_margin,
        shared_features,
        training_rows,
        tree_features,
    )
    from w2s.masters import train_master as train
    from w2s.store import session_scope
    from w2s.training.metrics import mean_gap_ci
    from w2s.trees.principles import load_library

    torch.set_num_threads(args.threads)
    tmp = tempfile.TemporaryDirectory()
    url = sqlite_url(args.db or Path(tmp.name) / "cv.db")
    print(f"machine: {machine()}\ndatabase: {url}")
    ids = import_sample(args.file, url, args.n, args.seed)
    import_corpus(url, Path(args.corpus) if args.corpus else default_corpus(args.file))
    configs = args.configs.split(",") if args.configs else corpus_configs(url, args.strong, ids)
    sharings = args.principle_weights.split(",")
    if not configs:
        sys.exit(f"no tree of {args.strong} for the pairs of {args.file}: build or import a corpus first")
    rows = {}
    with session_scope(url) as s:
        for h in configs:
            _, pairs, trees, nodes = training_rows(s, ids, args.strong, h)
            rows[h] = {p.id: (p, t, ns) for p, t, ns in zip(pairs, trees, nodes)}
    common = [pid for pid in ids if all(pid in rows[h] for h in configs)]
    print(
        f"{len(common)} gold pairs with a tree of every config ({', '.join(f'{h}: {len(rows[h])}' for h in configs)})"
    )
    need = 2 * MasterConfig().folds  # what `train` needs in the fitted part of every fold
    if len(common) - -(-len(common) // args.folds) < need:
        sys.exit(
            f"too few pairs for {args.folds}-fold cross-validation: {len(common)} (a master trains on {need} or more)"
        )
    libraries = {h: load_library(next(iter(rows[h].values()))[1].library) for h in configs}
    y = np.array([rows[configs[0]][pid][0].gold == "a" for pid in common], dtype=float)
    base = MasterConfig(weak=args.weak, seed=args.seed)
    features = shared_features(base)

    names = [f"{h}/{pw}" for h in configs for pw in sharings]
    gates = [f"{h}/gate" for h in configs]  # seam-gate: the exit's verdict, else the twin (nothing fitted)
    p_gold = {name: np.zeros((args.repeats, len(common))) for name in [*names, *gates, "twin"]}
    chosen = {name: Counter() for name in names}
    jobs = tqdm(total=args.repeats * args.folds * len(names), desc="masters", disable=None)
    start = time.monotonic()
    for r in range(args.repeats):
        folds = StratifiedKFold(args.folds, shuffle=True, random_state=args.seed + r).split(
            np.zeros(len(y)), y
        )
        for fit_idx, held in folds:
            # the margin head and the twin read the pair alone: one fit per fold for every config and sharing
            margin = fit_margin([rows[configs[0]][common[i]][0] for i in fit_idx], features, base)
            for h in configs:
                fit = [rows[h][common[i]] for i in fit_idx]
                test = [rows[h][common[i]] for i in held]
                held_pairs = [p for p, _, _ in test]
                diffs = features(held_pairs)
                x = tree_features(
                    MasterInputs(held_pairs, [t for _, t, _ in test], [ns for _, _, ns in test], libraries[h])
                )
                for pw in sharings:
                    cfg = MasterConfig(
                        weak=args.weak,
                        seed=args.seed,
                        strong=args.strong,
                        tree_config=h,
                        library=libraries[h].name,
                        principle_weights=pw,
                    )
                    master = train(
                        MasterInputs(
                            [p for p, _, _ in fit],
                            [t for _, t, _ in fit],
                            [ns for _, _, ns in fit],
                            libraries[h],
                        ),
                        cfg,
                        features,
                        margin,
                    )
                    chosen[f"{h}/{pw}"][master.principle_weights] += 1
                    p_gold[f"{h}/{pw}"][r, held] = gold_side(master.p_a(diffs, x), y[held])
                    jobs.update()
                p_gold["twin"][r, held] = gold_side(master.p_a_alone(diffs), y[held])
            for h in configs:
                exits = [
                    decisive_exit_p_a([(n.role, n.p_a) for n in ns], t.config["tau_exit"])
                    for _, t, ns in (rows[h][common[i]] for i in held)
                ]
                p_gold[f"{h}/gate"][r, held] = [
                    twin if e is None else gold_side(e, y[i])
                    for e, twin, i in zip(exits, p_gold["twin"][r, held], held)
                ]
        if not sys.stdout.isatty():  # a log file gets a line per repeat instead of the bar
            print(f"repeat {r + 1}/{args.repeats} done after {time.monotonic() - start:.0f} s", flush=True)
    jobs.close()

    def summary(name: str) -> dict:
        p = np.clip(p_gold[name], 1e-6, 1 - 1e-6)
        return {
            "accuracy": float((p > 0.5).mean()),
            "log_loss": float(-np.log(p).mean()),
            "share_correct": (p > 0.5).mean(0).tolist(),
        }

    table = {name: summary(name) for name in [*names, *gates, "twin"]}
    result = {
        "machine": machine(),
        "file": args.file,
        "strong": args.strong,
        "weak": args.weak,
        "n": len(common),
        "folds": args.folds,
        "repeats": args.repeats,
        "seed": args.seed,
        "rows": {},
        "pair_ids": common,
    }
    first = table[names[0]]["share_correct"]
    print(f"\n{args.folds}-fold CV x{args.repeats} on {len(common)} pairs of {args.file}")
    print(f"{'config/sharing':<28} {'acc':>6} {'log-loss':>9} {'- twin':>22} {'- first row':>22}  auto chose")
    for name in [*names, *gates, "twin"]:
        row = {k: v for k, v in table[name].items() if k != "share_correct"}
        if name != "twin":
            row["minus_twin"] = mean_gap_ci(table["twin"]["share_correct"], table[name]["share_correct"])
            row["minus_first"] = mean_gap_ci(first, table[name]["share_correct"])
            row["chosen"] = dict(chosen.get(name, {}))
        result["rows"][name] = row
        print(
            f"{name:<28} {row['accuracy']:>6.3f} {row['log_loss']:>9.3f} {gap_text(row.get('minus_twin')):>22} "
            f"{gap_text(row.get('minus_first')) if name not in (names[0], 'twin') else '':>22}  "
            f"{', '.join(f'{k} {v}' for k, v in row.get('chosen', {}).items()) if name.endswith('/auto') else ''}"
        )
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
