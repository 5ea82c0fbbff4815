"""Prompt variations for any model annotator (Guo & Yang 2024): ask the same question N ways and store
each answer as its own annotation (same method and annotator, `variant` = the variant's id), so that
`w2s labels build` can measure how stable the answer is (entropy) and weight it (softmax reliability).

    annotator = get_annotator("seam", weak="transformers:smollm2")
    annotate_variants(annotator, pair_ids, n=5)       # canonical, A/B swap, then permuted node orders

Variants come from `w2s.labels.variants.make_variants`; the annotator applies them (`Variant.swap` shows B first
and maps the answer back, `Variant.permute` reorders the consulted nodes). Resumable like `annotate_all`:
a rerun adds only the (variant, pair) answers not yet stored.

For multiple-choice tasks the options themselves are permuted and the answer mapped back to the original
option order (`permute_options`, `map_back`, `ask_multiple_choice`).
"""

from __future__ import annotations

import string
from collections.abc import Callable, Sequence

from annotators.base import Annotator, annotate_all
from w2s.backends import Model, Prompt
from w2s.labels.variants import Variant, make_variants


def annotate_variants(
    annotator: Annotator,
    pair_ids: Sequence[str],
    *,
    n: int = 5,
    seed: int = 0,
    url: str | None = None,
    batch_size: int = 16,
    on_batch: Callable[[int, int], None] | None = None,
) -> dict[str, int]:
    """Run `annotator` over every pair under each of `make_variants(n, seed)`; returns rows added per
    variant id ('' is the canonical prompt)."""
    if n < 1:
        raise ValueError(f"annotate_variants: n must be >= 1, got {n}")
    return {
        v.id: annotate_all(annotator, pair_ids, url=url, batch_size=batch_size, variant=v, on_batch=on_batch)
        for v in make_variants(n, seed)
    }


# ------------------------------------------------------------------------------------- multiple choice


def option_order(n_options: int, variant: Variant) -> list[int]:
    """The original index of each shown option: `swap` reverses the list, `order_seed` shuffles it."""
    order = list(range(n_options))
    if variant.swap:
        order.reverse()
    return variant.permute(order)


def permute_options(options: Sequence[str], variant: Variant) -> tuple[list[str], list[int]]:
    """(the options in the order shown, the original index of each shown option)."""
    order = option_order(len(options), variant)
    return [options[i] for i in order], order


def map_back(probs_shown: Sequence[float], order: Sequence[int]) -> list[float]:
    """Probabilities over the shown options -> probabilities over the original options."""
    if len(probs_shown) != len(order):
        raise ValueError(f"map_back: {len(probs_shown)} probabilities for {len(order)} options")
    out = [0.0] * len(order)
    for shown_position, original in enumerate(order):
        out[original] = float(probs_shown[shown_position])
    return out


def ask_multiple_choice(
    model: Model,
    prompt_for: Callable[[list[str], list[str]], Prompt],
    options: Sequence[str],
    variants: Sequence[Variant],
) -> list[list[float]]:
    """For each variant, the model's probability of each ORIGINAL option, in one batched call.

    `prompt_for(shown_options, letters)` builds the question with the options listed under `letters`
    (A, B, C, ...); the model answers with a letter, read by `score_choices`."""
    letters = list(string.ascii_uppercase[: len(options)])
    if len(options) > len(string.ascii_uppercase):
        raise ValueError(f"ask_multiple_choice: at most 26 options, got {len(options)}")
    shown = [permute_options(options, v) for v in variants]
    probs = model.score_choices([prompt_for(opts, letters) for opts, _ in shown], letters)
    return [map_back(p, order) for p, (_, order) in zip(probs, shown)]
