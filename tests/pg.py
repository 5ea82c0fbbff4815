"""A real PostgreSQL server for tests (bench/pg_server.py starts it from Debian's `postgresql` binaries).

Use from any test area's conftest.py::

    from pg import postgres_server, pg_url  # noqa: F401  (tests/ is on sys.path under pytest)

`postgres_server` (session scope) starts one server in a temporary data dir on a free port of
127.0.0.1 and stops it at the end; `pg_url` (function scope) gives each test a fresh, empty database
(a SQLAlchemy URL using psycopg 3). Set $W2S_TEST_PG_URL to an existing server's URL (a user allowed to
CREATE DATABASE) to use it instead. Tests are skipped, with the reason, only when no server binary is
found (or psycopg is not installed).
"""

from __future__ import annotations

import os
import sys
import uuid

import pytest
from paths import ROOT

sys.path.insert(0, str(ROOT / "bench"))
from pg_server import Unavailable, admin_execute, new_server  # noqa: E402


@pytest.fixture(scope="session")
def postgres_server():
    """The admin URL of a running PostgreSQL server (started here, or $W2S_TEST_PG_URL)."""
    pytest.importorskip(
        "psycopg", reason="psycopg is not installed: pip install 'psycopg[binary]' (w2s[postgres])"
    )
    external = os.environ.get("W2S_TEST_PG_URL")
    if external:
        yield external
        return
    try:
        server = new_server()
    except Unavailable as e:
        pytest.skip(str(e))
    server.start()
    try:
        yield server.admin_url
    finally:
        server.stop()


@pytest.fixture
def pg_url(postgres_server, monkeypatch) -> str:
    """A fresh empty database on the test server, also exported as $W2S_DB for CLI calls."""
    from w2s.store import db as store

    name = f"w2s_test_{uuid.uuid4().hex[:12]}"
    admin_execute(postgres_server, f'CREATE DATABASE "{name}"')
    url = postgres_server.rsplit("/", 1)[0] + f"/{name}"
    monkeypatch.setenv("W2S_DB", url)
    yield url
    engine = store._engines.pop(url, None)
    if engine is not None:
        engine.dispose()
    admin_execute(postgres_server, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
