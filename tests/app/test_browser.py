"""End to end in real headless Chromium (Debian's /usr/bin/chromium through Playwright) against `w2s serve`."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from app_helpers import XSS_RESPONSE, make_pairs, make_tree
from paths import HH
from sqlmodel import select

from w2s.store import Annotation, Draft, Node, Pair, QueueItem, session_scope
from w2s_app import queue as Q

pytestmark = [pytest.mark.browser, pytest.mark.slow]

CHROMIUM = "/usr/bin/chromium"
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
# The screenshots go to a temporary folder; scripts/screenshots.sh sets $W2S_SCREENSHOTS=docs to
# refresh the README's images (a test run never writes into tracked files).
SHOTS_ENV = "W2S_SCREENSHOTS"

if not Path(CHROMIUM).exists():
    pytest.skip("Debian chromium is not installed (apt-get install chromium)", allow_module_level=True)
sync_api = pytest.importorskip("playwright.sync_api")


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    """A store with a tree pair, a pair whose response carries script, plain pairs; users alice and boss."""
    from app_helpers import Server

    from w2s.store.auth import add_user

    tmp = tmp_path_factory.mktemp("site")
    url = f"sqlite:///{tmp / 'w2s.db'}"
    ids = make_pairs(url, 6)
    with session_scope(url) as s:
        first = s.get(Pair, ids[0])
        first.prompt = "\n\nHuman: How do I get into my own car? I locked the keys inside.\n\nAssistant:"
        first.response_a = (
            "Call a **locksmith** or your roadside assistance; they can open it without damage."
        )
        first.response_b = XSS_RESPONSE
        # verdicts shown at once: evidence-first mode has its own tests (test_render_browser.py)
        Q.save_config(s, Q.QueueConfig(overlap=2, gold_rate=0.0, quota=4, evidence_first=False))
    tree_id, node_ids = make_tree(
        url,
        ids[0],
        [("Avoid harm", 0.92, 0.85, 0.55), ("Honesty", 0.41, 0.55, 0.01), ("Legality", 0.8, 0.8, 0.22)],
    )
    add_user("alice", "annotator", "alice-pw", url=url)
    add_user("boss", "admin", "boss-pw", url=url)
    server = Server(url, tmp / "server.log").start()
    with sync_api.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield {
            "url": url,
            "base": server.base,
            "browser": browser,
            "ids": ids,
            "nodes": node_ids,
            "tree": tree_id,
        }
        browser.close()
    server.kill()


def login(site, name, password):
    context = site["browser"].new_context(viewport={"width": 1400, "height": 1000}, accept_downloads=True)
    page = context.new_page()
    page.dialogs = []
    page.on("dialog", lambda d: (page.dialogs.append(d.message), d.dismiss()))
    page.goto(site["base"])
    page.wait_for_selector("input[type=password]", timeout=60_000)
    page.locator("input").nth(0).fill(name)
    page.locator("input[type=password]").fill(password)
    page.get_by_role("button", name="Login").click()
    page.wait_for_selector("#w2s-progress", timeout=60_000)
    return page


def wait_done(page, n):
    page.wait_for_function(f"document.querySelector('#w2s-progress')?.dataset.done === '{n}'", timeout=30_000)


def press(page, key):
    page.locator("#w2s-status").click()  # focus the page, outside any input
    page.keyboard.press(key)


def human_rows(url, user):
    with session_scope(url) as s:
        return s.exec(select(Annotation).where(Annotation.annotator == user).order_by(Annotation.id)).all()


def test_annotator_keyboard_prune_undo_and_inert_html(site):
    page = login(site, "alice", "alice-pw")
    page.wait_for_selector("#w2s-tree .w2s-node")
    assert page.locator("#w2s-progress").get_attribute("data-done") == "0"
    assert page.locator("#w2s-progress").get_attribute("data-remaining") == "4"

    # the response carrying <script>, <img onerror>, a javascript: link and template syntax is shown as text
    b_text = page.locator("#w2s-response-b").inner_text()
    assert "<script>" in b_text and "onerror" in b_text
    assert page.locator("#w2s-response-b script, #w2s-response-b img, #w2s-response-b a").count() == 0
    assert page.evaluate("window.__w2s_pwned") is None
    assert page.dialogs == []

    # nodes ordered by info; prune the third with the button on the node, restore it there, prune it
    # again with the keys (J moves to the next node, W prunes as wrong reasoning)
    names = page.locator("#w2s-tree .w2s-node-head b").all_inner_texts()
    assert names == ["Avoid harm", "Legality", "Honesty"]
    page.locator("#w2s-tree .w2s-node").nth(2).locator('button[data-reason="wrong reasoning"]').click()
    page.wait_for_selector(".w2s-node-pruned")
    assert "Honesty" in page.locator(".w2s-node-pruned").inner_text()
    page.locator('.w2s-node-pruned button[data-action="restore"]').click()
    page.wait_for_function("document.querySelectorAll('.w2s-node-pruned').length === 0")
    for key in "jjj":
        press(page, key)
    press(page, "w")
    page.wait_for_selector(".w2s-node-pruned")
    assert "wrong reasoning" in page.locator(".w2s-node-pruned").inner_text()

    # shortcuts are inert while typing: 's', 'u', '2' typed into the comment stay text
    page.locator("#w2s-comment textarea, #w2s-comment input").first.fill("")
    page.locator("#w2s-comment textarea, #w2s-comment input").first.type("su2 checked")
    assert page.locator('#w2s-label input[value="b"]').is_checked() is False
    assert page.locator("#w2s-progress").get_attribute("data-done") == "0"

    press(page, "?")
    assert page.locator("#w2s-help").is_visible()
    press(page, "Escape")
    press(page, "2")
    assert page.locator('#w2s-label input[value="b"]').is_checked()
    press(page, "Enter")
    wait_done(page, 1)
    assert page.locator("#w2s-progress").get_attribute("data-remaining") == "3"

    rows = human_rows(site["url"], "alice")
    assert len(rows) == 1
    ann = rows[0]
    assert (ann.label, ann.annotator_kind, ann.method, ann.comment) == ("b", "human", "human", "su2 checked")
    assert ann.pruned == [{"node_id": site["nodes"][1], "reason": "wrong reasoning"}]
    assert sorted(ann.consulted_node_ids) == sorted([site["nodes"][0], site["nodes"][2]])
    assert ann.seconds > 0 and ann.tree_id == site["tree"]

    # U undoes: a superseding retraction row, the pair comes back with its label
    press(page, "u")
    wait_done(page, 0)
    rows = human_rows(site["url"], "alice")
    assert [(r.retracted, r.supersedes_id) for r in rows] == [(False, None), (True, rows[0].id)]
    assert page.locator('#w2s-label input[value="b"]').is_checked()
    assert page.locator(".w2s-node-pruned").count() == 1

    # relabel with '1'/'a' and submit; then S skips the next pair
    press(page, "a")
    press(page, "Enter")
    wait_done(page, 1)
    assert page.locator("#w2s-tree #w2s-notree, #w2s-notree").count() == 1  # the next pair has no tree
    press(page, "s")
    page.wait_for_function("document.querySelector('#w2s-status').innerText.includes('Skipped')")
    press(page, "0")
    press(page, "Enter")
    wait_done(page, 2)

    # arrows walk the history: ← shows the last labelled pair with its label
    press(page, "ArrowLeft")
    page.wait_for_function("document.querySelector('#w2s-status').innerText.includes('History 2')")
    assert page.locator('#w2s-label input[value="tie"]').is_checked()
    press(page, "ArrowLeft")
    page.wait_for_function("document.querySelector('#w2s-status').innerText.includes('History 1')")
    assert page.locator('#w2s-label input[value="a"]').is_checked()
    # one key at a time: a second press while the first is in flight may be dropped by the page
    press(page, "ArrowRight")
    page.wait_for_function("document.querySelector('#w2s-status').innerText.includes('History 2')")
    press(page, "ArrowRight")
    page.wait_for_function("!document.querySelector('#w2s-status').innerText.includes('History')")

    with session_scope(site["url"]) as s:
        current = [a for a in Q.current_annotations(s, method="human") if a.annotator == "alice"]
        assert sorted(a.label for a in current) == ["a", "tie"]
    # an annotator has no admin tab
    assert page.get_by_role("tab", name="Admin").count() == 0
    assert page.dialogs == [] and page.evaluate("window.__w2s_pwned") is None
    page.context.close()


HH_DEV = HH / "test_dev.jsonl"


def shots(tmp_path: Path) -> Path:
    folder = Path(os.environ.get(SHOTS_ENV) or tmp_path)
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def is_png(path: Path) -> bool:
    return path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_screenshot_of_a_real_pair(site, tmp_path):
    """annotator.png (docs/ through scripts/screenshots.sh): a real HH-harmless pair with a hand-written tree."""
    if HH_DEV.exists():
        row = json.loads(HH_DEV.read_text().splitlines()[4])
        cut = row["chosen"].rindex("\n\nAssistant:") + len("\n\nAssistant:")
        prompt, a, b = row["chosen"][:cut], row["rejected"][cut:].strip(), row["chosen"][cut:].strip()
    else:
        prompt, a, b = "\n\nHuman: Is bleach safe to drink?\n\nAssistant:", "A little is fine.", "No, never."
    from w2s.store.auth import add_user

    make_pairs(site["url"], 1, prefix="real")
    with session_scope(site["url"]) as s:
        pair = s.get(Pair, "real00000")
        pair.prompt, pair.response_a, pair.response_b = prompt, a, b
        s.add(QueueItem(user="carol", pair_id="real00000"))  # straight to the front of carol's queue
    _, node_ids = make_tree(
        site["url"],
        "real00000",
        [
            ("No dangerous instructions", 0.97, 0.12, 0.62),
            ("Refuse harmful requests and redirect", 0.88, 0.2, 0.43),
            ("Protect vulnerable people", 0.64, 0.35, 0.08),
        ],
    )
    thoughts = [
        (
            "Drinking bleach is dangerous at any dose. **A** treats the amount as an open question and offers "
            "to estimate it, which moves toward dangerous instructions; **B** gives nothing harmful."
        ),
        "Neither response redirects to medical help. **B** at least declines; **A** invites the user to go on.",
        "The user may be at risk, but neither response addresses that directly.",
    ]
    with session_scope(site["url"]) as s:
        for nid, thought in zip(node_ids, thoughts):
            s.get(Node, nid).thought = thought
    add_user("carol", "annotator", "carol-pw", url=site["url"])
    page = login(site, "carol", "carol-pw")
    page.wait_for_selector("#w2s-tree .w2s-node")
    page.locator("#w2s-tree .w2s-node").nth(2).locator('button[data-reason="irrelevant"]').click()
    page.wait_for_selector(".w2s-node-pruned")
    press(page, "2")
    page.locator("#w2s-tree summary").first.click()  # expand the top node's thought
    assert page.locator("#w2s-tree details").first.get_attribute("open") is not None
    page.screenshot(path=str(shots(tmp_path) / "annotator.png"), full_page=True)
    assert is_png(shots(tmp_path) / "annotator.png")
    page.context.close()


def test_draft_survives_reload(site):
    page = login(site, "boss", "boss-pw")
    page.wait_for_selector("#w2s-label")
    pair_before = page.locator("#w2s-status").inner_text()
    press(page, "1")
    page.locator("#w2s-comment textarea, #w2s-comment input").first.fill("not sure yet")
    press(page, "d")
    page.wait_for_function("document.querySelector('#w2s-status').innerText.includes('Draft saved')")
    with session_scope(site["url"]) as s:
        drafts = s.exec(select(Draft).where(Draft.user == "boss")).all()
        assert len(drafts) == 1 and drafts[0].state["label"] == "a"
    page.reload()
    page.wait_for_function(
        "document.querySelector('#w2s-status')?.innerText.includes('Draft restored')", timeout=60_000
    )
    assert page.locator('#w2s-label input[value="a"]').is_checked()
    assert page.locator("#w2s-comment textarea, #w2s-comment input").first.input_value() == "not sure yet"
    assert pair_before  # the same pair came back (the status line names it or the draft)
    page.context.close()


def test_admin_dashboard_and_export(site, tmp_path):
    ids = site["ids"]
    with session_scope(site["url"]) as s:  # a second annotator, weak-model labels and gold for the dashboard
        for pid, gold, bob, first, weak in zip(ids[:4], "abab", "aaba", "baba", "abbb"):
            s.get(Pair, pid).gold = gold
            s.add(
                Annotation(
                    pair_id=pid,
                    annotator="bob",
                    annotator_kind="human",
                    method="human",
                    label=bob,
                    seconds=7.5,
                    tree_id=site["tree"] if pid == ids[0] else None,  # its exit node says A: right
                    meta={"initial": {"label": first, "rating": 3, "seconds": 5.0}},  # evidence first
                )
            )
            s.add(
                Annotation(
                    pair_id=pid,
                    annotator="transformers:smollm2",
                    annotator_kind="model",
                    method="seam",
                    label=weak,
                    confidence=0.7,
                )
            )
    page = login(site, "boss", "boss-pw")
    page.get_by_role("tab", name="Admin").click()
    page.wait_for_function(
        "document.querySelector('#w2s-admin-summary')?.innerText.includes('pairs labelled')", timeout=30_000
    )
    people = page.locator("#w2s-admin-annotators").inner_text()
    assert "alice" in people and "bob" in people
    assert "Legality" in page.locator("#w2s-admin-pruning").inner_text()
    reliance = page.locator("#w2s-admin-reliance").inner_text()
    assert "bob" in reliance and "useful reliance" in reliance
    page.screenshot(path=str(shots(tmp_path) / "admin.png"), full_page=True)
    assert is_png(shots(tmp_path) / "admin.png")
    page.locator("#w2s-export-current").click()
    page.wait_for_function("document.querySelector('#w2s-export-msg')?.innerText.includes('Exported')")
    with page.expect_download() as dl:
        page.locator("#w2s-export-file a").first.click()
    path = tmp_path / "export.jsonl"
    dl.value.save_as(path)
    rows = [json.loads(line) for line in path.read_text().splitlines()]
    assert {r["annotator"] for r in rows} == {"alice", "bob"}  # current human labels only, no model rows
    assert sorted(r["label"] for r in rows if r["annotator"] == "alice") == ["a", "tie"]
    assert len(rows) == 6
    page.context.close()


def test_guidelines_edit_by_admin(site):
    page = login(site, "boss", "boss-pw")
    page.get_by_role("tab", name="Guidelines").click()
    box = page.get_by_label("Edit guidelines (Markdown)")
    box.fill("## House rules\n\nPrefer the **safer** answer.")
    page.locator("#w2s-guidelines-save").click()
    page.wait_for_function(
        "document.querySelector('#w2s-guidelines-text')?.innerText.includes('House rules')"
    )
    page.context.close()
    page = login(site, "alice", "alice-pw")
    page.get_by_role("tab", name="Guidelines").click()
    assert "Prefer the safer answer" in page.locator("#w2s-guidelines-text").inner_text()
    assert (
        page.locator("#w2s-guidelines-save").count() == 0
        or not page.locator("#w2s-guidelines-save").is_visible()
    )
    page.context.close()
