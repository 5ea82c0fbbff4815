"""Principle fast-and-frugal trees (FF-trees), built by a strong model S for each preference pair.

The algorithm (DESIGN.md §4), for every pair in a batch at once:

1. relevance   r(p) = P_S(Yes | pair, principle p) for every principle of the library, read from the
               next-token probabilities (one batched `score_choices` call for all pairs x principles);
2. search      best-first on r: pop the most relevant principle not tried yet;
3. thought     S writes a short principle-aware comparison of A and B (bounded tokens);
4. verdict     v = P_S(A vs B | pair, p, thought): S's answer to the thought prompt is its own thought
               continued with "... the better reply is Reply", and v is the next token's A vs B, in both
               presentation orders (a thought written in each order) and averaged, so position bias
               cancels, in the thought as in the verdict. Asking a fresh "which is better?" question
               instead lets a small strong model's position bias swamp its thought (v ~ 0.5 on every
               node, measured);
               entropy H(v) in nats, info = r * (1 - H(v) / ln 2), with r the post-thought relevance
               (S asked again, now with the thought in view);
5. role        post-thought relevance < tau_rel or max(v) < tau_uniform (near-uniform) -> the node is a
               backtrace: kept as `pruned_by_search`, the chain is not extended with it;
               else max(v) >= tau_exit -> `exit` and the search stops (fast and frugal);
               else `continue` and the search pops the next principle;
6. stop        after B backtraces, depth D (chain nodes), an empty queue, or when the best remaining
               r < tau_min. When the search stops without an exit node, the last chain node becomes the
               exit ("the last node exits both ways").

Each step advances every unfinished pair's search by one node, so each step costs two batched
`generate` calls (thoughts, one per order) and three batched `score_choices` (verdict A first,
post-thought relevance, verdict B first).
Trees are stored per (pair, strong model, config hash): building again skips pairs that have one, so a
killed build resumes where it stopped and a finished one is idempotent. The search's thresholds (B, D and
the taus) decide which nodes are expanded and where the search stops, never what a node says, so a tree
built under other thresholds is replayed under new ones: `build_trees(..., extend_from=HASH)` goes through
its stored nodes with the new roles and stops, and asks the strong model only for nodes the stored search
never reached (none when the new thresholds stop it sooner, e.g. a lower tau_exit).
"""

from __future__ import annotations

import dataclasses
import hashlib
import heapq
import json
import math
import re
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field

from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, select

from w2s.backends import Model
from w2s.principles import Library, P, load_library, sync
from w2s.store import Node, Pair, Tree, session_scope
from w2s.templates import render, template_hash
from w2s.vocab import average_orders, entropy, present

YES_NO = ["Yes", "No"]
A_B = ["A", "B"]
PRUNED = "pruned_by_search"
LISTWISE = "relevance-list"


