"""How much can a master gain from the trees' exits? The simplest reading, with nothing fitted: take the
tree's verdict where its search exits (max(v) >= tau_exit) and the twin's label everywhere else. Scored on
the test pairs of bench/seam_domains.py runs (say the folds of bench/seam_lolo.py), beside the twin and the
fitted master of the same runs, with the stored trees replayed at each tau_exit given (no model call).

    python bench/exit_gate.py /tmp/lolo/js.json /tmp/lolo/python.json /tmp/lolo/cpp.json --taus 0.6,0.65,0.7,0.75

A tree that does not exit leaves the twin's label, so the gate's gain over the twin is exactly
coverage × (exit accuracy − the twin's accuracy on those pairs): what the exits carry. Only a tau_exit at
or below the runs' own can be replayed from their trees.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from pool_runs import load_run
from seam_domains import default_db

from w2s import pipeline as P
from w2s.machine import machine
from w2s.training.metrics import accuracy_gap_ci, correct


def exit_p_a(pair, tree, nodes, library, cfg) -> float | None:
    """P(A better) of the tree's exit node under `cfg`'s thresholds (replayed), None when its search does
    not stop on an exit (as the seam-gate annotator reads a stored tree)."""
    from w2s.labels.quality import decisive_exit_p_a
    from w2s.trees import Search

    search = Search.resume(pair, tree, nodes, library, cfg)
    return decisive_exit_p_a([(n.role, n.p_a) for n in search.nodes], cfg.tau_exit)


def gate_run(run: dict, taus: list[float], twin: str) -> dict:
    """Per pair of one run: gold, the twin's and the fitted master's P(gold), and each tau's exit P(A)."""
    from sqlmodel import select

    from w2s.store import Pair, select_in, session_scope
    from w2s.trees import TreeConfig, extension_problem
    from w2s.trees.principles import load_library
    from w2s.trees.selection import nodes_of

    cfg = TreeConfig(**run["tree_config"])
    too_high = [t for t in taus if t > cfg.tau_exit]
    if too_high:
        raise SystemExit(
            f"{run['test']}: trees built at tau_exit {cfg.tau_exit} cannot be replayed at {too_high}"
        )
    url = run.get("database") or P.sqlite_url(default_db(run["train"], run["test"]))
    ids = run["per_pair"]["ids"]
    trees = P.trees_of(url, ids, run["strong"], run["tree_config_hash"])
    library = load_library(cfg.library)
    with session_scope(url) as s:
        pairs = {p.id: p for p in select_in(s, select(Pair), Pair.id, ids)}
        nodes = dict(zip(trees, nodes_of(s, list(trees.values()))))
    exits = {t: [] for t in taus}
    for pid in ids:
        if pid not in trees:
            raise SystemExit(f"{run['test']}: test pair {pid} has no tree in {url}")
        problem = extension_problem(trees[pid], nodes[pid], cfg)
        if problem:
            raise SystemExit(f"{run['test']}: the tree of pair {pid} cannot be replayed: {problem}")
        for t in taus:
            replay = dataclasses.replace(cfg, tau_exit=t)
            exits[t].append(exit_p_a(pairs[pid], trees[pid], nodes[pid], library, replay))
    p_gold = run["per_pair"]["p_gold"]
    return {
        "gold_a": [pairs[pid].gold == "a" for pid in ids],
        "twin": p_gold[twin],
        "master": p_gold.get("seam-aligned"),
        "exits": exits,
    }


def gate_table(runs: list[dict], taus: list[float]) -> dict:
    """Twin, fitted master and, per tau, exit coverage, exit accuracy and the gate's accuracy and gap to the
    twin (paired bootstrap) over the pooled pairs of `runs` (outputs of `gate_run`)."""
    gold_a = [g for r in runs for g in r["gold_a"]]
    twin = [p for r in runs for p in r["twin"]]
    out = {"n": len(gold_a), "twin": float(correct(twin).mean()), "taus": {}}
    if all(r["master"] is not None for r in runs):
        out["master"] = float(correct([p for r in runs for p in r["master"]]).mean())
    for t in taus:
        exits = [v for r in runs for v in r["exits"][t]]
        gate = [tw if v is None else P.gold_side(v, a) for v, a, tw in zip(exits, gold_a, twin)]
        taken = [(v > 0.5) == a for v, a in zip(exits, gold_a) if v is not None]
        twin_there = correct([tw for v, tw in zip(exits, twin) if v is not None])
        out["taus"][t] = {
            "exit_coverage": len(taken) / len(exits),
            "exit_accuracy": sum(taken) / len(taken) if taken else None,
            "twin_on_exits": float(twin_there.mean()) if taken else None,
            "gate": float(correct(gate).mean()),
            "gap": accuracy_gap_ci(twin, gate),
        }
    return out


def print_table(name: str, t: dict) -> None:
    master = f", seam-aligned {t['master']:.3f}" if "master" in t else ""
    print(f"\n{name}: {t['n']} pairs, twin {t['twin']:.3f}{master}")
    print("tau_exit  exit coverage  exit accuracy  twin there  gate   gate − twin (95%)")
    for tau, r in t["taus"].items():
        acc, there = (
            ("–", "–")
            if r["exit_accuracy"] is None
            else (f"{r['exit_accuracy']:.2f}", f"{r['twin_on_exits']:.2f}")
        )
        g = r["gap"]
        print(
            f"{tau:<9} {r['exit_coverage']:<14.2f} {acc:<14} {there:<11} {r['gate']:.3f}  "
            f"{g['gap']:+.3f} ({g['lo']:+.3f} … {g['hi']:+.3f})"
        )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("runs", nargs="+", help="--json outputs of bench/seam_domains.py (each with its store)")
    ap.add_argument("--taus", default="0.6,0.65,0.7,0.75", help="tau_exit values to replay the trees at")
    ap.add_argument("--twin", default="aligned", help="the method whose label stands where a tree is silent")
    ap.add_argument("--json", help="write the tables here")
    args = ap.parse_args()
    taus = [float(t) for t in args.taus.split(",")]
    print(f"machine: {machine()}")
    runs, tables = [], {}
    for path in args.runs:
        run = load_run(path)
        if args.twin not in run["per_pair"]["p_gold"]:
            raise SystemExit(f"{path}: no {args.twin!r} labels (run bench/seam_domains.py with that method)")
        runs.append(gate_run(run, taus, args.twin))
        tables[path] = gate_table(runs[-1:], taus)
        print_table(path, tables[path])
    if len(runs) > 1:
        tables["pooled"] = gate_table(runs, taus)
        print_table("pooled", tables["pooled"])
    if args.json:
        Path(args.json).write_text(json.dumps(tables, indent=2))


if __name__ == "__main__":
    main()
