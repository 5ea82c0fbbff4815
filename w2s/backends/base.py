"""The one interface every model role (strong, weak, judge) goes through.

A prompt is either a plain string (sent as the single user message of a chat) or a list of chat
messages `[{"role": "system"|"user"|"assistant", "content": str}]`. Backends apply the model's own
chat template, so the same prompt works for every backend. A trailing assistant message is a prefill:
the answer starts with it and the model continues (local backends and Anthropic; an OpenAI-compatible
server sees it as an earlier turn).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

Message = dict
Prompt = str | Sequence[Message]


@dataclass
class Generation:
    text: str
    prompt_tokens: int = 0
    completion_tokens: int = 0
    seconds: float = 0.0


@dataclass
class PromptUsage:
    """What one prompt of a call cost."""

    prompt_tokens: int = 0
    completion_tokens: int = 0
    cached_prompt_tokens: int = 0
    seconds: float = 0.0

    @property
    def evaluated(self) -> int:
        """Tokens the model computed: prompt tokens not served from a cache, plus generated ones."""
        return self.prompt_tokens - self.cached_prompt_tokens + self.completion_tokens


@dataclass
class Usage:
    """Running token accounting of one model instance."""

    calls: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    seconds: float = 0.0
    cached_prompt_tokens: int = 0
    """Prompt tokens served from a cached prefix instead of evaluated (part of `prompt_tokens`)."""
    last: list[PromptUsage] = field(default_factory=list)
    """Per-prompt figures of the most recent call, in the order of its prompts, so that a caller can
    charge each result its own cost (a tree its own tokens) instead of a batch average."""

    def begin(self, n: int) -> None:
        """Start a call of `n` prompts (resets `last`)."""
        self.last = [PromptUsage() for _ in range(n)]

    def add(
        self,
        prompt_tokens: int = 0,
        completion_tokens: int = 0,
        seconds: float = 0.0,
        cached: int = 0,
        index: int | None = None,
    ) -> None:
        """Count one prompt's cost; `index` is its position in the current call (see `begin`)."""
        self.calls += 1
        self.prompt_tokens += prompt_tokens
        self.completion_tokens += completion_tokens
        self.seconds += seconds
        self.cached_prompt_tokens += cached
        if index is not None and 0 <= index < len(self.last):
            u = self.last[index]
            u.prompt_tokens += prompt_tokens
            u.completion_tokens += completion_tokens
            u.cached_prompt_tokens += cached
            u.seconds += seconds


@runtime_checkable
class Model(Protocol):
    """What w2s asks of a model."""

    spec: str
    usage: Usage

    def generate(
        self,
        prompts: Sequence[Prompt],
        max_tokens: int = 128,
        temperature: float = 0.0,
        stop: Sequence[str] | None = None,
    ) -> list[Generation]:
        """Complete each prompt (as the assistant's next turn)."""
        ...

    def score_choices(self, prompts: Sequence[Prompt], choices: Sequence[str]) -> list[list[float]]:
        """For each prompt, the probability of each choice as the assistant's next token,
        renormalised over the choices (each row sums to 1)."""
        ...


def as_messages(prompt: Prompt) -> list[Message]:
    if isinstance(prompt, str):
        return [{"role": "user", "content": prompt}]
    return [dict(m) for m in prompt]


def split_prefill(prompt: Prompt) -> tuple[list[Message], str]:
    """(messages, prefill): a trailing assistant message is the start of the answer, which the model
    continues (so a verdict can be read right after the model's own reasoning)."""
    messages = as_messages(prompt)
    if len(messages) > 1 and messages[-1]["role"] == "assistant":
        return messages[:-1], messages[-1]["content"]
    return messages, ""


def normalise(weights: Sequence[float]) -> list[float]:
    total = float(sum(weights))
    if total <= 0.0:
        return [1.0 / len(weights)] * len(weights)
    return [float(w) / total for w in weights]


@dataclass
class BackendUnavailable(RuntimeError):
    """A backend whose optional dependency is missing; the message says how to install it."""

    backend: str
    hint: str
    cause: str = field(default="")

    def __str__(self) -> str:
        reason = f" ({self.cause})" if self.cause else ""
        return f"the '{self.backend}' backend is not available{reason}. Install it with: {self.hint}"
