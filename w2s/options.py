"""Typed options: a dataclass per annotator, per backend and per config, so that a misspelt option is
an error naming it instead of being ignored; and a config dataclass's command-line options (`cli_options`)
and `--set key=value` keys (`apply_sets`), made of its fields, so each field is declared once."""

from __future__ import annotations

import ast
import enum
import functools
import inspect
import io
import textwrap
import tokenize
from collections.abc import Callable, Iterable, Sequence
from dataclasses import MISSING, Field, fields, is_dataclass, replace
from types import UnionType
from typing import Any, Literal, Optional, TypeVar, Union, get_args, get_origin, get_type_hints

T = TypeVar("T")


def typed_options(cls: type[T], options: dict[str, Any], owner: str, base: T | None = None) -> T:
    """`cls(**options)`, or `base` with `options` replaced; an unknown option raises ValueError naming
    it, the owner and the known options."""
    known = {f.name: f for f in fields(cls)}
    unknown = [name for name in options if name not in known]
    if unknown:
        raise ValueError(f"{owner} has no option {unknown[0]!r}; its options: {', '.join(known)}")
    options = {k: _coerce(cls, v, known[k], owner) for k, v in options.items()}
    return replace(base, **options) if base is not None else cls(**options)


def _coerce(cls: type, value: Any, f: Field, owner: str) -> Any:
    """A command line's text for an option, as the type of its default (int, float or bool); a None
    default takes the type its annotation names (`int | None`)."""
    kind = type(f.default) if f.default is not None else _unwrap(field_types(cls)[f.name])[0]
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


# ---------------------------------------------------------------------------------------------- configs declared once
#
# A config dataclass is the one place its fields, types, defaults and help live: `cli_options` makes a
# typer command's options of it (help from each field's docstring or comment, defaults from the class)
# and `apply_sets` reads `--set key=value` lines into it, converting each value by its field's type.

_TRUE, _FALSE = ("1", "true", "yes", "on"), ("0", "false", "no", "off")
_NONE = ("none", "null")


class UnknownField(ValueError):
    """A key that is not a field of the config (the message names it and lists the fields)."""


def field_docs(cls: type) -> dict[str, str]:
    """Each field's help, on one line: the string literal right after the field (an attribute
    docstring), else the comment at the end of its line, else the comment lines right above it.
    Inherited fields keep their declaring class's help."""
    docs: dict[str, str] = {}
    for klass in reversed(cls.__mro__):
        if klass is object or not is_dataclass(klass):
            continue
        try:
            source = textwrap.dedent(inspect.getsource(klass))
        except (OSError, TypeError):
            continue
        lines = source.splitlines()
        comments = {}
        try:
            for tok in tokenize.generate_tokens(io.StringIO(source).readline):
                if tok.type == tokenize.COMMENT:
                    comments[tok.start[0]] = tok.string.lstrip("#").strip()
        except tokenize.TokenError:
            pass
        body = ast.parse(source).body[0].body
        for i, node in enumerate(body):
            if not (isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name)):
                continue
            after = body[i + 1] if i + 1 < len(body) else None
            if (
                isinstance(after, ast.Expr)
                and isinstance(after.value, ast.Constant)
                and isinstance(after.value.value, str)
            ):
                text = after.value.value
            elif node.end_lineno in comments:
                text = comments[node.end_lineno]
            else:
                above, j = [], node.lineno - 1
                while j >= 1 and lines[j - 1].strip().startswith("#"):
                    above.insert(0, comments.get(j, ""))
                    j -= 1
                text = " ".join(above)
            docs[node.target.id] = " ".join(text.split())
    return docs


def field_types(cls: type) -> dict[str, Any]:
    """Each field's type, resolved (`from __future__ import annotations` leaves them as text)."""
    hints = get_type_hints(cls)
    return {f.name: hints.get(f.name, Any) for f in fields(cls)}


def _unwrap(tp: Any) -> tuple[Any, bool, tuple | None]:
    """(the scalar type, whether None is allowed, the Literal's choices or None)."""
    optional = False
    if get_origin(tp) in (Union, UnionType):
        args = [a for a in get_args(tp) if a is not type(None)]
        optional = len(args) < len(get_args(tp))
        tp = args[0] if len(args) == 1 else Any
    if get_origin(tp) is Literal:
        choices = get_args(tp)
        return type(choices[0]), optional, choices
    return tp, optional, None


def convert(cls: type, name: str, text: str, owner: str | None = None) -> Any:
    """`text` as the value of `cls`'s field `name`, by the field's type: bool (true/false, yes/no, 1/0,
    on/off), int, float, str, a Literal's choices, and `none` for an Optional field."""
    owner = owner or cls.__name__
    tp, optional, choices = _unwrap(field_types(cls)[name])
    if optional and text.strip().lower() in _NONE:
        return None
    if choices is not None:
        if text not in choices:
            raise ValueError(
                f"{owner} field {name!r} takes one of {', '.join(map(str, choices))}, not {text!r}"
            )
        return text
    if tp is bool:
        if text.lower() not in _TRUE + _FALSE:
            raise ValueError(f"{owner} field {name!r} takes true or false, not {text!r}")
        return text.lower() in _TRUE
    if tp in (int, float):
        try:
            return tp(text)
        except ValueError:
            kind = "an integer" if tp is int else "a number"
            raise ValueError(f"{owner} field {name!r} takes {kind}, not {text!r}") from None
    if tp in (str, Any):
        return text
    raise ValueError(f"{owner} field {name!r} ({tp}) cannot be set from text")


