"""Helpers of the app tests: seeding a store, and a real `w2s serve` process on a free loopback port.

(A module with a distinct name, imported as `app_helpers`: pytest puts tests/app on sys.path.)
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from w2s.store import Node, Pair, Tree, session_scope
from w2s_app import queue as Q

XSS_RESPONSE = (
    'Sure. <script>window.__w2s_pwned = 1; alert("xss")</script> and '
    '<img src=x onerror="window.__w2s_pwned = 2; alert(2)"> [click](javascript:window.__w2s_pwned=3) '
    "${window.__w2s_pwned = 4} {{constructor.constructor('window.__w2s_pwned=5')()}}"
)


def make_pairs(
    url: str, n: int, *, split: str = "train", gold: str | None = None, prefix: str = "p"
) -> list[str]:
    ids = []
    with session_scope(url) as s:
        for i in range(n):
            pid = f"{prefix}{i:05d}"
            s.add(
                Pair(
                    id=pid,
                    dataset="test",
                    split=split,
                    gold=gold,
                    prompt=f"\n\nHuman: question {prefix}{i}?\n\nAssistant:",
                    response_a=f"answer A to {i}",
                    response_b=f"answer B to {i}",
                )
            )
            ids.append(pid)
    return ids


def make_tree(
    url: str,
    pair_id: str,
    nodes: list[tuple[str, float, float, float]],
    *,
    strong_model: str = "test-strong",
    config_hash: str = "h",
) -> tuple[int, list[int]]:
    """nodes: (principle name, relevance, p_a, info), in search order."""
    with session_scope(url) as s:
        tree = Tree(pair_id=pair_id, strong_model=strong_model, config_hash=config_hash, depth=len(nodes))
        s.add(tree)
        s.flush()
        rows = []
        for pos, (name, rel, pa, info) in enumerate(nodes):
            node = Node(
                tree_id=tree.id,
                position=pos,
                principle_id=f"harmlessness/{name}",
                principle_name=name,
                relevance=rel,
                p_a=pa,
                p_b=1 - pa,
                info=info,
                thought=f"Thought about **{name}**.",
                role="exit" if pos == len(nodes) - 1 else "continue",
            )
            s.add(node)
            rows.append(node)
        s.flush()
        return tree.id, [r.id for r in rows]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Server:
    def __init__(self, url: str, log: Path):
        self.url, self.log = url, log
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.proc: subprocess.Popen | None = None

    def start(self, timeout: float = 90.0) -> Server:
        # TMPDIR: the server's temporary files (Gradio's cache, admin exports) stay in the test's folder
        env = {
            **os.environ,
            "GRADIO_ANALYTICS_ENABLED": "False",
            "W2S_DB": self.url,
            "TMPDIR": str(self.log.parent),
        }
        with open(self.log, "ab") as out:  # the child keeps its own copy of the descriptor
            self.proc = subprocess.Popen(
                [
                    sys.executable,
                    "-c",
                    "from w2s.cli import main; main()",
                    "serve",
                    "--db",
                    self.url,
                    "--port",
                    str(self.port),
                ],
                stdout=out,
                stderr=subprocess.STDOUT,
                env=env,
                start_new_session=True,
            )
        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited: {self.log.read_text()[-3000:]}")
            try:
                urllib.request.urlopen(self.base + "/", timeout=2)
                return self
            except OSError:
                time.sleep(0.3)
        raise RuntimeError(f"server did not start: {self.log.read_text()[-3000:]}")

    def kill(self, sig: int = signal.SIGKILL) -> None:
        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, sig)
            self.proc.wait(timeout=30)


def setup(url, cfg: Q.QueueConfig) -> None:
    with session_scope(url) as s:
        Q.save_config(s, cfg)
        Q.sync_pool(s, cfg)


def label_all(url, user, label="a", limit=1000) -> list[str]:
    got = []
    for _ in range(limit):
        with session_scope(url) as s:
            item = Q.next_item(s, user)
            if item is None:
                return got
            Q.submit(s, user, Q.make_token(item), label)
            got.append(item.pair_id)
    return got
