"""A store holding a synthetic crowd: pairs with gold, model variants and humans of known accuracy."""

from __future__ import annotations

import random
from dataclasses import dataclass

import pytest

from w2s.store import Annotation, Node, Pair, Tree, add_annotation, session_scope

# worker -> (method, annotator, kind, variant, accuracy)
WORKERS = [
    ("seam", "transformers:smollm2", "model", "", 0.8),
    ("seam", "transformers:smollm2", "model", "swap", 0.75),
    ("seam", "transformers:smollm2", "model", "v2", 0.7),
    ("naive", "transformers:smollm2", "model", "", 0.6),
    ("human", "alice", "human", "", 0.9),
]


@dataclass
class Crowd:
    url: str
    gold: dict[str, str]
    n_annotations: int


def make_crowd(url: str, n_pairs: int = 40, seed: int = 0) -> Crowd:
    rng = random.Random(seed)
    gold: dict[str, str] = {}
    n = 0
    with session_scope(url) as s:
        for i in range(n_pairs):
            pid = f"p{i:03d}"
            gold[pid] = rng.choice(["a", "b"])
            s.add(
                Pair(
                    id=pid,
                    dataset="synth" if i % 4 else "synth-extra",
                    split="train",
                    prompt=f"Question {i}: how do I stay safe? ünïcode ✓",
                    response_a=f"answer A{i}",
                    response_b=f"answer B{i}",
                    gold=gold[pid],
                    source=f"synth.jsonl:{i + 1}",
                )
            )
        s.flush()
        tree = Tree(pair_id="p000", strong_model="test", config_hash="x")
        s.add(tree)
        s.flush()
        nodes = [
            Node(tree_id=tree.id, position=k, principle_id=f"harmlessness/p{k}", relevance=0.9)
            for k in range(2)
        ]
        s.add_all(nodes)
        s.flush()
        for pid, y in gold.items():
            for method, annotator, kind, variant, acc in WORKERS:
                label = y if rng.random() < acc else ("b" if y == "a" else "a")
                p_a = round(rng.uniform(0.55, 0.95), 3)
                extra = {}
                if pid == "p000" and method == "seam":
                    extra = {
                        "tree_id": tree.id,
                        "consulted_node_ids": [nodes[0].id],
                        "pruned": [{"node_id": nodes[1].id, "reason": "irrelevant"}],
                    }
                add_annotation(
                    s,
                    Annotation(
                        pair_id=pid,
                        annotator=annotator,
                        annotator_kind=kind,
                        label=label,
                        p_a=p_a if label == "a" else 1 - p_a,
                        method=method,
                        variant=variant,
                        dedup_key=f"{method}|{annotator}|{variant}|{pid}",
                        **extra,
                    ),
                )
                n += 1
    return Crowd(url, gold, n)


@pytest.fixture
def crowd(db_url) -> Crowd:
    return make_crowd(db_url)
