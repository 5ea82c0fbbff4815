"""A hostile look at a real `w2s serve`: login throttling, sessions ended by credential changes, bounded
input, clear answers to malformed API calls, security headers, no database password in the output."""

from __future__ import annotations

import json
import subprocess
import sys
import time

import httpx
import pytest
from app_helpers import Server, free_port, make_pairs, make_tree
from sqlmodel import select

from w2s.store import Draft, auth, session_scope
from w2s_app import queue as Q
from w2s_app.security import Credentials, Throttle

pytestmark = pytest.mark.slow

USERS = ("alice", "bob", "carol", "dave", "erin", "frank", "gina")


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("security")
    url = f"sqlite:///{tmp / 'w2s.db'}"
    ids = make_pairs(url, 12)
    make_tree(url, ids[0], [("Avoid harm", 0.9, 0.7, 0.4)])
    with session_scope(url) as s:
        Q.save_config(s, Q.QueueConfig(overlap=2, gold_rate=0.0, quota=0))
    for name in USERS:
        auth.add_user(name, "annotator", f"{name}-pw", url=url)
    server = Server(url, tmp / "server.log").start()
    yield {"url": url, "server": server}
    server.kill()


def client(site, name, password=None):
    from gradio_client import Client

    return Client(site["server"].base, auth=(name, password or f"{name}-pw"), verbose=False)


def session(site, name, password=None) -> httpx.Client:
    """A plain HTTP session logged in the way the browser does."""
    http = httpx.Client(base_url=site["server"].base, timeout=60)
    r = http.post("/login", data={"username": name, "password": password or f"{name}-pw"})
    assert r.status_code == 200, r.text
    return http


def login(site, name, password):
    return httpx.post(
        f"{site['server'].base}/login", data={"username": name, "password": password}, timeout=60
    )


def test_logins_are_throttled_per_name_and_address_and_failures_logged(db_url, server_factory):
    for name in ("alice", "bob", "carol"):
        auth.add_user(name, "annotator", f"{name}-pw", url=db_url)
    site = {"server": server_factory(db_url)}  # its own server: the address ends up locked out
    for i in range(10):
        assert login(site, "alice", f"guess-{i}").status_code == 400
    r = login(site, "alice", "alice-pw")  # the right password, but too late
    assert r.status_code == 429 and "Too many failed logins" in r.json()["detail"]
    assert login(site, "bob", "bob-pw").status_code == 200  # another account is not locked out
    log = site["server"].log.read_text()
    assert "failed login for 'alice' from 127.0.0.1" in log
    assert "guess-" not in log and "alice-pw" not in log  # passwords are never logged

    for i in range(20):  # one address spraying many names (30 failures in all)
        assert login(site, f"nobody{i}", "x").status_code == 400
    r = login(site, "carol", "carol-pw")
    assert r.status_code == 429 and "try again in" in r.json()["detail"]


def test_throttle_window_and_reset():
    now = [0.0]
    t = Throttle(per_name=3, per_address=5, window=60, clock=lambda: now[0])
    for _ in range(3):
        t.failed("ann", "10.0.0.1")
    assert t.wait("ann", "10.0.0.2") == 60  # per name, from any address
    assert t.wait("bob", "10.0.0.1") == 0
    now[0] = 30
    assert t.wait("ann", "10.0.0.2") == 30
    now[0] = 61
    assert t.wait("ann", "10.0.0.2") == 0  # the failures left the window
    for i in range(5):
        t.failed(f"n{i}", "10.0.0.9")
    assert t.wait("zoe", "10.0.0.9") > 0  # per address, for any name
    t.failed("cy", "10.0.0.3")
    t.succeeded("cy")
    assert ("name", "cy") not in t.failures


def test_password_change_and_deactivation_end_open_sessions(site):
    dave, erin = client(site, "dave"), client(site, "erin")
    assert dave.predict(api_name="/next_pair")["token"]
    assert erin.predict(api_name="/next_pair")["token"]
    erin_http = session(site, "erin")
    auth.set_password("dave", "new-dave-pw", url=site["url"])
    auth.set_active("erin", False, url=site["url"])
    time.sleep(1.5)  # the server re-reads credentials at most once a second
    with pytest.raises(httpx.HTTPStatusError, match="401 Unauthorized"):
        dave.predict(api_name="/next_pair")
    with pytest.raises(httpx.HTTPStatusError, match="401 Unauthorized"):
        erin.predict(api_name="/next_pair")
    r = erin_http.post("/gradio_api/upload", files={"files": ("x.txt", b"hello")})
    assert r.status_code == 401 and "session has ended" in r.json()["detail"]
    assert erin_http.get("/gradio_api/user").json() is None  # the session is gone from Gradio too
    assert "ended a session of 'dave'" in site["server"].log.read_text()
    # the new password works, the old one does not
    assert login(site, "dave", "dave-pw").status_code == 400
    assert client(site, "dave", "new-dave-pw").predict(api_name="/next_pair")["token"]


