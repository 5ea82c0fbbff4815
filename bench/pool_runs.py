"""Pool several bench/seam_domains.py runs (say js → python, python → js, and each held-out language) into
one table: accuracy per method over the union of their test pairs, and the same gaps with paired
percentile-bootstrap intervals (the pairs of every run resampled together).

    python bench/pool_runs.py /tmp/js_py.json /tmp/py_js.json

A pair tested by two runs counts twice (once per run's masters). Methods missing from a run are left out
of the pooled table; a run written before per-pair figures were kept is an error naming the file.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import GAPS, add_best

from w2s.labels.quality import wilson_interval
from w2s.training.metrics import accuracy_gap_ci, correct


def pooled(runs: list[dict]) -> dict:
    """{"n", "methods": {m: {"accuracy", "ci_low", "ci_high"}}, "gaps": {"a - b": accuracy_gap_ci}} over the
    union of the runs' test pairs, for the methods every run has."""
    methods = [m for m in runs[0]["per_pair"]["p_gold"] if all(m in r["per_pair"]["p_gold"] for r in runs)]
    probs = {m: [p for r in runs for p in r["per_pair"]["p_gold"][m]] for m in methods}
    n = sum(len(r["per_pair"]["ids"]) for r in runs)
    out = {"n": n, "runs": len(runs), "methods": {}, "gaps": {}}
    for m in methods:
        right = int(correct(probs[m]).sum())
        lo, hi = wilson_interval(right, n)
        out["methods"][m] = {"accuracy": right / n, "ci_low": lo, "ci_high": hi}
    add_best(probs, {m: r["accuracy"] for m, r in out["methods"].items()})
    for a, b in GAPS:
        if a in probs and b in probs:
            out["gaps"][f"{a} - {b}"] = accuracy_gap_ci(probs[b], probs[a])
    return out


def load_run(path: str) -> dict:
    run = json.loads(Path(path).read_text())
    if "per_pair" not in run:
        raise SystemExit(
            f"{path}: no per-pair figures (written by an older bench/seam_domains.py): run it again "
            "(its labels are stored, so a rerun only scores them)"
        )
    return run


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("runs", nargs="+", help="--json outputs of bench/seam_domains.py")
    ap.add_argument("--json", help="write the pooled figures here")
    args = ap.parse_args()
    result = pooled([load_run(p) for p in args.runs])
    print(f"{result['n']} test pairs from {result['runs']} runs")
    for m, r in result["methods"].items():
        print(f"{m:<16} {r['accuracy']:.3f} [{r['ci_low']:.3f}, {r['ci_high']:.3f}]")
    for name, g in result["gaps"].items():
        print(f"{name}: {g['gap']:+.3f} [{g['lo']:+.3f}, {g['hi']:+.3f}]")
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
