"""The reliability engineer's export (w2s.store.export) feeds training unchanged, in all three formats."""

import pytest

from w2s.store import LabelSet, Pair, get_engine, session_scope
from w2s.training.data import load_rows

export = pytest.importorskip("w2s.store.export")


@pytest.mark.parametrize("fmt,name", [("jsonl", "x.jsonl"), ("parquet", "x.parquet"), ("hf", "xhf")])
def test_exported_label_set_loads(db_url, tmp_path, fmt, name):
    get_engine(db_url)
    with session_scope(db_url) as s:
        labels = [("a", 0.9, 1.0), ("b", 0.2, 0.6)]
        for i in range(2):
            s.add(
                Pair(
                    id=f"p{i}",
                    dataset="toy",
                    prompt="\n\nHuman: hi\n\nAssistant:",
                    response_a=" safe",
                    response_b=" rude",
                )
            )
        s.flush()
        for i, (label, p_a, w) in enumerate(labels):
            s.add(LabelSet(pair_id=f"p{i}", label=label, soft_label=p_a, entropy=0.3, weight=w, n_votes=3))
    with session_scope(db_url) as s:
        assert export.export_label_set(s, fmt, tmp_path / name) == 2
    rows = sorted(load_rows(tmp_path / name), key=lambda r: r["pair_id"])
    assert [r["chosen"] for r in rows] == [" safe", " rude"]  # each row's chosen is its label's winner
    assert [r["soft_label"] for r in rows] == pytest.approx([0.9, 0.8])  # P(chosen better)
    assert [r["weight"] for r in rows] == pytest.approx([1.0, 0.6])
