"""The store's schema version, kept by Alembic (w2s/store/migrations/).

A new store is created from the tables and stamped with the newest revision; an existing one must be at
that revision, else every command refuses it with `StoreOutOfDate`, naming `w2s db upgrade`. A store
created before w2s used Alembic has the baseline revision's tables and no version table: `upgrade`
stamps it as the baseline first.
"""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import inspect
from sqlalchemy.engine import Connection, Engine

from w2s.store.db import safe_url

BASELINE = "0001"
"""The schema of w2s before migrations (commit 5758463)."""

MIGRATIONS = Path(__file__).with_name("migrations")


class StoreOutOfDate(RuntimeError):
    """The store's schema is not the one this w2s writes; the message names the command that fixes it."""


def _config(connection: Connection | None = None) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.attributes["connection"] = connection
    return cfg


def head() -> str:
    return ScriptDirectory.from_config(_config()).get_current_head()


def current(connection: Connection) -> str | None:
    """The store's revision; BASELINE for a pre-Alembic store, None for an empty database."""
    rev = MigrationContext.configure(connection).get_current_revision()
    if rev is None and inspect(connection).has_table("pair"):
        return BASELINE
    return rev


def ensure(engine: Engine) -> None:
    """Create an empty store at the newest revision; refuse one at any other revision."""
    from sqlmodel import SQLModel

    with engine.begin() as conn:
        rev = current(conn)
        if rev is None:
            SQLModel.metadata.create_all(conn)
            command.stamp(_config(conn), "head")
            return
    if rev != head():
        known = {s.revision for s in ScriptDirectory.from_config(_config()).walk_revisions()}
        db = safe_url(engine.url)
        if rev in known:
            raise StoreOutOfDate(
                f"the store {db} has schema revision {rev}, this w2s needs {head()}: "
                f"back it up, then run `w2s --db '{db}' db upgrade`"
            )
        raise StoreOutOfDate(
            f"the store {db} has schema revision {rev}, unknown to this w2s (newer?): upgrade w2s"
        )


def upgrade(engine: Engine, revision: str = "head") -> tuple[str | None, str]:
    """Migrate the store to `revision`; returns (revision before, revision after)."""
    with engine.begin() as conn:
        before = current(conn)
        if before == BASELINE and MigrationContext.configure(conn).get_current_revision() is None:
            command.stamp(_config(conn), BASELINE)  # a pre-Alembic store: its tables are the baseline's
        command.upgrade(_config(conn), revision)
        return before, current(conn)
