"""Where w2s keeps files it fetches or makes."""

from __future__ import annotations

import os
from pathlib import Path


def cache_dir() -> Path:
    """Root of the model cache: $W2S_CACHE, else ~/.cache/w2s."""
    return Path(os.environ.get("W2S_CACHE", "~/.cache/w2s")).expanduser()


def models_dir() -> Path:
    return cache_dir() / "models"
