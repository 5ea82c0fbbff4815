"""In real headless Chromium: the keyboard never loses a label, admin exports stay with admins and inside
their folder."""

from __future__ import annotations

import stat
import time
from pathlib import Path

import pytest
from app_helpers import Server, make_pairs
from sqlmodel import select

from w2s.store import Annotation, LabelSet, QueueItem, session_scope
from w2s_app import queue as Q
from w2s_app.exports import AdminExports, ExportRefused, slug

pytestmark = [pytest.mark.browser, pytest.mark.slow]
test_browser = pytest.importorskip("test_browser")  # skips without Chromium or Playwright


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    from w2s.store.auth import add_user

    tmp = tmp_path_factory.mktemp("secsite")
    url = f"sqlite:///{tmp / 'w2s.db'}"
    make_pairs(url, 6)
    with session_scope(url) as s:
        Q.save_config(s, Q.QueueConfig(overlap=2, gold_rate=0.0, quota=0))
    add_user("alice", "annotator", "alice-pw", url=url)
    add_user("boss", "admin", "boss-pw", url=url)
    server = Server(url, tmp / "server.log").start()
    with test_browser.sync_api.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=test_browser.CHROMIUM, args=test_browser.ARGS)
        yield {"url": url, "base": server.base, "browser": browser}
        browser.close()
    server.kill()


def test_enter_after_clicking_skip_submits_the_chosen_label(site):
    page = test_browser.login(site, "alice", "alice-pw")
    page.wait_for_selector("#w2s-label")
    page.locator("#w2s-skip").click()  # the focus stays on the Skip button
    page.wait_for_function("document.querySelector('#w2s-status').innerText.includes('Skipped')")
    page.keyboard.press("1")
    assert page.locator('#w2s-label input[value="a"]').is_checked()
    page.keyboard.press("Enter")
    test_browser.wait_done(page, 1)
    with session_scope(site["url"]) as s:
        items = s.exec(select(QueueItem).where(QueueItem.user == "alice").order_by(QueueItem.id)).all()
        labels = s.exec(select(Annotation.label).where(Annotation.annotator == "alice")).all()
    assert [it.status for it in items if it.status != "open"] == ["skipped", "done"]
    assert labels == ["a"]
    page.context.close()


def test_a_password_change_sends_an_open_page_back_to_the_login_form(site):
    from w2s.store.auth import add_user, set_password

    add_user("carl", "annotator", "carl-pw", url=site["url"])
    page = test_browser.login(site, "carl", "carl-pw")
    set_password("carl", "carl-new-pw", url=site["url"])
    time.sleep(1.5)  # the server re-reads credentials at most once a second
    page.reload()
    page.wait_for_selector("input[type=password]", timeout=60_000)
    assert page.locator("#w2s-progress").count() == 0
    page.context.close()


def admin_page(site):
    page = test_browser.login(site, "boss", "boss-pw")
    page.get_by_role("tab", name="Admin").click()
    page.wait_for_function(
        "document.querySelector('#w2s-admin-summary')?.innerText.includes('pairs labelled')", timeout=30_000
    )
    return page


def test_label_set_name_cannot_escape_the_export_folder(site, tmp_path):
    victim = tmp_path / "victim.jsonl"
    victim.write_text("precious\n", encoding="utf-8")
    page = admin_page(site)
    box = page.locator("#w2s-export-labelset-name input")
    box.fill("x/../../../.." + str(victim.with_suffix("")))
    box.press("Enter")
    page.locator("#w2s-export-labelset").click()
    page.wait_for_function("document.body.innerText.includes('no label set named')", timeout=30_000)
    assert victim.read_text(encoding="utf-8") == "precious\n"
    page.context.close()


def test_export_downloads_are_for_admins_only(site):
    with session_scope(site["url"]) as s:
        item = Q.next_item(s, "alice")
        Q.submit(s, "alice", Q.make_token(item), "b", comment="private remark of alice")
    page = admin_page(site)
    page.locator("#w2s-export-current").click()
    page.wait_for_function("document.querySelector('#w2s-export-msg')?.innerText.includes('Exported')")
    href = page.locator("#w2s-export-file a").first.get_attribute("href")
    url = href if href.startswith("http") else f"{site['base']}/{href.lstrip('/')}"
    got = page.context.request.get(url)
    assert got.status == 200 and "private remark of alice" in got.text()
    annotator = test_browser.login(site, "alice", "alice-pw")
    refused = annotator.context.request.get(url)
    assert refused.status == 403 and "private remark" not in refused.text()
    anonymous = site["browser"].new_context().request.get(url)
    assert anonymous.status in (401, 403) and "private remark" not in anonymous.text()
    page.context.close()
    annotator.context.close()


def test_admin_exports_are_private_checked_and_expire(db_url):
    now = [0.0]
    exports = AdminExports(ttl=600, clock=lambda: now[0])
    pid = make_pairs(db_url, 1)[0]
    with session_scope(db_url) as s:
        s.add(LabelSet(name="team/../v1", pair_id=pid, label="a", soft_label=0.9))
    with session_scope(db_url) as s:
        with pytest.raises(ExportRefused, match="no label set named '../etc'"):
            exports.write(s, "labelset", "jsonl", "../etc")
        token, path, n = exports.write(s, "labelset", "jsonl", "team/../v1")
    assert n == 1 and path.name == "w2s-team-v1.jsonl" and path.parent.parent == exports.dir
    assert stat.S_IMODE(exports.dir.stat().st_mode) == 0o700 and stat.S_IMODE(path.stat().st_mode) == 0o600
    assert exports.get(token) == path and exports.get("made-up") is None
    now[0] = 601
    assert exports.get(token) is None and not path.exists()
    assert slug("../../x") == "x" and slug("..") == "labelset"
    exports.dir.rmdir()
    assert not Path(exports.dir).exists()
