"""The annotation page as a person uses it, in real headless Chromium, while other annotators load the server:
from Enter on a pair to the next pair on screen, and a 2,000-line code pair (diff marks, highlighting).

    python bench/app_page.py [--store-pairs 100000] [--annotators 20] [--think 3] [--pairs 40] [--evidence-first]

Builds the store of bench/app_load.py (--store-pairs pairs, a tenth with a 3-node tree), starts `w2s serve`,
and logs one annotator in with Debian's /usr/bin/chromium through Playwright (never a downloaded browser).
The other --annotators - 1 label through the HTTP API, each reading --think seconds (0.5-1.5x, seeded) per
pair. The browser labels --pairs pairs with the keyboard (1, Enter; in evidence-first mode a tree pair takes
1, Enter to reveal, then Enter), then gets a 2,000-line code pair. Prints p50/p95 of Enter-to-next-pair, the
big pair's time to laid out next to the server's own share (its HTML rendered in-process, cold and cached),
and the machine. Targets: next pair p95 <= 150 ms; the big pair on the page in under a second.
"""

from __future__ import annotations

import argparse
import random
import shutil
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from app_load import build_store, cpu_seconds, machine, pct, start_server

from w2s.store import Pair, QueueItem, session_scope, utcnow
from w2s_app import queue as Q
from w2s_app import render

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking"]
SHOWN = "document.querySelector('#w2s-response-a [data-kind]')?.innerText"
BIG_LAID_OUT = (
    "document.querySelector('#w2s-response-b pre.w2s-code')?.getBoundingClientRect().height > 10000"
)


def big_code(n_lines: int, change: int | None = None) -> str:
    """A long Python function; `change` flips one operator, so A and B differ in a single token."""
    body = [
        f"    total = total {'-' if i == change else '+'} values[{i % 17}] * {i}  # step {i}"
        for i in range(n_lines - 3)
    ]
    return "\n".join(["def big(values):", "    total = 0", *body, "    return total\n"])


def server_render(a: str, b: str, n: int = 5) -> tuple[float, float]:
    """The big pair's HTML built in-process: best cold build (caches cleared) and best cached one, in s."""
    cold, warm = [], []
    for _ in range(n):
        render.code_pieces.cache_clear()
        t0 = time.perf_counter()
        render.pair_html("code-humanevalpack", {"language": "python"}, "Sum the values.", a, b)
        cold.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        render.pair_html("code-humanevalpack", {"language": "python"}, "Sum the values.", a, b)
        warm.append(time.perf_counter() - t0)
    return min(cold), min(warm)


