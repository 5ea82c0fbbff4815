"""SEAM fixtures: the scripted model (a real backend whose probabilities the test sets) and pairs."""

from __future__ import annotations

import itertools

import pytest
from seam_scripted import SCRIPTS, Script, add_pairs

from w2s.backends import get_model

_names = itertools.count()


@pytest.fixture
def scripted():
    """`scripted(**script)` -> a fresh scripted model with that script."""
    made = []

    def make(**kwargs):
        name = f"s{next(_names)}"
        SCRIPTS[name] = Script(**kwargs)
        made.append(name)
        return get_model(f"scripted:{name}", reuse=False)

    yield make
    for name in made:
        SCRIPTS.pop(name, None)


@pytest.fixture
def pairs(db_url):
    return add_pairs(db_url, 3)
