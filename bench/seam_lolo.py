"""Leave one file out: for each pair file, train the masters on all the others and test on it
(`bench/seam_domains.py` once per fold), then pool the folds (`bench/pool_runs.py`).

    taskset -c 1 python bench/seam_lolo.py ../shared/data/code-humanevalpack/{js,python,cpp}.jsonl \\
        --out /tmp/lolo -- --strong llamacpp:qwen2.5-coder-1.5b --weak transformers:smollm2 --threads 1 \\
        --no-build --set max_backtraces=2 --set max_depth=3 --methods naive,strong,aligned,seam-aligned

On code, the files are languages: every choice of master or tree is judged on languages it never saw.
What follows `--` goes to every fold's seam_domains.py; each fold writes OUT/<test file stem>.json and
keeps its own database, so a rerun resumes every fold. It prints each fold's table and the pooled one.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import seam_domains  # noqa: E402
from pool_runs import load_run, pooled  # noqa: E402


def fold_args(files: list[str], test: str, rest: list[str], out: Path) -> list[str]:
    trains = [a for f in files if f != test for a in ("--train", f)]
    return [*trains, "--test", test, *rest, "--json", str(out / f"{Path(test).stem}.json")]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("files", nargs="+", help="pair files, one per language (at least 2)")
    ap.add_argument("--out", type=Path, required=True, help="folder of the folds' --json outputs")
    argv = sys.argv[1:]
    cut = argv.index("--") if "--" in argv else len(argv)
    args, rest = ap.parse_args(argv[:cut]), argv[cut + 1 :]  # after --: options of bench/seam_domains.py
    if len(args.files) < 2:
        raise SystemExit("give at least two pair files: each is tested on masters trained on the others")
    if "--json" in rest or "--train" in rest or "--test" in rest:
        raise SystemExit("--train, --test and --json are set per fold: leave them out after --")
    args.out.mkdir(parents=True, exist_ok=True)
    runs = []
    for test in args.files:
        print(f"\n## fold: test {test}", flush=True)
        argv, sys.argv = (
            sys.argv,
            [str(HERE / "seam_domains.py"), *fold_args(args.files, test, rest, args.out)],
        )
        try:  # in this process, so that the folds share the loaded models
            seam_domains.main()
        finally:
            sys.argv = argv
        runs.append(load_run(str(args.out / f"{Path(test).stem}.json")))
    result = pooled(runs)
    print(f"\n## pooled: {result['n']} test pairs from {result['runs']} folds")
    for m, r in result["methods"].items():
        print(f"{m:<16} {r['accuracy']:.3f} [{r['ci_low']:.3f}, {r['ci_high']:.3f}]")
    for name, g in result["gaps"].items():
        print(f"{name.replace(' - ', ' − ')}: {g['gap']:+.3f} [{g['lo']:+.3f}, {g['hi']:+.3f}]")
    (args.out / "pooled.json").write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
