"""Where responses A and B differ, with Python's difflib: changed lines, and within them the changed
tokens (words, runs of spaces, single punctuation marks), as character ranges of each text. The page marks
those ranges without changing a character of the text (w2s_app/render.py).
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass, field

_TOKEN = re.compile(r"\w+|\s+|[^\w\s]")
MAX_TOKEN_DIFF_CHARS = 20_000
"""A changed block longer than this is marked by lines only: a token diff of a 200k-character line would
take seconds, and marking its every word helps no one."""
MIN_SIMILARITY = 0.5
"""Below this share of unchanged characters the responses are simply different texts: nothing is marked."""


@dataclass
class Marks:
    """Character ranges of one side: `lines` changed lines, `tokens` changed tokens (inside those lines)."""

    lines: list[tuple[int, int]] = field(default_factory=list)
    tokens: list[tuple[int, int]] = field(default_factory=list)


@dataclass
class PairDiff:
    a: Marks
    b: Marks
    similarity: float
    """Share of characters (of both sides) outside the changed tokens and lines."""
    blocks: list[tuple[str, int, int, int, int]] = field(default_factory=list)
    """The line diff as (op, start A, end A, start B, end B) in characters, covering both texts."""

    @property
    def useful(self) -> bool:
        return self.similarity >= MIN_SIMILARITY and bool(self.a.lines or self.b.lines)


def _offsets(lines: list[str]) -> list[int]:
    out, pos = [], 0
    for line in lines:
        out.append(pos)
        pos += len(line)
    out.append(pos)
    return out


def _tokens(text: str) -> list[str]:
    return _TOKEN.findall(text)


def _token_marks(a: str, b: str, base_a: int, base_b: int, ma: Marks, mb: Marks) -> None:
    ta, tb = _tokens(a), _tokens(b)
    oa, ob = _offsets(ta), _offsets(tb)
    sm = difflib.SequenceMatcher(None, ta, tb, autojunk=False)
    for op, i1, i2, j1, j2 in sm.get_opcodes():
        if op == "equal":
            continue
        if i2 > i1:
            ma.tokens.append((base_a + oa[i1], base_a + oa[i2]))
        if j2 > j1:
            mb.tokens.append((base_b + ob[j1], base_b + ob[j2]))


def _strip_newline(text: str, start: int, end: int) -> tuple[int, int]:
    """A line range without its final newline: the mark ends where the line's text does."""
    while end > start and text[end - 1] in "\r\n":
        end -= 1
    return start, end


def pair_diff(a: str, b: str) -> PairDiff:
    """Line diff of A against B; token diff inside each replaced block of lines."""
    a, b = a or "", b or ""
    la, lb = a.splitlines(keepends=True), b.splitlines(keepends=True)
    oa, ob = _offsets(la), _offsets(lb)
    ma, mb = Marks(), Marks()
    blocks = []
    sm = difflib.SequenceMatcher(None, la, lb, autojunk=False)
    for op, i1, i2, j1, j2 in sm.get_opcodes():
        blocks.append((op, oa[i1], oa[i2], ob[j1], ob[j2]))
        if op == "equal":
            continue
        for i in range(i1, i2):
            ma.lines.append(_strip_newline(a, oa[i], oa[i + 1]))
        for j in range(j1, j2):
            mb.lines.append(_strip_newline(b, ob[j], ob[j + 1]))
        block_a, block_b = a[oa[i1] : oa[i2]], b[ob[j1] : ob[j2]]
        if op == "replace" and len(block_a) + len(block_b) <= MAX_TOKEN_DIFF_CHARS:
            _token_marks(block_a, block_b, oa[i1], ob[j1], ma, mb)
        else:  # inserted or deleted lines, or a block too long to diff by token: the whole lines are the change
            ma.tokens.extend(r for r in ma.lines[len(ma.lines) - (i2 - i1) :] if r[1] > r[0])
            mb.tokens.extend(r for r in mb.lines[len(mb.lines) - (j2 - j1) :] if r[1] > r[0])
    changed = sum(e - s for s, e in ma.tokens) + sum(e - s for s, e in mb.tokens)
    total = len(a) + len(b)
    similarity = 1.0 - changed / total if total else 1.0
    ma.lines = [r for r in ma.lines if r[1] > r[0]]
    mb.lines = [r for r in mb.lines if r[1] > r[0]]
    return PairDiff(ma, mb, similarity, blocks)


def unified(a: str, b: str, context: int = 3) -> str:
    """A unified diff of A against B (`--- A` / `+++ B`), as `diff -u` would print it."""
    lines = difflib.unified_diff(
        (a or "").splitlines(keepends=True), (b or "").splitlines(keepends=True), "A", "B", n=context
    )
    return "".join(line if line.endswith("\n") else line + "\n" for line in lines)
