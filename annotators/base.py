"""The one interface every model annotator implements, and the batch driver they share.

An annotator turns store `Pair` rows into `Annotation` rows:

    annotator = get_annotator("seam", weak="transformers:smollm2", strong="llamacpp:qwen2.5-coder-1.5b")
    rows = annotator.annotate(pairs, variant=CANONICAL, session=session)   # one batch, written to session
    annotate_all(annotator, pairs, url=db, batch_size=16)                  # resumable: commit per batch

A subclass implements only `decide(pairs, variant, session) -> list[Decision]` (batched: one call per
batch, not per pair). This module does the rest the same way for every method:

- presentation (w2s.vocab): `present(pair, swap)` gives the (first, second) responses and
  `p_a_from_first` maps an answer about the first-shown response back to A; `Variant.swap` shows B
  first, `Variant.permute` reorders consulted tree nodes (annotators that show nodes call it);
- labels (w2s.vocab.label_of): label = argmax of (p_a, 1 - p_a) ('tie' at 1/2), confidence = the max
  probability;
- options: each method declares a frozen dataclass `Options` (a subclass of `AnnotatorOptions`); an
  unknown option is an error naming it, and the CLI reads its defaults from there;
- identity: `producer()` describes what makes the label (method, models, options, template hashes,
  principle libraries, and what a subclass adds, e.g. the tree config); its hash is stored in
  `Annotation.producer` and is part of the dedup key, evaluation's groups and aggregation's workers;
- idempotency: every row carries `dedup_key = annotation_key(method, annotator, producer, variant.id, pair_id)`,
  so a rerun of the same config (or a resume after kill -9) adds nothing for pairs already done and never
  duplicates one, while a run with another config is stored beside it;
- resumability: `annotate_all` skips pairs whose key is stored and commits after every batch.

Trees are read from the store (built by `w2s trees build`); annotators never build them.
"""

from __future__ import annotations

import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field

from sqlmodel import Session, select

from w2s.backends import Model, get_model
from w2s.labels.variants import CANONICAL, Variant
from w2s.options import typed_options
from w2s.store import Annotation, Pair, add_annotation, annotation_key, select_in, session_scope
from w2s.store.work import PairSource, WorkQueue, drain
from w2s.templates import template_hash
from w2s.trees.principles import available, load_library
from w2s.vocab import label_of, p_a_from_first, present, producer_hash  # noqa: F401  (re-exported)


@dataclass(frozen=True)
class AnnotatorOptions:
    """Options every annotator takes; a method with more subclasses this as its `Options`."""

    library: str | None = None
    """Principle library that poses the question [default: the one the dataset's name suggests]."""
    both_orders: bool = True
    """Average each decision over both presentation orders; False asks once, in the variant's order
    (what prompt-variation reliability studies need)."""


@dataclass
class Decision:
    """What an annotator concluded about one pair, before it becomes an `Annotation` row."""

    p_a: float
    """Probability that response A (as stored, whatever the variant showed first) is better."""
    tree_id: int | None = None
    consulted_node_ids: list[int] = field(default_factory=list)
    pruned: list[dict] = field(default_factory=list)
    """[{"node_id": int, "reason": str}] for nodes the annotator saw and set aside."""
    meta: dict = field(default_factory=dict)
    label: str | None = None
    """Force a label (e.g. 'tie' from a filter); by default the argmax of p_a."""


def resolve(model: Model | str | None) -> Model | None:
    return get_model(model) if isinstance(model, str) else model


