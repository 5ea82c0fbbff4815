"""The store queries a master needs: gold pairs with their trees (`w2s.trees.selection.TreeSelector`) or
their stored CoT reasoning, loaded and detached as `MasterInputs`."""

from __future__ import annotations

from collections.abc import Sequence

from sqlmodel import Session, select

from w2s.masters.features import MasterInputs
from w2s.store import Node, Pair, Tree
from w2s.trees.selection import TreeSelector, nodes_of


def gold_pairs(session: Session, pair_ids: Sequence[str]) -> dict[str, Pair]:
    """pair id -> pair, of the pairs of `pair_ids` whose gold is a or b."""
    ids, out = list(pair_ids), {}
    for i in range(0, len(ids), 500):
        out.update(
            {
                p.id: p
                for p in session.exec(
                    select(Pair).where(Pair.id.in_(ids[i : i + 500]), Pair.gold.in_(["a", "b"]))
                )
            }
        )
    return out


def training_rows(
    session: Session, pair_ids: Sequence[str], strong: str, config_hash: str | None
) -> tuple[str, list[Pair], list[Tree], list[list[Node]]]:
    """(config hash, pairs, trees, nodes): the pairs of `pair_ids` (in that order) with gold a/b and a
    tree by `strong` of that config (without one, the config `TreeSelector` chooses for these gold
    pairs), detached from the session."""
    gold = gold_pairs(session, pair_ids)
    selector = TreeSelector(strong, config_hash)
    trees = selector.settle(session, list(gold))
    chosen_config = next(iter(trees.values())).config_hash if trees else (config_hash or "")
    chosen = [pid for pid in pair_ids if pid in gold and pid in trees]
    pairs, tree_rows = [gold[pid] for pid in chosen], [trees[pid] for pid in chosen]
    nodes = nodes_of(session, tree_rows)
    for row in (*pairs, *tree_rows, *[n for ns in nodes for n in ns]):
        session.expunge(row)
    return chosen_config, pairs, tree_rows, nodes


def training_inputs(
    session: Session, pair_ids: Sequence[str], strong: str, config_hash: str | None
) -> tuple[str, MasterInputs]:
    """`training_rows` as `MasterInputs`, with the trees' principle library (an error when they use several)."""
    from w2s.trees.principles import load_library

    config, pairs, trees, nodes = training_rows(session, pair_ids, strong, config_hash)
    libraries = {t.library for t in trees}
    if len(libraries) > 1:
        raise ValueError(
            f"the trees use several libraries ({', '.join(sorted(libraries))}): select one dataset"
        )
    library = load_library(libraries.pop()) if libraries else None
    return config, MasterInputs(pairs, trees, nodes, library)


def reasoning_rows(
    session: Session, pair_ids: Sequence[str], method: str, strong: str, max_tokens: int | None
):
    """(token budget, pairs, reasoning texts): the pairs of `pair_ids` (in that order) with gold a/b and
    `method`'s stored reasoning by `strong` (of that budget, or the most common one), detached."""
    from w2s.reasoning import stored_reasoning

    gold = gold_pairs(session, pair_ids)
    budget, found = stored_reasoning(session, list(gold), method, strong, max_tokens)
    chosen = [pid for pid in pair_ids if pid in gold and pid in found]
    for pid in chosen:
        session.expunge(gold[pid])
    return budget, [gold[pid] for pid in chosen], [found[pid].text for pid in chosen]


def trees_for_master(
    session: Session, pair_ids: Sequence[str], strong: str, config_hash: str
) -> dict[str, tuple[Tree, list[Node]]]:
    """pair id -> (tree, nodes) that a tree master trained on `strong`'s trees of `config_hash` reads."""
    return TreeSelector(strong, config_hash).settle_with_nodes(session, pair_ids)
