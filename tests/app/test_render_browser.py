"""What a person sees, in real headless Chromium: each kind of text exactly as stored (inner text equals the
stored text, character for character; lines wrap without changing it), A/B differences marked and toggled,
evidence first, and a 2,000-line code pair on the page whole (its timing: bench/app_page.py).

The pairs are real rows of ../shared/data (HumanEvalPack, GSM8K) when it is there, else copies of the same
rows below; the HH conversation is hand-made (the shared HH split is single-turn).
"""

from __future__ import annotations

import json

import pytest
from app_helpers import Server, make_tree
from paths import SHARED
from sqlmodel import select

from w2s.store import Annotation, Pair, QueueItem, session_scope
from w2s_app import queue as Q
from w2s_app import render

pytestmark = [pytest.mark.browser, pytest.mark.slow]
test_browser = pytest.importorskip("test_browser")  # skips without Chromium or Playwright

CODE_ROW = {  # HumanEvalPack Python/0: the two replies differ in one token
    "id": "Python/0",
    "prompt": "Write a Python function `has_close_elements(numbers: List[float], threshold: float) -> bool` to "
    "solve the following problem:\nCheck if in given list of numbers, are any two numbers closer to each other "
    "than\ngiven threshold.\n>>> has_close_elements([1.0, 2.0, 3.0], 0.5)\nFalse\n>>> has_close_elements([1.0, "
    "2.8, 3.0, 4.0, 5.0, 2.0], 0.3)\nTrue",
    "response_a": "from typing import List\n\n\ndef has_close_elements(numbers: List[float], threshold: float) -> "
    "bool:\n    for idx, elem in enumerate(numbers):\n        for idx2, elem2 in enumerate(numbers):\n"
    "            if idx != idx2:\n                distance = abs(elem - elem2)\n                if distance < "
    "threshold:\n                    return True\n\n    return False\n",
    "response_b": "from typing import List\n\n\ndef has_close_elements(numbers: List[float], threshold: float) -> "
    "bool:\n    for idx, elem in enumerate(numbers):\n        for idx2, elem2 in enumerate(numbers):\n"
    "            if idx != idx2:\n                distance = elem - elem2\n                if distance < "
    "threshold:\n                    return True\n\n    return False\n",
    "meta": {"language": "python", "bug_type": "missing logic", "failure_symptoms": "incorrect output"},
}
MATH_ROW = {  # GSM8K gsm8k-test-432
    "id": "gsm8k-test-432",
    "prompt": "Prince Thaddeus slew 100 dragons with his mighty sword, while Prince Arthur, using a spear, slew "
    "three quarters as many dragons as Prince Thaddeus.  Using a rusty iron axe, Prince Walter slew twice as many "
    "dragons as Prince Arthur.  But Prince Bruce, having forgot his sword at home, slew one-fifth as many dragons "
    "as Prince Walter using a nail file.  How many Dragons has Prince Bruce slain?",
    "response_a": "Prince Arthur slew 3/4*100=<<3/4*100=75.0>>75 dragons.\nPrince Walter slew 2*75=<<2*75=150>>150 "
    "dragons.\nPrince Bruce slew 1/5*150=<<1/5*150=30.0>>30 dragons.\nA: 30",
    "response_b": "Using a spear, Prince Arthur slew 3/4 * 100 = <<3/4*100=75.0>>75 dragons.\nUsing an iron axe, "
    "Prince Walter slew 2 * 75 = <<2*75=150.0>>150 dragons.\nUsing a nail file, Prince Bruce slew 1/5 * 150 = "
    "<<1/5*150=30.0>>30 dragons.\nThus, Prince Bruce has slain a total of 100 + 75 + 150 + 30 = "
    "<<100+75+150+30=355>>355 dragons.\nA: 355",
    "meta": {"source": "gsm8k-model-solutions"},
}
HH_PROMPT = (
    "\n\nHuman: My neighbour's dog barks all night. What can I do?\n\nAssistant: Have you talked to them?"
    "\n\nHuman: Yes, twice. They said *deal with it* > and laughed.\n  Should I poison it?\n\nAssistant:"
)
HH_A = "No. Harming the dog is cruel and illegal. Keep a log of the *times* and contact your council."
HH_B = "You could, but be careful: > 2 doses of anything *might* be traced back to you."
LONG_LINE = " ".join(f"w{i}" for i in range(40_000))  # about 230,000 characters, no newline


def real_row(path: str, row_id: str, fallback: dict) -> dict:
    file = SHARED / "data" / path
    if file.exists():
        for line in file.read_text(encoding="utf-8").splitlines():
            row = json.loads(line)
            if row["id"] == row_id:
                return row
    return fallback


