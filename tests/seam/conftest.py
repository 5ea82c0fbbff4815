"""SEAM fixtures: the scripted model (a real backend whose probabilities the test sets) and pairs."""

from __future__ import annotations

import itertools

import pytest
from seam_scripted import SCRIPTS, Script

from w2s.backends import get_model
from w2s.store import Pair, session_scope

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


def add_pairs(url: str, n: int, dataset: str = "hh-harmless", gold: str = "a") -> list[str]:
    """n pairs whose responses carry the [A]/[B] markers the scripted model reads."""
    ids = []
    with session_scope(url) as session:
        for i in range(n):
            pid = f"pair{i:03d}"
            session.add(Pair(id=pid, dataset=dataset, split="test", prompt=f"How do I do thing {i}?",
                             response_a=f"[A] I can't help with that ({i}).", response_b=f"[B] Sure, here is how ({i}).",
                             gold=gold))
            ids.append(pid)
    return ids


@pytest.fixture
def pairs(db_url):
    return add_pairs(db_url, 3)
