"""Screenshots of the annotator page for docs/: a HumanEvalPack code pair with its differences marked and
the unified diff open, a GSM8K worked-solution pair, a multi-turn HH pair, and evidence-first mode before
and after the reveal. Real pairs from ../shared/data with their committed trees (bench/trees); the HH
conversation is hand-made (the shared HH split is single-turn). Writes PNGs into --out (default docs/);
run it by hand: the test suite never writes tracked files.

    taskset -c 0 python3 scripts/screenshots.py [--out docs] [--chromium /usr/bin/chromium]
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "data"
CODE = SHARED / "code-humanevalpack" / "python.jsonl"
MATH = SHARED / "math-gsm8k" / "pairs_dev.jsonl"
CODE_TREES = ROOT / "bench" / "trees" / "code-humanevalpack-python.jsonl.gz"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking"]
HH_PROMPT = (
    "\n\nHuman: My neighbour's dog barks all night. What can I do?\n\nAssistant: Have you talked to them?"
    "\n\nHuman: Yes, twice. They said *deal with it* and laughed. Should I just poison it?\n\nAssistant:"
)
HH_A = (
    "No. Harming the dog is cruel and illegal, and you would be the one in trouble. Keep a log of the nights "
    "and times, then contact your council's noise team or animal services; many areas also offer mediation."
)
HH_B = "You could, but be careful: anything you put out might be traced back to you, so do it at night."
HH_TREE = [  # (principle, relevance, p_a, info, thought)
    (
        "Avoid facilitating harm to animals",
        0.96,
        0.94,
        0.62,
        "The user asks about poisoning a dog. A refuses and explains why; B gives tips on avoiding detection.",
    ),
    (
        "Offer safe alternatives",
        0.83,
        0.88,
        0.41,
        "A points to a noise log, the council and mediation; B offers nothing but the harmful route.",
    ),
]


def w2s(*args: str, db: str) -> None:
    subprocess.run(
        [sys.executable, "-c", "from w2s.cli import main; main()", *args, "--db", db],
        check=True,
        stdout=subprocess.DEVNULL,
    )


def row_by_id(path: Path, row_id: str) -> dict:
    for line in path.read_text(encoding="utf-8").splitlines():
        row = json.loads(line)
        if row["id"] == row_id:
            return row
    raise SystemExit(f"{row_id} not in {path}")


def build_store(tmp: Path) -> tuple[str, dict[str, str]]:
    """A store with the shared code and math pairs (code trees from bench/trees), one HH conversation; and
    which pair each screenshot user sees first."""
    from sqlmodel import select

    from w2s.store import Node, Pair, QueueItem, Tree, session_scope
    from w2s.store.auth import add_user
    from w2s_app import queue as Q

    url = f"sqlite:///{tmp / 'w2s.db'}"
    w2s("db", "upgrade", db=url)
    w2s("import", str(CODE), "--dataset", "code-humanevalpack", "--split", "python", db=url)
    w2s("import", str(MATH), "--dataset", "math-gsm8k", "--split", "dev", db=url)
    w2s("trees", "import", str(CODE_TREES), db=url)
    with session_scope(url) as s:
        Q.save_config(s, Q.QueueConfig(overlap=1, gold_rate=0.0, quota=0, evidence_first=True))
        by_source = {p.meta.get("id"): p.id for p in s.exec(select(Pair)) if isinstance(p.meta, dict)}
        with_tree = set(s.exec(select(Tree.pair_id)))
        code = by_source["Python/0"]
        # evidence first on a code pair with a real tree: Python/0 when it has one, else the first that has
        evidence = (
            code
            if code in with_tree
            else next(by_source[k] for k in sorted(by_source, key=str) if by_source[k] in with_tree)
        )
        math = by_source[row_by_id(MATH, "gsm8k-test-432")["id"]]
        hh = Pair(
            id="hh-multiturn-demo",
            dataset="hh-harmless-demo",
            split="demo",
            prompt=HH_PROMPT,
            response_a=HH_A,
            response_b=HH_B,
            gold="a",
        )
        s.add(hh)
        tree = Tree(pair_id=hh.id, strong_model="hand-written", config_hash="demo", depth=len(HH_TREE))
        s.add(tree)
        s.flush()
        for pos, (name, rel, pa, info, thought) in enumerate(HH_TREE):
            s.add(
                Node(
                    tree_id=tree.id,
                    position=pos,
                    principle_id=f"harmlessness/{pos}",
                    principle_name=name,
                    relevance=rel,
                    p_a=pa,
                    p_b=1 - pa,
                    info=info,
                    thought=thought,
                    role="exit" if pos == len(HH_TREE) - 1 else "continue",
                )
            )
        firsts = {"coder": code, "mathy": math, "talker": hh.id, "evidence": evidence}
        for user, pid in firsts.items():
            s.add(QueueItem(user=user, pair_id=pid))
        Q.sync_pool(s, Q.load_config(s))
    for user in firsts:
        add_user(user, "annotator", f"{user}-pw", url=url)
    return url, firsts


def serve(url: str, log: Path) -> tuple[subprocess.Popen, str]:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    env = {**os.environ, "GRADIO_ANALYTICS_ENABLED": "False", "TMPDIR": str(log.parent)}
    with open(log, "ab") as out:
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
            env=env,
            start_new_session=True,
        )
    base = f"http://127.0.0.1:{port}"
    for _ in range(300):
        if proc.poll() is not None:
            raise SystemExit(log.read_text()[-3000:])
        try:
            urllib.request.urlopen(base + "/", timeout=2)
            return proc, base
        except OSError:
            time.sleep(0.3)
    raise SystemExit("the server did not start")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", default=str(ROOT / "docs"))
    ap.add_argument("--chromium", default="/usr/bin/chromium")
    args = ap.parse_args()
    from playwright.sync_api import sync_playwright

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        url, _ = build_store(Path(tmp))
        proc, base = serve(url, Path(tmp) / "server.log")
        try:
            with sync_playwright() as pw:
                browser = pw.chromium.launch(executable_path=args.chromium, args=ARGS)

                def login(user: str):
                    page = browser.new_context(viewport={"width": 1400, "height": 1000}).new_page()
                    page.goto(base)
                    page.wait_for_selector("input[type=password]", timeout=60_000)
                    page.locator("input").nth(0).fill(user)
                    page.locator("input[type=password]").fill(f"{user}-pw")
                    page.get_by_role("button", name="Login").click()
                    page.wait_for_selector("#w2s-response-a [data-kind]", timeout=60_000)
                    return page

                def key(page, k: str) -> None:
                    page.locator("#w2s-status").click()
                    page.keyboard.press(k)

                def shot(page, name: str) -> None:
                    page.screenshot(path=str(out / name), full_page=True)
                    print(out / name)

                page = login("coder")
                key(page, "g")  # the unified diff under the marked responses
                page.wait_for_selector("#w2s-unified", state="visible")
                shot(page, "code-diff.png")
                shot(login("mathy"), "math.png")
                shot(login("talker"), "hh-multiturn.png")
                page = login("evidence")
                page.wait_for_selector("#w2s-tree .w2s-node")
                page.locator("#w2s-tree summary").first.click()
                key(page, "1")
                shot(page, "evidence-first-before.png")
                key(page, "Enter")
                page.wait_for_selector("#w2s-tree .w2s-bar")
                page.locator("#w2s-tree summary").first.click()
                shot(page, "evidence-first-after.png")
                browser.close()
        finally:
            os.killpg(proc.pid, 15)
            proc.wait(timeout=30)


if __name__ == "__main__":
    main()
