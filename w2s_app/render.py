"""HTML for the annotator page, built on the server from untrusted text.

Each text is shown as what it is (`w2s_app/content.py` says which): code verbatim in a monospace block with
its indentation and Pygments' highlighting; plain prose and worked solutions verbatim (no `*` becomes
emphasis, no `>` a quote); only prose written as Markdown goes through markdown-it. Every character of the
data reaches the page escaped with `html.escape`; markdown-it runs with raw HTML switched off (every
`<tag>` comes out as text), refuses `javascript:`/`data:` links and renders no images (no requests to
hosts the data names). Long lines wrap (style.css). Diff marks (`w2s_app/diff.py`) wrap ranges of the text in
`<del>`/`<ins>` without changing a character of it.
"""

from __future__ import annotations

import bisect
import html
import itertools
import re
from dataclasses import dataclass
from functools import lru_cache

from markdown_it import MarkdownIt
from pygments.formatters import HtmlFormatter
from pygments.lexers import get_lexer_by_name
from pygments.token import STANDARD_TYPES
from pygments.util import ClassNotFound

from w2s.store import Node
from w2s_app import content, diff

_TURN = re.compile(r"(?:^|\n\n)(Human|Assistant|User|System):[ \t]?")


# ------------------------------------------------------------------------------------------- code


@lru_cache(maxsize=64)
def _lexer(language: str | None):
    if not language:
        return None
    try:  # the text exactly as stored: no stripped or added newlines, no tab expansion
        return get_lexer_by_name(language, stripnl=False, ensurenl=False, stripall=False, tabsize=0)
    except ClassNotFound:
        return None


_STYLE = HtmlFormatter(style="default")
_STYLED = {line.split()[1][1:] for line in _STYLE.get_token_style_defs(".x")} - {"w", "o"}
"""Pygments' classes that the style colours, but for whitespace and operators (grey on grey): the others
are left out of the HTML. Fewer, merged spans: a browser lays out a long pair several times slower with a
span per token than as plain text (docs/results/app_load.md)."""


@lru_cache(maxsize=512)
def _css_class(ttype) -> str:
    while ttype is not None and ttype not in STANDARD_TYPES:
        ttype = ttype.parent
    css = STANDARD_TYPES.get(ttype, "") if ttype is not None else ""
    return css if css in _STYLED else ""


@lru_cache(maxsize=32)
def code_pieces(text: str, language: str | None) -> tuple[tuple[int, int, str], ...]:
    """(start, end, Pygments css class) covering `text`, neighbours of one class merged; one unstyled piece
    when the language is unknown. Cached: a pair's texts never change (its id hashes them)."""
    lexer = _lexer(language)
    whole = ((0, len(text), ""),)
    if lexer is None or not text:
        return whole
    pieces: list[list] = []
    pos = 0
    for index, ttype, value in lexer.get_tokens_unprocessed(text):
        if index != pos:  # a lexer that does not hand back the text as given: show it unstyled
            return whole
        css = _css_class(ttype)
        if pieces and pieces[-1][2] == css:
            pieces[-1][1] = index + len(value)
        else:
            pieces.append([index, index + len(value), css])
        pos += len(value)
    return tuple(map(tuple, pieces)) if pos == len(text) else whole


LEX_ONCE_CHARS = 20_000
"""Above this size, B's code is not lexed again where it repeats A's lines (lexing a long pair is most of its
render time: docs/results/app_load.md): those lines take A's colours, and only B's changed lines are lexed."""


def code_pieces_beside(
    text: str, language: str | None, other: str, blocks
) -> tuple[tuple[int, int, str], ...]:
    """`text`'s pieces from `other`'s (lexed whole) where the line diff `blocks` says the lines are equal,
    and from lexing its changed lines alone. Every character stays where it is; only a colour can differ
    from a lexing of the whole text (say a changed line that opens a string)."""
    if len(text) <= LEX_ONCE_CHARS or not blocks:
        return code_pieces(text, language)
    mine = code_pieces(other, language)
    starts = [p[0] for p in mine]
    out: list[tuple[int, int, str]] = []
    for op, o1, o2, t1, t2 in blocks:
        if t2 <= t1:
            continue
        if op == "equal":
            i = max(bisect.bisect_right(starts, o1) - 1, 0)
            while i < len(mine) and mine[i][0] < o2:
                s, e, css = mine[i]
                out.append((max(s, o1) - o1 + t1, min(e, o2) - o1 + t1, css))
                i += 1
        else:
            out.extend((s + t1, e + t1, css) for s, e, css in code_pieces(text[t1:t2], language))
    merged: list[tuple[int, int, str]] = []
    for piece in out:  # neighbours of one class, across block edges, in one span
        if merged and merged[-1][2] == piece[2] and merged[-1][1] == piece[0]:
            merged[-1] = (merged[-1][0], piece[1], piece[2])
        else:
            merged.append(piece)
    covered = sum(e - s for s, e, _ in merged)
    return tuple(merged) if covered == len(text) else code_pieces(text, language)