def big_code(n_lines: int, change: int | None = None) -> str:
    lines = ["def big(values):", "    total = 0"]
    for i in range(n_lines - 3):
        op = "-" if i == change else "+"
        lines.append(f"    total = total {op} values[{i % 17}] * {i}  # step {i}")
    lines.append("    return total\n")
    return "\n".join(lines)


PAIRS = {  # user -> (pair id, dataset, meta, prompt, response_a, response_b)
    "coder": ("code0", "code-humanevalpack", None, None, None, None),
    "mathy": ("math0", "math-gsm8k", None, None, None, None),
    "hhuser": ("hh0", "hh-harmless-multi", {}, HH_PROMPT, HH_A, HH_B),
    "longuser": ("long0", "prose", {}, "\n\nHuman: Say it long.\n\nAssistant:", LONG_LINE, "Short answer."),
    "biguser": ("big0", "code-big", {"language": "python"}, "Sum it.", big_code(2000), big_code(2000, 1000)),
    "evi": (
        "evi0",
        "hh-harmless",
        {},
        "\n\nHuman: Is it safe to mix bleach and vinegar?\n\nAssistant:",
        "No: it releases chlorine gas.",
        "Yes, it cleans better.",
    ),
}


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    from w2s.store.auth import add_user

    tmp = tmp_path_factory.mktemp("rendersite")
    url = f"sqlite:///{tmp / 'w2s.db'}"
    code = real_row("code-humanevalpack/python.jsonl", "Python/0", CODE_ROW)
    math = real_row("math-gsm8k/pairs_dev.jsonl", "gsm8k-test-432", MATH_ROW)
    rows = dict(PAIRS)
    rows["coder"] = (
        "code0",
        "code-humanevalpack",
        {"id": code["id"], "meta": code["meta"]},
        code["prompt"],
        code["response_a"],
        code["response_b"],
    )
    rows["mathy"] = (
        "math0",
        "math-gsm8k",
        {"id": math["id"], "meta": math["meta"]},
        math["prompt"],
        math["response_a"],
        math["response_b"],
    )
    with session_scope(url) as s:
        Q.save_config(s, Q.QueueConfig(overlap=1, gold_rate=0.0, quota=0))  # evidence first: the default
        for user, (pid, dataset, meta, prompt, a, b) in rows.items():
            s.add(
                Pair(
                    id=pid,
                    dataset=dataset,
                    split="dev",
                    prompt=prompt,
                    response_a=a,
                    response_b=b,
                    meta=meta,
                    gold="a" if user == "evi" else None,
                )
            )
            s.add(QueueItem(user=user, pair_id=pid))  # each user's first pair
        # biguser first gets a small pair, so that the big one arrives as the next pair (timed)
        s.add(Pair(id="small0", dataset="prose", prompt="Hi?", response_a="Hello.", response_b="Hey."))
        s.flush()
        s.add(QueueItem(user="biguser", pair_id="small0"))
    make_tree(url, "evi0", [("Avoid harm", 0.95, 0.9, 0.6), ("Honesty", 0.5, 0.2, 0.1)])
    for user in rows:
        add_user(user, "annotator", f"{user}-pw", url=url)
    server = Server(url, tmp / "server.log").start()
    with test_browser.sync_api.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=test_browser.CHROMIUM, args=test_browser.ARGS)
        yield {"url": url, "base": server.base, "browser": browser, "rows": rows}
        browser.close()
    server.kill()


def open_page(site, user):
    page = test_browser.login(site, user, f"{user}-pw")
    page.wait_for_selector("#w2s-response-a [data-kind]", timeout=60_000)
    return page


def seen(page, selector: str) -> str:
    return page.locator(selector).first.inner_text()


def fits(page, selector: str) -> bool:
    """The element wraps its text: nothing runs past its right edge."""
    return page.locator(selector).first.evaluate("el => el.scrollWidth <= el.clientWidth + 1")


def test_code_pair_verbatim_highlighted_with_the_one_token_marked(site):
    _, _, _, prompt, a, b = site["rows"]["coder"]
    page = open_page(site, "coder")
    for side, text in (("a", a), ("b", b)):
        block = f"#w2s-response-{side} pre.w2s-code[data-kind=code]"
        assert seen(page, block) == text  # indentation, blank lines, every character
        assert page.locator(block).first.get_attribute("data-lang") == "python"
        family = page.locator(block).first.evaluate("el => getComputedStyle(el).fontFamily")
        assert "mono" in family.lower()
        assert page.locator(f"{block} span.k").count() > 0  # highlighted keywords
    # the prompt's doctest lines are text, not a triple-nested quote block
    assert page.locator("#w2s-conversation blockquote").count() == 0
    assert seen(page, "#w2s-conversation [data-kind]") == prompt.strip()
    # the one token that differs is marked, the marks go with V, the unified diff comes with G
    marked = page.locator("#w2s-response-a del.w2s-diff").all_inner_texts()
    assert "".join(marked) == "abs()"
    background = "el => getComputedStyle(el).backgroundColor"
    shown = page.locator("#w2s-response-a del.w2s-diff").first.evaluate(background)
    test_browser.press(page, "v")
    assert page.locator("#w2s-response-a del.w2s-diff").first.evaluate(background) != shown
    test_browser.press(page, "v")
    assert not page.locator("#w2s-unified").is_visible()
    test_browser.press(page, "g")
    assert page.locator("#w2s-unified").is_visible()
    unified = seen(page, "#w2s-unified")
    assert (
        "-                distance = abs(elem - elem2)" in unified
        and "+                distance = elem - elem2" in unified
    )
    page.context.close()


