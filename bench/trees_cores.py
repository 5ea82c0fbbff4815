"""Trees/hour on this machine's cores with an in-process llama.cpp model: one process using every core
against one worker per core sharing one SQLite store (`w2s trees build`'s leased chunks).

    python bench/trees_cores.py ../shared/data/code-humanevalpack/python.jsonl -n 8 \\
        --strong llamacpp:qwen2.5-coder-1.5b -- --principles correctness -B 2 -D 3

(what follows `--` goes to every `w2s trees build`).

Both arms build the trees of the same first N pairs of the file, each in a fresh store in a temporary
folder, under the same tree config; every process searches one pair at a time (`--in-flight 1`: more
in flight would let the first worker lease every pair), claiming one at a time. Every process is pinned with
`taskset`: the single process to all cores with as many threads, each worker to its own core with one
thread. It prints the machine, both arms' trees/hour and their ratio. Needs quiet cores: run nothing else.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from sqlmodel import func, select

from w2s.machine import machine
from w2s.store import Pair, Tree, session_scope

W2S = [sys.executable, "-c", "from w2s.cli import main; main()"]


def w2s(*args: str, url: str, cpus: str, log: Path) -> subprocess.Popen:
    cmd = ["taskset", "-c", cpus, *W2S, "--db", url, *args]
    return subprocess.Popen(cmd, stdout=log.open("ab"), stderr=subprocess.STDOUT)


def arm(
    name: str,
    pairs: Path,
    n: int,
    strong: str,
    build_args: list[str],
    workers: list[tuple[str, int]],
    tmp: Path,
) -> tuple[int, float]:
    """Build the first n pairs' trees with one `w2s trees build` per (cpus, threads); (trees, seconds)."""
    url = f"sqlite:///{tmp / name}.db"
    log = tmp / f"{name}.log"
    subprocess.run(
        [*W2S, "--db", url, "import", str(pairs), "--dataset", "bench", "--split", "cores"],
        check=True,
        stdout=subprocess.DEVNULL,
    )
    with session_scope(url) as s:
        ids = s.exec(select(Pair.id).order_by(Pair.id)).all()[:n]
    start = time.monotonic()
    procs = [
        w2s(
            "trees",
            "build",
            "--strong",
            strong,
            "--pairs",
            ",".join(ids),
            "--chunk-size",
            "1",
            "--in-flight",
            "1",
            "-o",
            f"threads={threads}",
            *build_args,
            url=url,
            cpus=cpus,
            log=log,
        )
        for cpus, threads in workers
    ]
    for p in procs:
        if p.wait() != 0:
            sys.exit(f"{name}: a worker failed; see {log}\n{log.read_text()[-3000:]}")
    seconds = time.monotonic() - start
    with session_scope(url) as s:
        trees = s.exec(select(func.count()).select_from(Tree)).one()
    return trees, seconds


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("pairs", type=Path, help="a pair file (JSONL, as w2s import reads it)")
    ap.add_argument("-n", type=int, default=8, help="pairs per arm (the file's first N by id)")
    ap.add_argument("--strong", default="llamacpp:qwen2.5-coder-1.5b")
    ap.add_argument("--cores", type=int, default=os.cpu_count() or 1)
    argv = sys.argv[1:]
    cut = argv.index("--") if "--" in argv else len(argv)
    a = ap.parse_args(argv[:cut])
    a.build_args = argv[cut + 1 :]  # after --: options for every w2s trees build
    all_cpus = f"0-{a.cores - 1}"
    print(machine())
    print(f"{a.n} pairs of {a.pairs}, {a.strong}, w2s trees build {' '.join(a.build_args)}")
    with tempfile.TemporaryDirectory(prefix="w2s-cores-") as tmp:
        one = arm("one", a.pairs, a.n, a.strong, a.build_args, [(all_cpus, a.cores)], Path(tmp))
        many = arm(
            "workers", a.pairs, a.n, a.strong, a.build_args, [(str(c), 1) for c in range(a.cores)], Path(tmp)
        )
    rates = {}
    for label, (trees, seconds) in [
        (f"one process, {a.cores} threads", one),
        (f"{a.cores} workers, 1 thread each", many),
    ]:
        rates[label] = trees / seconds * 3600
        print(f"{label:32} {trees} trees in {seconds:6.0f} s: {rates[label]:6.1f} trees/hour")
    first, second = rates.values()
    print(f"workers / one process: x{second / first:.2f}")


if __name__ == "__main__":
    main()
