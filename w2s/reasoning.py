"""The strong model's free reasoning, as stored with the CoT baselines' labels (`w2s annotate -a cot-v1`).

A `cot-*` annotation keeps the strong model's reasoning in `meta["reasoning"]` and what produced it in
`meta["producer"]`. The reasoning depends only on the strong model, the CoT template and its token
budget (greedy, canonical order), not on the weak model that then decided, so an aligned master
(`w2s master train --kind cot-v1`) reads it from any such label instead of generating it again.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sqlmodel import Session, select

from w2s.store import Annotation, select_in
from w2s.templates import template_hash

COT_METHODS = ("cot-v1", "cot-v2", "cot-v3")


@dataclass(frozen=True)
class Reasoning:
    text: str
    annotation_id: int
    """The label it was read from (its producer says how it was made)."""


def stored_reasoning(
    session: Session, pair_ids: Sequence[str], method: str, strong: str, max_tokens: int | None = None
) -> tuple[int | None, dict[str, Reasoning]]:
    """(token budget, pair id -> reasoning) of `method`'s labels by `strong` on these pairs, written with
    the current template. Without `max_tokens`, the budget most of the pairs have reasoning of."""
    if method not in COT_METHODS:
        raise ValueError(f"unknown CoT method {method!r}: {', '.join(COT_METHODS)}")
    template = template_hash(method)
    by_budget: dict[int, dict[str, Reasoning]] = {}
    query = select(Annotation).where(Annotation.method == method).order_by(Annotation.id)
    for row in select_in(session, query, Annotation.pair_id, pair_ids):
        producer = (row.meta or {}).get("producer") or {}
        if producer.get("strong") != strong or producer.get("templates", {}).get(method) != template:
            continue  # another strong model, or a template edited since: not this reasoning
        budget = producer.get("options", {}).get("reasoning_max_tokens")
        if budget is None or "reasoning" not in row.meta:
            continue
        by_budget.setdefault(budget, {}).setdefault(row.pair_id, Reasoning(row.meta["reasoning"], row.id))
    if max_tokens is None:
        if not by_budget:
            return None, {}
        max_tokens = max(by_budget, key=lambda b: (len(by_budget[b]), b))
    return max_tokens, by_budget.get(max_tokens, {})


def missing_reasoning_error(method: str, strong: str, max_tokens: int | None, missing: Sequence[str]) -> str:
    budget = f" --reasoning-max-tokens {max_tokens}" if max_tokens else ""
    shown = ", ".join(list(missing)[:3]) + (" …" if len(missing) > 3 else "")
    return (
        f"{len(missing)} pairs have no {method} reasoning by {strong} ({shown}): "
        f"run `w2s annotate -a {method} --strong {strong}{budget}` on them first"
    )
