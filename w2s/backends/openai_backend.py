"""`openai:MODEL@BASE_URL` — any OpenAI-compatible chat server (OpenAI, `vllm serve`, llama.cpp's
server, `w2s models serve`). `openai:MODEL` uses the client's default URL (api.openai.com, or
$OPENAI_BASE_URL).

Requests run in a bounded thread pool; each has a timeout; 429, 5xx, timeouts and connection errors
are retried with exponential backoff (the client's own retries are switched off so that this policy
is the only one). `score_choices` asks for one token with `top_logprobs` and reads the choices'
probabilities from them.
"""

from __future__ import annotations

import os
import random
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TypeVar

from w2s.backends.base import BackendUnavailable, Generation, Prompt, Usage, as_messages, normalise
from w2s.options import typed_options

T = TypeVar("T")


@dataclass
class RemoteConfig:
    max_concurrency: int = 8  # requests in flight at once
    timeout: float = 60.0  # seconds per request
    max_retries: int = 5  # retries after the first attempt
    backoff: float = 0.5  # seconds before the first retry; doubles each time (with jitter)
    max_backoff: float = 30.0
    top_logprobs: int = 20  # alternatives asked for in score_choices (OpenAI allows at most 20)
    api_key: str | None = None


class Retrying:
    """Exponential backoff around one request; counts the retries it made (`self.retries`)."""

    def __init__(self, cfg: RemoteConfig, retryable: Callable[[BaseException], bool]):
        self.cfg = cfg
        self.retryable = retryable
        self.retries = 0
        self._lock = threading.Lock()

    def __call__(self, request: Callable[[], T]) -> T:
        for attempt in range(self.cfg.max_retries + 1):
            try:
                return request()
            except Exception as e:
                if attempt == self.cfg.max_retries or not self.retryable(e):
                    raise
                with self._lock:
                    self.retries += 1
                wait = min(self.cfg.max_backoff, self.cfg.backoff * 2**attempt)
                time.sleep(wait * (0.5 + random.random() / 2))
        raise AssertionError("unreachable")


def status_retryable(e: BaseException, status_error, connection_errors: tuple) -> bool:
    if isinstance(e, connection_errors):
        return True
    return isinstance(e, status_error) and (e.status_code == 429 or e.status_code >= 500)


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
    """What the API backends share: config, spec, key, token accounting, bounded concurrency."""

    backend = ""
    key_env = ""

    def __init__(self, rest: str, config: RemoteConfig | None = None, **overrides):
        self.config = typed_options(RemoteConfig, overrides, f"backend '{self.backend}'", base=config or RemoteConfig())
        self.model, self.base_url = split_spec(rest)
        self.spec = f"{self.backend}:{rest}"
        self.usage = Usage()
        self._usage_lock = threading.Lock()
        self._prompt = threading.local()  # which prompt of the current call a worker thread is on
        # A local server needs no key; the clients still insist on one.
        self.api_key = self.config.api_key or os.environ.get(self.key_env) or ("unused" if self.base_url else None)

    def _record(self, prompt_tokens: int, completion_tokens: int, seconds: float) -> None:
        with self._usage_lock:
            self.usage.add(prompt_tokens, completion_tokens, seconds, index=getattr(self._prompt, "index", None))

    def _map(self, fn: Callable[[Prompt], T], prompts: Sequence[Prompt]) -> list[T]:
        def indexed(job: tuple[int, Prompt]) -> T:
            self._prompt.index = job[0]
            return fn(job[1])

        self.usage.begin(len(prompts))
        with ThreadPoolExecutor(max_workers=max(1, self.config.max_concurrency)) as pool:
            return list(pool.map(indexed, enumerate(prompts)))


class OpenAIModel(RemoteModel):
    backend = "openai"
    key_env = "OPENAI_API_KEY"

    def __init__(self, rest: str, config: RemoteConfig | None = None, **overrides):
        try:
            import openai
        except ImportError as e:
            raise BackendUnavailable("openai", "pip install openai", cause=str(e)) from e
        super().__init__(rest, config, **overrides)
        self.client = openai.OpenAI(
            base_url=self.base_url, api_key=self.api_key, timeout=self.config.timeout, max_retries=0
        )
        errors = (openai.APIConnectionError, openai.APITimeoutError)
        self.retrying = Retrying(self.config, lambda e: status_retryable(e, openai.APIStatusError, errors))

    def _chat(self, prompt: Prompt, **kwargs):
        start = time.perf_counter()
        res = self.retrying(
            lambda: self.client.chat.completions.create(model=self.model, messages=as_messages(prompt), **kwargs)
        )
        seconds = time.perf_counter() - start
        usage = res.usage
        pt, ct = (usage.prompt_tokens, usage.completion_tokens) if usage else (0, 0)
        self._record(pt, ct, seconds)
        return res, pt, ct, seconds

    def generate(
        self,
        prompts: Sequence[Prompt],
        max_tokens: int = 128,
        temperature: float = 0.0,
        stop: Sequence[str] | None = None,
    ) -> list[Generation]:
        def one(prompt: Prompt) -> Generation:
            kwargs = {"stop": list(stop)} if stop else {}
            res, pt, ct, seconds = self._chat(prompt, max_tokens=max_tokens, temperature=temperature, **kwargs)
            return Generation(res.choices[0].message.content or "", pt, ct, seconds)

        return self._map(one, prompts)

    def score_choices(self, prompts: Sequence[Prompt], choices: Sequence[str]) -> list[list[float]]:
        import math

        def one(prompt: Prompt) -> list[float]:
            res, *_ = self._chat(
                prompt, max_tokens=1, temperature=0.0, logprobs=True, top_logprobs=self.config.top_logprobs
            )
            content = (res.choices[0].logprobs and res.choices[0].logprobs.content) or []
            top = {t.token: math.exp(t.logprob) for t in (content[0].top_logprobs if content else [])}
            return normalise(choice_mass(top, choices))

        return self._map(one, prompts)