@dataclass
class TreeConfig:
    """Every knob of tree building; stored with each tree, and its hash is part of the tree's identity."""

    library: str = "harmlessness"
    """Principle library (`prompts/principles/<library>.yaml`)."""
    tau_exit: float = 0.75
    """A node whose verdict has max(v) >= tau_exit is an exit node: the search stops there."""
    max_backtraces: int = 2
    """B: stop after this many backtraced (pruned_by_search) nodes."""
    max_depth: int = 4
    """D: stop when the chain (exit/continue nodes) has this many nodes."""
    tau_rel: float = 0.3
    """A node whose post-thought relevance is below tau_rel is a backtrace."""
    tau_uniform: float = 0.55
    """A node whose verdict has max(v) < tau_uniform (near-uniform) is a backtrace."""
    tau_min: float = 0.1
    """Stop when the best remaining principle's relevance is below tau_min."""
    relevance: str = "listwise"
    """How r(p) is read: 'listwise' asks once which principle matters most and takes each principle's
    probability relative to the top one (one short prompt per pair: on code pairs the per-principle pass
    cost half of every tree and gave r = 0.66-0.73 to every principle); 'per-principle' asks
    P(Yes | "does p matter?") for each (libraries of more than 9 principles always use it)."""
    thought_max_tokens: int = 48
    """Token budget of a thought."""
    thought_template: str = "thought-analyse"
    """The thought prompt (`prompts/templates/<name>.jinja`): `thought-analyse` has S check each reply
    against the principle before it concludes (code dev pairs: exits on 4 of 8 trees, all right, against
    2 of 8, one right, for `thought`, which asks for the winner first)."""
    post_relevance: bool = False
    """Score relevance again after the thought (with the thought in view); False reuses the initial r
    (the default: it cost a sixth of a node and never pruned a code node)."""
    thought_both_orders: bool = True
    """Write the thought in both presentation orders and read each order's verdict after its own thought.
    False writes it once (A first) and swaps its labels for the B-first verdict: half the generation,
    but a position bias of the thought itself then survives the averaging (Qwen2.5-Coder-1.5B's
    A-first thoughts favoured the second-shown reply on 44 of 52 HH pairs, gold being A on 31)."""

    def as_dict(self) -> dict:
        return asdict(self)

    def templates(self) -> dict[str, str]:
        """The hash of every template the config renders."""
        names = ["relevance", self.thought_template, "verdict"]
        if self.relevance == "listwise":
            names.append(LISTWISE)
        return {t: template_hash(t) for t in names}

    def hash(self) -> str:
        """12 hex digits over the config, the templates it renders and the principle library's content
        (editing a template or a principle is a new config: old trees are never reused for it)."""
        blob = {**self.as_dict(), "templates": self.templates(), "library_hash": load_library(self.library).hash()}
        return hashlib.sha256(json.dumps(blob, sort_keys=True).encode()).hexdigest()[:12]

    @classmethod
    def of_tree(cls, tree: Tree) -> TreeConfig:
        """The config a stored tree was built with."""
        return cls(**{f.name: tree.config[f.name] for f in dataclasses.fields(cls)})


SEARCH_CONTROL = ("max_backtraces", "max_depth", "tau_exit", "tau_rel", "tau_uniform", "tau_min")
"""The fields that steer the search (which node comes next, a node's role, when to stop) without
changing what any node says: a tree built under other values of them is replayed, not rebuilt."""


def extension_problem(tree: Tree, nodes: Sequence[Node], cfg: TreeConfig) -> str | None:
    """Why `cfg`'s search cannot be replayed from `tree` (None when it can). It can when the tree's config
    is `cfg` but for the search-control fields, and its templates and principle library are unchanged
    since (its hash still computes): the search then pops the same principles in the same order and reads
    the same nodes, up to where either search stops."""
    old = TreeConfig.of_tree(tree)
    differ = [k for k, v in old.as_dict().items() if k not in SEARCH_CONTROL and v != getattr(cfg, k)]
    if differ:
        return f"its config differs in {', '.join(differ)} (only {', '.join(SEARCH_CONTROL)} may)"
    if old.hash() != tree.config_hash:
        return "a template or the principle library changed since it was built"
    if len(tree.config.get("orders") or []) != len(nodes):
        return "it does not keep each node's verdict in both orders (built before they were stored)"
    return None


# ---------------------------------------------------------------------------------------------- pure math


def info(r: float, v: Sequence[float]) -> float:
    """info = r * (1 - H(v) / ln 2): relevant nodes with a decided verdict are informative."""
    return r * (1.0 - entropy(v) / math.log(2))


def node_role(r_post: float, v: Sequence[float], cfg: TreeConfig) -> str:
    if r_post < cfg.tau_rel or max(v) < cfg.tau_uniform:
        return PRUNED
    return "exit" if max(v) >= cfg.tau_exit else "continue"


_LABEL = re.compile(r"\b(Reply|Response|Answer|Assistant)(\s+)([AB])\b")


def swap_labels(text: str) -> str:
    """Swap 'Reply A' and 'Reply B' in a text written for the other presentation order."""
    return _LABEL.sub(lambda m: f"{m.group(1)}{m.group(2)}{'B' if m.group(3) == 'A' else 'A'}", text)