def test_math_pair_keeps_asterisks_and_calculator_annotations(site):
    _, _, _, prompt, a, b = site["rows"]["mathy"]
    page = open_page(site, "mathy")
    assert seen(page, "#w2s-response-a [data-kind=math]") == a
    assert seen(page, "#w2s-response-b [data-kind=math]") == b
    assert page.locator("#w2s-response-a em, #w2s-response-b em").count() == 0
    assert "3/4*100=<<3/4*100=75.0>>75" in seen(page, "#w2s-response-a")
    assert page.locator("#w2s-response-a .w2s-calc").count() == a.count("<<")
    assert seen(page, "#w2s-conversation [data-kind]") == prompt.strip()
    page.context.close()


def test_multi_turn_conversation_shows_each_turn_with_its_speaker_as_stored(site):
    _, _, _, prompt, a, b = site["rows"]["hhuser"]
    page = open_page(site, "hhuser")
    speakers = page.locator("#w2s-conversation .w2s-speaker").all_inner_texts()
    assert speakers == ["Human", "Assistant", "Human"]
    bodies = page.locator("#w2s-conversation [data-kind]").all_inner_texts()
    assert bodies == [body for _, body in render.turns(prompt)]
    assert "They said *deal with it* > and laughed.\n  Should I poison it?" in bodies[2]
    assert seen(page, "#w2s-response-a [data-kind=text]") == a
    assert seen(page, "#w2s-response-b [data-kind=text]") == b
    assert page.locator("#w2s-conversation em, #w2s-conversation blockquote, #w2s-b em").count() == 0
    page.context.close()


def test_a_200k_character_line_wraps_and_is_all_there(site):
    _, _, _, _, a, _ = site["rows"]["longuser"]
    page = open_page(site, "longuser")
    block = "#w2s-response-a [data-kind=text]"
    assert seen(page, block) == a
    assert fits(page, block) and fits(page, "#w2s-response-a")
    assert page.locator(block).first.evaluate("el => el.getBoundingClientRect().height") > 500
    page.context.close()


def test_a_2000_line_code_pair_arrives_whole_highlighted_and_marked(site):
    """The 2,000-line pair comes as the next pair (after Enter), every line there; how long it takes is
    measured by bench/app_page.py, not asserted here."""
    *_, a, b = site["rows"]["biguser"]
    page = open_page(site, "biguser")
    assert seen(page, "#w2s-response-a [data-kind]") == "Hello."
    test_browser.press(page, "1")
    test_browser.press(page, "Enter")
    page.wait_for_function(
        "document.querySelector('#w2s-response-b pre.w2s-code')?.getBoundingClientRect().height > 10000",
        timeout=30_000,
    )
    assert seen(page, "#w2s-response-a pre.w2s-code") == a and seen(page, "#w2s-response-b pre.w2s-code") == b
    assert "".join(page.locator("#w2s-response-a del.w2s-diff").all_inner_texts()) == "+"
    assert page.locator("#w2s-response-b pre.w2s-code span.c1").count() == 1997  # every comment highlighted
    page.context.close()


def test_evidence_first_hides_verdicts_until_the_initial_label_then_keeps_both(site):
    page = open_page(site, "evi")
    page.wait_for_selector("#w2s-tree .w2s-node")
    assert page.locator("#w2s-tree .w2s-bar").count() == 0
    tree_text = seen(page, "#w2s-tree")
    assert "%" not in tree_text and "Evidence first" in tree_text
    test_browser.press(page, "1")
    test_browser.press(page, "Enter")
    page.wait_for_selector("#w2s-tree .w2s-bar")
    assert "Your first label: A" in seen(page, "#w2s-status")
    assert page.locator('#w2s-label input[value="a"]').is_checked()
    test_browser.press(page, "2")  # the verdicts changed this annotator's mind
    test_browser.press(page, "Enter")
    test_browser.wait_done(page, 1)
    with session_scope(site["url"]) as s:
        ann = s.exec(select(Annotation).where(Annotation.annotator == "evi")).one()
    assert ann.label == "b" and ann.meta["initial"]["label"] == "a"
    page.context.close()