def code_css() -> str:
    """Pygments' colours for `.w2s-code` blocks (added to style.css when the app launches)."""
    return "\n".join(_STYLE.get_token_style_defs(".w2s-code"))


# ------------------------------------------------------------------------------------------- spans


class _Ranges:
    """Sorted, non-overlapping ranges with a bisect lookup (a 2,000-line diff has thousands)."""

    def __init__(self, ranges) -> None:
        self.ranges = sorted(r for r in ranges if r[1] > r[0])
        self.starts = [s for s, _ in self.ranges]

    def __contains__(self, pos: int) -> bool:
        i = bisect.bisect_right(self.starts, pos) - 1
        return i >= 0 and pos < self.ranges[i][1]


def spans_html(
    text: str,
    pieces: list[tuple[int, int, str]] | None = None,
    *,
    lines=(),
    tokens=(),
    tag: str = "del",
) -> str:
    """`text` escaped, each piece in a span of its class, changed tokens in `<tag class="w2s-diff">`, changed
    lines in `<span class="w2s-diff-line">`. The inner text is `text`, character for character."""
    pieces = pieces or [(0, len(text), "")]
    lines, tokens = _Ranges(lines), _Ranges(tokens)
    cuts = sorted({p for r in lines.ranges + tokens.ranges for p in r})
    out = []
    for start, end, css in pieces:
        lo, hi = bisect.bisect_right(cuts, start), bisect.bisect_left(cuts, end)
        bounds = [start, *cuts[lo:hi], end]
        inner = []
        for s, e in itertools.pairwise(bounds):
            seg = html.escape(text[s:e], quote=False)
            if s in tokens:
                seg = f'<{tag} class="w2s-diff">{seg}</{tag}>'
            elif s in lines:
                seg = f'<span class="w2s-diff-line">{seg}</span>'
            inner.append(seg)
        body = "".join(inner)
        out.append(f'<span class="{css}">{body}</span>' if css else body)
    return "".join(out)


# ------------------------------------------------------------------------------------------- blocks


_md = MarkdownIt("commonmark", {"html": False, "breaks": True, "linkify": False}).disable("image")
_md.options["highlight"] = lambda code, lang, attrs: spans_html(code, code_pieces(code, lang or None))


def markdown(text: str) -> str:
    """Untrusted Markdown -> safe HTML (raw HTML is escaped, not interpreted; fenced code highlighted)."""
    return _md.render(text or "")


def text_block(
    text: str,
    kind: str,
    language: str | None = None,
    marks: diff.Marks | None = None,
    tag: str = "del",
    pieces=None,
) -> str:
    """One text as its kind is shown. `data-kind` names the element whose inner text is the stored text
    (for every kind but Markdown)."""
    text = text or ""
    marks = marks or diff.Marks()
    if kind == "markdown":
        return f'<div class="w2s-md" data-kind="markdown">{markdown(text)}</div>'
    if kind == "code":
        lang = html.escape(language or "text")
        pieces = pieces or code_pieces(text, language)
        body = spans_html(text, pieces, lines=marks.lines, tokens=marks.tokens, tag=tag)
        return f'<pre class="w2s-code" data-kind="code" data-lang="{lang}"><code>{body}</code></pre>'
    pieces = None
    if kind == "math":  # calculator annotations <<a*b=c>> set apart, their characters unchanged
        pieces, pos = [], 0
        for s, e in content.calculator_spans(text):
            pieces += [(pos, s, ""), (s, e, "w2s-calc")]
            pos = e
        pieces = [p for p in pieces + [(pos, len(text), "")] if p[1] > p[0]] or None
    kind = kind if kind == "math" else "text"
    body = spans_html(text, pieces, lines=marks.lines, tokens=marks.tokens, tag=tag)
    return f'<div class="w2s-verbatim w2s-{kind}" data-kind="{kind}">{body}</div>'


