"""Extend a pair file's committed tree corpus: build the missing trees of a seeded sample, one pair at a
time, and write the corpus back every few trees, so a run killed at the end of a session loses at most
those few. One process per corpus file (the write replaces the file with every tree the database holds
for that pair file, the corpus's own trees included).

    taskset -c 1 python bench/build_corpus.py ../shared/data/code-humanevalpack/js.jsonl \\
        --strong llamacpp:qwen2.5-coder-1.5b --set max_backtraces=1 --set max_depth=2 --max-minutes 150

The sample is the same seeded order `bench/seam_domains.py` draws from (its --train-n/--test-n are
prefixes of it), so the trees built here are the ones its runs reuse. Two processes can share a file's
order (`--start`), each with its own database and corpus file (the corpus write is not shared); once
the second has stopped, `--merge` adds its corpus to the file's:

    python bench/build_corpus.py FILE --merge /tmp/part2.jsonl.gz
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import (
    config_from,
    dataset_of,
    default_corpus,
    import_corpus,
    import_sample,
    load_model,
    machine,
    save_corpus,
    sqlite_url,
)

from w2s.pipeline import ensure_trees


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("file", help="a pair file (JSONL)")
    ap.add_argument("--strong", default=None, help="the strong model (not needed with --merge)")
    ap.add_argument(
        "--n", type=int, default=None, help="the first N pairs of the seeded order [default: all]"
    )
    ap.add_argument(
        "--start",
        type=int,
        default=0,
        help="skip the first K pairs of the order: a second process builds further along the same file, "
        "into its own --db and --corpus (then --merge it)",
    )
    ap.add_argument(
        "--merge",
        action="append",
        default=[],
        metavar="CORPUS",
        help="build nothing: add this corpus file's trees (e.g. a --start process's) to the file's corpus",
    )
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--corpus", default=None, help="[default: bench/trees/<dataset>-<split>.jsonl.gz]")
    ap.add_argument("--principles", default=None)
    ap.add_argument("--set", action="append", default=[], metavar="FIELD=VALUE", help="a TreeConfig field")
    ap.add_argument(
        "--extend-from",
        default=None,
        metavar="CONFIG_HASH",
        help="go on from this config's trees (a smaller max_backtraces/max_depth) where a pair has one",
    )
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--save-every", type=int, default=5, help="write the corpus after this many new trees")
    ap.add_argument("--max-minutes", type=float, default=None, help="start no tree after this")
    ap.add_argument("--db", default=None, help="[default: /tmp/w2s_bench/corpus/<dataset>-<split>.db]")
    args = ap.parse_args()
    if args.start and not (args.db and args.corpus):
        ap.error("--start needs its own --db and --corpus: two processes must not write one corpus file")
    if not (args.strong or args.merge):
        ap.error("--strong is required (unless --merge)")

    from w2s.trees.principles import fallback_notice, library_for_dataset

    dataset, split = dataset_of(args.file)
    if not args.principles and fallback_notice(dataset):
        print(fallback_notice(dataset))
    cfg = config_from(args, args.principles or library_for_dataset(dataset))
    url = sqlite_url(args.db or f"/tmp/w2s_bench/corpus/{dataset}-{split}.db")
    corpus = Path(args.corpus) if args.corpus else default_corpus(args.file)
    print(f"machine: {machine()}\ndatabase: {url}\ntree config {cfg.hash()}: {cfg.as_dict()}")
    # every pair is imported, not just the sample: the corpus write keeps only the trees of stored pairs
    ids = import_sample(args.file, url, None, args.seed)[args.start : args.n]
    import_corpus(url, corpus)
    if args.merge:
        for part in args.merge:
            import_corpus(url, Path(part))
        save_corpus(url, corpus, args.file)
        return
    strong = load_model(args.strong, args.threads)
    deadline = time.monotonic() + 60 * args.max_minutes if args.max_minutes is not None else None
    built = 0
    for start in range(0, len(ids), args.save_every):
        if deadline is not None and time.monotonic() > deadline:
            break
        new = ensure_trees(
            url,
            strong,
            ids[start : start + args.save_every],
            cfg,
            deadline=deadline,
            label=f"{dataset}/{split}",
            extend_from=args.extend_from,
        )
        if new:
            built += new
            save_corpus(url, corpus, args.file)
    print(f"built {built} trees for {len(ids)} pairs of {args.file}")


if __name__ == "__main__":
    main()
