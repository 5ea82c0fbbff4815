"""`openai:MODEL@BASE_URL` — any OpenAI-compatible chat server (OpenAI, `vllm serve`, llama.cpp's
server, `w2s models serve`). `openai:MODEL` uses the client's default URL (api.openai.com, or
$OPENAI_BASE_URL).

Every request is one awaited call of the client's async API (`agenerate_one`, `ascore_one`), so a
caller can keep hundreds in flight from one thread; the sync batched `generate` / `score_choices` run
theirs concurrently. One policy, this module's, applies to every request (the client's own retries
are off): at most `max_concurrency` in flight per model, requests and tokens per minute under `rpm` /
`tpm`, and a 429 or 5xx, a timeout or a lost connection is retried after the server's `Retry-After`
(seconds or an HTTP date), else after an exponential backoff with jitter. 429s do not use up
`max_retries` (a rate limit is the server asking to wait, not a failure) but `rate_limit_wait`.
`score_choices` asks for one token with `top_logprobs` and reads the choices' probabilities from them.
"""

from __future__ import annotations

import asyncio
import math
import os
import random
import re
import time
from collections.abc import Callable, Coroutine, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from typing import Any

from w2s.backends.base import (
    BackendUnavailable,
    Generation,
    Prompt,
    PromptUsage,
    Usage,
    as_messages,
    normalise,
)
from w2s.options import typed_options


@dataclass
class RemoteConfig:
    max_concurrency: int = 8  # requests in flight at once (one cap for everything this model sends)
    timeout: float = 60.0  # seconds per request
    max_retries: int = 5  # retries after a 5xx, a timeout or a lost connection
    backoff: float = 0.5  # seconds before the first retry; doubles each time (with jitter)
    max_backoff: float = 30.0
    rate_limit_wait: float = 600.0  # seconds one request may wait in all on 429s before it fails
    rpm: float = 0.0  # requests per minute (0: no limit of ours)
    tpm: float = 0.0  # tokens per minute, prompt + max completion estimated up front (0: no limit)
    top_logprobs: int = 20  # alternatives asked for in score_choices (OpenAI allows at most 20)
    api_key: str | None = None


class Bucket:
    """A token bucket of `per_minute` refilled continuously, holding at most ten seconds' worth (so a
    cold start does not send a minute's requests at once). `reserve` takes what a request needs, even
    into debt, and says how long to wait for it: callers on one event loop need no lock. (aiolimiter
    does the same for one rate but is not installed here and cannot be told the true size of a request
    after it, nor to pause until a server's reset time.)"""

    def __init__(self, per_minute: float, clock: Callable[[], float] = time.monotonic):
        self.rate = per_minute / 60.0
        self.capacity = max(1.0, self.rate * 10)
        self.level = self.capacity
        self.clock = clock
        self.stamp = clock()

    def reserve(self, amount: float) -> float:
        if self.rate <= 0:
            return 0.0
        now = self.clock()
        self.level = min(self.capacity, self.level + (now - self.stamp) * self.rate)
        self.stamp = now
        self.level -= amount
        return max(0.0, -self.level / self.rate)

    def refund(self, amount: float) -> None:
        """Give back what a request reserved but did not use (or take more, if negative)."""
        self.level = min(self.capacity, self.level + amount)

    def pause(self, seconds: float) -> None:
        """Empty the bucket for `seconds` (the server says this limit resets then)."""
        if self.rate > 0:
            self.level = min(self.level, -seconds * self.rate)


_DURATION = re.compile(r"([\d.]+)(ms|s|m|h)")


def retry_after(headers, now: float | None = None) -> float | None:
    """Seconds the server asks to wait: `retry-after-ms`, or `retry-after` in seconds or as an HTTP date;
    None when it says nothing."""
    if not headers:
        return None
    if (ms := headers.get("retry-after-ms")) is not None:
        try:
            return max(0.0, float(ms) / 1000)
        except ValueError:
            pass
    value = headers.get("retry-after")
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        return max(0.0, parsedate_to_datetime(value).timestamp() - (time.time() if now is None else now))
    except (TypeError, ValueError):
        return None


def reset_seconds(value: str) -> float:
    """OpenAI's `x-ratelimit-reset-*` durations, e.g. '1s', '6m0s', '20ms'."""
    units = {"ms": 0.001, "s": 1, "m": 60, "h": 3600}
    return sum(float(n) * units[u] for n, u in _DURATION.findall(value))


def backoff(cfg: RemoteConfig, attempt: int, rng: random.Random) -> float:
    """Exponential backoff with jitter before retry `attempt` (1, 2, ...)."""
    return min(cfg.max_backoff, cfg.backoff * 2 ** (attempt - 1)) * (0.5 + rng.random() / 2)