def parse_sets(cls: type, sets: Sequence[str], owner: str | None = None) -> dict[str, Any]:
    """`key=value` lines as {field: typed value}; an unknown key raises UnknownField naming it and
    listing the fields, a line without `=` raises ValueError."""
    owner = owner or cls.__name__
    known = [f.name for f in fields(cls)]
    values: dict[str, Any] = {}
    for line in sets:
        key, eq, text = line.partition("=")
        key = key.strip()
        if not eq or not key:
            raise ValueError(f"{line!r} is not KEY=VALUE (a field of {owner})")
        if key not in known:
            raise UnknownField(f"{owner} has no field {key!r}; its fields: {', '.join(known)}")
        values[key] = convert(cls, key, text.strip(), owner)
    return values


def apply_sets(cfg_or_cls: T | type[T], sets: Sequence[str], owner: str | None = None, **fixed: Any) -> T:
    """The config with each `key=value` of `sets` applied (`--set` lines): on a config, a copy with them
    replaced; on a config class, a new one of its defaults, `fixed` and them."""
    cls = cfg_or_cls if isinstance(cfg_or_cls, type) else type(cfg_or_cls)
    values = {**fixed, **parse_sets(cls, sets, owner)}
    return cls(**values) if isinstance(cfg_or_cls, type) else replace(cfg_or_cls, **values)


def flag(name: str) -> str:
    """The long option of a field: `max_depth` -> `--max-depth`."""
    return "--" + name.replace("_", "-").lower()


def cli_options(
    cls: type,
    into: str = "cfg",
    *,
    exclude: Iterable[str] = (),
    aliases: dict[str, Sequence[str]] | None = None,
    required: Iterable[str] = (),
    panel: str | None = None,
    fixed: dict[str, Any] | None = None,
) -> Callable[[Callable], Callable]:
    """A decorator that gives a typer command one option per field of the dataclass `cls` (but
    `exclude`) in place of its parameter `into`, and calls it with `into=cls(...)` built of them.

    Each option is `--field-name` (a bool: `--name/--no-name`) plus its `aliases` (old names, short
    flags); its default is the field's, its help the field's docstring or comment, its type the field's
    (Optional, Literal as choices); a field's `metadata["cli"]` adds typer.Option arguments (e.g. `min`).
    `required` fields have no default; excluded fields keep their defaults unless `fixed` gives them."""
    exclude, required, aliases, fixed = set(exclude), set(required), dict(aliases or {}), dict(fixed or {})
    known = {f.name for f in fields(cls)}
    for name in exclude | required | set(aliases) | set(fixed):
        if name not in known:
            raise UnknownField(
                f"{cls.__name__} has no field {name!r}; its fields: {', '.join(sorted(known))}"
            )

    def decorate(func: Callable) -> Callable:
        import typer

        sig = inspect.signature(func)
        if into not in sig.parameters:
            raise TypeError(f"{func.__name__} has no parameter {into!r} for {cls.__name__}")
        hints = {k: v for k, v in get_type_hints(func).items() if k in sig.parameters or k == "return"}
        docs, types = field_docs(cls), field_types(cls)
        generated: dict[str, str] = {}  # parameter -> field
        choice_fields: dict[str, type[enum.Enum]] = {}
        params = []
        for f in fields(cls):
            if f.name in exclude or f.name in fixed or not f.init:
                continue
            param = f"{into}__{f.name}"
            generated[param] = f.name
            tp, optional, choices = _unwrap(types[f.name])
            extra = dict(f.metadata.get("cli", {}))
            if choices is not None:  # typer takes choices as an Enum (every version); its value goes on
                tp = enum.Enum(
                    f"{cls.__name__}_{f.name}", {str(c): c for c in choices}, type=type(choices[0])
                )
                choice_fields[f.name] = tp
            if f.name in required:
                default: Any = ...
            elif f.default is not MISSING:
                default = f.default
            elif f.default_factory is not MISSING:
                default = f.default_factory()
            else:
                default = ...
            main = flag(f.name)
            decls = [f"{main}/--no-{main[2:]}" if tp is bool else main, *aliases.get(f.name, ())]
            if tp in choice_fields.values() and default not in (None, ...):
                default = tp(default)
            option = typer.Option(
                default, *decls, help=docs.get(f.name) or None, rich_help_panel=panel, **extra
            )
            annotation = Optional[tp] if optional or default is None else tp  # noqa: UP045 (a runtime type)
            params.append(
                inspect.Parameter(
                    param, inspect.Parameter.KEYWORD_ONLY, default=option, annotation=annotation
                )
            )
            hints[param] = annotation

        @functools.wraps(func)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            values = {generated[k]: kwargs.pop(k) for k in list(kwargs) if k in generated}
            values = {
                k: v.value if isinstance(v, enum.Enum) and k in choice_fields else v
                for k, v in values.items()
            }
            kwargs[into] = cls(**fixed, **values)
            return func(*args, **kwargs)

        kept = [p for p in sig.parameters.values() if p.name != into]
        # typer reads options as keyword arguments: all keyword-only, so order (defaults or not) is free
        kept = [p.replace(kind=inspect.Parameter.KEYWORD_ONLY) for p in kept]
        hints.pop(into, None)
        wrapper.__signature__ = sig.replace(parameters=kept + params)  # type: ignore[attr-defined]
        wrapper.__annotations__ = hints
        return wrapper

    return decorate
