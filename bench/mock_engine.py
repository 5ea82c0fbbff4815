"""A local OpenAI-compatible server that behaves like a busy serving engine, for load and fault tests.

    python bench/mock_engine.py --port 8123 --ttft 0.15 --tpt 0.005 --slots 64 --rps-limit 0 --error-rate 0.01

- `POST /v1/chat/completions`: answers after `ttft + tpt * (completion tokens - 1)` seconds while holding
  one of `--slots` slots (extra requests queue, as in an engine's scheduler); `logprobs`/`top_logprobs`
  give the first token's distribution over A, B, Yes, No and the digits 1-9; `usage` is counted.
- Everything an answer says comes from a hash of the request's messages, so the same prompt gets the same
  thought and the same probabilities, in any order and any process: trees built through it are
  deterministic. The A/B probabilities lean to one side, so that averaged over both presentation orders
  some verdicts exit at once, some are near-uniform (backtraces) and some go on (trees 1-5 nodes deep).
- Above `--rps-limit` requests per second (a token bucket of one second's burst) it answers 429 with
  `Retry-After` (and `retry-after-ms`, `x-ratelimit-*`), before any slot is taken.
- `--storm N`: the first N requests get a 429 whatever the rate (for tests that must not depend on timing).
- `--error-rate`: that share of requests get a 503 (seeded by `--seed`).
- `GET /stats`: counts (requests, answered, 429s, 5xx, the most requests open at once) and how often each
  prompt was answered (by hash), so a test can tell which calls were repeated. `POST /stats/reset`.

It binds to 127.0.0.1 only. Starlette + uvicorn are already dependencies of `w2s models serve`.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import math
import random
import socket
import subprocess
import sys
import time
from collections import Counter
from dataclasses import dataclass, field

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

TOKENS = ["A", "B", "Yes", "No", *[str(k) for k in range(1, 10)]]
WORDS = [
    "reply",
    "a",
    "reply",
    "b",
    "handles",
    "the",
    "edge",
    "case",
    "returns",
    "loops",
    "over",
    "input",
    "checks",
    "bounds",
    "misses",
    "the",
    "empty",
    "list",
    "off",
    "by",
    "one",
    "correct",
    "wrong",
    "because",
    "principle",
    "both",
    "differ",
    "output",
    "matches",
    "spec",
]


@dataclass
class Engine:
    ttft: float = 0.15
    tpt: float = 0.005
    slots: int = 64
    rps_limit: float = 0.0  # 0: no limit
    error_rate: float = 0.0
    seed: int = 0
    retry_after: float | None = None  # fixed Retry-After seconds; default: until the bucket has a token
    storm: int = 0  # the first `storm` requests get a 429 whatever the rate: a storm tests can count on

    rng: random.Random = field(init=False)
    counts: Counter = field(default_factory=Counter)
    prompts: Counter = field(default_factory=Counter)
    open: int = 0
    max_open: int = 0
    bucket: float = 0.0
    stamp: float = 0.0

    def __post_init__(self):
        self.rng = random.Random(self.seed)
        self.bucket = max(1.0, self.rps_limit)
        self.stamp = time.monotonic()
        self.gate = asyncio.Semaphore(self.slots)

    def admit(self) -> float:
        """0 when a request may go on now, else the seconds until the rate limit has room for it."""
        if self.counts["requests"] <= self.storm:
            return self.retry_after if self.retry_after is not None else 0.05
        if self.rps_limit <= 0:
            return 0.0
        now = time.monotonic()
        self.bucket = min(max(1.0, self.rps_limit), self.bucket + (now - self.stamp) * self.rps_limit)
        self.stamp = now
        if self.bucket >= 1.0:
            self.bucket -= 1.0
            return 0.0
        return (1.0 - self.bucket) / self.rps_limit


def digest(messages: list[dict]) -> bytes:
    return hashlib.sha256(json.dumps(messages, sort_keys=True).encode()).digest()


def unit(h: bytes, k: int) -> float:
    """The k-th uniform number in [0, 1) drawn from a hash."""
    return int.from_bytes(hashlib.sha256(h + bytes([k])).digest()[:8], "big") / 2**64


def distribution(h: bytes) -> dict[str, float]:
    """First-token probabilities over TOKENS, from the prompt's hash."""
    lean = unit(h, 0)  # P(A): near 0.08 or 0.92 a third of the time each, else anywhere in between
    p_a = 0.92 if lean < 1 / 3 else 0.08 if lean < 2 / 3 else 0.2 + 0.6 * unit(h, 1)
    p_yes = 0.3 + 0.7 * unit(h, 2)
    digits = [unit(h, 3 + k) ** 3 for k in range(9)]  # a few principles matter, most barely
    weights = {"A": p_a, "B": 1 - p_a, "Yes": p_yes, "No": 1 - p_yes}
    weights.update({str(k + 1): 0.05 + d for k, d in enumerate(digits)})
    total = sum(weights.values())
    return {t: w / total for t, w in weights.items()}


