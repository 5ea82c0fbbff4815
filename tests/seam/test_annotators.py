"""Annotators: decisions averaged over both orders, SEAM's node picking and weak pruning, baselines,
dedup keys and resumability, with scripted weak and strong models."""

import pytest
from sqlmodel import func, select

from annotators.base import annotate_all, get_annotator
from annotators.methods import SeamConfig, pick_informative
from w2s.labels.variants import Variant
from w2s.store import Annotation, Node, session_scope
from w2s.trees import TreeConfig, build_trees

CRIME, PRIVACY, HATE = "No help with crime", "Respect privacy", "No harassment or hate"


def rows(url, method=None):
    with session_scope(url) as s:
        q = select(Annotation).order_by(Annotation.id)
        if method:
            q = q.where(Annotation.method == method)
        return list(s.exec(q))


def test_naive_averages_both_orders(scripted, pairs, db_url):
    weak = scripted(judge=(0.9, 0.7))  # strong position bias, slight preference for A: (0.9 + 0.3)/2
    assert annotate_all(get_annotator("naive", weak), pairs, url=db_url) == 3
    ann = rows(db_url)[0]
    assert ann.p_a == pytest.approx(0.6) and ann.label == "a" and ann.confidence == pytest.approx(0.6)
    assert ann.method == "naive" and ann.annotator == weak.spec and ann.variant == ""
    assert ann.dedup_key == f"naive|{weak.spec}|{ann.producer}||{ann.pair_id}" and len(ann.producer) == 16
    assert weak.calls == [("score", 6)]  # one batched call: 3 pairs x 2 orders


def test_rerun_adds_nothing_and_variant_is_new_row(scripted, pairs, db_url):
    weak = scripted(judge=(0.2, 0.9))
    ann = get_annotator("naive", weak)
    assert annotate_all(ann, pairs, url=db_url) == 3
    assert annotate_all(ann, pairs, url=db_url) == 0
    assert annotate_all(ann, pairs, url=db_url, variant=Variant(id="swap", swap=True)) == 3
    labels = {(r.variant, r.label) for r in rows(db_url)}
    assert labels == {("", "b"), ("swap", "b")}  # p_a = (0.2 + 0.1)/2 either way round


def test_strong_is_stored_under_strong_spec(scripted, pairs, db_url):
    weak, strong = scripted(judge=(0.5, 0.5)), scripted(judge=(0.3, 0.9))
    annotate_all(get_annotator("strong", weak, strong), pairs, url=db_url)
    ann = rows(db_url)[0]
    assert ann.annotator == strong.spec and ann.label == "b" and ann.p_a == pytest.approx(0.2)
    assert weak.calls == []


def test_strong_methods_need_a_strong_model(scripted):
    with pytest.raises(ValueError, match="needs a strong model"):
        get_annotator("seam", scripted())
    with pytest.raises(ValueError, match="unknown annotator"):
        get_annotator("oracle", scripted())


def test_cot_gives_strong_reasoning_to_weak_with_labels_swapped(scripted, pairs, db_url):
    strong = scripted(thought="Reply A refuses and Reply B helps the crime.")
    weak = scripted(decision=(0.8, 0.4), judge=(0.5, 0.5))
    for name in ("cot-v1", "cot-v2", "cot-v3"):
        annotate_all(get_annotator(name, weak, strong), pairs, url=db_url)
    got = rows(db_url)
    assert {r.method for r in got} == {"cot-v1", "cot-v2", "cot-v3"} and len(got) == 9
    assert all(r.p_a == pytest.approx(0.7) for r in got)  # (0.8 + 0.6) / 2
    assert got[0].meta["reasoning"] == "Reply A refuses and Reply B helps the crime."
    assert ("generate", 3) in strong.calls


def test_seam_consults_informative_nodes_and_records_pruning(scripted, pairs, db_url):
    strong = scripted(
        relevance={CRIME: 0.9, PRIVACY: 0.8, HATE: 0.7},
        verdict={CRIME: (0.7, 0.4), PRIVACY: (0.6, 0.3), HATE: (0.9, 0.1)},
    )
    build_trees(strong, pairs, TreeConfig(), url=db_url)
    weak = scripted(decision=(0.9, 0.2), judge=(0.1, 0.1), weak_relevance={CRIME: 0.3})
    annotate_all(get_annotator("seam", weak, strong, top_k=2, tau_info=0.5), pairs, url=db_url)
    ann = rows(db_url, "seam")[0]
    with session_scope(db_url) as s:
        nodes = {n.principle_name: n for n in s.exec(select(Node).where(Node.tree_id == ann.tree_id))}
    # chain: crime 0.65 (continue), privacy 0.65 (continue), hate 0.9 (exit); top-2 by info: hate, then crime/privacy
    assert nodes[HATE].role == "exit"
    assert ann.consulted_node_ids[0] == nodes[HATE].id
    pruned_ids = [p["node_id"] for p in ann.pruned]
    assert pruned_ids == [nodes[CRIME].id] and "0.300 < 0.5" in ann.pruned[0]["reason"]
    assert nodes[CRIME].id not in ann.consulted_node_ids
    assert ann.p_a == pytest.approx(0.85) and ann.label == "a"  # (0.9 + 0.8) / 2 with notes