def status_of(e: BaseException, status_error, connection_errors: tuple) -> str | None:
    """'rate' for a 429, 'error' for what is worth retrying (5xx, 408, 409, timeouts, lost connections),
    None for the rest."""
    if isinstance(e, connection_errors):
        return "error"
    if isinstance(e, status_error):
        if e.status_code == 429:
            return "rate"
        if e.status_code >= 500 or e.status_code in (408, 409):
            return "error"
    return None


def split_spec(rest: str) -> tuple[str, str | None]:
    model, _, base_url = rest.partition("@")
    return model, base_url or None


def choice_mass(top: dict[str, float], choices: Sequence[str]) -> list[float]:
    """Probability of each choice from a {token_text: probability} map of the first answer token:
    a token counts for a choice when it is the choice (or a prefix of it), with or without one
    leading space, as the local backends count a choice's first token with and without a space."""
    mass = [0.0] * len(choices)
    for token, p in top.items():
        bare = token.removeprefix(" ")
        if not bare:
            continue
        for k, choice in enumerate(choices):
            if choice.startswith(bare):
                mass[k] += p
                break
    return mass


class RemoteModel:
    """What the API backends share: config, spec, key, token accounting, and the request policy."""

    backend = ""
    key_env = ""
    status_error: type = Exception
    connection_errors: tuple = ()

    def __init__(self, rest: str, config: RemoteConfig | None = None, **overrides):
        self.config = typed_options(
            RemoteConfig, overrides, f"backend '{self.backend}'", base=config or RemoteConfig()
        )
        self.model, self.base_url = split_spec(rest)
        self.spec = f"{self.backend}:{rest}"
        self.usage = Usage()
        # A local server needs no key; the clients still insist on one.
        self.api_key = (
            self.config.api_key or os.environ.get(self.key_env) or ("unused" if self.base_url else None)
        )
        self.clock: Callable[[], float] = time.monotonic
        self.wall: Callable[[], float] = time.time  # "now" for a Retry-After given as a date
        self.sleep: Callable[[float], Coroutine] = asyncio.sleep  # a test may wait on a fake clock
        self.rng = random.Random()
        self.requests, self.tokens = Bucket(self.config.rpm), Bucket(self.config.tpm)
        self.retries = 0  # requests sent again (after a 429, a 5xx, a timeout or a lost connection)
        self.note, self.note_until = "", 0.0
        self.hold_until = 0.0  # no request goes out before this (clock) time: the last 429's Retry-After
        self._loop = None  # the event loop the async client and the concurrency gate belong to

    # ------------------------------------------------------------------ one request, under the policy

    def new_client(self):
        raise NotImplementedError

    def _session(self):
        loop = asyncio.get_running_loop()
        if self._loop is not loop:  # an httpx client and a semaphore serve one event loop
            self._loop, self._client = loop, self.new_client()
            self._gate = asyncio.Semaphore(max(1, self.config.max_concurrency))
        return self._client, self._gate

    async def aclose(self) -> None:
        """Close this event loop's client (call it before the loop ends)."""
        if self._loop is asyncio.get_running_loop():
            self._loop = None
            await self._client.close()

    def waiting(self) -> str:
        """What the model waits for now ('' when it does not), for a progress line."""
        return self.note if self.clock() < self.note_until else ""

    async def _wait(self, seconds: float, why: str) -> None:
        self.note, self.note_until = f"waiting {seconds:.1f} s: {why}", self.clock() + seconds
        await self.sleep(seconds)

    async def _send(self, request: Callable[[Any], Coroutine], estimate: int) -> tuple[Any, float]:
        """Send `request(client)` under the limits, retrying as the policy says; (answer, seconds)."""
        rate_waited, rate_hits, failures = 0.0, 0, 0
        while True:
            if (held := self.hold_until - self.clock()) > 0:  # a 429 holds every request, not just its own
                await self._wait(held, "429 from server")
            wait = max(self.requests.reserve(1), self.tokens.reserve(estimate))
            if wait > 0:
                await self._wait(wait, "rpm/tpm limit")
            client, gate = self._session()
            async with gate:
                start = time.perf_counter()
                try:
                    return await request(client), time.perf_counter() - start
                except Exception as e:  # noqa: BLE001 (sorted by status_of; the rest re-raised)
                    error, kind = e, status_of(e, self.status_error, self.connection_errors)
            if kind is None:
                raise error
            asked = retry_after(getattr(getattr(error, "response", None), "headers", None), now=self.wall())
            if kind == "rate":
                rate_hits += 1
                wait = asked if asked is not None else backoff(self.config, rate_hits, self.rng)
                rate_waited += wait
                self.hold_until = max(self.hold_until, self.clock() + wait)
                if rate_waited > self.config.rate_limit_wait:
                    error.add_note(f"(gave up after {rate_waited:.0f} s of 429s: rate_limit_wait)")
                    raise error
                why = "429 from server"
            else:
                failures += 1
                if failures > self.config.max_retries:
                    raise error
                wait = asked if asked is not None else backoff(self.config, failures, self.rng)
                why = f"{getattr(error, 'status_code', type(error).__name__)} from server"
            self.retries += 1
            await self._wait(wait, why)

    def _record(
        self, prompt_tokens: int, completion_tokens: int, seconds: float, estimate: int
    ) -> PromptUsage:
        self.tokens.refund(estimate - prompt_tokens - completion_tokens)
        self.usage.add(prompt_tokens, completion_tokens, seconds)
        return PromptUsage(prompt_tokens=prompt_tokens, completion_tokens=completion_tokens, seconds=seconds)

    def observe(self, headers) -> None:
        """Pause the buckets where the server says a limit is used up until its reset."""
        for name, bucket in (("requests", self.requests), ("tokens", self.tokens)):
            if headers.get(f"x-ratelimit-remaining-{name}") == "0":
                bucket.pause(reset_seconds(headers.get(f"x-ratelimit-reset-{name}", "")))

    # ------------------------------------------------------------------ the sync batched API

    def _run(self, calls: list[Coroutine]) -> list:
        """Await one-prompt calls concurrently from sync code; `usage.last` gets each prompt's usage."""

        async def main():
            try:
                return await asyncio.gather(*calls)
            finally:
                await self.aclose()

        self.usage.begin(0)
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            results = asyncio.run(main())
        else:  # called from async code: run a loop of its own in another thread
            with ThreadPoolExecutor(1) as pool:
                results = pool.submit(asyncio.run, main()).result()
        self.usage.last = [u for _, u in results]
        return [r for r, _ in results]

    def generate(
        self,
        prompts: Sequence[Prompt],
        max_tokens: int = 128,
        temperature: float = 0.0,
        stop: Sequence[str] | None = None,
    ) -> list[Generation]:
        return self._run([self.agenerate_one(p, max_tokens, temperature, stop) for p in prompts])

    def score_choices(self, prompts: Sequence[Prompt], choices: Sequence[str]) -> list[list[float]]:
        return self._run([self.ascore_one(p, choices) for p in prompts])


