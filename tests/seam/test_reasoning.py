"""The strong model's reasoning as stored with cot-* labels, read back by the strong model and budget
that wrote it (what a cot-* master reads)."""

import pytest

from annotators.base import annotate_all, get_annotator
from w2s.reasoning import stored_reasoning
from w2s.store import session_scope


def test_reasoning_is_read_by_strong_model_and_budget(scripted, db_url, pairs):
    weak = scripted(decision=(0.6, 0.5))
    first, other = scripted(thought="one two three four five"), scripted(thought="other model")
    annotate_all(get_annotator("cot-v1", weak, first, reasoning_max_tokens=2), pairs, url=db_url)
    annotate_all(get_annotator("cot-v1", weak, first, reasoning_max_tokens=4), pairs[:1], url=db_url)
    annotate_all(get_annotator("cot-v2", weak, other, reasoning_max_tokens=4), pairs, url=db_url)
    with session_scope(db_url) as s:
        budget, found = stored_reasoning(s, pairs, "cot-v1", first.spec)
        assert budget == 2 and {p: r.text for p, r in found.items()} == dict.fromkeys(pairs, "one two")
        budget, found = stored_reasoning(s, pairs, "cot-v1", first.spec, max_tokens=4)
        assert budget == 4 and {p: r.text for p, r in found.items()} == {pairs[0]: "one two three four"}
        assert stored_reasoning(s, pairs, "cot-v1", other.spec) == (None, {})  # other's reasoning is cot-v2's
        assert {r.text for r in stored_reasoning(s, pairs, "cot-v2", other.spec)[1].values()} == {
            "other model"
        }
        with pytest.raises(ValueError, match="unknown CoT method 'cot-v7'"):
            stored_reasoning(s, pairs, "cot-v7", first.spec)


def test_reasoning_written_with_another_template_is_not_read(scripted, db_url, pairs, monkeypatch):
    weak, strong = scripted(decision=(0.6, 0.5)), scripted(thought="stale")
    annotate_all(get_annotator("cot-v3", weak, strong, reasoning_max_tokens=2), pairs, url=db_url)
    monkeypatch.setattr(
        "w2s.reasoning.template_hash", lambda name: "edited00000"
    )  # cot-v3.jinja edited since
    with session_scope(db_url) as s:
        assert stored_reasoning(s, pairs, "cot-v3", strong.spec) == (None, {})
