"""The per-pair scheduler of `w2s trees build`: the trees of the lock-step build it replaced, through an
in-process model (calls gathered into batches) and through an OpenAI-compatible server (bench/mock_engine.py,
started on 127.0.0.1) under a request cap, a 429 storm, Retry-After and a token budget."""

from __future__ import annotations

import json
import sys
import threading
from email.utils import formatdate
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import ClassVar

import pytest
from seam_scripted import add_pairs
from typer.testing import CliRunner

from w2s.backends import get_model
from w2s.backends.openai_backend import Bucket, retry_after
from w2s.cli import app
from w2s.store import session_scope
from w2s.trees import ListSource, TreeConfig, build_trees, latest_tree, run_build

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))
import mock_engine
from lockstep import build_waves

NODE = ("principle_id", "role", "p_a", "relevance", "thought", "tokens")


def trees(url, ids, spec, cfg):
    """Per pair: (stop, depth, backtraces, tokens, orders, [node fields])."""
    out = {}
    with session_scope(url) as s:
        for pid in ids:
            tree, nodes = latest_tree(s, pid, spec, cfg.hash())
            out[pid] = (
                tree.config["stop"],
                tree.depth,
                tree.backtraces,
                tree.tokens,
                [[round(x, 9) for x in o] for o in tree.config["orders"]],
                [
                    [round(v, 9) if isinstance(v, float) else v for v in (getattr(n, k) for k in NODE)]
                    for n in nodes
                ],
            )
    return out


@pytest.fixture
def engine():
    """Start bench/mock_engine.py with these settings; stopped after the test."""
    procs = []

    def start(**settings):
        proc, url = mock_engine.start(**{"ttft": 0.002, "tpt": 0.0, **settings})
        procs.append(proc)
        return url

    yield start
    for proc in procs:
        proc.kill()
        proc.wait()


@pytest.mark.parametrize(
    "cfg",
    [TreeConfig(), TreeConfig(relevance="per-principle", post_relevance=True)],
    ids=["listwise", "per-principle"],
)
def test_the_scheduler_builds_the_lockstep_trees(cfg, db_url):
    ids = add_pairs(db_url, 16)
    waves, tasks = mock_engine.MockModel("mock:waves"), mock_engine.MockModel("mock:tasks")
    assert build_waves(waves, ids, cfg, url=db_url, batch_size=4) == 16
    assert build_trees(tasks, ids, cfg, url=db_url, in_flight=5) == 16
    old, new = trees(db_url, ids, waves.spec, cfg), trees(db_url, ids, tasks.spec, cfg)
    assert new == old
    # the pairs differ: exits at the first node, deeper trees, backtraces
    assert {t[0] for t in new.values()} >= {"exit", "backtraces"}
    assert len({len(t[5]) for t in new.values()}) >= 3
    assert any(t[5][0][1] == "exit" for t in new.values()) and any(t[2] for t in new.values())
    assert tasks.usage.calls == waves.usage.calls  # not one call more


def test_through_a_server_the_trees_are_the_in_process_ones_and_the_request_cap_holds(db_url, engine):
    ids = add_pairs(db_url, 8)
    url = engine(slots=4)
    remote = get_model(f"openai:mock@{url}", reuse=False, max_concurrency=3)
    local = mock_engine.MockModel("mock:local")
    cfg = TreeConfig()
    assert build_trees(remote, ids, cfg, url=db_url, in_flight=8) == 8
    build_trees(local, ids, cfg, url=db_url)
    assert trees(db_url, ids, remote.spec, cfg) == trees(db_url, ids, local.spec, cfg)
    stats = mock_engine.stats(url)
    assert stats["max_open"] == 3 and stats["answered"] == remote.usage.calls


def test_a_429_storm_and_5xx_lose_nothing(db_url, engine):
    ids = add_pairs(db_url, 8)
    url = engine(storm=12, retry_after=0.01, error_rate=0.05, seed=1)  # a storm counted, not timed
    remote = get_model(f"openai:mock@{url}", reuse=False, max_concurrency=16, backoff=0.01)
    notes = []
    report = run_and_watch(remote, ids, db_url, notes)
    assert report.built == 8
    stats = mock_engine.stats(url)
    assert stats["429"] == 12 and stats.get("5xx", 0) > 0
    assert remote.retries == stats["429"] + stats.get("5xx", 0)
    assert stats["answered"] == remote.usage.calls == report.calls  # every answer used once
    local = mock_engine.MockModel("mock:local")
    build_trees(local, ids, TreeConfig(), url=db_url)
    assert trees(db_url, ids, remote.spec, TreeConfig()) == trees(db_url, ids, local.spec, TreeConfig())


def run_and_watch(model, ids, url, notes, **kw):
    import asyncio

    return asyncio.run(
        run_build(
            model,
            ListSource(ids),
            TreeConfig(),
            url=url,
            in_flight=8,
            progress=lambda r: notes.append(r.note),
            **kw,
        )
    )


