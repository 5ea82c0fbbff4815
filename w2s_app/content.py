"""What kind of text a pair holds, so that the page shows it as it is meant: prose, Markdown, code (with its
language) or a worked solution (math). Pure functions of a pair's fields and metadata; no HTML here.

The order of authority: what the pair's metadata declares (`content_kind`, `prompt_kind`, `language`, also
inside a nested `meta` object as HumanEvalPack carries them), then the dataset's name (the same keywords
that pick its principle library: `code`/`humaneval` -> code, `math`/`gsm` -> math), then the text itself.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from w2s.trees.principles import library_match

KINDS = ("text", "markdown", "code", "math")
"""text: prose shown verbatim; markdown: prose written as Markdown (rendered safely); code: verbatim,
monospace, highlighted; math: a worked solution shown verbatim (calculator annotations marked)."""
ALIASES = {"prose": "text", "plain": "text", "md": "markdown", "solution": "math", "program": "code"}
LIBRARY_KINDS = {"correctness": "code", "math": "math"}
"""A dataset whose name picks one of these principle libraries holds responses of this kind."""

_CALC = re.compile(r"<<[^<>\n]*=[^<>\n]*>>")  # GSM8K's calculator annotations, <<3/4*100=75.0>>
_FENCE = re.compile(r"^(```|~~~)", re.MULTILINE)
_BOLD = re.compile(r"\*\*[^\s*][^*\n]*[^\s*]\*\*")
_CODE_START = re.compile(
    r"^\s*(def |class |import |from [\w.]+ import |async def |function |const |let |var |#include|package |"
    r"public |private |fn |func |@\w+|if __name__)"
)
_CODE_LINE = re.compile(r"(^[ \t]+\S)|([:{};]\s*$)|(^\s*[}\])]\s*;?\s*$)|(^\s*(return\b|#|//))")
_PY_HINTS = re.compile(r"^\s*(def |class |import |from [\w.]+ import |elif |async def )|:\s*$", re.MULTILINE)
_JS_HINTS = re.compile(r"\bfunction\b|\bconst |\blet |=>|console\.|;\s*$", re.MULTILINE)


@dataclass(frozen=True)
class Kinds:
    """How one pair's prompt and responses are shown."""

    prompt: str = "text"
    response: str | None = None
    """None: each response's kind is detected from its own text."""
    language: str | None = None
    """Code language (a Pygments lexer name) when known."""


def _declared(meta: dict | None, key: str):
    """A key of the pair's metadata, or of the nested `meta` object an importer keeps from the source row."""
    meta = meta or {}
    if meta.get(key):
        return meta[key]
    inner = meta.get("meta")
    return inner.get(key) if isinstance(inner, dict) else None


def normalise(kind) -> str | None:
    if not isinstance(kind, str):
        return None
    kind = ALIASES.get(kind.strip().lower(), kind.strip().lower())
    return kind if kind in KINDS else None


def kinds_of(dataset: str | None, meta: dict | None) -> Kinds:
    """The declared (or dataset-named) kinds of a pair's texts."""
    response = normalise(_declared(meta, "content_kind")) or normalise(_declared(meta, "kind"))
    language = _declared(meta, "language") or _declared(meta, "lang")
    language = language.strip().lower() if isinstance(language, str) else None
    if response is None:
        library, matched = library_match(dataset)
        response = LIBRARY_KINDS.get(library) if matched else None
    if response is None and language:
        response = "code"
    prompt = normalise(_declared(meta, "prompt_kind")) or "text"
    return Kinds(prompt=prompt, response=response, language=language)


def looks_like_code(text: str) -> bool:
    lines = [ln for ln in (text or "").splitlines() if ln.strip()]
    if len(lines) < 2:
        return False
    if _CODE_START.match(lines[0]):
        return True
    code_like = sum(bool(_CODE_LINE.search(ln)) for ln in lines)
    return code_like >= 0.6 * len(lines)


def detect(text: str) -> str:
    """The kind of an undeclared text: math (calculator annotations), code, markdown (a fenced block or
    **bold**: written for a Markdown renderer), else plain text."""
    text = text or ""
    if _CALC.search(text):
        return "math"
    if _FENCE.search(text) or _BOLD.search(text):
        return "markdown"
    if looks_like_code(text):
        return "code"
    return "text"


def guess_language(text: str) -> str | None:
    """python or javascript from cheap cues; None when neither is clear (shown monospace, unhighlighted)."""
    head = (text or "")[:4000]
    py, js = len(_PY_HINTS.findall(head)), len(_JS_HINTS.findall(head))
    if py == js == 0:
        return None
    return "python" if py >= js else "javascript"


def response_kind(kinds: Kinds, text: str) -> tuple[str, str | None]:
    """(kind, language) of one response."""
    kind = kinds.response or detect(text)
    language = kinds.language or (guess_language(text) if kind == "code" else None)
    return kind, language


def calculator_spans(text: str) -> list[tuple[int, int]]:
    return [m.span() for m in _CALC.finditer(text or "")]