def pair_context(pair: Pair, swap: bool) -> dict:
    first, second = present(pair, swap)
    return {"prompt": pair.prompt, "first": first, "second": second}


# ---------------------------------------------------------------------------------------------- search state


@dataclass
class Cost:
    """What a tree (or one of its nodes) cost the strong model: its own prompts' figures."""

    tokens: int = 0
    """Tokens evaluated or generated (prompt tokens served from a cached prefix excluded)."""
    cached_tokens: int = 0
    """Prompt tokens reused from a cached prefix."""
    seconds: float = 0.0


@dataclass
class Draft:
    """A node before it is stored."""

    principle: P
    relevance: float
    thought: str
    p_a: float
    role: str
    orders: tuple[float, float] = (0.5, 0.5)
    """P(A better) read with A shown first and with B shown first (p_a is their mean)."""
    tokens: int = 0
    cached_tokens: int = 0
    seconds: float = 0.0

    @property
    def v(self) -> tuple[float, float]:
        return (self.p_a, 1.0 - self.p_a)


@dataclass
class Search:
    """One pair's best-first search."""

    pair: Pair
    relevance: dict[str, float]
    queue: list = field(default_factory=list)  # heap of (-r, order, principle)
    nodes: list[Draft] = field(default_factory=list)
    backtraces: int = 0
    depth: int = 0
    stop: str = ""  # why the search ended ('' while running)
    setup: Cost = field(default_factory=Cost)  # the initial relevance pass
    extended_from: dict | None = None  # the stored tree this search went on from

    @classmethod
    def start(cls, pair: Pair, principles: Sequence[P], relevance: Sequence[float]) -> Search:
        s = cls(pair=pair, relevance={p.id: r for p, r in zip(principles, relevance)})
        s.queue = [(-r, i, p) for i, (p, r) in enumerate(zip(principles, relevance))]
        heapq.heapify(s.queue)
        return s

    @classmethod
    def resume(cls, pair: Pair, tree: Tree, nodes: Sequence[Node], library: Library, cfg: TreeConfig) -> Search:
        """A stored tree's search, replayed under `cfg`'s thresholds (see `extension_problem`): its nodes
        with the roles `cfg` gives them (a stored tail exit is a continue node again) up to where `cfg`
        stops, the principles it never tried still queued in the order it would have popped them."""
        by_id = {p.id: p for p in library.principles}
        r = tree.config["initial_relevance"]
        s = cls.start(pair, library.principles, [r[p.id] for p in library.principles])
        tried = {n.principle_id for n in nodes}
        s.queue = [entry for entry in s.queue if entry[2].id not in tried]
        heapq.heapify(s.queue)
        s.setup = Cost(tree.tokens - sum(n.tokens for n in nodes),
                       tree.cached_tokens - sum(n.cached_tokens for n in nodes),
                       tree.seconds - sum(n.seconds for n in nodes))  # fmt: skip
        s.extended_from = {"tree_id": tree.id, "config_hash": tree.config_hash}
        for n, orders in zip(nodes, tree.config["orders"]):
            draft = Draft(principle=by_id[n.principle_id], relevance=n.relevance, thought=n.thought, p_a=n.p_a,
                          role="continue", orders=tuple(orders), tokens=n.tokens, cached_tokens=n.cached_tokens,
                          seconds=n.seconds)  # fmt: skip
            draft.role = node_role(draft.relevance, draft.v, cfg)
            s.add(draft, cfg)
            if s.stop:  # e.g. a lower tau_exit: the stored nodes after this one are not part of this tree
                break
        return s

    def pop(self, cfg: TreeConfig) -> P | None:
        """The next principle to expand, or None (and `stop` set) when the search is over."""
        if not self.queue:
            self.stop = "queue empty"
        elif -self.queue[0][0] < cfg.tau_min:
            self.stop = "tau_min"
        if self.stop:
            return None
        return heapq.heappop(self.queue)[2]

    def add(self, node: Draft, cfg: TreeConfig) -> None:
        """Append an expanded node and apply the exit / backtrace / depth rules."""
        self.nodes.append(node)
        if node.role == PRUNED:
            self.backtraces += 1
            if self.backtraces >= cfg.max_backtraces:
                self.stop = "backtraces"
        elif node.role == "exit":
            self.depth += 1
            self.stop = "exit"
        else:
            self.depth += 1
            if self.depth >= cfg.max_depth:
                self.stop = "depth"

    def finish(self) -> None:
        """The last chain node exits both ways when the search stopped without an exit."""
        chain = [n for n in self.nodes if n.role != PRUNED]
        if chain and chain[-1].role != "exit":
            chain[-1].role = "exit"


