import pytest
from sqlmodel import select

from w2s.labels.aggregate import build_label_set
from w2s.store import Annotation, LabelSet, session_scope


def rows(url, name="default"):
    with session_scope(url) as s:
        return {r.pair_id: r for r in s.exec(select(LabelSet).where(LabelSet.name == name))}


def test_build_majority_and_idempotent_rebuild(crowd):
    with session_scope(crowd.url) as s:
        rep = build_label_set(s, method="majority", temperature=0.2)
    assert rep.n_pairs == rep.n_written == 40 and rep.n_filtered == 0
    first = rows(crowd.url)
    assert len(first) == 40
    r = first["p001"]
    assert r.n_votes == 5 and sum(r.params["votes"].values()) == 5
    assert 0.0 <= r.soft_label <= 1.0 and r.method == "majority"
    # odd vote counts: no ties, and the weight is the softmax weight of the winning answer
    assert all(x.label in ("a", "b") for x in first.values())
    assert r.weight == pytest.approx(r.params["answer_weights"][r.label])
    accuracy = sum(x.label == crowd.gold[p] for p, x in first.items()) / 40
    assert accuracy >= 0.8
    with session_scope(crowd.url) as s:
        build_label_set(s, method="majority", temperature=0.2)
        build_label_set(s, name="ds", method="dawid-skene", temperature=None)
    again = rows(crowd.url)
    assert {p: (x.label, x.weight) for p, x in again.items()} == {
        p: (x.label, x.weight) for p, x in first.items()
    }
    assert len(rows(crowd.url, "ds")) == 40
    assert all(x.weight == 1.0 for x in rows(crowd.url, "ds").values())
    with session_scope(crowd.url) as s:
        assert len(s.exec(select(LabelSet)).all()) == 80  # the rebuild replaced, never appended


def test_filter_entropy_keeps_the_confident_half(crowd):
    with session_scope(crowd.url) as s:
        build_label_set(s, name="all", method="soft")
        rep = build_label_set(s, name="f", method="soft", filter_percentile=50)
    everything, kept = rows(crowd.url, "all"), rows(crowd.url, "f")
    assert rep.n_written == len(kept) and rep.n_filtered == 40 - len(kept) > 0
    assert len(kept) >= 20  # at least half: pairs at the median are kept
    assert max(r.entropy for r in kept.values()) <= rep.entropy_threshold + 1e-12
    assert min(r.entropy for p, r in everything.items() if p not in kept) > rep.entropy_threshold


def test_filters_and_superseded_rows(crowd):
    with session_scope(crowd.url) as s:
        old = s.exec(
            select(Annotation).where(Annotation.pair_id == "p002", Annotation.annotator == "alice")
        ).one()
        flipped = "a" if old.label == "b" else "b"
        s.add(
            Annotation(
                pair_id="p002",
                annotator="alice",
                annotator_kind="human",
                label=flipped,
                method="human",
                supersedes_id=old.id,
            )
        )
        build_label_set(s, name="alice", annotators=["alice"])
        build_label_set(s, name="canon", methods=["seam"], include_variants=False)
    alice = rows(crowd.url, "alice")
    assert len(alice) == 40 and all(r.n_votes == 1 for r in alice.values())
    assert alice["p002"].label == flipped  # the correction counts, the superseded row does not
    assert all(r.n_votes == 1 for r in rows(crowd.url, "canon").values())


def test_build_on_empty_store(db_url):
    with session_scope(db_url) as s:
        rep = build_label_set(s, method="dawid-skene")
    assert rep.n_pairs == 0 and rep.n_written == 0
