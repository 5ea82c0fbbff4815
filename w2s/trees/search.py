"""Principle fast-and-frugal trees (FF-trees), built by a strong model S for each preference pair.

The algorithm (docs/design.md#trees), for one pair:

1. relevance   r(p) = P_S(Yes | pair, principle p) for every principle of the library, read from the
               next-token probabilities (listwise: one prompt for all principles);
2. search      best-first on r: pop the most relevant principle not tried yet;
3. thought     S writes a short principle-aware comparison of A and B (bounded tokens);
4. verdict     v = P_S(A vs B | pair, p, thought): S's answer to the thought prompt is its own thought
               continued with "... the better reply is Reply", and v is the next token's A vs B, in both
               presentation orders (a thought written in each order) and averaged, so position bias
               cancels, in the thought as in the verdict. Asking a fresh "which is better?" question
               instead lets a small strong model's position bias swamp its thought (v near 0.5 on every
               node: docs/results/seam_hh.md);
               entropy H(v) in nats, info = r * (1 - H(v) / ln 2), with r the post-thought relevance
               (S asked again, now with the thought in view);
5. role        post-thought relevance < tau_rel or max(v) < tau_uniform (near-uniform) -> the node is a
               backtrace: kept as `pruned_by_search`, the chain is not extended with it;
               else max(v) >= tau_exit -> `exit` and the search stops (fast and frugal);
               else `continue` and the search pops the next principle;
6. stop        after B backtraces, depth D (chain nodes), an empty queue, or when the best remaining
               r < tau_min. When the search stops without an exit node, the last chain node becomes the
               exit ("the last node exits both ways").

A node costs two thoughts (one per order) and three scores (verdict A first, post-thought relevance,
verdict B first), each awaited in turn: a pair's search is a short dependent program (`search_pair`).
Throughput is pairs in flight / seconds per tree, so `run_build` keeps up to `in_flight` searches going
at once and gives a finished one's slot to the next pair at once; the serving engine batches the
requests (remote backends), or the calls waiting at a moment go to an in-process model as one batched
call (`w2s.backends.gather`). Each tree is saved as soon as its search ends, so a kill loses only the
trees in flight.
Trees are stored per (pair, strong model, config hash): building again skips pairs that have one, so a
killed build resumes where it stopped and a finished one is idempotent. The search's thresholds (B, D and
the taus) decide which nodes are expanded and where the search stops, never what a node says, so a tree
built under other thresholds is replayed under new ones: `build_trees(..., extend_from=HASH)` goes through
its stored nodes with the new roles and stops, and asks the strong model only for nodes the stored search
never reached (none when the new thresholds stop it sooner, e.g. a lower tau_exit).
"""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import heapq
import json
import math
import re
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Literal, Protocol

from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, select

from w2s.backends import Model
from w2s.backends.base import Prompt, PromptUsage
from w2s.backends.gather import as_async
from w2s.store import Node, Pair, Tree, select_in, session_scope
from w2s.templates import render, template_hash
from w2s.trees.principles import Library, LibraryPrinciple, load_library, sync
from w2s.vocab import average_orders, entropy, present

YES_NO = ["Yes", "No"]
A_B = ["A", "B"]
PRUNED = "pruned_by_search"
LISTWISE = "relevance-list"