# ---------------------------------------------------------------------------------------------- model calls


def charge(model: Model, owners: Sequence[Cost]) -> None:
    """Charge each prompt of the model's last call to its owner (`owners[i]` paid for prompt i).
    A backend that reports no per-prompt figures is charged evenly."""
    per_prompt = model.usage.last
    if len(per_prompt) != len(owners):
        return
    for cost, u in zip(owners, per_prompt):
        cost.tokens += u.evaluated
        cost.cached_tokens += u.cached_prompt_tokens
        cost.seconds += u.seconds


def score_relevance(model: Model, pairs: Sequence[Pair], library: Library, cfg: TreeConfig,
                    costs: Sequence[Cost]) -> list[list[float]]:
    """r(p) for every pair x principle, in one batched call (each pair charged its own prompts)."""
    n = len(library.principles)
    if cfg.relevance == "listwise" and n <= 9:
        # one prompt per pair: P(principle k is the one that matters most), relative to the top one
        prompts = [render(LISTWISE, **pair_context(pair, False), principles=library.principles) for pair in pairs]
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


def verdict_prompt(pair: Pair, principle: P, thought: str, swap: bool, cfg: TreeConfig) -> list[dict]:
    """The thought prompt (in the order `swap` gives) answered with a thought written for that order,
    continued up to the verdict ("... the better reply is Reply"): v is read from the next token."""
    return [
        {"role": "user", "content": render(cfg.thought_template, **pair_context(pair, swap), principle=principle)},
        {"role": "assistant", "content": render("verdict", thought=thought)},
    ]


def write_thoughts(model: Model, searches: Sequence[Search], principles: Sequence[P], swap: bool, cfg: TreeConfig,
                   costs: Sequence[Cost]) -> list[str]:
    """One batched generate: each search's thought on its principle, with the pair in the `swap` order."""
    prompts = [render(cfg.thought_template, **pair_context(s.pair, swap), principle=p) for s, p in zip(searches, principles)]
    texts = [" ".join(g.text.split()) for g in model.generate(prompts, max_tokens=cfg.thought_max_tokens, temperature=0.0)]
    charge(model, costs)
    return texts