def api_annotator(
    base: str, name: str, think: float, ready: threading.Semaphore, stop: threading.Event, counts: list[int]
) -> None:
    from gradio_client import Client

    try:
        client = Client(
            base, auth=(name, f"pw-{name}"), verbose=False, analytics_enabled=False, ssl_verify=False
        )
    finally:
        ready.release()
    rng = random.Random(name)
    while not stop.wait(rng.uniform(0.5, 1.5) * think):
        nxt = client.predict(api_name="/next_pair")
        if nxt["token"] is None:
            return
        client.predict(nxt["token"], rng.choice("ab"), 3, "", "[]", api_name="/submit")
        counts.append(1)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--store-pairs", type=int, default=100_000)
    ap.add_argument("--annotators", type=int, default=20, help="the browser's annotator and the API ones")
    ap.add_argument("--think", type=float, default=3.0, help="seconds an API annotator reads each pair")
    ap.add_argument("--pairs", type=int, default=40, help="pairs the browser labels before the big one")
    ap.add_argument("--big-lines", type=int, default=2000)
    ap.add_argument("--evidence-first", action="store_true", help="tree pairs: label, reveal, then submit")
    args = ap.parse_args()
    if not Path(CHROMIUM).exists():
        raise SystemExit(f"{CHROMIUM} not found: apt-get install chromium")
    from playwright.sync_api import sync_playwright

    print("machine:", machine())
    tmp = Path(tempfile.mkdtemp(prefix="w2s-apppage-"))
    url = f"sqlite:///{tmp / 'bench.db'}"
    names = build_store(url, args.store_pairs, args.annotators, overlap=2)
    with session_scope(url) as s:
        cfg = Q.load_config(s)
        cfg.evidence_first = args.evidence_first
        Q.save_config(s, cfg)
    a, b = big_code(args.big_lines), big_code(args.big_lines, args.big_lines // 2)
    cold, warm = server_render(a, b)
    proc, base = start_server(url, tmp / "server.log")
    reader, others = names[0], names[1:]
    ready, stop, counts = threading.Semaphore(0), threading.Event(), []
    load = [
        threading.Thread(target=api_annotator, args=(base, n, args.think, ready, stop, counts))
        for n in others
    ]
    times: list[float] = []
    t_start = time.perf_counter()
    try:
        for t in load:
            t.start()
        for _ in load:  # the API annotators are connected (a client's start is not what is measured)
            ready.acquire()
        t_start = time.perf_counter()
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS)
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            page.goto(base)
            page.wait_for_selector("input[type=password]", timeout=60_000)
            page.locator("input").nth(0).fill(reader)
            page.locator("input[type=password]").fill(f"pw-{reader}")
            page.get_by_role("button", name="Login").click()
            page.wait_for_selector("#w2s-response-a [data-kind]", timeout=60_000)

            def label_and_next(shown_next: str) -> float:
                page.locator("#w2s-status").click()  # focus outside any input
                page.keyboard.press("1")
                if args.evidence_first and page.locator("#w2s-tree .w2s-node").count():
                    page.keyboard.press("Enter")  # commits the initial label: the verdicts appear
                    page.wait_for_selector("#w2s-tree .w2s-bar", timeout=30_000)
                started = time.perf_counter()
                page.keyboard.press("Enter")
                page.wait_for_function(shown_next, timeout=60_000, polling="raf")
                return time.perf_counter() - started

            cpu0 = cpu_seconds(proc.pid), time.perf_counter()
            for _ in range(args.pairs):
                before = page.evaluate(SHOWN)
                times.append(label_and_next(f"({SHOWN} || '') !== {before!r}"))
            server_cpu, loop_s = cpu_seconds(proc.pid) - cpu0[0], time.perf_counter() - cpu0[1]
            with session_scope(url) as s:  # the big pair: reopened items are served first
                s.add(
                    Pair(
                        id="zz-big",
                        dataset="code-humanevalpack",
                        split="train",
                        prompt="Sum the values.",
                        response_a=a,
                        response_b=b,
                        meta={"language": "python"},
                    )
                )
                s.flush()
                s.add(QueueItem(user=reader, pair_id="zz-big", served_at=utcnow()))
            big_s = label_and_next(BIG_LAID_OUT)
            browser.close()
    finally:
        stop.set()
        for t in load:
            t.join(timeout=60)
        wall = time.perf_counter() - t_start
        proc.terminate()
        proc.wait(timeout=30)
        shutil.rmtree(tmp, ignore_errors=True)
    ms = [t * 1000 for t in times]
    print(
        f"store: {args.store_pairs} pairs; evidence first: {args.evidence_first}; {len(others)} API annotators "
        f"(think {args.think}s) labelled {len(counts)} pairs in {wall:.0f}s beside the browser"
    )
    print(
        f"browser, Enter to next pair, n={len(ms)}: p50 {pct(ms, 50):.0f} ms, p95 {pct(ms, 95):.0f} ms, "
        f"max {max(ms):.0f} ms, mean {statistics.mean(ms):.0f} ms  (target p95 <= 150 ms: "
        f"{'met' if pct(ms, 95) <= 150 else 'NOT met'})"
    )
    print(
        f"server CPU while the browser labelled: {server_cpu:.1f}s in {loop_s:.1f}s "
        f"({server_cpu / loop_s:.0%} of a core)"
    )
    print(
        f"{args.big_lines}-line code pair: server render {cold * 1000:.0f} ms cold, {warm * 1000:.0f} ms cached; "
        f"Enter to laid out on the page {big_s * 1000:.0f} ms (target < 1 s: {'met' if big_s < 1 else 'NOT met'})"
    )


if __name__ == "__main__":
    main()
