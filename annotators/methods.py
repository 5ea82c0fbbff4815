"""The built-in annotators: SEAM (weak master over FF-trees) and the baselines of docs/design.md#baselines.

| name         | who decides | context the decider sees                                               |
|--------------|-------------|------------------------------------------------------------------------|
| naive        | weak        | the pair alone                                                         |
| strong       | strong      | the pair alone ("strong as final corrector")                           |
| cot-v1/2/3   | weak        | the strong model's reasoning (principles+definitions / names / "step by step") |
| seam         | weak        | the informative nodes of the pair's FF-tree (principle + thought)      |
| consistency  | weak        | naive weak and strong zero-shot; disagreement is filtered out ('tie')  |

Every decision is P(A) vs P(B) from next-token probabilities, averaged over both presentation orders
(position bias cancels); a non-canonical `Variant` changes which order goes first and the order of the
consulted nodes. With the option `both_orders=False` each decision is asked once, in the variant's order
(prompt-variation studies). Every option is part of the annotator's producer hash (annotators/base.py).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sqlmodel import Session

from annotators.base import Annotator, AnnotatorOptions, Decision, p_a_from_first, register_annotator
from w2s.backends import Model
from w2s.labels.variants import Variant
from w2s.store import Node, Pair, Tree, session_scope
from w2s.templates import render, template_hash
from w2s.trees import A_B, PRUNED, YES_NO, pair_context, swap_labels
from w2s.trees.principles import Library, library_for_dataset, load_library
from w2s.trees.selection import TreeSelector


def library_of(pair: Pair, options: AnnotatorOptions) -> Library:
    return load_library(options.library or library_for_dataset(pair.dataset))


def decide_both_orders(
    model: Model,
    template: str,
    pairs: Sequence[Pair],
    contexts: Sequence[dict],
    variant: Variant,
    swap_text: Sequence[str] = (),
    both: bool = True,
) -> list[float]:
    """P(A better) per pair: `template` scored with A first and with B first, in one batched call
    (with `both=False`, only in the variant's order: a swap variant then really asks the other way round).

    `contexts[i]` holds the template's extra variables for pair i; the keys named in `swap_text` are
    texts written about the canonical order, so 'Reply A'/'Reply B' are swapped in the swapped prompt.
    The variant's `swap` only decides which order is listed first.
    """
    orders = ((True, False) if variant.swap else (False, True))[: 2 if both else 1]
    prompts = []
    for pair, ctx in zip(pairs, contexts):
        for swap in orders:
            extra = dict(ctx)
            if swap:
                for key in swap_text:
                    extra[key] = _swap_deep(extra[key])
            prompts.append(render(template, **pair_context(pair, swap), **extra))
    probs = model.score_choices(prompts, A_B)
    k = len(orders)
    return [
        sum(p_a_from_first(probs[k * i + j][0], swap) for j, swap in enumerate(orders)) / k
        for i in range(len(pairs))
    ]


def _swap_deep(value):
    if isinstance(value, str):
        return swap_labels(value)
    if isinstance(value, list):
        return [_swap_deep(v) for v in value]
    if isinstance(value, dict):
        return {k: _swap_deep(v) for k, v in value.items()}
    return value


@register_annotator
class Naive(Annotator):
    """The weak model alone."""

    name = "naive"
    templates = ("judge",)

    def decide(self, pairs, variant, session):
        ctx = [{"question": library_of(p, self.options).question} for p in pairs]
        p_a = decide_both_orders(self.weak, "judge", pairs, ctx, variant, both=self.both)
        return [Decision(p_a=x, meta={"template": template_hash("judge")}) for x in p_a]


@register_annotator
class Strong(Annotator):
    """The strong model decides (zero-shot); stored under the strong model's spec."""

    name = "strong"
    needs_strong = True
    templates = ("judge",)

    @property
    def annotator_id(self) -> str:
        return self.strong.spec

    def producer(self) -> dict:
        return {k: v for k, v in super().producer().items() if k != "weak"}  # the weak model plays no part

    def decide(self, pairs, variant, session):
        ctx = [{"question": library_of(p, self.options).question} for p in pairs]
        p_a = decide_both_orders(self.strong, "judge", pairs, ctx, variant, both=self.both)
        return [Decision(p_a=x, meta={"template": template_hash("judge")}) for x in p_a]


@dataclass(frozen=True)
class CoTOptions(AnnotatorOptions):
    reasoning_max_tokens: int = 96
    """Token budget of the strong model's reasoning."""


class _CoT(Annotator):
    """The strong model reasons freely (canonical order); the weak model decides with that as context."""

    Options = CoTOptions
    needs_strong = True
    template = ""

    @property
    def templates(self) -> tuple[str, ...]:
        return (self.template, "weak-decision")

    def decide(self, pairs, variant, session):
        libraries = [library_of(p, self.options) for p in pairs]
        prompts = [
            render(self.template, **pair_context(p, False), principles=lib.principles, question=lib.question)
            for p, lib in zip(pairs, libraries)
        ]
        max_tokens = self.options.reasoning_max_tokens
        reasoning = [" ".join(g.text.split()) for g in self.strong.generate(prompts, max_tokens=max_tokens)]
        ctx = [
            {"question": lib.question, "nodes": [], "reasoning": r} for lib, r in zip(libraries, reasoning)
        ]
        p_a = decide_both_orders(
            self.weak, "weak-decision", pairs, ctx, variant, swap_text=("reasoning",), both=self.both
        )
        meta = {"template": template_hash(self.template), "decision_template": template_hash("weak-decision")}
        return [Decision(p_a=x, meta={**meta, "reasoning": r}) for x, r in zip(p_a, reasoning)]


@register_annotator
class CoTV1(_CoT):
    name, template = "cot-v1", "cot-v1"


@register_annotator
class CoTV2(_CoT):
    name, template = "cot-v2", "cot-v2"


@register_annotator
class CoTV3(_CoT):
    name, template = "cot-v3", "cot-v3"


@dataclass(frozen=True)
class SeamConfig(AnnotatorOptions):
    """How the weak master reads a tree."""

    top_k: int = 2
    """Keep the k nodes with the highest info."""
    tau_info: float = 0.5
    """... and every node with info >= tau_info."""
    weak_prune: bool = True
    """Let the weak model prune kept nodes it judges irrelevant."""
    tau_weak_rel: float = 0.5
    """A kept node with P_W(relevant) below this is pruned."""
    tree_config: str | None = None
    """Read trees of this config hash [default: the config of the newest tree among the pairs]."""


def pick_informative(nodes: Sequence[Node], cfg: SeamConfig) -> list[Node]:
    """Top-k nodes by info plus any with info >= tau_info, from the search's chain (exit/continue nodes),
    or from all nodes when the search kept none. Ordered by info, highest first."""
    chain = [n for n in nodes if n.role != PRUNED] or list(nodes)
    ranked = sorted(chain, key=lambda n: (-n.info, n.position))
    return [n for i, n in enumerate(ranked) if i < cfg.top_k or n.info >= cfg.tau_info]


@register_annotator
class Seam(Annotator):
    """Strong empowers, aligned weak masters: the weak model decides from the tree's informative nodes."""

    name = "seam"
    needs_strong = True
    Options = SeamConfig
    templates = ("weak-relevance", "weak-decision")
    tree_config: str | None = None
    """The tree config this run reads: the option, else fixed by `bind` (part of the producer)."""

    def bind(self, session: Session, pairs) -> None:
        # One config per run, so that the producer names it: a new tree config is a new producer.
        choice = (
            None
            if self.options.tree_config
            else TreeSelector(self.strong.spec).choice(session, [p.id for p in pairs])
        )
        self.tree_config = self.options.tree_config or (choice[1] if choice else None)

    def producer(self) -> dict:
        return {**super().producer(), "tree_config": self.tree_config}

    def load_trees(self, pairs, session: Session) -> list[tuple[Tree, list[Node]]]:
        if self.tree_config is None:
            self.bind(session, pairs)
        out = []
        found = TreeSelector(self.strong.spec, self.tree_config).settle_with_nodes(
            session, [p.id for p in pairs]
        )
        for pair in pairs:
            tree, nodes = found.get(pair.id, (None, []))
            if tree is None:
                config = f" under tree config {self.tree_config}" if self.tree_config else ""
                raise LookupError(
                    f"pair {pair.id} has no tree by {self.strong.spec}{config}: "
                    f"run `w2s trees build --strong {self.strong.spec}` first"
                )
            out.append((tree, nodes))
        return out

    def decide(self, pairs, variant, session: Session | None):
        cfg = self.options
        if session is None:
            with session_scope(self.url) as own:
                loaded = self.load_trees(pairs, own)
        else:
            loaded = self.load_trees(pairs, session)
        trees = [t for t, _ in loaded]
        kept = [variant.permute(pick_informative(nodes, cfg)) for _, nodes in loaded]
        pruned: list[list[dict]] = [[] for _ in pairs]
        if cfg.weak_prune:
            flat = [(i, n) for i, ns in enumerate(kept) for n in ns]
            prompts = [
                render(
                    "weak-relevance",
                    **pair_context(pairs[i], False),
                    principle=_principle(n),
                    thought=n.thought,
                )
                for i, n in flat
            ]
            probs = self.weak.score_choices(prompts, YES_NO) if prompts else []
            for (i, n), row in zip(flat, probs):
                if row[0] < cfg.tau_weak_rel:
                    pruned[i].append(
                        {"node_id": n.id, "reason": f"weak P(relevant)={row[0]:.3f} < {cfg.tau_weak_rel}"}
                    )
            drop = [{d["node_id"] for d in p} for p in pruned]
            kept = [[n for n in ns if n.id not in drop[i]] for i, ns in enumerate(kept)]
        ctx = [
            {
                "question": library_of(p, self.options).question,
                "nodes": [{"name": n.principle_name, "thought": n.thought} for n in ns],
                "reasoning": "",
            }
            for p, ns in zip(pairs, kept)
        ]
        p_a = decide_both_orders(
            self.weak, "weak-decision", pairs, ctx, variant, swap_text=("nodes",), both=self.both
        )
        return [
            Decision(
                p_a=x,
                tree_id=t.id,
                consulted_node_ids=[n.id for n in ns],
                pruned=pr,
                meta={"template": template_hash("weak-decision"), "tree_config": t.config_hash},
            )
            for x, t, ns, pr in zip(p_a, trees, kept, pruned)
        ]


def _principle(node: Node) -> dict:
    # the weak relevance prompt shows the principle; the node names it, the library defines it
    library = load_library(node.principle_id.split("/", 1)[0])
    for p in library.principles:
        if p.id == node.principle_id:
            return p
    return {"name": node.principle_name, "definition": "", "cue": ""}


@register_annotator
class Consistency(Annotator):
    """Weak–strong consistency filter: keep the weak label where the strong model agrees, else 'tie'
    (filtered out). Accuracy counts a filtered pair as not correct; coverage is reported alongside."""

    name = "consistency"
    needs_strong = True

    def decide(self, pairs, variant, session):
        ctx = [{"question": library_of(p, self.options).question} for p in pairs]
        weak = decide_both_orders(self.weak, "judge", pairs, ctx, variant, both=self.both)
        strong = decide_both_orders(self.strong, "judge", pairs, ctx, variant, both=self.both)
        out = []
        for w, s in zip(weak, strong):
            agree = (w > 0.5) == (s > 0.5) and w != 0.5 and s != 0.5
            out.append(
                Decision(p_a=w, label=None if agree else "tie", meta={"strong_p_a": s, "filtered": not agree})
            )
        return out