@dataclass
class TreeConfig:
    """Every knob of tree building; stored with each tree, and its hash is part of the tree's identity."""

    library: str = "harmlessness"
    """Principle library (prompts/principles/NAME.yaml)."""
    tau_exit: float = 0.75
    """A node whose verdict has max(v) >= tau_exit exits: the search stops there."""
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
    relevance: Literal["listwise", "per-principle"] = "listwise"
    """How r(p) is read: listwise (one prompt per pair, cheaper) or per-principle (a prompt per principle;
    always for libraries of more than 9)."""
    thought_max_tokens: int = 48
    """Token budget of a thought."""
    thought_template: str = "thought-analyse"
    """The thought prompt (prompts/templates/NAME.jinja): thought-analyse checks each reply against the
    principle before concluding, so a small model does not just name the reply it saw first; thought-each
    asks for one short line on each reply, so that a short budget reaches the second one."""
    post_relevance: bool = False
    """Score relevance again after the thought; off reuses the initial r (the second pass cost more than it pruned)."""
    thought_both_orders: bool = True
    """Write the thought in both A/B orders so its position bias cancels; off writes it once (half the tokens)."""

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
        return self.identity()["hash"]

    def identity(self) -> dict:
        """The hash with what it covers besides the config: the templates' and the library's hashes
        (read from disk: a build reads them once, not per tree)."""
        blob = {
            **self.as_dict(),
            "templates": self.templates(),
            "library_hash": load_library(self.library).hash(),
        }
        return {
            "hash": hashlib.sha256(json.dumps(blob, sort_keys=True).encode()).hexdigest()[:12],
            "templates": blob["templates"],
            "library_hash": blob["library_hash"],
        }

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
class SearchNode:
    """A node of a pair's search, before it is stored."""

    principle: LibraryPrinciple
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
    nodes: list[SearchNode] = field(default_factory=list)
    backtraces: int = 0
    depth: int = 0
    stop: str = ""  # why the search ended ('' while running)
    setup: Cost = field(default_factory=Cost)  # the initial relevance pass
    extended_from: dict | None = None  # the stored tree this search went on from

    @classmethod
    def start(cls, pair: Pair, principles: Sequence[LibraryPrinciple], relevance: Sequence[float]) -> Search:
        s = cls(pair=pair, relevance={p.id: r for p, r in zip(principles, relevance)})
        s.queue = [(-r, i, p) for i, (p, r) in enumerate(zip(principles, relevance))]
        heapq.heapify(s.queue)
        return s

    @classmethod
    def resume(
        cls, pair: Pair, tree: Tree, nodes: Sequence[Node], library: Library, cfg: TreeConfig
    ) -> Search:
        """A stored tree's search, replayed under `cfg`'s thresholds (see `extension_problem`): its nodes
        with the roles `cfg` gives them (a stored tail exit is a continue node again) up to where `cfg`
        stops, the principles it never tried still queued in the order it would have popped them."""
        by_id = {p.id: p for p in library.principles}
        r = tree.config["initial_relevance"]
        s = cls.start(pair, library.principles, [r[p.id] for p in library.principles])
        tried = {n.principle_id for n in nodes}
        s.queue = [entry for entry in s.queue if entry[2].id not in tried]
        heapq.heapify(s.queue)
        s.setup = Cost(
            tree.tokens - sum(n.tokens for n in nodes),
            tree.cached_tokens - sum(n.cached_tokens for n in nodes),
            tree.seconds - sum(n.seconds for n in nodes),
        )
        s.extended_from = {"tree_id": tree.id, "config_hash": tree.config_hash}
        for n, orders in zip(nodes, tree.config["orders"]):
            draft = SearchNode(
                principle=by_id[n.principle_id],
                relevance=n.relevance,
                thought=n.thought,
                p_a=n.p_a,
                role="continue",
                orders=tuple(orders),
                tokens=n.tokens,
                cached_tokens=n.cached_tokens,
                seconds=n.seconds,
            )
            draft.role = node_role(draft.relevance, draft.v, cfg)
            s.add(draft, cfg)
            if s.stop:  # e.g. a lower tau_exit: the stored nodes after this one are not part of this tree
                break
        return s

    def pop(self, cfg: TreeConfig) -> LibraryPrinciple | None:
        """The next principle to expand, or None (and `stop` set) when the search is over."""
        if not self.queue:
            self.stop = "queue empty"
        elif -self.queue[0][0] < cfg.tau_min:
            self.stop = "tau_min"
        if self.stop:
            return None
        return heapq.heappop(self.queue)[2]

    def add(self, node: SearchNode, cfg: TreeConfig) -> None:
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


def charge(cost: Cost, u: PromptUsage) -> None:
    """Charge one prompt's usage to its owner (a node, or a tree's relevance pass)."""
    cost.tokens += u.evaluated
    cost.cached_tokens += u.cached_prompt_tokens
    cost.seconds += u.seconds


async def score(model, prompt: Prompt, choices: Sequence[str], cost: Cost) -> list[float]:
    probs, u = await model.ascore_one(prompt, choices)
    charge(cost, u)
    return probs


async def score_relevance(model, pair: Pair, library: Library, cfg: TreeConfig, cost: Cost) -> list[float]:
    """r(p) for every principle of the library."""
    n = len(library.principles)
    if cfg.relevance == "listwise" and n <= 9:
        # one prompt: P(principle k is the one that matters most), relative to the top one
        prompt = render(LISTWISE, **pair_context(pair, False), principles=library.principles)
        row = await score(model, prompt, [str(k + 1) for k in range(n)], cost)
        return [p / max(row) for p in row]
    prompts = [
        render("relevance", **pair_context(pair, False), principle=p, thought="") for p in library.principles
    ]
    rows = await asyncio.gather(*(score(model, prompt, YES_NO, cost) for prompt in prompts))
    return [row[0] for row in rows]