def thought(h: bytes, n: int) -> str:
    return " ".join(WORDS[int(unit(h, 20 + k) * len(WORDS))] for k in range(n))


def completion_tokens(h: bytes, max_tokens: int, logprobs: bool) -> int:
    return 1 if logprobs else min(max_tokens, 12 + int(unit(h, 19) * 36))


def prompt_tokens(messages: list[dict]) -> int:
    return sum(len(str(m.get("content", ""))) for m in messages) // 4


class MockModel:
    """The engine's answers in-process: a sync batched model (the interface of w2s.backends) that says
    what the server says for the same messages, so trees built through the server can be compared with
    trees built in-process, node for node."""

    def __init__(self, spec: str = "mock:engine"):
        from w2s.backends.base import Usage

        self.spec = spec
        self.usage = Usage()

    def generate(self, prompts, max_tokens=128, temperature=0.0, stop=None):
        from w2s.backends.base import Generation, as_messages

        self.usage.begin(len(prompts))
        out = []
        for i, p in enumerate(prompts):
            messages = as_messages(p)
            h, pt = digest(messages), prompt_tokens(messages)
            n = completion_tokens(h, max_tokens, False)
            self.usage.add(pt, n, index=i)
            out.append(Generation(thought(h, n), pt, n))
        return out

    def score_choices(self, prompts, choices):
        from w2s.backends.base import as_messages, normalise
        from w2s.backends.openai_backend import choice_mass

        self.usage.begin(len(prompts))
        rows = []
        for i, p in enumerate(prompts):
            messages = as_messages(p)
            self.usage.add(prompt_tokens(messages), 1, index=i)
            rows.append(normalise(choice_mass(distribution(digest(messages)), choices)))
        return rows


def error(status: int, message: str, kind: str, headers: dict | None = None) -> JSONResponse:
    return JSONResponse({"error": {"message": message, "type": kind}}, status_code=status, headers=headers)


