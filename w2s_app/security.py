"""What a team server needs around Gradio's login: sessions that end when their credentials change, login
throttling with a record of failures, admin-only export downloads, security headers, bounded input.

`Guard` is an ASGI middleware handed to Gradio's FastAPI app (`launch(app_kwargs={"middleware": ...})`);
it sees every HTTP request before Gradio does.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import re
import threading
import time
from collections import deque

import anyio
from sqlmodel import select
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse

from w2s.store import User
from w2s_app.exports import ROUTE, AdminExports

log = logging.getLogger("w2s.security")
_DOWNLOAD = re.compile(rf"/{ROUTE}/([A-Za-z0-9_-]+)/[^/]+$")  # <root>/w2s-export/<id>/<file name>

SECURITY_HEADERS = [
    (b"x-frame-options", b"DENY"),
    (b"content-security-policy", b"frame-ancestors 'none'"),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"same-origin"),
]
MAX_COMMENT = 5_000
"""Characters in a comment: far above any real one, far below what fills a database."""
MAX_DRAFT_BYTES = 20_000
"""A draft's JSON: a label, a rating, a comment and a few pruned nodes."""
MAX_LOGIN_BODY = 16_384


# ---------------------------------------------------------------------------------------------- input limits


class InputError(ValueError):
    """Input refused with a message for the user."""


def check_comment(comment) -> str:
    comment = "" if comment is None else comment
    if not isinstance(comment, str):
        raise InputError("the comment must be text")
    if len(comment) > MAX_COMMENT:
        raise InputError(f"the comment has {len(comment):,} characters; the limit is {MAX_COMMENT:,}")
    return comment


def check_rating(rating, low: int, high: int) -> float:
    """A confidence rating from the API: a finite number in [low, high], never silently clamped."""
    try:
        value = float(rating)
    except (TypeError, ValueError):
        raise InputError(f"confidence must be a number from {low} to {high}, got {rating!r}") from None
    if not math.isfinite(value) or not low <= value <= high:
        raise InputError(f"confidence must be a number from {low} to {high}, got {rating!r}")
    return value


def parse_draft(state_json) -> dict:
    if not isinstance(state_json, str) or len(state_json.encode("utf-8")) > MAX_DRAFT_BYTES:
        raise InputError(f"a draft must be a JSON object of at most {MAX_DRAFT_BYTES:,} bytes")
    try:
        state = json.loads(state_json)
    except (ValueError, RecursionError):
        raise InputError("the draft is not valid JSON") from None
    if not isinstance(state, dict):
        raise InputError(f"a draft must be a JSON object, got {type(state).__name__}")
    check_comment(state.get("comment"))
    return state


def parse_pruned(pruned_json) -> list[dict]:
    """`[{"node_id": int, "reason": str}, ...]` from the API, or a message saying what is wrong."""
    try:
        pruned = json.loads(pruned_json or "[]")
    except (ValueError, RecursionError, TypeError):
        raise InputError(
            'pruned_json is not valid JSON; send [{"node_id": 12, "reason": "irrelevant"}]'
        ) from None
    if not isinstance(pruned, list):
        raise InputError(f"pruned_json must be a JSON list, got {type(pruned).__name__}")
    for i, p in enumerate(pruned):
        if not isinstance(p, dict) or not isinstance(p.get("node_id"), int) or isinstance(p["node_id"], bool):
            raise InputError(f'pruned_json item {i} must be {{"node_id": <integer>, "reason": <text>}}')
        if not isinstance(p.get("reason", "other"), str):
            raise InputError(f"pruned_json item {i}: reason must be text")
    return pruned


MAX_NODE_ACTION_BYTES = 1_000


def parse_node_action(action_json) -> dict:
    """A node button's request from the page: `{"action": "prune"|"restore", "node_id": int, "reason": str}`
    (any other key, such as the page's click counter, is ignored)."""
    if not isinstance(action_json, str) or len(action_json.encode("utf-8")) > MAX_NODE_ACTION_BYTES:
        raise InputError("a node action must be a short JSON object")
    try:
        action = json.loads(action_json)
    except (ValueError, RecursionError):
        raise InputError("the node action is not valid JSON") from None
    if not isinstance(action, dict) or action.get("action") not in ("prune", "restore"):
        raise InputError('a node action is {"action": "prune" or "restore", "node_id": <integer>}')
    node_id = action.get("node_id")
    if not isinstance(node_id, int) or isinstance(node_id, bool):
        raise InputError("a node action needs an integer node_id")
    reason = action.get("reason")
    if reason is not None and not isinstance(reason, str):
        raise InputError("a prune reason must be text")
    return {"action": action["action"], "node_id": node_id, "reason": reason}