def verdict_prompt(
    pair: Pair, principle: LibraryPrinciple, thought: str, swap: bool, cfg: TreeConfig
) -> list[dict]:
    """The thought prompt (in the order `swap` gives) answered with a thought written for that order,
    continued up to the verdict ("... the better reply is Reply"): v is read from the next token."""
    return [
        {
            "role": "user",
            "content": render(cfg.thought_template, **pair_context(pair, swap), principle=principle),
        },
        {"role": "assistant", "content": render("verdict", thought=thought)},
    ]


async def write_thought(
    model, pair: Pair, principle: LibraryPrinciple, swap: bool, cfg: TreeConfig, cost: Cost
) -> str:
    """S's thought on `principle`, with the pair in the `swap` order."""
    prompt = render(cfg.thought_template, **pair_context(pair, swap), principle=principle)
    gen, u = await model.agenerate_one(prompt, max_tokens=cfg.thought_max_tokens, temperature=0.0)
    charge(cost, u)
    return " ".join(gen.text.split())


async def expand(model, s: Search, p: LibraryPrinciple, cfg: TreeConfig) -> SearchNode:
    """One node: the thought (A first, then B first unless `thought_both_orders` is off), the verdict
    with A first, the post-thought relevance, and the verdict with B first. The calls go in the order
    that lets a prefix-caching backend (llama.cpp) reuse the most: a verdict continues its thought prompt,
    and the relevance prompt shares the A-first pair text. The stored thought is the A-first one; the
    node is charged the tokens and seconds of its own prompts."""
    cost = Cost()
    text = await write_thought(model, s.pair, p, False, cfg, cost)
    first_a = await score(model, verdict_prompt(s.pair, p, text, False, cfg), A_B, cost)
    if cfg.post_relevance:
        prompt = render("relevance", **pair_context(s.pair, False), principle=p, thought=text)
        post = (await score(model, prompt, YES_NO, cost))[0]
    else:
        post = s.relevance[p.id]
    text_b = (
        await write_thought(model, s.pair, p, True, cfg, cost)
        if cfg.thought_both_orders
        else swap_labels(text)
    )
    first_b = await score(model, verdict_prompt(s.pair, p, text_b, True, cfg), A_B, cost)
    node = SearchNode(
        principle=p,
        relevance=post,
        thought=text,
        p_a=average_orders(first_a[0], first_b[0]),
        role="continue",
        orders=(first_a[0], 1.0 - first_b[0]),
        tokens=cost.tokens,
        cached_tokens=cost.cached_tokens,
        seconds=cost.seconds,
    )
    node.role = node_role(node.relevance, node.v, cfg)
    return node


async def search_pair(
    model, pair: Pair, library: Library, cfg: TreeConfig, resumed: Search | None = None
) -> Search:
    """One pair's whole search (or a stored one's, going on), each model call awaited in turn: the
    relevance pass, then one node at a time until the search stops."""
    s = resumed
    if s is None:
        setup = Cost()
        s = Search.start(pair, library.principles, await score_relevance(model, pair, library, cfg, setup))
        s.setup = setup
    while (p := s.pop(cfg)) is not None:
        s.add(await expand(model, s, p, cfg), cfg)
    s.finish()
    return s


# ---------------------------------------------------------------------------------------------- store


def stored_pair_ids(
    session: Session, strong_model: str, config_hash: str, among: Sequence[str] | None = None
) -> set[str]:
    """Pairs with a tree by this model and config (only those of `among`, when given)."""
    query = select(Tree.pair_id).where(Tree.strong_model == strong_model, Tree.config_hash == config_hash)
    if among is None:
        return set(session.exec(query))
    return set(select_in(session, query, Tree.pair_id, among))


