"""Load test of the annotation app through its own HTTP API (gradio_client), as annotators would hit it.

    nice -n 10 python bench/app_load.py [--pairs 100000] [--annotators 20] [--submits 25] [--db PATH]

Builds a SQLite store with --pairs pairs (a tenth with a 3-node tree), starts `w2s serve` in a subprocess,
and lets --annotators simulated annotators loop next-pair -> submit concurrently, each with its own
logged-in gradio_client. Prints next-pair and submit latency (p50/p95/max) against a baseline in the same
run (the same queue functions called in-process, no HTTP), and checks that every acknowledged submit is
stored exactly once and no pair exceeds the overlap.
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections import Counter
from datetime import UTC, datetime
from importlib.metadata import version
from pathlib import Path

from sqlalchemy import insert

from w2s.machine import machine
from w2s.store import Annotation, Node, Pair, QueueItem, QueuePool, Tree, get_engine, session_scope
from w2s_app import queue as Q


def build_store(url: str, n_pairs: int, n_annotators: int, overlap: int) -> list[str]:
    from w2s.store.auth import add_user

    engine = get_engine(url)
    t0 = time.perf_counter()
    now = datetime.now(UTC)
    rows = [
        {
            "id": f"bench{i:07d}",
            "dataset": "bench",
            "split": "train",
            "prompt": f"\n\nHuman: question {i}?\n\nAssistant:",
            "response_a": f"A{i} " * 30,
            "response_b": f"B{i} " * 30,
            "swapped": False,
            "meta": {},
            "source": "bench",
            "created_at": now,
        }
        for i in range(n_pairs)
    ]
    with engine.begin() as conn:
        for start in range(0, n_pairs, 20_000):
            conn.execute(insert(Pair), rows[start : start + 20_000])
    with session_scope(url) as s:
        for i in range(0, n_pairs, 10):
            tree = Tree(pair_id=f"bench{i:07d}", strong_model="bench", config_hash="h", depth=3)
            s.add(tree)
            s.flush()
            for pos, (name, info) in enumerate([("Avoid harm", 0.5), ("Honesty", 0.1), ("Legality", 0.3)]):
                s.add(
                    Node(
                        tree_id=tree.id,
                        position=pos,
                        principle_id=name,
                        principle_name=name,
                        relevance=0.8,
                        p_a=0.7,
                        p_b=0.3,
                        info=info,
                        thought="t " * 40,
                    )
                )
        cfg = Q.QueueConfig(overlap=overlap, gold_rate=0.0)  # default quota: 200 pairs per queue
        Q.save_config(s, cfg)
        Q.sync_pool(s, cfg)
    names = [f"ann{i:02d}" for i in range(n_annotators)]
    for name in names:
        add_user(name, "annotator", f"pw-{name}", url=url)
    print(
        f"store: {n_pairs} pairs, {n_pairs // 10} trees, {n_annotators} users in {time.perf_counter() - t0:.1f}s"
    )
    return names


def start_server(url: str, log: Path) -> tuple[subprocess.Popen, str]:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    t0 = time.perf_counter()
    with open(log, "w") as out:  # the child keeps its own copy of the descriptor
        proc = subprocess.Popen(
            [
                sys.executable,
                "-c",
                "from w2s.cli import main; main()",
                "serve",
                "--db",
                url,
                "--port",
                str(port),
            ],
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            env={**os.environ, "GRADIO_ANALYTICS_ENABLED": "False"},
        )
    base = f"http://127.0.0.1:{port}"
    while True:
        if proc.poll() is not None:
            raise SystemExit(f"server exited:\n{log.read_text()[-3000:]}")
        try:
            urllib.request.urlopen(base + "/", timeout=2)
            break
        except OSError:
            time.sleep(0.3)
    print(f"server up in {time.perf_counter() - t0:.1f}s (includes syncing the queue pool)")
    return proc, base


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process, from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def pct(xs: list[float], q: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, round(q / 100 * (len(xs) - 1)))]


def summary(name: str, xs: list[float]) -> str:
    ms = [x * 1000 for x in xs]
    return (
        f"{name:<28} n={len(ms):5d}  p50={pct(ms, 50):7.1f} ms  p95={pct(ms, 95):7.1f} ms  "
        f"max={max(ms):7.1f} ms  mean={statistics.mean(ms):7.1f} ms"
    )


def baseline(url: str, user: str, n: int) -> list[float]:
    """next-pair through the queue functions in-process (no HTTP, no Gradio): the floor for the API figure."""
    times = []
    for _ in range(n):
        t0 = time.perf_counter()
        with session_scope(url) as s:
            cfg = Q.load_config(s)
            item = Q.next_item(s, user, cfg)
            Q.progress(s, user, cfg)
            Q.item_tree(s, item)
            token = Q.make_token(item)
        times.append(time.perf_counter() - t0)
        with session_scope(url) as s:
            Q.submit(s, user, token, "a")
    return times


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--pairs", type=int, default=100_000)
    ap.add_argument("--annotators", type=int, default=20)
    ap.add_argument("--submits", type=int, default=25, help="submits per annotator")
    ap.add_argument("--overlap", type=int, default=2)
    ap.add_argument(
        "--think",
        type=float,
        default=0.0,
        help="seconds an annotator reads before each next-pair (0: back-to-back, a stress test)",
    )
    ap.add_argument("--db", default=None, help="SQLite file (default: a temporary one)")
    args = ap.parse_args()
    print("machine:", f"{machine()}, gradio {version('gradio')}, SQLite")
    tmp = Path(tempfile.mkdtemp(prefix="w2s-appload-"))
    url = f"sqlite:///{args.db or tmp / 'bench.db'}"
    names = build_store(url, args.pairs, args.annotators, args.overlap)

    base_times = baseline(url, "baseline-user", 50)
    proc, base = start_server(url, tmp / "server.log")
    from gradio_client import Client

    next_times: list[float] = []
    submit_times: list[float] = []
    acked: list[tuple[str, int, str]] = []
    errors: list[str] = []  # calls that failed once and were retried
    failed: list[str] = []  # annotators that gave up
    lock = threading.Lock()
    barrier = threading.Barrier(len(names))

    def annotator(name: str) -> None:
        try:
            # ssl_verify=False: plain HTTP on loopback; it spares httpx loading the CA bundle on every request
            client = Client(
                base, auth=(name, f"pw-{name}"), verbose=False, analytics_enabled=False, ssl_verify=False
            )
            client.predict(api_name="/next_pair")  # warm-up (opens the event stream), not timed
            barrier.wait()

            def call(*args_, api_name):
                # A real client retries a failed call; both endpoints are idempotent (submit by its token).
                for attempt in range(3):
                    try:
                        return client.predict(*args_, api_name=api_name)
                    except Exception as e:
                        with lock:
                            errors.append(f"{name} {api_name} (retried): {e!r}")
                        if attempt == 2:
                            raise

            for i in range(args.submits):
                time.sleep(random.Random(f"{name}{i}").uniform(0.5, 1.5) * args.think)
                t0 = time.perf_counter()
                nxt = call(api_name="/next_pair")
                t1 = time.perf_counter()
                if nxt["token"] is None:  # the queue is empty: every pair has its k annotators
                    with lock:
                        next_times.append(t1 - t0)
                    break
                res = call(nxt["token"], "ab"[i % 2], 3, "", "[]", api_name="/submit")
                t2 = time.perf_counter()
                with lock:
                    next_times.append(t1 - t0)
                    submit_times.append(t2 - t1)
                    acked.append((name, res["annotation_id"], nxt["pair_id"]))
        except Exception as e:  # noqa: BLE001 - reported below, the run must go on
            with lock:
                failed.append(f"{name}: {e!r}")

    t0 = time.perf_counter()
    cpu0 = (cpu_seconds(proc.pid), time.process_time())
    threads = [threading.Thread(target=annotator, args=(n,)) for n in names]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - t0
    server_cpu, client_cpu = cpu_seconds(proc.pid) - cpu0[0], time.process_time() - cpu0[1]
    os.killpg(proc.pid, signal.SIGTERM)
    proc.wait(timeout=30)

    print(
        f"\n{len(names)} annotators x {args.submits} submits concurrently (think {args.think}s) in {wall:.1f}s "
        f"({len(acked) / wall:.1f} submits/s)"
    )
    n_calls = 2 * len(acked)
    print(
        f"CPU during the run: server {server_cpu:.1f}s ({1000 * server_cpu / max(n_calls, 1):.1f} ms/call), "
        f"simulated clients {client_cpu:.1f}s ({1000 * client_cpu / max(n_calls, 1):.1f} ms/call), "
        f"on {os.cpu_count()} cores shared with other work (load average now {os.getloadavg()[0]:.1f})"
    )
    print(summary("baseline next-pair (in-proc)", base_times))
    print(summary("API next_pair", next_times))
    print(summary("API submit", submit_times))
    with session_scope(url) as s:
        rows = s.exec(
            QueueItem.__table__.select().where(QueueItem.user.in_(names))  # type: ignore[attr-defined]
        ).all()
        anns = s.exec(Annotation.__table__.select().where(Annotation.annotator.in_(names))).all()  # type: ignore
        per_pair = Counter(a.pair_id for a in anns)
        over = s.exec(QueuePool.__table__.select().where(QueuePool.n_assigned > args.overlap)).all()  # type: ignore
    ids = Counter(a.id for a in anns)
    acked_ids = Counter(aid for _, aid, _ in acked)
    stored_once = (
        len(anns) == len(acked)
        and set(ids) == set(acked_ids)
        and max(acked_ids.values(), default=1) == 1
        and len({(a.annotator, a.pair_id) for a in anns}) == len(anns)
    )
    print(
        f"acknowledged submits: {len(acked)}, rows stored: {len(anns)}, queue items: {len(rows)}, "
        f"retried calls: {len(errors)}, annotators that gave up: {len(failed)}"
    )
    print(
        f"every submit stored exactly once: {stored_once}; max labels per pair: {max(per_pair.values(), default=0)} "
        f"(overlap {args.overlap}); pool rows over overlap: {len(over)}"
    )
    p95 = pct([x * 1000 for x in next_times], 95) if next_times else float("nan")
    print(f"target next-pair p95 <= 150 ms: {'met' if p95 <= 150 else 'NOT met'} ({p95:.1f} ms)")
    for e in (failed + errors)[:5]:
        print("error:", e)
    if not args.db:
        shutil.rmtree(tmp, ignore_errors=True)
    if not stored_once or failed or over:
        raise SystemExit(1)


if __name__ == "__main__":
    main()