def test_seam_without_tree_fails_clearly(scripted, pairs, db_url):
    weak, strong = scripted(), scripted()
    with pytest.raises(LookupError, match="no tree"):
        annotate_all(get_annotator("seam", weak, strong), pairs, url=db_url)
    assert rows(db_url) == []


def test_pick_informative_top_k_plus_tau_info():
    nodes = [
        Node(id=i, tree_id=1, position=i, principle_id="x", relevance=1, info=v, role="continue")
        for i, v in enumerate([0.1, 0.9, 0.6, 0.55, 0.2])
    ]
    nodes.append(
        Node(id=9, tree_id=1, position=5, principle_id="x", relevance=1, info=0.99, role="pruned_by_search")
    )
    picked = pick_informative(nodes, SeamConfig(top_k=2, tau_info=0.5))
    assert [n.id for n in picked] == [1, 2, 3]  # top-2 plus 0.55 >= tau_info; pruned_by_search is skipped
    only_pruned = [nodes[-1]]
    assert [n.id for n in pick_informative(only_pruned, SeamConfig())] == [9]


def test_consistency_filter(scripted, pairs, db_url):
    weak = scripted(judge=(0.9, 0.3))  # weak says A
    agree, disagree = scripted(judge=(0.8, 0.4)), scripted(judge=(0.2, 0.6))
    annotate_all(get_annotator("consistency", weak, agree), pairs, url=db_url)
    assert {r.label for r in rows(db_url)} == {"a"}
    with session_scope(db_url) as s:
        s.exec(Annotation.__table__.delete())
    annotate_all(get_annotator("consistency", weak, disagree), pairs, url=db_url)
    got = rows(db_url)
    assert {r.label for r in got} == {"tie"} and got[0].meta["filtered"] is True


def test_annotation_counts_exact_after_partial_batches(scripted, db_url):
    from seam_scripted import add_pairs

    ids = add_pairs(db_url, 7)
    weak = scripted(judge=(0.9, 0.3))
    ann = get_annotator("naive", weak)
    assert annotate_all(ann, ids[:3], url=db_url, batch_size=2) == 3
    assert annotate_all(ann, ids, url=db_url, batch_size=2) == 4
    with session_scope(db_url) as s:
        assert s.exec(select(func.count()).select_from(Annotation)).one() == 7


def test_single_order_option_makes_swap_variant_ask_the_other_way(scripted, pairs, db_url):
    weak = scripted(judge=(0.9, 0.7))
    ann = get_annotator("naive", weak, both_orders=False)
    annotate_all(ann, pairs, url=db_url)
    annotate_all(ann, pairs, url=db_url, variant=Variant(id="swap", swap=True))
    by_variant = {r.variant: r.p_a for r in rows(db_url) if r.pair_id == pairs[0]}
    assert by_variant[""] == pytest.approx(0.9)  # A first: P(first) = 0.9
    assert by_variant["swap"] == pytest.approx(0.3)  # B first: P(first) = 0.7 -> P(A) = 0.3
    assert weak.calls == [("score", 3), ("score", 3)]


def test_the_producer_names_only_what_makes_the_label(scripted):
    weak, other, strong = scripted(judge=(0.9, 0.7)), scripted(judge=(0.8, 0.7)), scripted(judge=(0.6, 0.5))
    assert (
        get_annotator("strong", weak, strong).producer_hash()
        == get_annotator("strong", other, strong).producer_hash()
    )
    assert get_annotator("naive", weak).producer_hash() != get_annotator("naive", other).producer_hash()
    assert (
        get_annotator("naive", weak).producer_hash()
        != get_annotator("naive", weak, both_orders=False).producer_hash()
    )
    seam = get_annotator("seam", weak, strong).producer()
    assert set(seam) >= {"method", "weak", "strong", "options", "templates", "principles", "tree_config"}
    assert set(seam["templates"]) == {"weak-relevance", "weak-decision"}
