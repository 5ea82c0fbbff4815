"""What trees say and cost, per pair file and tree config: exit coverage and accuracy, share of nodes
with no preference, and tokens / seconds per tree broken down by step, next to a roofline estimate.

    taskset -c 1 python bench/trees_dev.py --pairs ../shared/data/code-humanevalpack/python.jsonl --n 16 \\
        --strong llamacpp:qwen2.5-coder-1.5b --threads 1 --set thought_template=thought-analyse

Runs unchanged on any pair file: the sample is seeded, the library is chosen by the file's dataset name
(its folder) unless --principles names one, and the database (default /tmp/w2s_bench/trees_dev.db)
keeps every tree, so a rerun or a killed run resumes and other configs are compared on the same pairs.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections import defaultdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import config_from, default_corpus, load_model

from w2s import pipeline as P
from w2s.machine import machine

STEPS = ("relevance", "thought", "verdict", "post-relevance")


class MeteredModel:
    """The strong model, with every call's per-prompt usage tallied by tree-building step."""

    def __init__(self, model):
        self.model, self.spec, self.usage = model, model.spec, model.usage
        self.steps = defaultdict(
            lambda: {"prompts": 0, "evaluated": 0, "cached": 0, "generated": 0, "seconds": 0.0}
        )

    def _tally(self, step: str) -> None:
        row = self.steps[step]
        for u in self.model.usage.last:
            row["prompts"] += 1
            row["evaluated"] += u.evaluated
            row["cached"] += u.cached_prompt_tokens
            row["generated"] += u.completion_tokens
            row["seconds"] += u.seconds

    def generate(self, prompts, **kwargs):
        out = self.model.generate(prompts, **kwargs)
        self._tally("thought")
        return out

    def score_choices(self, prompts, choices):
        out = self.model.score_choices(prompts, choices)
        text = json.dumps(prompts[0]) if prompts else ""
        step = (
            "verdict"
            if list(choices) == ["A", "B"]
            else "post-relevance"
            if "reviewer's note" in text
            else "relevance"
        )
        self._tally(step)
        return out


