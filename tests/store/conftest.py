"""Store fixtures: the PostgreSQL server of tests/pg.py and `store_url`, one test run per backend."""

from __future__ import annotations

import pytest
from pg import pg_url, postgres_server  # noqa: F401  (fixtures; tests/ is on sys.path under pytest)


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def store_url(request) -> str:
    """A fresh database on SQLite and on PostgreSQL (both also exported as $W2S_DB)."""
    return request.getfixturevalue("db_url" if request.param == "sqlite" else "pg_url")
