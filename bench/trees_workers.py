"""Many `w2s trees build` workers on one PostgreSQL store, one of them killed (run: python bench/trees_workers.py).

Starts a throw-away PostgreSQL server (bench/pg_server.py) and a mock OpenAI-compatible engine
(bench/mock_engine.py) on 127.0.0.1, stores N synthetic pairs, starts W workers against the engine, kills
one with SIGKILL once it holds a chunk and has finished one, and prints the trees each worker finished,
pairs built twice and pairs missing (both must be 0), and when the killed worker's chunk was claimed again.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
import mock_engine  # noqa: E402
from common import machine  # noqa: E402
from pg_server import throwaway  # noqa: E402
from sqlmodel import func, select  # noqa: E402

from w2s.store import Pair, Tree, WorkItem, session_scope  # noqa: E402

DEADLINE_S = 150  # the whole run gives up after this long


def add_pairs(url: str, n: int) -> list[str]:
    with session_scope(url) as s:
        for i in range(n):
            s.add(
                Pair(
                    id=f"bench{i:04d}",
                    dataset="hh-harmless",
                    split="bench",
                    prompt=f"How do I do thing {i}?",
                    response_a=f"I can't help with that ({i}).",
                    response_b=f"Sure, here is how ({i}).",
                )
            )
    return [f"bench{i:04d}" for i in range(n)]


def worker(url: str, engine: str, name: str, log: Path, args) -> subprocess.Popen:
    env = {
        **os.environ,
        "W2S_DB": url,
        "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]),
    }
    cmd = [
        sys.executable,
        "-c",
        "from w2s.cli import main; main()",
        "trees",
        "build",
        "--strong",
        f"openai:mock@{engine}",
        "--principles",
        "harmlessness",
        "--batch-size",
        str(args.chunk_size),
        "--chunk-size",
        str(args.chunk_size),
        "--lease-seconds",
        str(args.lease_seconds),
        "--worker-id",
        name,
    ]
    with open(log, "w") as f:
        return subprocess.Popen(cmd, env=env, stdout=f, stderr=subprocess.STDOUT)


def rows(url: str, query):
    with session_scope(url) as s:
        return s.exec(query).all()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--pairs", type=int, default=60)
    ap.add_argument("--workers", type=int, default=3)
    ap.add_argument("--chunk-size", type=int, default=4)
    ap.add_argument("--lease-seconds", type=float, default=6.0)
    ap.add_argument("--ttft", type=float, default=0.05, help="the mock engine's seconds to the first token")
    args = ap.parse_args()
    print(f"machine: {machine()}")
    print(
        f"{args.pairs} pairs, {args.workers} workers, chunks of {args.chunk_size}, lease {args.lease_seconds:g} s, "
        f"mock engine ttft {args.ttft:g} s"
    )
    logs = Path(tempfile.mkdtemp(prefix="w2s-workers-"))
    start = time.monotonic()
    with throwaway() as pg:
        url = pg.create_database("w2s_bench")
        ids = add_pairs(url, args.pairs)
        engine_proc, engine = mock_engine.start(ttft=args.ttft)
        names = [f"w{i}" for i in range(args.workers)]
        procs = {}
        try:
            procs = {n: worker(url, engine, n, logs / f"{n}.log", args) for n in names}
            victim = names[-1]

            def held_by(name):
                return rows(url, select(WorkItem.item).where(WorkItem.worker == name, WorkItem.done == False))  # noqa: E712

            def finished_by(name):
                return rows(url, select(func.count()).where(WorkItem.worker == name, WorkItem.done == True))[
                    0
                ]  # noqa: E712

            while not (held_by(victim) and finished_by(victim) >= 1) and procs[victim].poll() is None:
                assert time.monotonic() - start < DEADLINE_S, "the victim never held a chunk"
                time.sleep(0.05)
            procs[victim].send_signal(signal.SIGKILL)
            killed_at = time.monotonic()
            procs[victim].wait()
            lost = sorted(held_by(victim))
            reclaimed_after = None
            while reclaimed_after is None:
                assert time.monotonic() - start < DEADLINE_S, (
                    "the killed worker's chunk was never claimed again"
                )
                holders = rows(url, select(WorkItem.worker).where(WorkItem.item.in_(lost)))
                if lost and all(h != victim for h in holders):
                    reclaimed_after = time.monotonic() - killed_at
                time.sleep(0.05)
            exits = {}
            for n in names[:-1]:
                exits[n] = procs[n].wait(timeout=max(1.0, DEADLINE_S - (time.monotonic() - start)))
            served = mock_engine.stats(engine)
        finally:
            for p in procs.values():
                if p.poll() is None:
                    p.kill()
            engine_proc.kill()
        trees = dict(rows(url, select(Tree.pair_id, func.count()).group_by(Tree.pair_id)))
        per_worker = {n: finished_by(n) for n in names}
    wall = time.monotonic() - start
    print(
        f"trees per worker (pairs each finished): "
        f"{', '.join(f'{n} {k}' + (' (killed)' if n == victim else '') for n, k in per_worker.items())}"
    )
    print(f"pairs built twice: {sum(1 for c in trees.values() if c > 1)}")
    print(f"pairs missing: {len(set(ids) - set(trees))}")
    print(
        f"killed worker {victim} held {len(lost)} pairs ({', '.join(lost)}); another worker claimed them "
        f"{reclaimed_after:.1f} s after the kill (lease {args.lease_seconds:g} s)"
    )
    again = sum(1 for c in served["prompts"].values() if c > 1)
    print(
        f"engine: {served.get('answered', '?')} answers, {again} prompts answered more than once "
        f"(work the killed worker did on its unfinished chunk, or pairs built twice)"
    )
    print(f"surviving workers' exit codes: {exits}; wall {wall:.1f} s; logs in {logs}")
    if any(exits.values()) or any(c > 1 for c in trees.values()) or set(ids) - set(trees):
        sys.exit(1)


if __name__ == "__main__":
    main()