def save_search(
    session: Session, search: Search, model: Model, cfg: TreeConfig, identity: dict | None = None
) -> Tree:
    """Write one finished search as a Tree and its Nodes (in the caller's transaction); `identity` is
    `cfg.identity()` when the caller has it."""
    nodes = search.nodes
    identity = identity or cfg.identity()
    config = {
        **cfg.as_dict(),
        **identity,
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
        config_hash=identity["hash"],
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


def save_tree(
    url: str | None, search: Search, model: Model, cfg: TreeConfig, identity: dict | None = None
) -> bool:
    """Store one finished search in its own short transaction; False when the pair's tree was built
    elsewhere meanwhile (found stored, or a lost race on the unique tree key)."""
    identity = identity or cfg.identity()
    try:
        with session_scope(url) as session:
            stored = select(Tree.id).where(
                Tree.pair_id == search.pair.id,
                Tree.strong_model == model.spec,
                Tree.config_hash == identity["hash"],
            )
            if session.exec(stored).first() is not None:
                return False
            save_search(session, search, model, cfg, identity)
        return True
    except IntegrityError:  # session_scope rolled back
        return False


# ---------------------------------------------------------------------------------------------- scheduler


class PairSource(Protocol):
    """Where a build's pair ids come from: a list (`ListSource`) or a queue shared by several workers."""

    def claim(self) -> list[str]:
        """More pair ids to work on now; [] when none is claimable at the moment."""
        ...

    def done(self, ids: Sequence[str]) -> None:
        """These are saved (or built elsewhere): never hand them out again."""
        ...

    def finished(self) -> bool:
        """True when nothing is left anywhere (not even leased to other workers)."""
        ...

    def status(self) -> str:
        """A short phrase for the progress line, e.g. '12 leased by other workers'."""
        ...


class ListSource:
    """The pair ids of a list, in order (duplicates once), handed out `chunk` at a time."""

    def __init__(self, ids: Sequence[str], chunk: int = 256):
        self.todo = list(dict.fromkeys(ids))
        self.total = len(self.todo)
        self.chunk = chunk
        self.left = set(self.todo)

    def claim(self) -> list[str]:
        out, self.todo = self.todo[: self.chunk], self.todo[self.chunk :]
        return out

    def done(self, ids: Sequence[str]) -> None:
        self.left.difference_update(ids)

    def finished(self) -> bool:
        return not self.left

    def status(self) -> str:
        return f"{len(self.left)} of {self.total} pairs left"


@dataclass
class BuildReport:
    """What a build did so far (passed to the progress callback after every tree and every second)."""

    built: int = 0
    stored: int = 0  # found stored before the search started
    elsewhere: int = 0  # built by another worker while this one searched (the other's tree is kept)
    in_flight: int = 0
    prompt_tokens: int = 0  # the run's totals, from the model's usage
    completion_tokens: int = 0
    cached_tokens: int = 0
    calls: int = 0
    seconds: float = 0.0
    budget_reached: bool = False
    note: str = ""  # what the build waits for, if anything

    @property
    def done(self) -> int:
        return self.built + self.stored + self.elsewhere

    @property
    def tokens(self) -> int:
        """Tokens evaluated or generated (as trees are charged: cached prompt tokens excluded)."""
        return self.prompt_tokens - self.cached_tokens + self.completion_tokens


POLL_SECONDS = 1.5  # how often an idle build asks its source again
TICK_SECONDS = 1.0  # how often the progress line is refreshed while trees are in flight


async def run_build(
    model: Model,
    source: PairSource,
    cfg: TreeConfig,
    *,
    url: str | None = None,
    in_flight: int = 8,
    extend_from: str | None = None,
    max_tokens: int | None = None,
    progress: Callable[[BuildReport], None] | None = None,
    clock: Callable[[], float] = time.monotonic,
) -> BuildReport:
    """Search up to `in_flight` pairs at once, each its own task; a finished search is saved at once and
    its slot goes to the next pair. With `max_tokens`, no pair starts once the run has spent that many
    tokens; the ones in flight finish and are saved. The first error cancels the searches in flight
    (saved trees stay: a rerun resumes) and is raised naming its pair."""
    library = load_library(cfg.library)
    with session_scope(url) as session:
        sync(session, library)
    call = as_async(model)
    identity = cfg.identity()
    report = BuildReport(budget_reached=max_tokens is not None and max_tokens <= 0)
    base, began = dataclasses.replace(model.usage, last=[]), clock()
    queue: deque[tuple[Pair, Search | None]] = deque()
    running: dict[asyncio.Task, str] = {}

    def notify(note: str = "") -> None:
        u = model.usage
        report.prompt_tokens = u.prompt_tokens - base.prompt_tokens
        report.completion_tokens = u.completion_tokens - base.completion_tokens
        report.cached_tokens = u.cached_prompt_tokens - base.cached_prompt_tokens
        report.calls, report.seconds, report.in_flight = u.calls - base.calls, clock() - began, len(running)
        report.budget_reached = report.budget_reached or (
            max_tokens is not None and report.tokens >= max_tokens
        )
        report.note = note or getattr(call, "waiting", lambda: "")()
        if progress is not None:
            progress(report)

    def refill() -> None:
        """Claim pairs until the queue has one (stored ones are done at once)."""
        while not queue and (ids := source.claim()):
            with session_scope(url) as session:
                have = stored_pair_ids(session, model.spec, identity["hash"], ids)
                pairs = {p.id: p for p in session.exec(select(Pair).where(Pair.id.in_(ids)))}
                missing = [pid for pid in ids if pid not in pairs]
                if missing:
                    raise ValueError(
                        f"no stored pair {missing[0]!r} ({len(missing)} of {len(ids)} claimed ids)"
                    )
                todo = [pairs[pid] for pid in ids if pid not in have]
                resumed = (
                    {}
                    if extend_from is None
                    else {
                        s.pair.id: s
                        for s in resume_searches(session, todo, model.spec, extend_from, library, cfg)
                    }
                )
            stored = [pid for pid in ids if pid in have]
            if stored:
                source.done(stored)
                report.stored += len(stored)
            queue.extend((p, resumed.get(p.id)) for p in todo)

    try:
        while True:
            while len(running) < in_flight and not report.budget_reached:
                refill()
                if not queue:
                    break
                pair, resumed = queue.popleft()
                running[asyncio.create_task(search_pair(call, pair, library, cfg, resumed))] = pair.id
            if not running:
                if report.budget_reached or source.finished():
                    break
                notify(f"waiting for pairs: {source.status()}")
                await asyncio.sleep(POLL_SECONDS)
                continue
            finished, _ = await asyncio.wait(
                running, timeout=TICK_SECONDS, return_when=asyncio.FIRST_COMPLETED
            )
            for task in finished:
                pid = running.pop(task)
                if (e := task.exception()) is not None:
                    e.add_note(f"(while searching pair {pid})")
                    raise e
                if save_tree(url, task.result(), model, cfg, identity):
                    report.built += 1
                else:
                    report.elsewhere += 1
                source.done([pid])
            notify()
    finally:
        for task in running:
            task.cancel()
        await asyncio.gather(*running, return_exceptions=True)
        if hasattr(call, "aclose"):
            await call.aclose()
    notify()
    return report


def build_trees(
    model: Model,
    pairs: Sequence[str] | PairSource,
    cfg: TreeConfig | None = None,
    *,
    url: str | None = None,
    in_flight: int = 8,
    progress: Callable[[BuildReport], None] | None = None,
    extend_from: str | None = None,
    max_tokens: int | None = None,
) -> int:
    """Build the missing trees of a list of pair ids or of a `PairSource` (see `run_build`); returns how
    many were built. `extend_from`: a config hash whose trees (same strong model) this config's searches
    go on from, where a pair has one; a tree that cannot be extended (`extension_problem`) is an error
    naming why."""
    source = pairs if hasattr(pairs, "claim") else ListSource(list(pairs))
    return asyncio.run(
        run_build(
            model,
            source,
            cfg or TreeConfig(),
            url=url,
            in_flight=in_flight,
            extend_from=extend_from,
            max_tokens=max_tokens,
            progress=progress,
        )
    ).built


def resume_searches(
    session: Session,
    pairs: Sequence[Pair],
    strong_model: str,
    config_hash: str,
    library: Library,
    cfg: TreeConfig,
) -> list[Search]:
    """The searches of the `pairs` that have a tree of `config_hash`, to go on under `cfg`."""
    out = []
    for pair in pairs:
        tree, nodes = latest_tree(session, pair.id, strong_model, config_hash)
        if tree is None:
            continue
        problem = extension_problem(tree, nodes, cfg)
        if problem:
            raise ValueError(
                f"tree {tree.id} (pair {pair.id}, config {config_hash}) cannot be extended to config "
                f"{cfg.hash()}: {problem}"
            )
        out.append(Search.resume(pair, tree, nodes, library, cfg))
    return out


def latest_tree(
    session: Session, pair_id: str, strong_model: str | None = None, config_hash: str | None = None
):
    """The newest tree of a pair (optionally by strong model / config), with its nodes in order: the
    `w2s.trees.selection.TreeSelector` rule for one pair."""
    from w2s.trees.selection import TreeSelector

    return TreeSelector(strong_model, config_hash).tree(session, pair_id)
