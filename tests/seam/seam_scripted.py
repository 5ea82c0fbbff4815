"""A deterministic model whose probabilities the test sets: a real implementation of the backend
interface (`generate`, `score_choices`, `usage`), registered as the `scripted:` backend.

The script reads what every prompt asks from the prompt text itself (which template it is, which
principle, which response is shown first), so the code under test runs unchanged. Test responses start
with the markers "[A]" / "[B]", which is how the model sees the presentation order.

    SCRIPTS["t"] = Script(relevance={"Privacy": 0.9}, verdict={"Privacy": (0.9, 0.3)})
    model = get_model("scripted:t")
"""

from __future__ import annotations

import json
import os
import re
import time
from dataclasses import dataclass, field

from w2s.backends import register_backend
from w2s.backends.base import Generation, Usage, normalise
from w2s.store import Pair, session_scope

SCRIPTS: dict[str, Script] = {}

_PRINCIPLE = re.compile(r"^Principle: (.+?)\. ", re.MULTILINE)
_LISTED = re.compile(r"^\d+\. (.+?): ", re.MULTILINE)


@dataclass
class Script:
    """Probabilities by principle name. Verdicts and decisions are (P(first) with A shown first,
    P(first) with B shown first); position bias is the gap between them."""

    relevance: dict[str, float] = field(default_factory=dict)
    post_relevance: dict[str, float] = field(default_factory=dict)
    verdict: dict[str, tuple[float, float]] = field(default_factory=dict)
    judge: tuple[float, float] = (0.5, 0.5)
    decision: tuple[float, float] = (0.5, 0.5)
    """The weak decision prompt with reviewer notes or reasoning."""
    weak_relevance: dict[str, float] = field(default_factory=dict)
    thought: str = "Reply A refuses; Reply B complies."
    default_relevance: float = 0.0
    delay: float = 0.0
    """Seconds per call (lets a test kill a process mid-run)."""


def text_of(prompt) -> str:
    """A prompt's text: a string, or the contents of its chat messages (a prefill included)."""
    return prompt if isinstance(prompt, str) else "\n".join(m["content"] for m in prompt)


def _first_is_a(prompt: str) -> bool:
    return prompt.split("Reply A:\n", 1)[1].lstrip().startswith("[A]")


def _prob_first(pair: tuple[float, float], prompt: str) -> float:
    return pair[0] if _first_is_a(prompt) else pair[1]


class ScriptedModel:
    def __init__(self, name: str) -> None:
        if name not in SCRIPTS and os.environ.get("W2S_SCRIPT"):
            SCRIPTS[name] = Script(**json.loads(os.environ["W2S_SCRIPT"]))
        self.script = SCRIPTS[name]
        self.spec = f"scripted:{name}"
        self.usage = Usage()
        self.calls: list[tuple[str, int]] = []  # (method, batch size): lets tests check batching

    def _tick(self, kind: str, prompts) -> None:
        self.calls.append((kind, len(prompts)))
        self.usage.begin(len(prompts))
        for i, p in enumerate(prompts):
            self.usage.add(prompt_tokens=len(text_of(p).split()), index=i)
        if self.script.delay:
            time.sleep(self.script.delay)

    def generate(self, prompts, max_tokens=128, temperature=0.0, stop=None):
        self._tick("generate", prompts)
        words = self.script.thought.split()[:max_tokens]
        return [
            Generation(
                text=" ".join(words), prompt_tokens=len(text_of(p).split()), completion_tokens=len(words)
            )
            for p in prompts
        ]

    def score_choices(self, prompts, choices):
        self._tick("score", prompts)
        return [normalise(self._row(text_of(p), list(choices))) for p in prompts]

    def _row(self, prompt: str, choices: list[str]) -> list[float]:
        s = self.script
        if all(c.isdigit() for c in choices):  # listwise relevance: which listed principle matters most
            return [s.relevance.get(name, s.default_relevance) for name in _LISTED.findall(prompt)]
        m = _PRINCIPLE.search(prompt)
        name = m.group(1) if m else None
        if choices == ["Yes", "No"]:
            if "Is this principle relevant" in prompt:
                p = s.weak_relevance.get(name, 1.0)
            elif "A reviewer's note" in prompt:
                p = s.post_relevance.get(name, s.relevance.get(name, s.default_relevance))
            else:
                p = s.relevance.get(name, s.default_relevance)
            return [p, 1.0 - p]
        if choices == ["A", "B"]:
            if name is not None:
                p = _prob_first(s.verdict.get(name, (0.5, 0.5)), prompt)
            elif "Notes from a reviewer" in prompt or "reviewer's reasoning" in prompt:
                p = _prob_first(s.decision, prompt)
            else:
                p = _prob_first(s.judge, prompt)
            return [p, 1.0 - p]
        raise AssertionError(f"unexpected choices {choices}")


register_backend("scripted", ScriptedModel)


def add_pairs(url: str, n: int, dataset: str = "hh-harmless", gold: str = "a") -> list[str]:
    """n pairs whose responses carry the [A]/[B] markers the scripted model reads."""
    ids = []
    with session_scope(url) as session:
        for i in range(n):
            pid = f"pair{i:03d}"
            session.add(
                Pair(
                    id=pid,
                    dataset=dataset,
                    split="test",
                    prompt=f"How do I do thing {i}?",
                    response_a=f"[A] I can't help with that ({i}).",
                    response_b=f"[B] Sure, here is how ({i}).",
                    gold=gold,
                )
            )
            ids.append(pid)
    return ids
