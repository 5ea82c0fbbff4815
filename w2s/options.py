"""Typed options: a dataclass per annotator and per backend, so that a misspelt option is an error
naming it instead of being ignored."""

from __future__ import annotations

from dataclasses import Field, fields, replace
from typing import Any, TypeVar

T = TypeVar("T")


def typed_options(cls: type[T], options: dict[str, Any], owner: str, base: T | None = None) -> T:
    """`cls(**options)`, or `base` with `options` replaced; an unknown option raises ValueError naming
    it, the owner and the known options."""
    known = {f.name: f for f in fields(cls)}
    unknown = [name for name in options if name not in known]
    if unknown:
        raise ValueError(f"{owner} has no option {unknown[0]!r}; its options: {', '.join(known)}")
    options = {k: _coerce(v, known[k], owner) for k, v in options.items()}
    return replace(base, **options) if base is not None else cls(**options)


def _coerce(value: Any, f: Field, owner: str) -> Any:
    """A command line's text for an option, as the type of its default (int, float or bool); a None
    default takes the type its annotation names (`int | None`)."""
    kind = type(f.default)
    if f.default is None and isinstance(f.type, str):  # annotations are strings (from __future__)
        kind = next((k for k in (bool, int, float) if f.type.startswith(f"{k.__name__} |")), kind)
    if not isinstance(value, str) or kind not in (int, float, bool):
        return value
    if kind is bool:
        if value.lower() not in ("1", "0", "true", "false", "yes", "no"):
            raise ValueError(f"{owner} option {f.name!r} takes true or false, not {value!r}")
        return value.lower() in ("1", "true", "yes")
    try:
        return kind(value)
    except ValueError:
        raise ValueError(f"{owner} option {f.name!r} takes a number, not {value!r}") from None
