"""One prompt at a time, awaited: the calls of many concurrent searches, whatever the backend.

    call = as_async(model)
    gen, usage = await call.agenerate_one(prompt, max_tokens=48)
    probs, usage = await call.ascore_one(prompt, ["A", "B"])

Remote backends (`openai:`, `anthropic:`) have these methods themselves: each request is its own call.
An in-process backend (transformers, llama.cpp, offline vLLM) is wrapped in a `Gatherer`: the calls waiting
at a moment with the same arguments go to the model as one call of its batched sync API, run in a thread so
the event loop stays responsive, and each prompt gets back its own result and its own usage.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from w2s.backends.base import Generation, Model, Prompt, PromptUsage


def as_async(model) -> Model:
    """The model itself when it awaits one prompt at a time, else a Gatherer around it."""
    return model if hasattr(model, "ascore_one") else Gatherer(model)


class Gatherer:
    """Batches the pending one-prompt calls of a sync batched model."""

    def __init__(self, model: Model):
        self.model = model
        self.spec = model.spec
        self.usage = model.usage
        self.pending: dict[tuple, list[tuple[Prompt, asyncio.Future]]] = {}  # by call kind and arguments
        self.worker: asyncio.Task | None = None
        self.batches: list[tuple[str, int]] = []  # (kind, prompts) of every call made, for tests and benches

    async def agenerate_one(
        self,
        prompt: Prompt,
        max_tokens: int = 128,
        temperature: float = 0.0,
        stop: Sequence[str] | None = None,
    ) -> tuple[Generation, PromptUsage]:
        return await self._submit(("generate", max_tokens, temperature, tuple(stop or ())), prompt)

    async def ascore_one(self, prompt: Prompt, choices: Sequence[str]) -> tuple[list[float], PromptUsage]:
        return await self._submit(("score", tuple(choices)), prompt)

    def _submit(self, key: tuple, prompt: Prompt) -> asyncio.Future:
        future = asyncio.get_running_loop().create_future()
        self.pending.setdefault(key, []).append((prompt, future))
        if self.worker is None or self.worker.done():
            self.worker = asyncio.create_task(self._drain())
        return future

    def _waiting(self) -> int:
        return sum(len(jobs) for jobs in self.pending.values())

    async def _settle(self) -> None:
        """Yield to the loop until two turns in a row add no call: every search that can go on has
        asked for its next call (a woken search, a finished one's successor, a new pair)."""
        quiet, n = 0, self._waiting()
        while quiet < 2:
            await asyncio.sleep(0)
            quiet, n = (quiet + 1, n) if self._waiting() == n else (0, self._waiting())

    async def _drain(self) -> None:
        while self.pending:
            await self._settle()
            key = next(iter(self.pending))  # the kind of call that has waited longest
            jobs = self.pending.pop(key)
            try:
                results, usage = await asyncio.to_thread(self._call, key, [p for p, _ in jobs])
            except Exception as e:  # noqa: BLE001 (every caller of the batch sees the model's error)
                for _, future in jobs:
                    if not future.done():
                        future.set_exception(e)
                continue
            for (_, future), result, u in zip(jobs, results, usage):
                if not future.done():
                    future.set_result((result, u))

    def _call(self, key: tuple, prompts: list[Prompt]) -> tuple[list, list[PromptUsage]]:
        self.batches.append((key[0], len(prompts)))
        if key[0] == "generate":
            _, max_tokens, temperature, stop = key
            out = self.model.generate(
                prompts, max_tokens=max_tokens, temperature=temperature, stop=list(stop) or None
            )
        else:
            out = self.model.score_choices(prompts, list(key[1]))
        last = self.model.usage.last
        # a backend without per-prompt figures: the prompts are charged nothing rather than a guess
        usage = list(last) if len(last) == len(prompts) else [PromptUsage() for _ in prompts]
        return out, usage