def check_tree_id(tree_id) -> int | None:
    """The tree /next_pair served, as sent back to /submit: an integer or nothing (never truncated)."""
    if tree_id is not None and (not isinstance(tree_id, int) or isinstance(tree_id, bool)):
        raise InputError(f"tree_id must be an integer (the tree_id /next_pair returned), got {tree_id!r}")
    return tree_id


# ---------------------------------------------------------------------------------------------- credentials


def _stamp(password_hash: str) -> str:
    return hashlib.sha256(password_hash.encode("utf-8")).hexdigest()[:16]


class Credentials:
    """name -> (role, credential stamp) of active users, re-read at most every `ttl` seconds.

    A session remembers the stamp of the password it logged in with; when the password changes or the
    account is deactivated, the stamp no longer matches and the session ends (within `ttl`)."""

    def __init__(self, tx, ttl: float = 1.0, clock=time.monotonic):
        self.tx, self.ttl, self.clock = tx, ttl, clock
        self.at, self.users = -math.inf, {}
        self.sessions: dict[str, str] = {}  # Gradio's session token -> stamp at login
        self.lock = threading.Lock()

    def stale(self) -> bool:
        return self.clock() - self.at > self.ttl

    def refresh(self) -> None:
        with self.tx() as s:
            rows = s.exec(select(User.name, User.role, User.password_hash).where(User.active == True)).all()
        with self.lock:
            self.users = {name: (role, _stamp(h)) for name, role, h in rows}
            self.at = self.clock()

    def _user(self, name: str):
        if self.stale():
            self.refresh()
        return self.users.get(name)

    def get(self, name: str) -> str | None:
        """The role of an active user, else None."""
        user = self._user(name)
        return user[0] if user else None

    def login(self, token: str, name: str) -> None:
        self.refresh()  # the password may have changed a moment ago
        user = self.users.get(name)
        if user:
            with self.lock:
                self.sessions[token] = user[1]

    def session_ok(self, token: str, name: str) -> bool:
        user = self._user(name)
        return user is not None and self.sessions.get(token) == user[1]

    def end(self, token: str) -> None:
        with self.lock:
            self.sessions.pop(token, None)

    def keep_only(self, tokens) -> None:
        """Forget the sessions Gradio no longer holds (logged out)."""
        with self.lock:
            self.sessions = {t: s for t, s in self.sessions.items() if t in tokens}


# ---------------------------------------------------------------------------------------------- throttling


class Throttle:
    """Failed logins per user name and per client address over a sliding window: past the limit, every
    login for that name or from that address is refused until the oldest failure leaves the window."""

    def __init__(self, per_name: int = 10, per_address: int = 30, window: float = 60.0, clock=time.monotonic):
        self.limits = {"name": per_name, "address": per_address}
        self.window, self.clock = window, clock
        self.failures: dict[tuple[str, str], deque] = {}
        self.lock = threading.Lock()

    def _recent(self, key, now) -> deque:
        q = self.failures.get(key, deque())
        while q and now - q[0] > self.window:
            q.popleft()
        if not q:
            self.failures.pop(key, None)
        return q

    def wait(self, name: str, address: str) -> float:
        """Seconds until a login for `name` from `address` is accepted again (0: now)."""
        now = self.clock()
        with self.lock:
            waits = [
                self.window - (now - q[0])
                for kind, value in (("name", name), ("address", address))
                if len(q := self._recent((kind, value), now)) >= self.limits[kind]
            ]
        return max(waits, default=0.0)

    def failed(self, name: str, address: str) -> int:
        """Record a failure; returns the failures of `name` in the window."""
        now = self.clock()
        with self.lock:
            for key in (("name", name), ("address", address)):
                q = self._recent(key, now)
                q.append(now)
                self.failures[key] = q
            if len(self.failures) > 100_000:  # a spray of names: forget the oldest
                for key in list(self.failures)[:50_000]:
                    del self.failures[key]
            return len(self.failures[("name", name)])

    def succeeded(self, name: str) -> None:
        with self.lock:
            self.failures.pop(("name", name), None)


# ---------------------------------------------------------------------------------------------- middleware


def _printable(name: str) -> str:
    return repr(name[:64])  # quoted and escaped: a user name cannot forge log lines