def turns(prompt: str, first: str = "Human") -> list[tuple[str, str]]:
    """Split an HH-style text ('\\n\\nHuman: ...\\n\\nAssistant: ...') into (speaker, text) turns; text
    before the first marker is `first`'s."""
    parts = _TURN.split(prompt or "")
    if len(parts) == 1:
        return [(first, (prompt or "").strip())]
    out = []
    if parts[0].strip():
        out.append((first, parts[0].strip()))
    for speaker, body in zip(parts[1::2], parts[2::2]):
        if body.strip():
            out.append((speaker, body.strip()))
    return out


def prose_kind(text: str) -> str:
    """Prose is shown as Markdown only when it was written as Markdown (content.detect), else verbatim."""
    return "markdown" if content.detect(text) == "markdown" else "text"


def has_turns(text: str) -> bool:
    return len(turns(text)) > 1


def conversation_html(
    prompt: str, kind: str = "text", language: str | None = None, first: str = "Human"
) -> str:
    rows = []
    for speaker, body in turns(prompt, first):
        css = "human" if speaker in ("Human", "User") else "assistant"
        shown = prose_kind(body) if kind == "text" else kind
        rows.append(
            f'<div class="w2s-turn w2s-{css}"><div class="w2s-speaker">{html.escape(speaker)}</div>'
            f"{text_block(body, shown, language)}</div>"
        )
    return '<div class="w2s-conversation">' + "".join(rows) + "</div>"


def response_html(
    side: str,
    text: str,
    selected: bool = False,
    *,
    kind: str = "markdown",
    language: str | None = None,
    marks: diff.Marks | None = None,
    pieces=None,
) -> str:
    sel = " w2s-selected" if selected else ""
    if kind in ("text", "markdown") and has_turns(text):  # an HH response that goes on with the dialogue
        body = conversation_html(text, "text", first="Assistant")
    else:
        body = text_block(text, kind, language, marks, tag="del" if side == "A" else "ins", pieces=pieces)
    what = f"{kind}, {language}" if kind == "code" and language else kind
    return (
        f'<div class="w2s-response{sel}" id="w2s-response-{side.lower()}">'
        f'<div class="w2s-side">Response {html.escape(side)} <span class="w2s-kind">{html.escape(what)}</span>'
        f"</div>{body}</div>"
    )


@dataclass
class PairHtml:
    conversation: str
    response_a: str
    response_b: str
    diff: str
    """The difference tools: a toggle for the marks (key V) when A and B are alike enough to mark, and for
    code the unified diff (hidden until the key G); '' when neither applies."""


def pair_html(dataset: str | None, meta: dict | None, prompt: str, a: str, b: str) -> PairHtml:
    """The prompt and both responses, each shown as its kind, with A/B differences marked."""
    kinds = content.kinds_of(dataset, meta)
    kind_a, lang_a = content.response_kind(kinds, a)
    kind_b, lang_b = content.response_kind(kinds, b)
    marks_a = marks_b = pieces_b = None
    tools = []
    diffable = {kind_a, kind_b} <= {"text", "code", "math"} and not (has_turns(a) or has_turns(b))
    if diffable:
        d = diff.pair_diff(a, b)
        if d.useful:
            marks_a, marks_b = d.a, d.b
            tools.append(
                '<button type="button" class="w2s-tool" data-w2s-toggle="w2s-diff-hidden">'
                "differences marked: hide / show [V]</button>"
            )
        if kind_a == kind_b == "code" and lang_a == lang_b:
            pieces_b = code_pieces_beside(b, lang_b, a, d.blocks)
        if "code" in (kind_a, kind_b) and (d.a.lines or d.b.lines):
            u = diff.unified(a, b)
            tools.append(
                '<button type="button" class="w2s-tool" data-w2s-toggle="w2s-unified-shown">'
                "unified diff [G]</button>"
            )
            tools.append(
                '<div class="w2s-unified" id="w2s-unified"><pre class="w2s-code" data-lang="diff"><code>'
                f"{spans_html(u, code_pieces(u, 'diff'))}</code></pre></div>"
            )
    tools_html = f'<div class="w2s-difftools">{"".join(tools)}</div>' if tools else ""
    return PairHtml(
        conversation_html(prompt, kinds.prompt, kinds.language if kinds.prompt == "code" else None),
        response_html("A", a, kind=kind_a, language=lang_a, marks=marks_a),
        response_html("B", b, kind=kind_b, language=lang_b, marks=marks_b, pieces=pieces_b),
        tools_html,
    )