def expand(model: Model, searches: Sequence[Search], principles: Sequence[P], cfg: TreeConfig) -> list[Draft]:
    """One step for several searches: the thoughts (batched generate, A first, then B first unless
    `thought_both_orders` is off), then batched score_choices calls for the verdict with A first, the
    post-thought relevance, and the verdict with B first. The calls go in the order that lets a
    prefix-caching backend (llama.cpp) reuse the most: a verdict continues its thought prompt, and the
    relevance prompt shares the A-first pair text. The stored thought is the A-first one; each node is
    charged the tokens and seconds of its own prompts."""
    costs = [Cost() for _ in searches]
    texts = write_thoughts(model, searches, principles, False, cfg, costs)
    jobs = list(zip(searches, principles, texts))
    first_a = model.score_choices([verdict_prompt(s.pair, p, t, False, cfg) for s, p, t in jobs], A_B)
    charge(model, costs)
    if cfg.post_relevance:
        rel_prompts = [render("relevance", **pair_context(s.pair, False), principle=p, thought=t) for s, p, t in jobs]
        post = [row[0] for row in model.score_choices(rel_prompts, YES_NO)]
        charge(model, costs)
    else:
        post = [s.relevance[p.id] for s, p in zip(searches, principles)]
    if cfg.thought_both_orders:
        texts_b = write_thoughts(model, searches, principles, True, cfg, costs)
    else:
        texts_b = [swap_labels(t) for t in texts]
    first_b = model.score_choices(
        [verdict_prompt(s.pair, p, t, True, cfg) for s, p, t in zip(searches, principles, texts_b)], A_B
    )
    charge(model, costs)
    drafts = []
    for i, (p, t) in enumerate(zip(principles, texts)):
        orders = (first_a[i][0], 1.0 - first_b[i][0])
        node = Draft(principle=p, relevance=post[i], thought=t, p_a=average_orders(first_a[i][0], first_b[i][0]),
                     role="continue", orders=orders,
                     tokens=costs[i].tokens,
                     cached_tokens=costs[i].cached_tokens, seconds=costs[i].seconds)
        node.role = node_role(node.relevance, node.v, cfg)
        drafts.append(node)
    return drafts


def search_trees(model: Model, pairs: Sequence[Pair], library: Library, cfg: TreeConfig,
                 resumed: Sequence[Search] = ()) -> list[Search]:  # fmt: skip
    """Run the searches of several pairs in lock-step (new ones for `pairs`, and the `resumed` ones go
    on); returns the finished searches."""
    setup = [Cost() for _ in pairs]
    relevance = score_relevance(model, pairs, library, cfg, setup) if pairs else []
    searches = [Search.start(pair, library.principles, r) for pair, r in zip(pairs, relevance)]
    for s, cost in zip(searches, setup):
        s.setup = cost
    searches = [*resumed, *searches]
    while True:
        active, chosen = [], []
        for s in searches:
            if s.stop:
                continue
            p = s.pop(cfg)
            if p is not None:
                active.append(s)
                chosen.append(p)
        if not active:
            break
        for s, node in zip(active, expand(model, active, chosen, cfg)):
            s.add(node, cfg)
    for s in searches:
        s.finish()
    return searches


# ---------------------------------------------------------------------------------------------- store


def stored_pair_ids(session: Session, strong_model: str, config_hash: str) -> set[str]:
    query = select(Tree.pair_id).where(Tree.strong_model == strong_model, Tree.config_hash == config_hash)
    return set(session.exec(query))


def save_search(session: Session, search: Search, model: Model, cfg: TreeConfig) -> Tree:
    """Write one finished search as a Tree and its Nodes (in the caller's transaction)."""
    nodes = search.nodes
    config = {
        **cfg.as_dict(),
        "hash": cfg.hash(),
        "templates": cfg.templates(),
        "library_hash": load_library(cfg.library).hash(),
        "initial_relevance": search.relevance,
        "stop": search.stop,
        # per node position: P(A better) with A shown first and with B shown first
        "orders": [list(n.orders) for n in nodes],
    }
    if search.extended_from:
        config["extended_from"] = search.extended_from
    tree = Tree(
        pair_id=search.pair.id,
        strong_model=model.spec,
        library=cfg.library,
        config_hash=cfg.hash(),
        config=config,
        depth=search.depth,
        backtraces=search.backtraces,
        tokens=search.setup.tokens + sum(n.tokens for n in nodes),
        cached_tokens=search.setup.cached_tokens + sum(n.cached_tokens for n in nodes),
        seconds=search.setup.seconds + sum(n.seconds for n in nodes),
    )
    session.add(tree)
    session.flush()
    for position, n in enumerate(nodes):
        session.add(
            Node(
                tree_id=tree.id,
                position=position,
                principle_id=n.principle.id,
                principle_name=n.principle.name,
                relevance=n.relevance,
                thought=n.thought,
                p_a=n.p_a,
                p_b=1.0 - n.p_a,
                entropy=entropy(n.v),
                info=info(n.relevance, n.v),
                role=n.role,
                model=model.spec,
                template_hash=template_hash(cfg.thought_template),
                tokens=n.tokens,
                cached_tokens=n.cached_tokens,
                seconds=n.seconds,
            )
        )
    return tree


