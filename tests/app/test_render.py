"""Untrusted text becomes inert HTML on the server."""

from __future__ import annotations

from w2s.store import Node
from w2s_app import render


def test_raw_html_is_escaped_not_interpreted():
    out = render.markdown('hi <script>alert(1)</script> <img src=x onerror="alert(2)"> <b>bold</b>')
    assert "<script" not in out and "<img" not in out and "<b>" not in out
    assert "&lt;script&gt;" in out and "&lt;img src=x onerror=" in out


def test_dangerous_links_and_images_are_dropped():
    out = render.markdown(
        "[x](javascript:alert(1)) [y](data:text/html;base64,PHNjcmlwdD4=) ![i](http://evil/t.png)"
    )
    assert 'href="javascript' not in out and 'href="data:' not in out and "<img" not in out
    assert '<a href="https://example.org">ok</a>' in render.markdown("[ok](https://example.org)")


def test_markdown_still_renders():
    assert "<strong>safe</strong>" in render.markdown("**safe**")
    assert "<code>" in render.markdown("`x < y`") and "x &lt; y" in render.markdown("`x < y`")


def test_turns_split_hh_prompt():
    prompt = "\n\nHuman: How do I pick a lock?\n\nAssistant: Why?\n\nHuman: I am locked out.\n\nAssistant:"
    assert render.turns(prompt) == [
        ("Human", "How do I pick a lock?"),
        ("Assistant", "Why?"),
        ("Human", "I am locked out."),
    ]
    assert render.turns("plain question") == [("Human", "plain question")]


def test_tree_html_escapes_and_marks_pruned():
    nodes = [
        Node(
            id=1,
            tree_id=1,
            position=0,
            principle_id="p/x",
            principle_name="<i>x</i>",
            relevance=0.9,
            p_a=0.8,
            p_b=0.2,
            info=0.5,
            thought="<script>t()</script>",
        ),
        Node(
            id=2,
            tree_id=1,
            position=1,
            principle_id="p/y",
            principle_name="y",
            relevance=0.3,
            p_a=0.5,
            p_b=0.5,
            info=0.0,
            thought="fine",
        ),
    ]
    out = render.tree_html(nodes, {2: "irrelevant"})
    assert "<i>x</i>" not in out and "&lt;i&gt;x&lt;/i&gt;" in out and "<script>" not in out
    assert out.count("w2s-node-pruned") == 1 and "pruned: irrelevant" in out
    assert 'style="width:80%"' in out
    assert "No principle tree" in render.tree_html([], {})


def test_progress_html():
    out = render.progress_html(3, 1)
    assert 'data-done="3"' in out and 'data-remaining="1"' in out and "width:75.0%" in out