class Annotator(ABC):
    """A method of labelling pairs. `name` is the method string stored in `Annotation.method`;
    `annotator_id` (the weak model spec) is stored in `Annotation.annotator`."""

    name: str = ""
    needs_strong: bool = False
    """True when the method reads the strong model (or its trees): `strong` must then be given."""
    Options: type[AnnotatorOptions] = AnnotatorOptions
    templates: tuple[str, ...] = ()
    """The prompt templates the method renders (their hashes are part of `producer()`)."""

    def __init__(
        self,
        weak: Model | str | None,
        strong: Model | str | None = None,
        *,
        url: str | None = None,
        **options,
    ) -> None:
        self.url = url
        """Database that methods reading the store (trees) use when `annotate` gets no session."""
        if weak is None:
            raise ValueError(f"annotator '{self.name}' needs a weak model (--weak SPEC)")
        self.weak = resolve(weak)
        self.strong = resolve(strong)
        if self.needs_strong and self.strong is None:
            raise ValueError(f"annotator '{self.name}' needs a strong model (--strong SPEC)")
        self.options = typed_options(self.Options, options, f"annotator '{self.name}'")

    @property
    def annotator_id(self) -> str:
        return self.weak.spec

    @property
    def both(self) -> bool:
        return self.options.both_orders

    def producer(self) -> dict:
        """What makes this annotator's labels; two configs that can label differently must differ here.
        Subclasses extend it (e.g. the tree config SEAM reads)."""
        library = self.options.library
        return {
            "method": self.name,
            "annotator": self.annotator_id,
            "weak": self.weak.spec,
            "strong": self.strong.spec if self.strong is not None else None,
            "options": asdict(self.options),
            "templates": {t: template_hash(t) for t in self.templates},
            # by dataset, any library may be read: then all of them are part of the identity
            "principles": {
                name: load_library(name).hash() for name in ([library] if library else available())
            },
        }

    def producer_hash(self) -> str:
        return producer_hash(self.producer())

    def bind(self, session: Session, pairs: Sequence[Pair]) -> None:  # noqa: B027  (optional hook: most annotators fix nothing)
        """Fix what the store decides about this run before keys are computed (SEAM: which trees)."""

    def key(self, pair_id: str, variant: Variant = CANONICAL, producer: str | None = None) -> str:
        return annotation_key(
            self.name, self.annotator_id, producer or self.producer_hash(), variant.id, pair_id
        )

    @abstractmethod
    def decide(self, pairs: Sequence[Pair], variant: Variant, session: Session | None) -> list[Decision]:
        """One `Decision` per pair, in order, computed in batched model calls."""

    def annotate(
        self, pairs: Sequence[Pair], *, variant: Variant = CANONICAL, session: Session | None = None
    ) -> list[Annotation]:
        """Label `pairs`; with a session, add the rows to it (duplicates by dedup key are skipped) and
        return only the rows added; without one, return all rows unsaved."""
        pairs = list(pairs)
        if not pairs:
            return []
        if session is not None:
            self.bind(session, pairs)
        start = time.perf_counter()
        decisions = self.decide(pairs, variant, session)
        per_pair = (time.perf_counter() - start) / len(pairs)
        producer = self.producer()
        digest = producer_hash(producer)
        rows = []
        for pair, d in zip(pairs, decisions, strict=True):
            label, confidence = label_of(d.p_a)
            if d.label is not None:
                label = d.label
            rows.append(
                Annotation(
                    pair_id=pair.id,
                    annotator=self.annotator_id,
                    annotator_kind="model",
                    label=label,
                    confidence=confidence,
                    p_a=d.p_a,
                    method=self.name,
                    variant=variant.id,
                    producer=digest,
                    tree_id=d.tree_id,
                    consulted_node_ids=list(d.consulted_node_ids),
                    pruned=list(d.pruned),
                    seconds=per_pair,
                    dedup_key=self.key(pair.id, variant, digest),
                    meta={**d.meta, "producer": producer},
                )
            )
        if session is None:
            return rows
        return [row for row in rows if add_annotation(session, row) is not None]


# ---------------------------------------------------------------------------------------------- registry

ANNOTATORS: dict[str, type[Annotator]] = {}


def register_annotator(cls: type[Annotator]) -> type[Annotator]:
    """Class decorator: make an annotator available by its `name` (`w2s annotate --annotator NAME`)."""
    ANNOTATORS[cls.name] = cls
    return cls


def get_annotator(
    name: str, weak: Model | str | None, strong: Model | str | None = None, **options
) -> Annotator:
    """An annotator by method name; `options` go to the method (e.g. top_k, tau_info, library, url)."""
    import annotators.aligned  # registers the masters' methods
    import annotators.methods  # noqa: F401  (registers the built-in methods)

    if name not in ANNOTATORS:
        raise ValueError(f"unknown annotator {name!r}; known: {', '.join(sorted(ANNOTATORS))}")
    return ANNOTATORS[name](weak, strong, **options)


# ---------------------------------------------------------------------------------------------- batch driver


