"""Tree-building throughput against a local engine-like server (bench/mock_engine.py): trees/s by pairs in
flight against Little's law, the scheduler against the lock-step waves it replaced, the client's CPU per
call, a 429 storm, and kill -9 then resume. Every run has a pair count and a wall-clock bound.

    taskset -c 1 python bench/trees_scale.py            # ~7 minutes
    taskset -c 1 python bench/trees_scale.py --quick    # ~1 minute
    python bench/trees_scale.py --llamacpp-batch        # llama.cpp: sequences per llama_batch (needs free cores)

Pairs come from `--pairs FILE` (any pair file; copies with a numbered suffix on the prompt fill the larger
runs, since the answers are hashed from the prompt). With /tmp/cores_free the server runs on core 0 and the
client on core 1, else both on core 1.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import mock_engine
from common import ROOT, SHARED, import_sample, machine, sqlite_url
from lockstep import build_waves

from w2s.backends import get_model
from w2s.trees import ListSource, TreeConfig, run_build
from w2s.trees.principles import library_for_dataset

CALLS_PER_TREE_MAX = 1 + 4 * 6  # listwise relevance, then at most D + B - 1 nodes of 4 calls (defaults)


def copies(path: Path, n: int, tmp: Path) -> Path:
    """A pair file of at least n records: the file's records, then copies whose prompt ends in ' [k]'."""
    records = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    out = tmp / path.parent.name / path.name  # same dataset and split names: the same principle library
    out.parent.mkdir(parents=True, exist_ok=True)
    rows = [
        dict(r, prompt=f"{r['prompt']} [{k}]" if k else r["prompt"])
        for k in range(-(-n // len(records)))
        for r in records
    ]
    out.write_text("".join(json.dumps(r) + "\n" for r in rows[: max(n, len(records))]))
    return out


def run(model, ids, cfg, url, in_flight: int, bound: float) -> dict:
    """One bounded build: trees/s in the steady part and overall (ramp up and drain included)."""
    stamps = []
    start = time.perf_counter()

    def progress(report):
        while len(stamps) < report.built:
            stamps.append(time.perf_counter() - start)

    async def bounded():
        try:
            return await asyncio.wait_for(
                run_build(model, ListSource(ids), cfg, url=url, in_flight=in_flight, progress=progress), bound
            )
        except TimeoutError:
            return None

    cpu = time.process_time()
    asyncio.run(bounded())
    cpu = time.process_time() - cpu
    wall = time.perf_counter() - start
    # steady: from the in_flight-th tree (the shallow first ones are past) to the last before the drain
    full = stamps[in_flight - 1 : len(ids) - in_flight]
    steady = (
        (len(full) - 1) / (full[-1] - full[0]) if len(full) > 2 and full[-1] > full[0] else len(stamps) / wall
    )
    return {
        "built": len(stamps),
        "wall": wall,
        "overall": len(stamps) / wall,
        "steady": steady,
        "cpu": cpu,
        "calls": model.usage.calls,
    }


def table(rows: list[list], head: list[str]) -> str:
    rows = [head, *[[str(c) for c in r] for r in rows]]
    widths = [max(len(r[i]) for r in rows) for i in range(len(head))]
    line = lambda r: "| " + " | ".join(c.ljust(w) for c, w in zip(r, widths)) + " |"
    return "\n".join(
        [line(rows[0]), "|" + "|".join("-" * (w + 2) for w in widths) + "|", *map(line, rows[1:])]
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--pairs", default=str(SHARED / "code-humanevalpack" / "python.jsonl"))
    ap.add_argument("--quick", action="store_true", help="a ~1 minute version")
    ap.add_argument("--ttft", type=float, default=0.15)
    ap.add_argument("--tpt", type=float, default=0.005)
    ap.add_argument("--slots", type=int, default=64)
    ap.add_argument("--levels", default="1,8,32,64,128,512", help="pairs in flight to measure")
    ap.add_argument("--bound", type=float, default=40.0, help="wall-clock seconds per run at most")
    ap.add_argument(
        "--llamacpp-batch",
        action="store_true",
        help="only measure llama.cpp decoding several sequences per batch (see llamacpp_batch)",
    )
    a, rest = ap.parse_known_args()  # the rest: llamacpp_batch's options
    if rest and not a.llamacpp_batch:
        ap.error(f"unrecognized arguments: {' '.join(rest)}")
    if a.llamacpp_batch:
        from llamacpp_batch import main as batch_main

        batch_main()
        return
    levels = [int(x) for x in a.levels.split(",")]
    bound = a.bound
    if a.quick:
        levels, bound = [1, 8, 64], 8.0
    free = Path("/tmp/cores_free").exists()
    server_cpu, client_cpu = (0, 1) if free else (1, 1)
    if hasattr(os, "sched_setaffinity") and client_cpu < os.cpu_count():
        os.sched_setaffinity(0, {client_cpu})
    print(f"machine: {machine()}")
    print(
        f"server on core {server_cpu}, client on core {client_cpu}"
        f"{' (sharing it)' if server_cpu == client_cpu else ''}; engine: ttft {a.ttft} s, {a.tpt} s/token, "
        f"{a.slots} slots; pairs from {a.pairs}"
    )
    tmp = Path(tempfile.mkdtemp(prefix="trees_scale_"))
    url = sqlite_url(tmp / "bench.db")
    most = max(4 * max(levels), 160)
    src = copies(Path(a.pairs), most, tmp)
    ids = import_sample(src, url, seed=0)
    cfg = TreeConfig(library=library_for_dataset(src.parent.name))
    print(
        f"{len(ids)} pairs ({Path(a.pairs).name} and numbered copies), library {cfg.library}, config {cfg.hash()}"
    )
    procs = []
    try:
        proc, base = mock_engine.start(cpu=server_cpu, ttft=a.ttft, tpt=a.tpt, slots=a.slots)
        procs.append(proc)
        n_run = iter(range(10**6))

        def model(**options):
            return get_model(f"openai:run{next(n_run)}@{base}", reuse=False, **options)

        # 1. trees/s by pairs in flight, against Little's law
        print("\n## trees/s by pairs in flight (Little's law: in flight / seconds per tree at 1 in flight)")
        rows, per_tree = [], None
        for n in levels:
            count = (4 if a.quick else 10) if n == 1 else (3 if a.quick else 4) * n
            r = run(model(max_concurrency=max(n, 8)), ids[:count], cfg, url, n, bound)
            if per_tree is None:  # one at a time: no ramp, every tree counts
                per_tree, r["steady"] = r["wall"] / max(1, r["built"]), r["overall"]
            little = n / per_tree
            rows.append(
                [
                    n,
                    r["built"],
                    f"{r['wall']:.1f}",
                    f"{r['steady']:.2f}",
                    f"{r['overall']:.2f}",
                    f"{little:.2f}",
                    f"{r['steady'] / little:.2f}",
                ]
            )
            print(f"  {n} in flight: {r['built']} trees in {r['wall']:.1f} s", flush=True)
        print(
            table(
                rows,
                [
                    "in flight",
                    "trees",
                    "s",
                    "trees/s (steady)",
                    "trees/s (overall)",
                    "Little's law",
                    "of Little",
                ],
            )
        )
        one = float(rows[0][3])
        at64 = next((float(r[3]) for r in rows if r[0] == 64), None)

        # 2. the scheduler against today's lock-step waves, at equal pairs in flight (a fresh server: each
        # section starts from an idle one)
        proc.kill()
        proc, base = mock_engine.start(cpu=server_cpu, ttft=a.ttft, tpt=a.tpt, slots=a.slots)
        procs.append(proc)
        n = 8 if a.quick else 32
        pairs = ids[: 4 * n]
        print(f"\n## scheduler against lock-step waves, {n} in flight, {len(pairs)} pairs")
        new = run(model(max_concurrency=n), pairs, cfg, url, n, bound)
        waves_model = model(max_concurrency=n)
        t = time.perf_counter()
        built = build_waves(waves_model, pairs, cfg, url=url, batch_size=n)
        old = built / (time.perf_counter() - t)
        print(f"scheduler {new['overall']:.2f} trees/s, waves {old:.2f} trees/s: x{new['overall'] / old:.2f}")

        # 3. client CPU per call against a zero-latency server
        proc0, base0 = mock_engine.start(cpu=server_cpu, ttft=0.0, tpt=0.0, slots=512)
        procs.append(proc0)
        pairs = ids[: 48 if a.quick else 160]
        m = get_model(f"openai:cpu@{base0}", reuse=False, max_concurrency=64)
        r = run(m, pairs, cfg, url, 64, bound)
        ms = 1000 * r["cpu"] / max(1, r["calls"])
        print(
            f"\n## client CPU against a zero-latency server, 64 in flight: {r['calls']} calls, {r['cpu']:.2f} s of "
            f"client CPU: {ms * 1000:.0f} ms per 1,000 calls ({1000 / ms:.0f} calls/s per client core); "
            f"{r['calls'] / r['wall']:.0f} calls/s of wall clock (server on core {server_cpu})"
        )

        # 4. a 429 storm (and 1% 5xx): every tree arrives
        rps = 40 if a.quick else 120
        proc1, base1 = mock_engine.start(
            cpu=server_cpu, ttft=a.ttft, tpt=a.tpt, slots=a.slots, rps_limit=rps, error_rate=0.01, seed=0
        )
        procs.append(proc1)
        pairs = ids[: 24 if a.quick else 120]
        m = get_model(f"openai:storm@{base1}", reuse=False, max_concurrency=64)
        r = run(m, pairs, cfg, url, 64, bound * 3)
        s = mock_engine.stats(base1)
        print(
            f"\n## 429 storm: server limit {rps} requests/s, 1% 5xx, 64 in flight: {r['built']} of {len(pairs)} trees, "
            f"{s.get('429', 0)} 429s and {s.get('5xx', 0)} 5xx answered, {m.retries} requests retried, "
            f"{r['overall']:.2f} trees/s; lost: {len(pairs) - r['built']}"
        )

        # 5. kill -9 mid-run, then resume
        proc.kill()
        proc, base = mock_engine.start(cpu=server_cpu, ttft=a.ttft, tpt=a.tpt, slots=a.slots)
        procs.append(proc)
        kill_resume(url, base, ids[: 48 if a.quick else 160], tmp)
        print("\n## goals")
        if at64 is not None:
            print(f"64 in flight / 1 in flight: x{at64 / one:.1f} (goal x20)")
        near = [float(r[6]) for r in rows if r[0] <= a.slots]
        print(f"of Little's law up to {a.slots} in flight: min {min(near):.2f} (goal 0.8)")
    finally:
        for p in procs:
            p.kill()
            p.wait()


def kill_resume(url: str, base: str, pairs: list[str], tmp: Path) -> None:
    """`w2s trees build` in a subprocess, killed with SIGKILL once a third of the trees are saved, then run
    again: one tree per pair, and the calls asked again are at most the killed run's in-flight ones."""
    from sqlalchemy import func
    from sqlmodel import select

    from w2s.store import Tree, session_scope

    (tmp / "ids.txt").write_text("\n".join(pairs))
    in_flight = 16
    env = {**os.environ, "W2S_DB": url, "PYTHONPATH": str(ROOT)}
    cmd = [
        sys.executable,
        "-c",
        "from w2s.cli import main; main()",
        "trees",
        "build",
        "--strong",
        f"openai:killed@{base}",
        "--pairs",
        f"@{tmp / 'ids.txt'}",
        "--in-flight",
        str(in_flight),
    ]
    mock_engine.stats(base, reset=True)

    def count() -> int:
        with session_scope(url) as s:
            return s.exec(
                select(func.count()).select_from(Tree).where(Tree.strong_model == f"openai:killed@{base}")
            ).one()

    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while count() < len(pairs) // 3 and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    saved = count()
    time.sleep(1.0)  # let the server answer what was in flight
    before = mock_engine.stats(base)["prompts"]
    subprocess.run(cmd, env=env, check=True, capture_output=True, timeout=300)
    after = mock_engine.stats(base)["prompts"]
    repeated = sum(min(before[h], after[h] - before[h]) for h in before if after.get(h, 0) > before[h])
    with session_scope(url) as s:
        per_pair = s.exec(
            select(Tree.pair_id, func.count())
            .where(Tree.strong_model == f"openai:killed@{base}")
            .group_by(Tree.pair_id)
        ).all()
    dup = sum(1 for _, c in per_pair if c > 1)
    print(
        f"\n## kill -9 at {saved} of {len(pairs)} trees saved ({in_flight} in flight), then resume: "
        f"{len(per_pair)} pairs with a tree, {dup} with more than one, {len(pairs) - len(per_pair)} without; "
        f"{repeated} calls asked again (bound: {in_flight} trees in flight x {CALLS_PER_TREE_MAX} calls = "
        f"{in_flight * CALLS_PER_TREE_MAX})"
    )


if __name__ == "__main__":
    main()
