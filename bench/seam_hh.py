"""SEAM vs baselines on HH harmlessness (test_dev), in one run.

    python bench/seam_hh.py --n 200 --seed 0            (rerun to resume; --max-minutes to bound a run)

Weak = SmolLM2-135M-Instruct (transformers), strong = Qwen2.5-Coder-1.5B-Instruct Q4_K_M through llama.cpp
(falls back to transformers, then to SmolLM2 as the strong model; the one used is printed). A seeded subset
of `../shared/data/hh-harmless-single-turn/test_dev.jsonl` is imported with randomised A/B positions into
a bench database (default /tmp/w2s_bench/seam_hh_<n>_<seed>.db), so a killed run resumes: trees and
annotations already stored are reused, and their stored per-row seconds still give the timings.

Prints: accuracy (Wilson 95% CI) of naive, strong, cot-v1/v2/v3, seam and the consistency filter;
seconds per pair of tree building and of each annotator; and weak-annotation timing against a raw batched
forward pass over the same prompts and against a per-pair unbatched loop; and the machine.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import machine  # after the environment it must see

DATA = (
    Path(__file__).resolve().parents[1]
    / ".."
    / "shared"
    / "data"
    / "hh-harmless-single-turn"
    / "test_dev.jsonl"
)
# The consistency filter only combines the naive and strong labels (which it computes again), so it is
# opt-in here: --methods naive,strong,consistency.
METHODS = ["naive", "strong", "cot-v1", "cot-v2", "cot-v3", "seam"]


def pick_strong(requested: str | None, threads: int):
    from w2s.backends import get_model

    candidates = (
        [requested]
        if requested
        else ["llamacpp:qwen2.5-coder-1.5b", "transformers:qwen2.5-coder-1.5b", "transformers:smollm2"]
    )
    for spec in candidates:
        try:
            model = get_model(spec, threads=threads)
            print(f"strong model: {spec}")
            return model
        except Exception as e:  # noqa: BLE001  (report and fall back)
            print(f"strong model {spec} unavailable: {type(e).__name__}: {e}")
    sys.exit("no strong model available")


def import_subset(n: int, seed: int, url: str) -> list[str]:
    from sqlmodel import select

    from w2s.store import Pair, session_scope
    from w2s.store.importers import ImportConfig, import_file

    lines = DATA.read_text().splitlines()
    # a few records are invalid (an empty response) and are skipped: sample a little more, keep n
    chosen = sorted(random.Random(seed).sample(range(len(lines)), min(len(lines), n + n // 20 + 2)))
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "test_dev_subset.jsonl"
        path.write_text("\n".join(lines[i] for i in chosen) + "\n")
        config = ImportConfig(
            dataset="hh-harmless-single-turn", split="test_dev", seed=seed, skip_invalid=True
        )
        result = import_file(path, config, url=url)
        for error in result.skipped:
            print(f"skipped invalid record: {error}")
    with session_scope(url) as s:
        pairs = list(s.exec(select(Pair).where(Pair.dataset == "hh-harmless-single-turn").order_by(Pair.id)))[
            :n
        ]
    print(
        f"subset: {len(pairs)} pairs of {len(lines)} (seed {seed}); gold A on {sum(p.gold == 'a' for p in pairs)}"
    )
    return [p.id for p in pairs]


def progress(total: int, label: str):
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    bar = Progress(
        TextColumn(f"[bold]{label}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TextColumn("ETA"),
        TimeRemainingColumn(),
    )
    task = bar.add_task(label, total=total)
    return bar, task


def complete_pairs(url: str, ids: list[str], strong: str, config_hash: str, keys) -> set[str]:
    """The pairs of `ids` that have this config's tree and a label from every method (`keys` are the
    annotators' dedup-key functions): what a run, resumed or cut short, has finished."""
    from sqlmodel import select

    from w2s.store import Annotation, session_scope
    from w2s.trees import stored_pair_ids

    with session_scope(url) as s:
        have = stored_pair_ids(s, strong, config_hash) & set(ids)
        stored = set(s.exec(select(Annotation.dedup_key).where(Annotation.pair_id.in_(list(have)))))
    return {pid for pid in have if all(key(pid) in stored for key in keys)}