class Guard:
    """ASGI middleware: security headers on every response; sessions checked against their credentials;
    /login throttled and its failures logged (never the password); admin-only export downloads."""

    def __init__(self, app, *, credentials: Credentials, exports: AdminExports, throttle: Throttle):
        self.app, self.credentials, self.exports, self.throttle = app, credentials, exports, throttle

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)

        async def send_with_headers(message):
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), *SECURITY_HEADERS]
            await send(message)

        gradio = scope.get("app")
        request = Request(scope)
        token = _session_token(request, gradio)
        user = getattr(gradio, "tokens", {}).get(token) if token else None
        if user is not None:
            if self.credentials.stale():
                await anyio.to_thread.run_sync(self.credentials.refresh)
            if not self.credentials.session_ok(token, user):
                gradio.tokens.pop(token, None)  # Gradio's own session ends: every route now answers 401
                self.credentials.end(token)
                log.warning(
                    "ended a session of %s: password changed or account deactivated", _printable(user)
                )
                msg = "Your session has ended (password changed or account deactivated); please log in again."
                if "/gradio_api/" in scope["path"] or scope["method"] != "GET":
                    return await JSONResponse({"detail": msg}, 401)(scope, receive, send_with_headers)
                # a page load goes on without the session: Gradio shows its login form
        path = scope["path"]
        if path.rstrip("/").endswith("/login") and scope["method"] == "POST":
            return await self._login(scope, receive, send_with_headers, gradio)
        download = _DOWNLOAD.search(path)
        if download:
            return await self._download(scope, receive, send_with_headers, user, download.group(1))
        return await self.app(scope, receive, send_with_headers)

    async def _download(self, scope, receive, send, user, export_id):
        if user is None:
            response = JSONResponse({"detail": "Please log in."}, 401)
        elif self.credentials.get(user) != "admin":
            response = JSONResponse({"detail": "Only admins can download exports."}, 403)
        else:
            file = self.exports.get(export_id)
            if file is None:
                response = JSONResponse({"detail": "This export has expired; export again."}, 404)
            else:
                response = FileResponse(file, filename=file.name, headers={"cache-control": "no-store"})
        await response(scope, receive, send)

    async def _login(self, scope, receive, send, gradio):
        body, more = b"", True
        while more:
            message = await receive()
            body += message.get("body", b"")
            more = message.get("more_body", False)
            if len(body) > MAX_LOGIN_BODY:
                return await JSONResponse({"detail": "Login request too large."}, 413)(scope, receive, send)
        name = await _form_username(scope, body)
        address = (scope.get("client") or ("unknown", 0))[0]
        wait = self.throttle.wait(name, address)
        if wait > 0:
            log.warning("login refused for %s from %s: too many failed logins", _printable(name), address)
            msg = f"Too many failed logins for this user or address; try again in {math.ceil(wait)} s."
            return await JSONResponse({"detail": msg}, 429)(scope, receive, send)

        replayed = False

        async def replay():
            nonlocal replayed
            if replayed:
                return await receive()
            replayed = True
            return {"type": "http.request", "body": body, "more_body": False}

        status, cookie_name = [0], f"access-token-{getattr(gradio, 'cookie_id', '')}="

        async def watch(message):
            if message["type"] == "http.response.start":
                status[0] = message["status"]
                for key, value in message.get("headers", []):
                    text = value.decode("latin-1")
                    if key == b"set-cookie" and text.startswith(cookie_name):
                        await anyio.to_thread.run_sync(
                            self.credentials.login, text[len(cookie_name) :].split(";", 1)[0], name
                        )
            await send(message)

        await self.app(scope, replay, watch)
        if status[0] == 200:
            self.throttle.succeeded(name)
            self.credentials.keep_only(getattr(gradio, "tokens", {}))
        elif 400 <= status[0] < 500:
            n = self.throttle.failed(name, address)
            log.warning("failed login for %s from %s (%d in the last minute)", _printable(name), address, n)


async def _form_username(scope, body: bytes) -> str:
    """The user name of a login form, urlencoded (gradio_client) or multipart (the browser)."""

    async def once():
        return {"type": "http.request", "body": body, "more_body": False}

    try:
        form = await Request(scope, once).form()
        return str(form.get("username") or "").strip()
    except Exception:  # noqa: BLE001 - a malformed form: Gradio refuses it too; throttle it under ''
        return ""


def _session_token(request: Request, gradio) -> str | None:
    cookie_id = getattr(gradio, "cookie_id", None)
    if cookie_id is None:
        return None
    return request.cookies.get(f"access-token-{cookie_id}") or request.cookies.get(
        f"access-token-unsecure-{cookie_id}"
    )
