"""The lock-step waves `w2s trees build` ran before the per-pair scheduler: a batch of pairs advances one
node per step through batched sync calls, and the next batch starts when the slowest search of this one
ends. Kept as the baseline of bench/trees_scale.py and of the test that the scheduler builds the same
trees; the library has one search (`w2s.trees.search_pair`)."""

from __future__ import annotations

from collections.abc import Sequence

from w2s.backends import Model
from w2s.store import Pair, session_scope
from w2s.templates import render
from w2s.trees import (
    A_B,
    LISTWISE,
    YES_NO,
    Cost,
    Search,
    SearchNode,
    TreeConfig,
    node_role,
    pair_context,
    save_tree,
    stored_pair_ids,
    swap_labels,
    verdict_prompt,
)
from w2s.trees.principles import Library, LibraryPrinciple, load_library, sync
from w2s.vocab import average_orders


def charge(model: Model, owners: Sequence[Cost]) -> None:
    """Each prompt of the model's last batched call to its owner."""
    if len(model.usage.last) == len(owners):
        for cost, u in zip(owners, model.usage.last):
            cost.tokens += u.evaluated
            cost.cached_tokens += u.cached_prompt_tokens
            cost.seconds += u.seconds


def relevance(
    model: Model, pairs: Sequence[Pair], library: Library, cfg: TreeConfig, costs
) -> list[list[float]]:
    n = len(library.principles)
    if cfg.relevance == "listwise" and n <= 9:
        prompts = [render(LISTWISE, **pair_context(p, False), principles=library.principles) for p in pairs]
        probs = model.score_choices(prompts, [str(k + 1) for k in range(n)])
        charge(model, costs)
        return [[p / max(row) for p in row] for row in probs]
    prompts = [
        render("relevance", **pair_context(pair, False), principle=p, thought="")
        for pair in pairs
        for p in library.principles
    ]
    probs = model.score_choices(prompts, YES_NO)
    charge(model, [c for c in costs for _ in range(n)])
    return [[row[0] for row in probs[i * n : (i + 1) * n]] for i in range(len(pairs))]


def thoughts(model: Model, searches, principles, swap: bool, cfg: TreeConfig, costs) -> list[str]:
    prompts = [
        render(cfg.thought_template, **pair_context(s.pair, swap), principle=p)
        for s, p in zip(searches, principles)
    ]
    texts = [" ".join(g.text.split()) for g in model.generate(prompts, max_tokens=cfg.thought_max_tokens)]
    charge(model, costs)
    return texts


def step(
    model: Model, searches: Sequence[Search], principles: Sequence[LibraryPrinciple], cfg: TreeConfig
) -> list[SearchNode]:
    costs = [Cost() for _ in searches]
    texts = thoughts(model, searches, principles, False, cfg, costs)
    first_a = model.score_choices(
        [verdict_prompt(s.pair, p, t, False, cfg) for s, p, t in zip(searches, principles, texts)], A_B
    )
    charge(model, costs)
    if cfg.post_relevance:
        post = [
            row[0]
            for row in model.score_choices(
                [
                    render("relevance", **pair_context(s.pair, False), principle=p, thought=t)
                    for s, p, t in zip(searches, principles, texts)
                ],
                YES_NO,
            )
        ]
        charge(model, costs)
    else:
        post = [s.relevance[p.id] for s, p in zip(searches, principles)]
    texts_b = (
        thoughts(model, searches, principles, True, cfg, costs)
        if cfg.thought_both_orders
        else [swap_labels(t) for t in texts]
    )
    first_b = model.score_choices(
        [verdict_prompt(s.pair, p, t, True, cfg) for s, p, t in zip(searches, principles, texts_b)], A_B
    )
    charge(model, costs)
    drafts = []
    for i, (p, t) in enumerate(zip(principles, texts)):
        node = SearchNode(
            principle=p,
            relevance=post[i],
            thought=t,
            p_a=average_orders(first_a[i][0], first_b[i][0]),
            role="continue",
            orders=(first_a[i][0], 1.0 - first_b[i][0]),
            tokens=costs[i].tokens,
            cached_tokens=costs[i].cached_tokens,
            seconds=costs[i].seconds,
        )
        node.role = node_role(node.relevance, node.v, cfg)
        drafts.append(node)
    return drafts


def search_waves(model: Model, pairs: Sequence[Pair], library: Library, cfg: TreeConfig) -> list[Search]:
    """One wave: the searches of `pairs` in lock-step, one node per step for every unfinished one."""
    setup = [Cost() for _ in pairs]
    searches = [
        Search.start(pair, library.principles, r)
        for pair, r in zip(pairs, relevance(model, pairs, library, cfg, setup))
    ]
    for s, cost in zip(searches, setup):
        s.setup = cost
    while True:
        active, chosen = [], []
        for s in searches:
            if not s.stop and (p := s.pop(cfg)) is not None:
                active.append(s)
                chosen.append(p)
        if not active:
            break
        for s, node in zip(active, step(model, active, chosen, cfg)):
            s.add(node, cfg)
    for s in searches:
        s.finish()
    return searches


def build_waves(
    model: Model, pair_ids: Sequence[str], cfg: TreeConfig, *, url: str | None = None, batch_size: int = 8
) -> int:
    """Today's build before the scheduler: waves of `batch_size` pairs, each tree saved as it is written."""
    from sqlmodel import select

    library = load_library(cfg.library)
    with session_scope(url) as session:
        sync(session, library)
        done = stored_pair_ids(session, model.spec, cfg.hash())
    todo = [pid for pid in dict.fromkeys(pair_ids) if pid not in done]
    built = 0
    for i in range(0, len(todo), batch_size):
        with session_scope(url) as session:
            pairs = list(session.exec(select(Pair).where(Pair.id.in_(todo[i : i + batch_size]))))
        for s in search_waves(model, pairs, library, cfg):
            built += save_tree(url, s, model, cfg)
    return built