def estimate_tokens(prompt: Prompt, max_tokens: int) -> int:
    """Tokens a request may cost, for the tpm bucket before the answer says (4 characters a token)."""
    return sum(len(m["content"]) for m in as_messages(prompt)) // 4 + max_tokens


class OpenAIModel(RemoteModel):
    backend = "openai"
    key_env = "OPENAI_API_KEY"

    def __init__(self, rest: str, config: RemoteConfig | None = None, **overrides):
        try:
            import openai
        except ImportError as e:
            raise BackendUnavailable("openai", "pip install openai", cause=str(e)) from e
        super().__init__(rest, config, **overrides)
        self.status_error = openai.APIStatusError
        self.connection_errors = (openai.APIConnectionError, openai.APITimeoutError)

    def new_client(self):
        import openai

        return openai.AsyncOpenAI(
            base_url=self.base_url, api_key=self.api_key, timeout=self.config.timeout, max_retries=0
        )

    async def _chat(self, prompt: Prompt, max_tokens: int, **kwargs):
        estimate = estimate_tokens(prompt, max_tokens)

        async def request(client):
            raw = await client.chat.completions.with_raw_response.create(
                model=self.model, messages=as_messages(prompt), max_tokens=max_tokens, **kwargs
            )
            self.observe(raw.headers)
            return raw.parse()

        res, seconds = await self._send(request, estimate)
        pt, ct = (res.usage.prompt_tokens, res.usage.completion_tokens) if res.usage else (0, 0)
        return res, self._record(pt, ct, seconds, estimate)

    async def agenerate_one(
        self,
        prompt: Prompt,
        max_tokens: int = 128,
        temperature: float = 0.0,
        stop: Sequence[str] | None = None,
    ) -> tuple[Generation, PromptUsage]:
        kwargs = {"stop": list(stop)} if stop else {}
        res, u = await self._chat(prompt, max_tokens, temperature=temperature, **kwargs)
        text = res.choices[0].message.content or ""
        return Generation(text, u.prompt_tokens, u.completion_tokens, u.seconds), u

    async def ascore_one(self, prompt: Prompt, choices: Sequence[str]) -> tuple[list[float], PromptUsage]:
        res, u = await self._chat(
            prompt, 1, temperature=0.0, logprobs=True, top_logprobs=self.config.top_logprobs
        )
        content = (res.choices[0].logprobs and res.choices[0].logprobs.content) or []
        top = {t.token: math.exp(t.logprob) for t in (content[0].top_logprobs if content else [])}
        return normalise(choice_mass(top, choices)), u