def create_app(engine: Engine) -> Starlette:
    async def chat(request: Request):
        body = await request.json()
        engine.counts["requests"] += 1
        wait = engine.admit()
        if wait > 0:
            engine.counts["429"] += 1
            after = engine.retry_after if engine.retry_after is not None else wait
            headers = {
                "retry-after": str(max(1, math.ceil(after))),
                "retry-after-ms": str(int(after * 1000) + 1),
                "x-ratelimit-limit-requests": str(int(engine.rps_limit * 60)),
                "x-ratelimit-remaining-requests": "0",
                "x-ratelimit-reset-requests": f"{after:.3f}s",
            }
            return error(429, f"rate limit: {engine.rps_limit:g} requests/s", "rate_limit_error", headers)
        if engine.error_rate and engine.rng.random() < engine.error_rate:
            engine.counts["5xx"] += 1
            return error(503, "injected overload (--error-rate)", "overloaded_error")
        messages = body["messages"]
        h = digest(messages)
        logprobs = bool(body.get("logprobs"))
        max_tokens = body.get("max_completion_tokens") or body.get("max_tokens") or 256
        n, pt = completion_tokens(h, max_tokens, logprobs), prompt_tokens(messages)
        engine.open += 1
        engine.max_open = max(engine.max_open, engine.open)
        try:
            async with engine.gate:
                await asyncio.sleep(engine.ttft + engine.tpt * (n - 1))
        finally:
            engine.open -= 1
        engine.counts["answered"] += 1
        engine.prompts[h.hex()[:16]] += 1
        if logprobs:
            dist = sorted(distribution(h).items(), key=lambda kv: -kv[1])[: body.get("top_logprobs") or 1]
            top = [{"token": t, "logprob": math.log(p), "bytes": list(t.encode())} for t, p in dist]
            text, lp = dist[0][0], {"content": [{**top[0], "top_logprobs": top}]}
        else:
            text, lp = thought(h, n), None
        return JSONResponse(
            {
                "id": f"chatcmpl-{h.hex()[:24]}",
                "object": "chat.completion",
                "created": int(time.time()),
                "model": body.get("model", "mock"),
                "choices": [
                    {
                        "index": 0,
                        "message": {"role": "assistant", "content": text},
                        "finish_reason": "length" if n >= max_tokens else "stop",
                        "logprobs": lp,
                    }
                ],
                "usage": {"prompt_tokens": pt, "completion_tokens": n, "total_tokens": pt + n},
            }
        )

    async def stats(request: Request):
        return JSONResponse(
            {
                **engine.counts,
                "max_open": engine.max_open,
                "open": engine.open,
                "prompts": dict(engine.prompts),
            }
        )

    async def reset(request: Request):
        engine.counts.clear()
        engine.prompts.clear()
        engine.max_open = engine.open
        return JSONResponse({"ok": True})

    async def models(request: Request):
        return JSONResponse(
            {"object": "list", "data": [{"id": "mock", "object": "model", "owned_by": "bench"}]}
        )

    return Starlette(
        routes=[
            Route("/v1/chat/completions", chat, methods=["POST"]),
            Route("/v1/models", models),
            Route("/stats", stats),
            Route("/stats/reset", reset, methods=["POST"]),
        ]
    )


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start(port: int | None = None, cpu: int | None = None, **engine) -> tuple[subprocess.Popen, str]:
    """Run the engine in its own process (pinned to `cpu` when given); returns it and its base URL
    once it answers."""
    import urllib.request

    port = port or free_port()
    args = [sys.executable, __file__, "--port", str(port)]
    for k, v in engine.items():
        if v is not None:
            args += [f"--{k.replace('_', '-')}", str(v)]
    if cpu is not None:
        args = ["taskset", "-c", str(cpu), *args]
    proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    url = f"http://127.0.0.1:{port}"
    for _ in range(200):  # 20 s at most
        if proc.poll() is not None:
            raise RuntimeError(f"mock engine exited: {proc.stderr.read().decode()[-2000:]}")
        try:
            urllib.request.urlopen(url + "/v1/models", timeout=1).read()
            return proc, url + "/v1"
        except OSError:
            time.sleep(0.1)
    proc.kill()
    raise RuntimeError(f"mock engine did not answer on {url} within 20 s")


def stats(base_url: str, reset: bool = False) -> dict:
    import urllib.request

    root = base_url.removesuffix("/v1")
    if reset:
        urllib.request.urlopen(
            urllib.request.Request(root + "/stats/reset", method="POST"), timeout=10
        ).read()
    return json.loads(urllib.request.urlopen(root + "/stats", timeout=10).read())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--port", type=int, default=8123)
    ap.add_argument("--ttft", type=float, default=0.15, help="seconds to the first token")
    ap.add_argument("--tpt", type=float, default=0.005, help="seconds per further token")
    ap.add_argument("--slots", type=int, default=64, help="requests served at once; more queue")
    ap.add_argument("--rps-limit", type=float, default=0.0, help="429 above this many requests/s (0: none)")
    ap.add_argument("--retry-after", type=float, default=None, help="fixed Retry-After seconds on a 429")
    ap.add_argument("--storm", type=int, default=0, help="429 to the first N requests, whatever the rate")
    ap.add_argument("--error-rate", type=float, default=0.0, help="share of requests answered 503")
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args()

    import uvicorn

    async def serve():
        engine = Engine(a.ttft, a.tpt, a.slots, a.rps_limit, a.error_rate, a.seed, a.retry_after, a.storm)
        config = uvicorn.Config(
            create_app(engine),
            host="127.0.0.1",
            port=a.port,
            log_level="warning",
            access_log=False,
            backlog=4096,
            timeout_keep_alive=60,
        )
        await uvicorn.Server(config).serve()

    asyncio.run(serve())


if __name__ == "__main__":
    main()
