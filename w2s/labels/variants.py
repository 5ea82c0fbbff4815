"""Prompt variations (Guo & Yang 2024): the same question asked in several presentations, each
answer stored as its own annotation with the variant's id, so that the spread of answers measures
how reliable the label is."""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TypeVar

T = TypeVar("T")


@dataclass(frozen=True)
class Variant:
    """`swap`: show response B first (answers are mapped back); `order_seed`: permute the order of the
    consulted tree nodes (or, for multiple-choice tasks, of the options) with this seed."""

    id: str = ""
    swap: bool = False
    order_seed: int | None = None

    def permute(self, items: Sequence[T]) -> list[T]:
        items = list(items)
        if self.order_seed is not None:
            random.Random(self.order_seed).shuffle(items)
        return items


CANONICAL = Variant()


def make_variants(n: int, seed: int = 0) -> list[Variant]:
    """n variants: the canonical one, its A/B swap, then alternating swaps with permuted node orders."""
    variants = [CANONICAL, Variant(id="swap", swap=True)]
    rng = random.Random(seed)
    for i in range(2, n):
        variants.append(Variant(id=f"v{i}", swap=bool(i % 2), order_seed=rng.randrange(2**31)))
    return variants[:n]
