"""Untrusted text becomes inert HTML on the server."""

from __future__ import annotations

import html as _html
import re

from w2s.store import Node
from w2s_app import content, diff, render


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


# ------------------------------------------------------------------------------------------- content kinds

CODE_A = "def f(x):\n    for i in range(x):\n        if i:\n            return abs(i - x)\n    return 0\n"
CODE_B = "def f(x):\n    for i in range(x):\n        if i:\n            return i - x\n    return 0\n"
MATH = (
    "Prince Arthur slew 3/4*100=<<3/4*100=75.0>>75 dragons.\nA *star* > 2 and 2*75=<<2*75=150>>150.\nA: 150"
)


def visible(fragment: str) -> str:
    """What the markup shows: tags dropped, entities decoded (the browser tests check the real thing)."""
    return _html.unescape(re.sub(r"<[^>]+>", "", fragment))


def test_kinds_from_metadata_dataset_name_and_text():
    assert content.kinds_of("x", {"meta": {"language": "python"}}) == content.Kinds("text", "code", "python")
    assert content.kinds_of("code-humanevalpack", {}).response == "code"
    assert content.kinds_of("math-gsm8k", {}).response == "math"
    assert content.kinds_of("hh", {"content_kind": "prose", "prompt_kind": "markdown"}) == content.Kinds(
        "markdown", "text", None
    )
    assert content.kinds_of("hh-harmless", {}).response is None
    assert content.detect(MATH) == "math" and content.detect(CODE_A) == "code"
    assert content.detect("Use **bold** here") == "markdown" and content.detect("a * b > c") == "text"
    assert content.guess_language(CODE_A) == "python"
    assert content.guess_language("function f(x) {\n  return x;\n}") == "javascript"


def test_code_and_math_blocks_show_the_text_character_for_character():
    code = render.text_block(CODE_A, "code", "python")
    assert code.startswith('<pre class="w2s-code" data-kind="code" data-lang="python">')
    assert visible(code) == CODE_A and '<span class="k">' in code  # highlighted, indentation intact
    math = render.text_block(MATH, "math")
    assert visible(math) == MATH and "<em>" not in math and "<blockquote" not in math
    assert math.count('class="w2s-calc"') == 2
    tricky = "x <script>alert(1)</script> *a* > b\n\n  indented\t`tick`"
    assert visible(render.text_block(tricky, "text")) == tricky and "<script" not in render.text_block(
        tricky, "text"
    )
    assert visible(render.text_block(tricky, "code", "javascript")) == tricky


def test_diff_marks_the_one_changed_token_and_keeps_the_text():
    d = diff.pair_diff(CODE_A, CODE_B)
    assert d.useful and [CODE_A[s:e] for s, e in d.a.tokens] == ["abs(", ")"] and d.b.tokens == []
    assert [CODE_B[s:e] for s, e in d.b.lines] == ["            return i - x"]
    shown = render.pair_html("code-humanevalpack", {"meta": {"language": "python"}}, "task", CODE_A, CODE_B)
    assert (
        '<del class="w2s-diff">abs</del>' in shown.response_a and 'class="w2s-diff-line"' in shown.response_b
    )
    assert visible(shown.response_a).endswith(CODE_A) and visible(shown.response_b).endswith(CODE_B)
    assert "-            return abs(i - x)" in visible(shown.diff) and "+            return i - x" in visible(
        shown.diff
    )
    math = render.pair_html("math-gsm8k", {}, "q", "2*3=<<2*3=6>>6\nA: 6", "2*3=<<2*3=6>>6\nA: 7")
    assert 'data-w2s-toggle="w2s-diff-hidden"' in math.diff and "w2s-unified" not in math.diff
    prose = diff.pair_diff("The cat sat on the mat.", "The cat sat on a mat.")
    assert [("The cat sat on the mat."[s:e]) for s, e in prose.a.tokens] == ["the"]
    assert not diff.pair_diff("Completely different words here", "Nothing alike at all, truly").useful


def test_hh_multi_turn_prompt_and_a_response_that_goes_on_with_the_dialogue():
    shown = render.pair_html(
        "hh",
        {},
        "\n\nHuman: Hi *there*\n\nAssistant: Hello.\n\nHuman: > quote?",
        "Sure.\n\nHuman: thanks\n\nAssistant: welcome",
        "No.",
    )
    assert re.findall(r'w2s-speaker">(\w+)<', shown.conversation) == ["Human", "Assistant", "Human"]
    assert "Hi *there*" in visible(shown.conversation) and "> quote?" in visible(shown.conversation)
    assert re.findall(r'w2s-speaker">(\w+)<', shown.response_a) == ["Assistant", "Human", "Assistant"]


def test_evidence_first_tree_holds_no_verdict_and_offers_node_buttons():
    node = Node(
        id=7,
        tree_id=1,
        position=0,
        principle_id="p/x",
        principle_name="x",
        relevance=0.9,
        p_a=0.8,
        p_b=0.2,
        info=0.5,
        thought="t",
        role="exit",
    )
    hidden = render.tree_html([node], {}, reveal=False, reasons=("irrelevant", "other"))
    assert "w2s-bar" not in hidden and "80%" not in hidden and "P(A)" not in hidden
    assert "info" not in hidden and "exit" not in hidden  # the verdict's confidence is read off it
    assert hidden.count('data-action="prune"') == 2 and 'data-node-id="7"' in hidden
    pruned = render.tree_html([node], {7: "other"}, reasons=("irrelevant",))
    assert 'data-action="restore"' in pruned and "w2s-bar" in pruned


def test_before_the_reveal_nodes_go_by_relevance_not_by_what_the_verdict_says():
    def node(i, name, relevance, info):
        return Node(
            id=i,
            tree_id=1,
            position=i,
            principle_id=f"p/{name}",
            principle_name=name,
            relevance=relevance,
            p_a=0.9,
            p_b=0.1,
            info=info,
            thought="t",
            role="continue",
        )

    by_info = [node(1, "decided", 0.4, 0.3), node(2, "relevant", 0.9, 0.05)]
    names = lambda out: re.findall(r"<b>(\w+)</b>", out)
    assert names(render.tree_html(by_info, {}, reveal=False)) == ["relevant", "decided"]
    assert names(render.tree_html(by_info, {})) == ["decided", "relevant"]
    assert "info 0.30" in render.tree_html(by_info, {})


def test_a_big_b_side_takes_a_sides_colours_where_its_lines_repeat():
    a = "".join(f'def f{i}(x):\n    """doc {i}"""\n    return x + {i}\n' for i in range(700))
    b = a.replace("return x + 350\n", "return x - 350  # changed\n")
    assert len(b) > render.LEX_ONCE_CHARS
    fast = render.code_pieces_beside(b, "python", a, diff.pair_diff(a, b).blocks)
    assert fast == render.code_pieces(b, "python")  # the same colours as lexing B whole
    assert render.code_pieces_beside("short", "python", "other", []) == render.code_pieces("short", "python")
