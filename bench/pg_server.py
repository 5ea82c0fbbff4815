"""A throw-away PostgreSQL server on 127.0.0.1, started from Debian's `postgresql` package binaries: what
the tests (tests/pg.py) and the benches (bench/trees_workers.py) run against.

    with throwaway() as server:
        url = server.create_database("w2s_bench")

PostgreSQL refuses to run as root, so as root the server runs as the `postgres` system user through
`runuser`. `Unavailable` says why no server can be started here (no binaries, no such user).
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path


class Unavailable(RuntimeError):
    """No PostgreSQL server can be started on this machine; the message says why and what to install."""


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


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def admin_execute(admin_url: str, sql: str) -> None:
    import psycopg

    conninfo = admin_url.replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(conninfo, autocommit=True) as conn:
        conn.execute(sql)


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

    def create_database(self, name: str) -> str:
        """A new empty database; its SQLAlchemy URL (psycopg 3)."""
        admin_execute(self.admin_url, f'CREATE DATABASE "{name}"')
        return self.admin_url.rsplit("/", 1)[0] + f"/{name}"

    def _cmd(self, *args: str) -> list[str]:
        return (["runuser", "-u", self.run_as, "--"] if self.run_as else []) + list(args)

    def start(self) -> None:
        """initdb and start; a failure raises RuntimeError with the server's own words."""
        self.data_dir.mkdir(parents=True, exist_ok=True)
        if self.run_as:
            user = pwd.getpwnam(self.run_as)
            os.chown(self.data_dir, user.pw_uid, user.pw_gid)
        pgdata = self.data_dir / "data"
        opts = (
            f"-p {self.port} -c listen_addresses=127.0.0.1 -k {self.data_dir} -c fsync=off "
            "-c synchronous_commit=off -c full_page_writes=off -c max_connections=100"
        )
        try:
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
        except subprocess.CalledProcessError as e:
            log = self.data_dir / "server.log"
            detail = (e.stderr or b"").decode(errors="replace") + (log.read_text() if log.exists() else "")
            self.stop()
            raise RuntimeError(f"could not start PostgreSQL: {detail}") from e

    def stop(self) -> None:
        subprocess.run(
            self._cmd(
                str(self.bin_dir / "pg_ctl"), "-D", str(self.data_dir / "data"), "-m", "fast", "-w", "stop"
            ),
            capture_output=True,
            check=False,
        )
        shutil.rmtree(self.data_dir, ignore_errors=True)


def new_server() -> PostgresServer:
    """A server (not started yet) in a new temporary folder on a free port of 127.0.0.1."""
    bin_dir = find_bin_dir()
    if bin_dir is None:
        raise Unavailable(
            "PostgreSQL server binaries not found (apt-get install postgresql, or set W2S_PG_BIN)"
        )
    run_as = None
    if os.geteuid() == 0:
        try:
            pwd.getpwnam("postgres")
        except KeyError:
            raise Unavailable(
                "running as root and there is no 'postgres' user to run the server as"
            ) from None
        run_as = "postgres"
    return PostgresServer(bin_dir, Path(tempfile.mkdtemp(prefix="w2s-pg-")), free_port(), run_as)


@contextmanager
def throwaway() -> Iterator[PostgresServer]:
    """A started server, stopped and deleted at the end."""
    server = new_server()
    server.start()
    try:
        yield server
    finally:
        server.stop()
