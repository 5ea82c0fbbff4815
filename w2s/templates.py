"""Prompt templates: Jinja files under `prompts/templates/`, rendered to one user message.

Each template has a short content hash (its source plus the partials it includes) that is stored with
every tree node and annotation, so a result always names the exact prompt that produced it.
"""

from __future__ import annotations

import hashlib
import re
from functools import cache
from importlib.resources import files

import jinja2

_INCLUDE = re.compile(r"""{%-?\s*include\s+["']([^"']+)["']""")


class _PromptsLoader(jinja2.BaseLoader):
    def get_source(self, environment, template):
        return template_source(template), template, lambda: True


_env = jinja2.Environment(
    loader=_PromptsLoader(), undefined=jinja2.StrictUndefined, keep_trailing_newline=False, autoescape=False
)


@cache
def template_source(name: str) -> str:
    path = files("prompts").joinpath("templates", name)
    if not path.is_file():
        known = sorted(
            p.name for p in files("prompts").joinpath("templates").iterdir() if p.name.endswith(".jinja")
        )
        raise FileNotFoundError(
            f"no prompt template {name!r} in prompts/templates; known: {', '.join(known)}"
        )
    return path.read_text(encoding="utf-8")


def _name(name: str) -> str:
    return name if name.endswith(".jinja") else f"{name}.jinja"


@cache
def template_hash(name: str) -> str:
    """12 hex digits of sha256 over the template and (recursively) the partials it includes."""
    name = _name(name)
    h = hashlib.sha256()
    seen: list[str] = []
    todo = [name]
    while todo:
        current = todo.pop()
        if current in seen:
            continue
        seen.append(current)
        source = template_source(current)
        h.update(current.encode() + b"\0" + source.encode() + b"\0")
        todo.extend(_INCLUDE.findall(source))
    return h.hexdigest()[:12]


def render(name: str, **context) -> str:
    """Render `prompts/templates/<name>.jinja`; a missing variable is an error, not an empty string."""
    text = _env.get_template(_name(name)).render(**context)
    return re.sub(r"\n{3,}", "\n\n", text).strip()