def test_credentials_stamp_changes_with_the_password(db_url):
    from contextlib import contextmanager

    @contextmanager
    def tx():
        with session_scope(db_url) as s:
            yield s

    auth.add_user("ann", "annotator", "pw1", url=db_url)
    creds = Credentials(tx, ttl=0)
    creds.login("tok", "ann")
    assert creds.session_ok("tok", "ann") and not creds.session_ok("other-token", "ann")
    auth.set_password("ann", "pw2", url=db_url)
    assert not creds.session_ok("tok", "ann")
    creds.login("tok2", "ann")
    assert creds.session_ok("tok2", "ann")
    auth.set_active("ann", False, url=db_url)
    assert not creds.session_ok("tok2", "ann") and creds.get("ann") is None


def test_bounded_input(site):
    http = session(site, "frank")
    r = http.post("/gradio_api/upload", files={"files": ("big.bin", b"0" * 20_000_000)})
    assert r.status_code in (400, 413) and "size" in r.text.lower()
    frank = client(site, "frank")
    nxt = frank.predict(api_name="/next_pair")
    with pytest.raises(Exception, match="confidence must be a number from 1 to 5"):
        frank.predict(nxt["token"], "a", 1e308, "", "[]", api_name="/submit")
    with pytest.raises(Exception, match="the comment has 5,001 characters"):
        frank.predict(nxt["token"], "a", 3, "x" * 5001, "[]", api_name="/submit")
    with pytest.raises(Exception, match="at most 20,000 bytes"):
        frank.predict(nxt["token"], json.dumps({"comment": "y" * 30_000}), api_name="/save_draft")
    done = frank.predict(nxt["token"], "a", 5, "fine", "[]", api_name="/submit")
    assert done["created"]


def test_malformed_api_calls_get_clear_messages(site):
    gina, bob = client(site, "gina"), client(site, "bob")
    nxt = gina.predict(api_name="/next_pair")
    with pytest.raises(Exception, match="not in your queue"):
        bob.predict(nxt["token"], json.dumps({"label": "a"}), api_name="/save_draft")
    with pytest.raises(Exception, match="must be a JSON object, got list"):
        gina.predict(nxt["token"], "[1, 2]", api_name="/save_draft")
    with pytest.raises(Exception, match="not valid JSON"):
        gina.predict(nxt["token"], "{oops", api_name="/save_draft")
    with pytest.raises(Exception, match="must be a JSON list"):
        gina.predict(nxt["token"], "a", 3, "", '{"node_id": 1}', api_name="/submit")
    with pytest.raises(Exception, match="item 0 must be"):
        gina.predict(nxt["token"], "a", 3, "", "[1]", api_name="/submit")
    with pytest.raises(Exception, match="pruned_json is not valid JSON"):
        gina.predict(nxt["token"], "a", 3, "", "[{", api_name="/submit")
    with session_scope(site["url"]) as s:
        assert s.exec(select(Draft).where(Draft.user.in_(["gina", "bob"]))).all() == []
    assert "Traceback" not in site["server"].log.read_text()


def test_security_headers(site):
    for path in ("/", "/gradio_api/info", "/login"):
        r = httpx.get(site["server"].base + path, timeout=30)
        assert r.headers["x-frame-options"] == "DENY"
        assert "frame-ancestors 'none'" in r.headers["content-security-policy"]
        assert r.headers["x-content-type-options"] == "nosniff"


def test_serve_never_prints_the_database_password(tmp_path):
    secret = "S3cret-pw"
    url = f"postgresql://w2s:{secret}@127.0.0.1:{free_port()}/w2s"  # nothing listens: serve fails fast
    out = subprocess.run(
        [sys.executable, "-c", "from w2s.cli import main; main()", "serve", "--db", url, "--port", "1"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    text = out.stdout + out.stderr
    assert out.returncode != 0 and "postgresql+psycopg://w2s:***@127.0.0.1" in text
    assert secret not in text