def summarise(url: str, ids: list[str], strong: str, config_hash: str) -> dict:
    from sqlmodel import select

    from w2s.labels.quality import decisive_exit_label
    from w2s.store import Node, Pair, select_in, session_scope

    trees = list(P.trees_of(url, ids, strong, config_hash).values())
    with session_scope(url) as s:
        gold = dict(select_in(s, select(Pair.id, Pair.gold), Pair.id, ids))
        nodes = defaultdict(list)
        for n in select_in(s, select(Node).order_by(Node.position), Node.tree_id, [t.id for t in trees]):
            nodes[n.tree_id].append(n)
    exits, first_right = [], []
    for t in trees:
        if nodes[t.id] and abs(nodes[t.id][0].p_a - 0.5) > 1e-9:  # the first principle's verdict, if any
            first_right.append(("a" if nodes[t.id][0].p_a > 0.5 else "b") == gold[t.pair_id])
        # an exit verdict that survives both orders: the search stopped on it (not the "exits both ways" tail)
        label = decisive_exit_label([(n.role, n.p_a) for n in nodes[t.id]], t.config["tau_exit"])
        if label is not None:
            exits.append(label == gold[t.pair_id])
    all_nodes = [n for t in trees for n in nodes[t.id]]
    k = max(1, len(trees))
    return {
        "trees": len(trees),
        "exit_coverage": len(exits) / k,
        "exit_accuracy": (sum(exits) / len(exits)) if exits else None,
        "exits": len(exits),
        "first_node_right": (sum(first_right) / len(first_right)) if first_right else None,
        "nodes_per_tree": len(all_nodes) / k,
        "share_v_half": sum(abs(n.p_a - 0.5) < 0.05 for n in all_nodes) / max(1, len(all_nodes)),
        "tokens_per_tree": sum(t.tokens for t in trees) / k,
        "cached_per_tree": sum(t.cached_tokens for t in trees) / k,
        "seconds_per_tree": sum(t.seconds for t in trees) / k,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--pairs", action="append", required=True, help="a pair file (repeat for several)")
    ap.add_argument("--n", type=int, default=16, help="seeded sample per file")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--strong", default="llamacpp:qwen2.5-coder-1.5b")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument(
        "--principles", default=None, help="principle library [default: by the file's dataset name]"
    )
    ap.add_argument("--set", action="append", default=[], metavar="FIELD=VALUE", help="a TreeConfig field")
    ap.add_argument(
        "--extend-from",
        default=None,
        metavar="CONFIG_HASH",
        help="go on from this config's trees (a smaller max_backtraces/max_depth) where a pair has one",
    )
    ap.add_argument(
        "--no-build",
        action="store_true",
        help="build nothing: summarise the trees the database and the file's committed corpus hold",
    )
    ap.add_argument("--db", default="/tmp/w2s_bench/trees_dev.db")
    ap.add_argument("--max-minutes", type=float, default=None, help="stop starting new trees after this")
    ap.add_argument("--json", default=None, help="write the figures here")
    ap.add_argument(
        "--roofline",
        type=float,
        default=2.0,
        help="seconds per 100 evaluated tokens the CPU can reach (2 cores: about 2; the estimate printed)",
    )
    args = ap.parse_args()

    from w2s.trees.principles import fallback_notice, library_for_dataset

    url = P.sqlite_url(args.db)
    print(f"machine: {machine()}\ndatabase: {url}")
    strong = None if args.no_build else MeteredModel(load_model(args.strong, args.threads))
    deadline = time.monotonic() + 60 * args.max_minutes if args.max_minutes is not None else None
    results = {}
    for path in args.pairs:
        dataset, split = P.dataset_of(path)
        if not args.principles and fallback_notice(dataset):
            print(fallback_notice(dataset))
        cfg = config_from(args, args.principles or library_for_dataset(dataset))
        ids = P.import_pairs(url, path, n=args.n, seed=args.seed)
        if args.extend_from or args.no_build:  # the trees to go on from or to summarise
            P.import_tree_corpus(url, default_corpus(path))
        print(
            f"\n{dataset}/{split}: {len(ids)} pairs, library {cfg.library}, config {cfg.hash()}: {cfg.as_dict()}"
        )
        built = (
            0
            if strong is None
            else P.ensure_trees(
                url, strong, ids, cfg, deadline=deadline, extend_from=args.extend_from, log=None
            )
        )
        if deadline is not None and time.monotonic() > deadline:
            print("time budget reached")
        summary = summarise(url, ids, args.strong, cfg.hash())
        summary.update(built=built, config=cfg.as_dict(), config_hash=cfg.hash())
        results[f"{dataset}/{split}"] = summary
        acc, first = (
            "-" if summary[k] is None else f"{summary[k]:.2f}" for k in ("exit_accuracy", "first_node_right")
        )
        print(
            f"trees {summary['trees']} (built {built}): exit coverage {summary['exit_coverage']:.2f}, exit accuracy "
            f"{acc} ({summary['exits']} exits), first node right {first}, nodes/tree {summary['nodes_per_tree']:.2f}, "
            f"nodes at v=0.5±0.05 {summary['share_v_half']:.2f}, tokens/tree {summary['tokens_per_tree']:.0f} "
            f"(+{summary['cached_per_tree']:.0f} cached), s/tree {summary['seconds_per_tree']:.1f} "
            f"(roofline at {args.roofline} s/100 tokens: {summary['tokens_per_tree'] * args.roofline / 100:.1f})"
        )
    if strong is not None and strong.steps:
        print("\nthis process, by step (trees built now):")
        print(
            f"{'step':<15} {'prompts':>7} {'evaluated':>9} {'generated':>9} "
            f"{'cached':>8} {'seconds':>8} {'s/100 tok':>9}"
        )
        for step in STEPS:
            r = strong.steps.get(step)
            if r:
                print(
                    f"{step:<15} {r['prompts']:>7} {r['evaluated']:>9} {r['generated']:>9} {r['cached']:>8} "
                    f"{r['seconds']:>8.1f} {100 * r['seconds'] / max(1, r['evaluated']):>9.2f}"
                )
        results["steps"] = dict(strong.steps)
    if args.json:
        Path(args.json).write_text(
            json.dumps({"machine": machine(), "strong": args.strong, "results": results}, indent=2)
        )


if __name__ == "__main__":
    main()
