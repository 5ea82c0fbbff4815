"""Typed options: a dataclass per annotator and per backend, so that a misspelt option is an error
naming it instead of being ignored."""

from __future__ import annotations

from dataclasses import fields, replace
from typing import Any, TypeVar

T = TypeVar("T")


def typed_options(cls: type[T], options: dict[str, Any], owner: str, base: T | None = None) -> T:
    """`cls(**options)`, or `base` with `options` replaced; an unknown option raises ValueError naming
    it, the owner and the known options."""
    known = [f.name for f in fields(cls)]
    unknown = [name for name in options if name not in known]
    if unknown:
        raise ValueError(f"{owner} has no option {unknown[0]!r}; its options: {', '.join(known)}")
    return replace(base, **options) if base is not None else cls(**options)