def save_unless_stored(session: Session, search: Search, model: Model, cfg: TreeConfig) -> bool:
    """Save a search's tree; False when another worker saved this pair's tree (same model and config)
    first: a lost race is a skip. Uses a savepoint so the caller's batch goes on."""
    try:
        with session.begin_nested():
            save_search(session, search, model, cfg)
    except IntegrityError:
        if search.pair.id not in stored_pair_ids(session, model.spec, cfg.hash()):
            raise  # not the one-tree-per-pair constraint (e.g. the pair is gone): do not hide it
        return False
    return True


def build_trees(
    model: Model,
    pair_ids: Sequence[str],
    cfg: TreeConfig | None = None,
    *,
    url: str | None = None,
    batch_size: int = 8,
    on_batch: Callable[[int], None] | None = None,
    extend_from: str | None = None,
) -> int:
    """Build the missing trees of `pair_ids` (one transaction per batch); returns how many were built.
    `extend_from`: a config hash whose trees (same strong model) this config's searches go on from, where
    a pair has one; a tree that cannot be extended (`extension_problem`) is an error naming why."""
    cfg = cfg or TreeConfig()
    library = load_library(cfg.library)
    with session_scope(url) as session:
        sync(session, library)
        done = stored_pair_ids(session, model.spec, cfg.hash())
    todo = [pid for pid in dict.fromkeys(pair_ids) if pid not in done]
    if on_batch is not None:
        on_batch(len(set(pair_ids)) - len(todo))
    built = 0
    for i in range(0, len(todo), batch_size):
        batch = todo[i : i + batch_size]
        # the model runs outside any transaction: a SQLite writer lock is held only for the short insert
        with session_scope(url) as session:
            pairs = list(session.exec(select(Pair).where(Pair.id.in_(batch))))
            resumed = [] if extend_from is None else resume_searches(session, pairs, model.spec, extend_from,
                                                                     library, cfg)  # fmt: skip
        started = {s.pair.id for s in resumed}
        searches = search_trees(model, [p for p in pairs if p.id not in started], library, cfg, resumed)
        with session_scope(url) as session:
            again = stored_pair_ids(session, model.spec, cfg.hash())  # a concurrent build may have won
            for s in searches:
                if s.pair.id not in again and save_unless_stored(session, s, model, cfg):
                    built += 1
        if on_batch is not None:
            on_batch(len(batch))
    return built


def resume_searches(session: Session, pairs: Sequence[Pair], strong_model: str, config_hash: str, library: Library,
                    cfg: TreeConfig) -> list[Search]:  # fmt: skip
    """The searches of the `pairs` that have a tree of `config_hash`, to go on under `cfg`."""
    out = []
    for pair in pairs:
        tree, nodes = latest_tree(session, pair.id, strong_model, config_hash)
        if tree is None:
            continue
        problem = extension_problem(tree, nodes, cfg)
        if problem:
            raise ValueError(f"tree {tree.id} (pair {pair.id}, config {config_hash}) cannot be extended to config "
                             f"{cfg.hash()}: {problem}")  # fmt: skip
        out.append(Search.resume(pair, tree, nodes, library, cfg))
    return out


def latest_tree(session: Session, pair_id: str, strong_model: str | None = None, config_hash: str | None = None):
    """The newest tree of a pair (optionally by strong model / config), with its nodes in order."""
    query = select(Tree).where(Tree.pair_id == pair_id)
    if strong_model:
        query = query.where(Tree.strong_model == strong_model)
    if config_hash:
        query = query.where(Tree.config_hash == config_hash)
    tree = session.exec(query.order_by(Tree.id.desc())).first()
    if tree is None:
        return None, []
    nodes = list(session.exec(select(Node).where(Node.tree_id == tree.id).order_by(Node.position)))
    return tree, nodes