class Scripted(BaseHTTPRequestHandler):
    """Answers from a list: (status, headers) for an error, or None for a completion."""

    answers: ClassVar[list] = []
    seen: ClassVar[list] = []

    def do_POST(self):
        body = json.loads(self.rfile.read(int(self.headers["content-length"])))
        self.seen.append(body)
        answer = self.answers.pop(0) if self.answers else None
        if answer is None:
            status, headers = 200, {}
            payload = {
                "id": "x",
                "object": "chat.completion",
                "created": 0,
                "model": "m",
                "choices": [
                    {"index": 0, "message": {"role": "assistant", "content": "ok"}, "finish_reason": "stop"}
                ],
                "usage": {"prompt_tokens": 3, "completion_tokens": 1, "total_tokens": 4},
            }
        else:
            status, headers = answer
            payload = {"error": {"message": "slow down", "type": "rate_limit_error"}}
        data = json.dumps(payload).encode()
        self.send_response(status)
        for k, v in {**headers, "content-type": "application/json", "content-length": str(len(data))}.items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args):
        pass


def test_retry_after_is_obeyed_in_seconds_and_as_a_date():
    Scripted.answers = [
        (429, {"retry-after": "7"}),
        (503, {"retry-after": formatdate(10_000 + 120, usegmt=True)}),
        (429, {}),
    ]
    Scripted.seen = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), Scripted)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        m = get_model(f"openai:m@http://127.0.0.1:{server.server_port}/v1", reuse=False, backoff=0.25)
        waits, now = [], [0.0]

        async def fake_sleep(seconds):
            waits.append(seconds)
            now[0] += seconds

        m.sleep, m.clock, m.wall = (
            fake_sleep,
            lambda: now[0],
            lambda: 10_000.0,
        )  # wall: "now" for the HTTP date
        assert m.generate(["hi"], max_tokens=4)[0].text == "ok"
    finally:
        server.shutdown()
    assert len(Scripted.seen) == 4 and m.retries == 3
    assert waits[:2] == [7.0, 120.0]
    assert 0.25 <= waits[2] <= 0.5  # no Retry-After: the second 429's backoff, with jitter


def test_retry_after_forms_and_the_rate_bucket():
    assert retry_after({"retry-after-ms": "1500", "retry-after": "9"}) == 1.5
    assert retry_after({"retry-after": "2"}) == 2.0
    assert retry_after({"retry-after": formatdate(1000 + 30, usegmt=True)}, now=1000.0) == 30.0
    assert retry_after({}) is None and retry_after({"retry-after": "soon"}) is None
    now = [0.0]
    bucket = Bucket(60, clock=lambda: now[0])  # one a second, ten seconds' burst
    assert [bucket.reserve(1) for _ in range(10)] == [0.0] * 10
    assert bucket.reserve(1) == 1.0 and bucket.reserve(1) == 2.0
    now[0] = 12.0
    assert bucket.reserve(1) == 0.0


def test_max_tokens_stops_cleanly_and_saves_the_pairs_in_flight(db_url):
    ids = add_pairs(db_url, 10)
    model = mock_engine.MockModel("mock:budget")
    report = run_and_watch(model, ids, db_url, [], max_tokens=1)
    assert report.budget_reached and report.built == 8  # the first 8 were in flight when the budget ran out
    with session_scope(db_url) as s:
        assert all(latest_tree(s, pid, model.spec)[0] for pid in ids[:8])


def test_cli_token_budget_and_options(db_url):
    add_pairs(db_url, 6)
    runner = CliRunner()
    base = ["trees", "build", "--strong", "scripted:budget", "--principles", "harmlessness"]
    from seam_scripted import SCRIPTS, Script

    SCRIPTS["budget"] = Script(
        relevance={"No help with crime": 0.9}, verdict={"No help with crime": (0.9, 0.1)}
    )
    try:
        res = runner.invoke(app, [*base, "--in-flight", "2", "--max-tokens", "1"])
        assert res.exit_code == 0, res.output
        assert "built 2 trees" in res.output and "stopped at the token budget (--max-tokens 1)" in res.output
        assert "tokens" in res.output and "$" not in res.output
        res = runner.invoke(app, [*base, "--price-in", "1", "--price-out", "2"])
        assert res.exit_code == 0 and "built 4 trees (2 already stored)" in res.output and "$" in res.output
    finally:
        SCRIPTS.pop("budget")
    res = runner.invoke(
        app,
        [
            "trees",
            "build",
            "--strong",
            "openai:m@http://127.0.0.1:9/v1",
            "--principles",
            "harmlessness",
            "--option",
            "max_retrys=2",
        ],
    )
    assert res.exit_code != 0 and "no option 'max_retrys'" in res.output
