"""Annotators that decide with a trained aligned weak master (`w2s master train`), named by `--master`:
a master saved in the store (its name) or a run directory.

| name          | decides                                   | reads                        |
|---------------|-------------------------------------------|------------------------------|
| aligned       | the master's no-tree twin                 | the pair alone               |
| seam-aligned  | a `features` master                       | the pair and its tree's features |
| seam-aligned-rm | an `rm` master                          | the pair with the tree's notes as text |
| seam-gate     | the tree where it exits, else the twin    | the pair and its tree's exit |
| cot-aligned   | a `cot-v1`/`cot-v2`/`cot-v3` master        | the pair with that CoT's stored reasoning |

All are stored under `master:<run id>`, so labels of different masters never share a dedup key, and
each reads the trees (or the reasoning) of the strong model and config the master was trained on.
"""

from __future__ import annotations

from contextlib import nullcontext
from dataclasses import asdict, dataclass

from sqlmodel import Session

from annotators.base import Annotator, AnnotatorOptions, Decision, register_annotator
from w2s.labels.quality import decisive_exit_p_a
from w2s.masters import KINDS, MasterInputs, resolve_master, shared_features, trees_for_master
from w2s.options import typed_options
from w2s.reasoning import COT_METHODS, missing_reasoning_error, stored_reasoning
from w2s.store import session_scope
from w2s.trees.principles import load_library


@dataclass(frozen=True)
class MasterOptions(AnnotatorOptions):
    master: str | None = None
    """A master saved in the store (its name: `w2s master list`) or a run directory of `w2s master train
    --out`: the master decides (its weak model, its trees)."""


class _Aligned(Annotator):
    Options = MasterOptions
    kinds: tuple[str, ...] = tuple(KINDS)
    """The master kinds this method decides with (the twin: any)."""

    def __init__(self, weak=None, strong=None, *, url: str | None = None, **options):
        self.url = url
        self.options = typed_options(self.Options, options, f"annotator '{self.name}'")
        if not self.options.master:
            raise ValueError(f"annotator '{self.name}' needs a trained master (--master NAME or RUN_DIR)")
        self.master = resolve_master(self.options.master, url)
        cfg = self.master.config
        if cfg.kind not in self.kinds:
            raise ValueError(
                f"annotator '{self.name}' needs a master of kind {' or '.join(self.kinds)}; "
                f"{self.options.master} is of kind {cfg.kind}"
            )
        self.features = shared_features(cfg)
        self.strong = None
        self.weak = None

    @property
    def annotator_id(self) -> str:
        return f"master:{self.master.run_id}"

    def producer(self) -> dict:
        """The master names everything that makes the label: its run id covers its config (weak model,
        strong model and tree config it reads) and its training data. The run directory's path does not."""
        return {
            "method": self.name,
            "annotator": self.annotator_id,
            "master": self.master.run_id,
            "master_config": asdict(self.master.config),
        }


@register_annotator
class AlignedWeak(_Aligned):
    """The aligned weak model alone: the master's twin, on the pair only."""

    name = "aligned"

    def decide(self, pairs, variant, session):
        p_a = self.master.p_a_alone(self.features(pairs))
        return [Decision(p_a=float(x), meta={"master": self.master.run_id}) for x in p_a]


@register_annotator
class SeamAligned(_Aligned):
    """The aligned master reading the pair's FF-tree (all its nodes, as features)."""

    name = "seam-aligned"
    kinds = ("features",)

    def trees(self, pairs, session: Session) -> list:
        """Each pair's (tree, nodes) by the strong model and config the master was trained on."""
        cfg = self.master.config
        found = trees_for_master(session, [p.id for p in pairs], cfg.strong, cfg.tree_config)
        for pair in pairs:
            if pair.id not in found:
                raise LookupError(
                    f"pair {pair.id} has no tree by {cfg.strong} of config {cfg.tree_config}: "
                    f"run `w2s trees build --strong {cfg.strong}` (with that config) first"
                )
        return [found[p.id] for p in pairs]

    def decide(self, pairs, variant, session: Session | None):
        cfg = self.master.config
        library = load_library(cfg.library)  # the master's own: its features follow this library's order
        with session_scope(self.url) if session is None else nullcontext(session) as s:
            loaded = self.trees(pairs, s)
            inputs = MasterInputs(pairs, [t for t, _ in loaded], [ns for _, ns in loaded], library)
            x = self.master.kind.x(self.features, inputs)
            ids = [(t.id, [n.id for n in ns]) for t, ns in loaded]
        p_a = self.master.p_a(self.features(pairs), x)
        return [
            Decision(
                p_a=float(p),
                tree_id=tid,
                consulted_node_ids=nids,
                meta={"master": self.master.run_id, "tree_config": cfg.tree_config},
            )
            for p, (tid, nids) in zip(p_a, ids)
        ]


@register_annotator
class SeamAlignedRM(SeamAligned):
    """The aligned weak reward model reading the pair with its FF-tree's notes as text."""

    name = "seam-aligned-rm"
    kinds = ("rm",)


@register_annotator
class SeamGate(SeamAligned):
    """Fast and frugal, with nothing fitted on the tree: where the tree's search stopped on a decisive exit
    (max(v) >= its tau_exit), that verdict is the label; everywhere else the master's twin decides."""

    name = "seam-gate"

    def decide(self, pairs, variant, session: Session | None):
        cfg = self.master.config
        with session_scope(self.url) if session is None else nullcontext(session) as s:
            exits = []
            for tree, nodes in self.trees(pairs, s):
                p_a = decisive_exit_p_a([(n.role, n.p_a) for n in nodes], tree.config["tau_exit"])
                node = next((n for n in nodes if n.role == "exit"), None) if p_a is not None else None
                exits.append((tree.id, p_a, [node.id] if node else []))
        twin = self.master.p_a_alone(self.features(pairs))
        return [
            Decision(
                p_a=float(t if p is None else p),
                tree_id=tree_id,
                consulted_node_ids=nids,
                meta={
                    "master": self.master.run_id,
                    "tree_config": cfg.tree_config,
                    "decided_by": "twin" if p is None else "tree",
                },
            )
            for t, (tree_id, p, nids) in zip(twin, exits)
        ]


@register_annotator
class CoTAligned(_Aligned):
    """The aligned master reading the pair with the strong model's free reasoning: the CoT baseline's
    reasoning (stored with its labels) decided by a master trained on gold, as the tree is by seam-aligned-rm."""

    name = "cot-aligned"
    kinds = COT_METHODS

    def decide(self, pairs, variant, session: Session | None):
        cfg = self.master.config
        with session_scope(self.url) if session is None else nullcontext(session) as s:
            _, found = stored_reasoning(
                s, [p.id for p in pairs], cfg.kind, cfg.strong, cfg.reasoning_max_tokens
            )
        missing = [p.id for p in pairs if p.id not in found]
        if missing:
            raise LookupError(
                missing_reasoning_error(cfg.kind, cfg.strong, cfg.reasoning_max_tokens, missing)
            )
        x = self.master.kind.x(
            self.features, MasterInputs(pairs, reasoning=[found[p.id].text for p in pairs])
        )
        p_a = self.master.p_a(self.features(pairs), x)
        return [
            Decision(
                p_a=float(q), meta={"master": self.master.run_id, "reasoning_from": found[p.id].annotation_id}
            )
            for q, p in zip(p_a, pairs)
        ]
