"""End to end with the real SmolLM2-135M-Instruct as both strong and weak model on demo pairs."""

import math
from pathlib import Path

import pytest
from sqlmodel import select
from typer.testing import CliRunner

from annotators.base import annotate_all, get_annotator
from w2s.backends import get_model
from w2s.store import Annotation, Node, Pair, session_scope
from w2s.store.importers import ImportConfig, import_file
from w2s.trees import TreeConfig, build_trees

pytestmark = pytest.mark.slow
DEMO = Path(__file__).resolve().parents[2] / "data" / "demo_pairs.jsonl"


@pytest.fixture
def demo_ids(db_url, tmp_path):
    subset = tmp_path / "demo3.jsonl"
    subset.write_text("\n".join(DEMO.read_text().splitlines()[:3]) + "\n")
    import_file(subset, ImportConfig(dataset="demo-harmless", split="test"), url=db_url)
    with session_scope(db_url) as s:
        return [p.id for p in s.exec(select(Pair).order_by(Pair.id))]


def test_trees_and_annotations_with_smollm2(db_url, demo_ids, weak_spec):
    import torch

    torch.set_num_threads(1)
    model = get_model(weak_spec)
    cfg = TreeConfig(thought_max_tokens=16, max_depth=1, max_backtraces=1)
    assert build_trees(model, demo_ids, cfg, url=db_url) == 3
    assert build_trees(model, demo_ids, cfg, url=db_url) == 0
    with session_scope(db_url) as s:
        nodes = list(s.exec(select(Node)))
    assert 3 <= len(nodes) <= 6
    for n in nodes:
        assert 0.0 <= n.relevance <= 1.0 and n.p_a + n.p_b == pytest.approx(1.0)
        assert n.thought.strip() and n.tokens > 0 and n.seconds > 0
        assert n.info == pytest.approx(n.relevance * (1 - n.entropy / math.log(2)))
    for method in ("naive", "seam", "cot-v3"):
        assert annotate_all(get_annotator(method, model, model), demo_ids, url=db_url) == 3
        assert annotate_all(get_annotator(method, model, model), demo_ids, url=db_url) == 0
    with session_scope(db_url) as s:
        rows = list(s.exec(select(Annotation)))
    assert len(rows) == 9
    for r in rows:
        assert r.label in ("a", "b", "tie") and 0.0 < r.p_a < 1.0
        assert r.confidence == pytest.approx(max(r.p_a, 1 - r.p_a))
    seam = [r for r in rows if r.method == "seam"]
    node_ids = {n.id for n in nodes}
    assert all(r.tree_id is not None and set(r.consulted_node_ids) <= node_ids for r in seam)

    from w2s.cli import app

    out = CliRunner().invoke(app, ["trees", "show", demo_ids[0]])
    assert out.exit_code == 0 and "transformers:smollm2" in out.output
