"""A real PostgreSQL server for tests, started from Debian's `postgresql` package binaries.

Use from any test area's conftest.py::

    from pg import postgres_server, pg_url  # noqa: F401  (tests/ is on sys.path under pytest)

`postgres_server` (session scope) starts one server in a temporary data dir on a free port of
127.0.0.1 and stops it at the end; `pg_url` (function scope) gives each test a fresh, empty database
(a SQLAlchemy URL using psycopg 3). Set $W2S_TEST_PG_URL to an existing server's URL (a user allowed to
CREATE DATABASE) to use it instead. Tests are skipped, with the reason, only when no server binary is
found (or psycopg is not installed). PostgreSQL refuses to run as root, so as root the server runs as the
`postgres` system user through `runuser`.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import uuid
from dataclasses import dataclass
from pathlib import Path

import pytest


def find_bin_dir() -> Path | None:
    """Folder holding initdb and pg_ctl: $W2S_PG_BIN, Debian's newest /usr/lib/postgresql/N/bin, or PATH."""
    candidates = [os.environ.get("W2S_PG_BIN", "")]
    candidates += sorted(
        glob.glob("/usr/lib/postgresql/*/bin"), key=lambda p: int(Path(p).parent.name), reverse=True
    )
    which = shutil.which("pg_ctl")
    candidates.append(str(Path(which).parent) if which else "")
    for c in candidates:
        if c and (Path(c) / "initdb").exists() and (Path(c) / "pg_ctl").exists():
            return Path(c)
    return None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class PostgresServer:
    """A throw-away server; `admin_url` connects to its `postgres` database as superuser."""

    bin_dir: Path
    data_dir: Path
    port: int
    run_as: str | None

    @property
    def admin_url(self) -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/postgres"

    def _cmd(self, *args: str) -> list[str]:
        return (["runuser", "-u", self.run_as, "--"] if self.run_as else []) + list(args)

    def start(self) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        if self.run_as:
            user = pwd.getpwnam(self.run_as)
            os.chown(self.data_dir, user.pw_uid, user.pw_gid)
        pgdata = self.data_dir / "data"
        subprocess.run(
            self._cmd(
                str(self.bin_dir / "initdb"),
                "-D",
                str(pgdata),
                "-U",
                "postgres",
                "--auth=trust",
                "--encoding=UTF8",
                "--no-sync",
            ),
            check=True,
            capture_output=True,
        )
        opts = (
            f"-p {self.port} -c listen_addresses=127.0.0.1 -k {self.data_dir} -c fsync=off "
            "-c synchronous_commit=off -c full_page_writes=off -c max_connections=100"
        )
        subprocess.run(
            self._cmd(
                str(self.bin_dir / "pg_ctl"),
                "-D",
                str(pgdata),
                "-o",
                opts,
                "-l",
                str(self.data_dir / "server.log"),
                "-w",
                "-t",
                "60",
                "start",
            ),
            check=True,
            capture_output=True,
        )

    def stop(self) -> None:
        subprocess.run(
            self._cmd(
                str(self.bin_dir / "pg_ctl"), "-D", str(self.data_dir / "data"), "-m", "fast", "-w", "stop"
            ),
            capture_output=True,
            check=False,
        )
        shutil.rmtree(self.data_dir, ignore_errors=True)


def _admin_execute(admin_url: str, sql: str) -> None:
    import psycopg

    conninfo = admin_url.replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(conninfo, autocommit=True) as conn:
        conn.execute(sql)


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
    bin_dir = find_bin_dir()
    if bin_dir is None:
        pytest.skip("PostgreSQL server binaries not found (apt-get install postgresql, or set W2S_PG_BIN)")
    run_as = None
    if os.geteuid() == 0:
        try:
            pwd.getpwnam("postgres")
        except KeyError:
            pytest.skip("running as root and there is no 'postgres' user to run the server as")
        run_as = "postgres"
    server = PostgresServer(bin_dir, Path(tempfile.mkdtemp(prefix="w2s-pg-")), _free_port(), run_as)
    try:
        server.start()
    except subprocess.CalledProcessError as e:
        log = server.data_dir / "server.log"
        detail = (e.stderr or b"").decode(errors="replace") + (log.read_text() if log.exists() else "")
        server.stop()
        raise RuntimeError(f"could not start PostgreSQL: {detail}") from e
    try:
        yield server.admin_url
    finally:
        server.stop()


@pytest.fixture
def pg_url(postgres_server, monkeypatch) -> str:
    """A fresh empty database on the test server, also exported as $W2S_DB for CLI calls."""
    from w2s import store

    name = f"w2s_test_{uuid.uuid4().hex[:12]}"
    _admin_execute(postgres_server, f'CREATE DATABASE "{name}"')
    url = postgres_server.rsplit("/", 1)[0] + f"/{name}"
    monkeypatch.setenv("W2S_DB", url)
    yield url
    engine = store._engines.pop(url, None)
    if engine is not None:
        engine.dispose()
    _admin_execute(postgres_server, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