# ------------------------------------------------------------------------------------------- tree


def _node_actions(node_id: int, reason: str | None, reasons: tuple[str, ...]) -> str:
    if reason:
        return (
            f'<div class="w2s-node-actions"><button type="button" class="w2s-node-btn" data-action="restore" '
            f'data-node-id="{node_id}">Restore [R]</button></div>'
        )
    keys = {"irrelevant": " [P]", "wrong reasoning": " [W]"}
    buttons = "".join(
        f'<button type="button" class="w2s-node-btn" data-action="prune" data-reason="{html.escape(r)}" '
        f'data-node-id="{node_id}">{html.escape(r)}{keys.get(r, "")}</button>'
        for r in reasons
    )
    return f'<div class="w2s-node-actions"><span class="w2s-meta">prune as</span> {buttons}</div>'


def evidence_order(nodes: list[Node]) -> list[Node]:
    """Evidence first, before the reveal: the most relevant node first. Info and role are read off the
    verdict (its confidence), and so would be an order by info."""
    return sorted(nodes, key=lambda n: -n.relevance)


def tree_html(
    nodes: list[Node], pruned: dict[int, str], *, reveal: bool = True, reasons: tuple[str, ...] = ()
) -> str:
    """The FF-tree, most informative node first: principle, relevance, expandable thought, prune/restore
    buttons (`reasons`) and, once `reveal`, the verdict bar, info and role. Without `reveal` the page holds
    no verdict at all (not merely a hidden one), nor its confidence: evidence first, most relevant first."""
    if not nodes:
        return (
            '<div class="w2s-notree" id="w2s-notree">No principle tree for this pair yet: '
            "judge the responses directly.</div>"
        )
    if not reveal:
        nodes = evidence_order(nodes)
    items = []
    for rank, node in enumerate(nodes, 1):
        reason = pruned.get(node.id)
        pa = max(0.0, min(1.0, node.p_a))
        status = f'<span class="w2s-pruned-tag">pruned: {html.escape(reason)}</span>' if reason else ""
        bar = (
            f'<div class="w2s-bar" title="P(A)={pa:.2f}  P(B)={1 - pa:.2f}">'
            f'<div class="w2s-bar-a" style="width:{pa * 100:.0f}%">A {pa:.0%}</div>'
            f'<div class="w2s-bar-b" style="width:{(1 - pa) * 100:.0f}%">B {1 - pa:.0%}</div></div>'
            if reveal
            else ""
        )
        actions = _node_actions(int(node.id), reason, reasons) if reasons else ""
        read_off = f" · info {node.info:.2f} · {html.escape(node.role)}" if reveal else ""
        items.append(
            f'<div class="w2s-node{" w2s-node-pruned" if reason else ""}" data-node-id="{int(node.id)}">'
            f'<div class="w2s-node-head"><span class="w2s-rank">#{rank}</span> '
            f"<b>{html.escape(node.principle_name or node.principle_id)}</b> "
            f'<span class="w2s-meta">relevance {node.relevance:.2f}{read_off}</span> {status}</div>'
            f"{bar}"
            f'<details class="w2s-thought"><summary>thought</summary>'
            f"{text_block(node.thought, prose_kind(node.thought))}</details>{actions}</div>"
        )
    hidden = (
        ""
        if reveal
        else (
            '<div class="w2s-evidence-note" id="w2s-evidence-note">Evidence first: the strong model\'s verdicts '
            "are hidden until you choose your own label and press Enter.</div>"
        )
    )
    return f'<div class="w2s-tree{"" if reveal else " w2s-evidence"}">{hidden}' + "".join(items) + "</div>"


def progress_html(done: int, remaining: int) -> str:
    total = done + remaining
    pct = 100.0 * done / total if total else 100.0
    return (
        f'<div class="w2s-progress" id="w2s-progress" data-done="{done}" data-remaining="{remaining}">'
        f'<div class="w2s-progress-fill" style="width:{pct:.1f}%"></div>'
        f'<span class="w2s-progress-text">{done} done · {remaining} remaining</span></div>'
    )


def download_link(href: str, name: str) -> str:
    """The admin page's link to an export (served by the app's guard, to admins only)."""
    return f'<a class="w2s-download" href="{html.escape(href)}" download="{html.escape(name)}">{html.escape(name)}</a>'