def weak_timing(weak, ids: list[str], url: str, batch_size: int) -> dict:
    """Seconds per pair: the naive weak annotator (2 prompts per pair, both orders) vs a raw batched
    forward pass over the same prompts vs calling the backend one prompt at a time."""
    import torch
    from sqlmodel import select

    from annotators.base import get_annotator
    from w2s.store import Pair, session_scope
    from w2s.templates import render
    from w2s.trees import pair_context
    from w2s.trees.principles import load_library

    with session_scope(url) as s:
        pairs = list(s.exec(select(Pair).where(Pair.id.in_(ids))))
    question = load_library("harmlessness").question
    prompts = [
        render("judge", **pair_context(p, swap), question=question) for p in pairs for swap in (False, True)
    ]
    annotator = get_annotator("naive", weak)
    annotator.annotate(pairs[:2])  # warm-up
    t = time.perf_counter()
    for i in range(0, len(pairs), batch_size):
        annotator.annotate(pairs[i : i + batch_size])
    annotate_s = (time.perf_counter() - t) / len(pairs)

    hf, tok = weak.model, weak.tokenizer
    texts = [weak.render(p) for p in prompts]
    t = time.perf_counter()
    with torch.inference_mode():
        for i in range(0, len(texts), 2 * batch_size):
            enc = tok(
                texts[i : i + 2 * batch_size], return_tensors="pt", padding=True, add_special_tokens=False
            )
            hf(**enc, logits_to_keep=1).logits[:, -1, :]
    raw_s = (time.perf_counter() - t) / len(pairs)

    t = time.perf_counter()
    for p in prompts:
        weak.score_choices([p], ["A", "B"])
    loop_s = (time.perf_counter() - t) / len(pairs)
    return {
        "pairs": len(pairs),
        "annotate_batched": annotate_s,
        "raw_batched_forward": raw_s,
        "unbatched_loop": loop_s,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=200, help="pairs in the seeded subset")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument(
        "--strong", default=None, help="strong model spec [default: qwen via llama.cpp, with fallbacks]"
    )
    ap.add_argument("--weak", default="transformers:smollm2")
    ap.add_argument("--db", default=None)
    ap.add_argument("--methods", default=",".join(METHODS))
    ap.add_argument("--batch-size", type=int, default=8)
    ap.add_argument(
        "--tree-batch-size",
        type=int,
        default=1,
        help="pairs searched in lock-step; 1 suits llama.cpp (one prompt at a time, one cached prefix)",
    )
    ap.add_argument("--thought-tokens", type=int, default=40)
    ap.add_argument("--depth", type=int, default=4)
    ap.add_argument("--backtraces", type=int, default=2)
    ap.add_argument("--no-post-relevance", action="store_true")
    ap.add_argument(
        "--thought-one-order", action="store_true", help="thought written once, A first (the earlier design)"
    )
    ap.add_argument(
        "--no-weak-prune",
        action="store_true",
        help="seam keeps every informative node (labels are keyed without this option: use another --db)",
    )
    ap.add_argument("--cot-tokens", type=int, default=64)
    ap.add_argument("--timing-pairs", type=int, default=16)
    ap.add_argument("--chunk", type=int, default=4, help="pairs per chunk (trees, then all methods)")
    ap.add_argument(
        "--max-minutes",
        type=float,
        default=None,
        help="stop starting new chunks after this (0: only report what is stored)",
    )
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--out", default=None, help="write the figures as JSON here")
    args = ap.parse_args()

    import torch

    torch.set_num_threads(args.threads)
    from annotators.base import annotate_all, get_annotator
    from w2s.backends import get_model
    from w2s.labels.quality import evaluate_annotations
    from w2s.store import session_scope
    from w2s.trees import TreeConfig, build_trees

    url = args.db or f"sqlite:////tmp/w2s_bench/seam_hh_{args.n}_{args.seed}.db"
    if url.startswith("sqlite:///"):
        Path(url[len("sqlite:///") :]).parent.mkdir(parents=True, exist_ok=True)
    print(f"machine: {machine()}")
    print(f"database: {url}")
    ids = import_subset(args.n, args.seed, url)
    weak = get_model(args.weak)
    print(f"weak model: {args.weak}")
    strong = pick_strong(args.strong, args.threads)

    cfg = TreeConfig(
        library="harmlessness",
        thought_max_tokens=args.thought_tokens,
        max_depth=args.depth,
        max_backtraces=args.backtraces,
        post_relevance=not args.no_post_relevance,
        thought_both_orders=not args.thought_one_order,
    )
    print(f"tree config {cfg.hash()}: {cfg.as_dict()}")
    # Work in chunks of pairs (trees, then every method) so that whatever finishes within the time budget
    # is a complete comparison on the same pairs.
    methods = [m for m in args.methods.split(",") if m]
    annotators = [
        get_annotator(
            m,
            weak,
            strong,
            tree_config=cfg.hash(),
            reasoning_max_tokens=args.cot_tokens,
            weak_prune=not args.no_weak_prune,
        )
        for m in methods
    ]
    deadline = time.monotonic() + 60 * args.max_minutes if args.max_minutes is not None else None
    done: list[str] = []
    bar, task = progress(len(ids), "pairs (trees + all methods)")
    with bar:
        for i in range(0, len(ids), args.chunk):
            if deadline is not None and time.monotonic() > deadline:
                print(f"time budget of {args.max_minutes} min reached: stopping after {len(done)} pairs")
                break
            chunk = ids[i : i + args.chunk]
            build_trees(strong, chunk, cfg, url=url, in_flight=args.tree_batch_size)
            for ann in annotators:
                annotate_all(ann, chunk, url=url, batch_size=args.batch_size)
            done += chunk
            bar.advance(task, len(chunk))

    complete = complete_pairs(url, ids, strong.spec, cfg.hash(), [a.key for a in annotators])
    with session_scope(url) as s:
        report = evaluate_annotations(s, dataset="hh-harmless-single-turn", pair_ids=complete)
    print(f"\naccuracy vs gold on {report['pairs_with_gold']} pairs (A/B randomised; 95% Wilson CI)")
    print(
        f"{'method':<12} {'annotator':<30} {'n':>4} {'acc':>6} {'95% CI':>15} "
        f"{'cover':>6} {'risky':>6} {'good':>5} {'s/pair':>7}"
    )
    for m in report["methods"]:
        corr = m["vs_naive"] or {}
        print(
            f"{m['method']:<12} {m['annotator']:<30} {m['n']:>4} {m['accuracy']:>6.3f} "
            f"[{m['ci95'][0]:.3f},{m['ci95'][1]:.3f}] {m['coverage']:>6.2f} {corr.get('risky', '-'):>6} "
            f"{corr.get('good', '-'):>5} {m['seconds_per_pair']:>7.2f}"
        )
    for t in report["trees"]:
        if t["config_hash"] == cfg.hash():
            print(
                f"\ntrees by {t['strong_model']} (config {t['config_hash']}): {t['trees']} trees, "
                f"{t['mean_seconds']:.2f} s/pair, depth {t['mean_depth']:.2f}, backtraces {t['mean_backtraces']:.2f}, "
                f"nodes {t['mean_nodes']:.2f}, tokens {t['mean_tokens']:.0f}, roles {t['roles']}, stops {t['stops']}; "
                f"the exit node's own verdict matches gold on {t['exit_accuracy'] or 0:.3f} of the "
                f"{t['exit_coverage']:.0%} of trees that have one"
            )
    usage = strong.usage
    if usage.prompt_tokens:
        print(
            f"strong model usage in this process: {usage.prompt_tokens} prompt tokens "
            f"({usage.cached_prompt_tokens / usage.prompt_tokens:.0%} from the prefix cache), "
            f"{usage.completion_tokens} generated, {usage.seconds:.0f} s"
        )

    timing = weak_timing(weak, ids[: args.timing_pairs], url, args.batch_size)
    print(
        f"evaluated subset: {len(complete)} pairs with a tree and every method's label (seeded sample of {len(ids)})"
    )
    print(f"\nweak annotation timing on {timing['pairs']} pairs (s/pair, 2 prompts per pair):")
    print(f"  naive annotator, batched     {timing['annotate_batched']:.3f}")
    print(
        f"  raw batched forward pass     {timing['raw_batched_forward']:.3f}  "
        f"(annotator / raw = {timing['annotate_batched'] / timing['raw_batched_forward']:.2f}x)"
    )
    print(
        f"  per-pair unbatched loop      {timing['unbatched_loop']:.3f}  "
        f"(loop / annotator = {timing['unbatched_loop'] / timing['annotate_batched']:.2f}x)"
    )
    if args.out:
        Path(args.out).write_text(
            json.dumps(
                {
                    "machine": machine(),
                    "strong": strong.spec,
                    "weak": args.weak,
                    "n": len(ids),
                    "seed": args.seed,
                    "tree_config": cfg.as_dict(),
                    "report": report,
                    "weak_timing": timing,
                },
                indent=2,
            )
        )


if __name__ == "__main__":
    main()