def pending(session: Session, annotator: Annotator, pairs: Iterable[Pair], variant: Variant) -> list[Pair]:
    """The pairs this annotator has not yet labelled under this variant (by dedup key)."""
    pairs = list(pairs)
    annotator.bind(session, pairs)
    done = labelled(session, annotator, [p.id for p in pairs], variant)
    return [p for p in pairs if p.id not in done]


def labelled(session: Session, annotator: Annotator, pair_ids: Sequence[str], variant: Variant) -> set[str]:
    """The pairs among `pair_ids` this (bound) annotator has labelled under this variant (by dedup key)."""
    digest = annotator.producer_hash()
    keys = {annotator.key(pid, variant, digest): pid for pid in pair_ids}
    done = set(select_in(session, select(Annotation.dedup_key), Annotation.dedup_key, keys))
    return {keys[k] for k in done}


def annotate_all(
    annotator: Annotator,
    pair_ids: Sequence[str],
    *,
    url: str | None = None,
    batch_size: int = 16,
    variant: Variant = CANONICAL,
    on_batch: Callable[[int, int], None] | None = None,
) -> int:
    """Label every pair not yet labelled, one transaction per batch; returns the number of rows added.

    Killed at any point, a rerun resumes: committed batches are skipped by dedup key, the batch in flight
    was never written. The models run outside any transaction (a SQLite writer lock is held only for the
    short insert), so humans annotating in the app are not blocked. `on_batch(done, added)` reports
    progress after each commit.
    """
    annotator.url = url
    with session_scope(url) as session:
        todo = [p.id for p in pending(session, annotator, _load(session, pair_ids), variant)]
    if on_batch is not None:
        on_batch(len(pair_ids) - len(todo), 0)
    return sum(
        _label_batch(annotator, todo[i : i + batch_size], url, variant, on_batch)
        for i in range(0, len(todo), batch_size)
    )


def annotation_queue(
    annotator: Annotator,
    pair_ids: Sequence[str],
    *,
    url: str | None = None,
    variant: Variant = CANONICAL,
    **kwargs,
) -> WorkQueue:
    """The work of labelling `pair_ids` with this annotator, shared by every worker given the same pairs
    and the same producer (w2s.store.work): the job is the producer hash and the variant; a pair with this
    producer's label is done. Binds the annotator over all the pairs first, so every chunk has one producer."""
    with session_scope(url) as session:
        annotator.bind(session, _load(session, pair_ids))
    job = f"annotate {annotator.producer_hash()} {variant.id or 'canonical'}"
    return WorkQueue(url, job, pair_ids, stored=lambda s, ids: labelled(s, annotator, ids, variant), **kwargs)


def annotate_shared(
    annotator: Annotator,
    source: PairSource,
    *,
    url: str | None = None,
    batch_size: int = 16,
    variant: Variant = CANONICAL,
    on_batch: Callable[[int, int], None] | None = None,
    on_wait: Callable[[str], None] | None = None,
    poll_seconds: float = 5.0,
) -> int:
    """`annotate_all` over chunks claimed from `source` (e.g. `annotation_queue`), until no pair is left
    to any worker; returns the number of rows this process added. The annotator must be bound already."""
    annotator.url = url
    added = 0

    def work(chunk: list[str]) -> None:
        nonlocal added
        for i in range(0, len(chunk), batch_size):
            added += _label_batch(annotator, chunk[i : i + batch_size], url, variant, on_batch)

    drain(source, work, on_wait=on_wait, poll_seconds=poll_seconds)
    return added


def _label_batch(
    annotator: Annotator,
    batch: list[str],
    url: str | None,
    variant: Variant,
    on_batch: Callable[[int, int], None] | None,
) -> int:
    """Label one batch and commit it; a row whose dedup key is stored (by a rerun) is not added."""
    with session_scope(url) as session:
        pairs = _load(session, batch)
    rows = annotator.annotate(pairs, variant=variant)
    with session_scope(url) as session:
        n = sum(add_annotation(session, row) is not None for row in rows)
    if on_batch is not None:
        on_batch(len(batch), n)
    return n


def _load(session: Session, pair_ids: Sequence[str]) -> list[Pair]:
    rows: dict[str, Pair] = {}
    ids = list(pair_ids)
    for p in select_in(session, select(Pair), Pair.id, ids):
        rows[p.id] = p
    return [rows[i] for i in ids if i in rows]
