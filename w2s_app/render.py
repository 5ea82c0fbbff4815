"""HTML for the annotator page, built on the server from untrusted text.

Model and dataset text goes through markdown-it with raw HTML switched off: every `<tag>` in the data
comes out as escaped text, links with `javascript:`/`data:` targets are refused, and images are not
rendered (no requests to hosts the data names). Everything else here is escaped with `html.escape`.
"""

from __future__ import annotations

import html
import re

from markdown_it import MarkdownIt

from w2s.store import Node

_md = MarkdownIt("commonmark", {"html": False, "breaks": True, "linkify": False}).disable("image")
_TURN = re.compile(r"(?:^|\n\n)(Human|Assistant|User|System):[ \t]?")


def markdown(text: str) -> str:
    """Untrusted Markdown -> safe HTML (raw HTML is escaped, not interpreted)."""
    return _md.render(text or "")


def turns(prompt: str) -> list[tuple[str, str]]:
    """Split an HH-style prompt ('\\n\\nHuman: ...\\n\\nAssistant: ...') into (speaker, text) turns."""
    parts = _TURN.split(prompt or "")
    if len(parts) == 1:
        return [("Human", prompt.strip())]
    out = []
    if parts[0].strip():
        out.append(("Human", parts[0].strip()))
    for speaker, body in zip(parts[1::2], parts[2::2]):
        if body.strip():
            out.append((speaker, body.strip()))
    return out


def conversation_html(prompt: str) -> str:
    rows = []
    for speaker, body in turns(prompt):
        css = "human" if speaker in ("Human", "User") else "assistant"
        rows.append(
            f'<div class="w2s-turn w2s-{css}"><div class="w2s-speaker">{html.escape(speaker)}</div>'
            f'<div class="w2s-md">{markdown(body)}</div></div>'
        )
    return '<div class="w2s-conversation">' + "".join(rows) + "</div>"


def response_html(side: str, text: str, selected: bool = False) -> str:
    sel = " w2s-selected" if selected else ""
    return (
        f'<div class="w2s-response{sel}" id="w2s-response-{side.lower()}">'
        f'<div class="w2s-side">Response {html.escape(side)}</div>'
        f'<div class="w2s-md">{markdown(text)}</div></div>'
    )


def tree_html(nodes: list[Node], pruned: dict[int, str]) -> str:
    """The FF-tree, most informative node first: principle, relevance, verdict bar, expandable thought."""
    if not nodes:
        return (
            '<div class="w2s-notree" id="w2s-notree">No principle tree for this pair yet: '
            "judge the responses directly.</div>"
        )
    items = []
    for rank, node in enumerate(nodes, 1):
        reason = pruned.get(node.id)
        pa = max(0.0, min(1.0, node.p_a))
        status = f'<span class="w2s-pruned-tag">pruned: {html.escape(reason)}</span>' if reason else ""
        items.append(
            f'<div class="w2s-node{" w2s-node-pruned" if reason else ""}" data-node-id="{int(node.id)}">'
            f'<div class="w2s-node-head"><span class="w2s-rank">#{rank}</span> '
            f"<b>{html.escape(node.principle_name or node.principle_id)}</b> "
            f'<span class="w2s-meta">relevance {node.relevance:.2f} · info {node.info:.2f} · '
            f"{html.escape(node.role)}</span> {status}</div>"
            f'<div class="w2s-bar" title="P(A)={pa:.2f}  P(B)={1 - pa:.2f}">'
            f'<div class="w2s-bar-a" style="width:{pa * 100:.0f}%">A {pa:.0%}</div>'
            f'<div class="w2s-bar-b" style="width:{(1 - pa) * 100:.0f}%">B {1 - pa:.0%}</div></div>'
            f'<details class="w2s-thought"><summary>thought</summary>'
            f'<div class="w2s-md">{markdown(node.thought)}</div></details></div>'
        )
    return '<div class="w2s-tree">' + "".join(items) + "</div>"


def progress_html(done: int, remaining: int) -> str:
    total = done + remaining
    pct = 100.0 * done / total if total else 100.0
    return (
        f'<div class="w2s-progress" id="w2s-progress" data-done="{done}" data-remaining="{remaining}">'
        f'<div class="w2s-progress-fill" style="width:{pct:.1f}%"></div>'
        f'<span class="w2s-progress-text">{done} done · {remaining} remaining</span></div>'
    )


def node_choice(rank: int, node: Node) -> tuple[str, int]:
    """(label, value) of a node in the prune selector."""
    return (f"#{rank} {node.principle_name or node.principle_id}", int(node.id))


def download_link(href: str, name: str) -> str:
    """The admin page's link to an export (served by the app's guard, to admins only)."""
    return f'<a class="w2s-download" href="{html.escape(href)}" download="{html.escape(name)}">{html.escape(name)}</a>'
