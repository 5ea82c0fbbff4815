"""The one store: SQLModel tables and the session helpers that every part of w2s writes through.

SQLite file by default, any SQLAlchemy URL (PostgreSQL for teams) through `--db` or `W2S_DB`.
Annotations are append-only: a correction is a new row whose `supersedes_id` names the old one.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import JSON, Column, Index, UniqueConstraint, event, text
from sqlalchemy.engine import Engine
from sqlmodel import Field, Session, SQLModel, create_engine, select

from w2s.vocab import LABELS  # noqa: F401  (the label column holds these)

DEFAULT_DB = "sqlite:///w2s.db"


def utcnow() -> datetime:
    return datetime.now(UTC)


# ---------------------------------------------------------------------------------------------- tables


class Pair(SQLModel, table=True):
    """One preference question: a prompt and two responses shown as A and B."""

    id: str = Field(primary_key=True, description="content hash of dataset, prompt and both responses")
    dataset: str = Field(index=True)
    split: str = Field(default="", index=True)
    prompt: str
    response_a: str
    response_b: str
    gold: str | None = Field(default=None, description="'a', 'b', 'tie' or None when unknown")
    source: str = Field(default="", description="file (and line) the pair was imported from")
    position_seed: int | None = Field(default=None, description="seed of the A/B randomisation")
    swapped: bool = Field(default=False, description="True when the original first response is shown as B")
    meta: dict = Field(default_factory=dict, sa_column=Column(JSON))
    created_at: datetime = Field(default_factory=utcnow)


class Principle(SQLModel, table=True):
    id: str = Field(primary_key=True, description="'<library>/<slug>'")
    library: str = Field(index=True)
    name: str
    definition: str
    cue_question: str


class Tree(SQLModel, table=True):
    """A principle fast-and-frugal tree built by one strong model under one config for one pair."""

    __table_args__ = (UniqueConstraint("pair_id", "strong_model", "config_hash"),)
    id: int | None = Field(default=None, primary_key=True)
    pair_id: str = Field(foreign_key="pair.id", index=True)
    strong_model: str
    library: str = ""
    config_hash: str
    config: dict = Field(default_factory=dict, sa_column=Column(JSON))
    depth: int = 0
    backtraces: int = 0
    tokens: int = 0
    cached_tokens: int = Field(
        default=0, description="prompt tokens reused from a cached prefix, not evaluated"
    )
    seconds: float = 0.0
    created_at: datetime = Field(default_factory=utcnow)


class Node(SQLModel, table=True):
    """One cue node of a tree, in search order; `role` is 'exit', 'continue' or 'pruned_by_search'."""

    id: int | None = Field(default=None, primary_key=True)
    tree_id: int = Field(foreign_key="tree.id", index=True)
    position: int
    principle_id: str
    principle_name: str = ""
    relevance: float
    thought: str = ""
    p_a: float = 0.5
    p_b: float = 0.5
    entropy: float = 0.0
    info: float = 0.0
    role: str = "continue"
    model: str = ""
    template_hash: str = ""
    tokens: int = 0
    cached_tokens: int = Field(
        default=0, description="prompt tokens reused from a cached prefix, not evaluated"
    )
    seconds: float = 0.0


class User(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(unique=True, index=True)
    role: str = Field(default="annotator", description="'annotator' or 'admin'")
    password_hash: str = ""
    active: bool = True
    created_at: datetime = Field(default_factory=utcnow)


class Annotation(SQLModel, table=True):
    """One label by one annotator (a user name or a model spec). Never updated, never deleted."""

    __table_args__ = (Index("ix_annotation_pair_annotator", "pair_id", "annotator"),)
    id: int | None = Field(default=None, primary_key=True)
    pair_id: str = Field(foreign_key="pair.id", index=True)
    annotator: str = Field(index=True)
    annotator_kind: str = Field(default="model", description="'human' or 'model'")
    label: str = Field(description="'a', 'b' or 'tie'")
    confidence: float = 1.0
    p_a: float | None = Field(default=None, description="the annotator's probability that A is better")
    method: str = Field(default="", index=True, description="'seam', 'naive', 'cot-v1', 'human', ...")
    variant: str = Field(default="", description="prompt variant id ('' for the canonical prompt)")
    producer: str = Field(
        default="",
        index=True,
        description="hash of what produced a model's label (annotators.base.Annotator.producer); '' for humans",
    )
    tree_id: int | None = Field(default=None, foreign_key="tree.id")
    consulted_node_ids: list = Field(default_factory=list, sa_column=Column(JSON))
    pruned: list = Field(default_factory=list, sa_column=Column(JSON), description="[{node_id, reason}]")
    comment: str = ""
    seconds: float = 0.0
    supersedes_id: int | None = Field(default=None, foreign_key="annotation.id", index=True)
    retracted: bool = Field(default=False, description="an undo: this row withdraws the one it supersedes")
    dedup_key: str | None = Field(
        default=None, unique=True, description="idempotency key of batch jobs: a rerun adds nothing"
    )
    meta: dict = Field(default_factory=dict, sa_column=Column(JSON))
    created_at: datetime = Field(default_factory=utcnow)


def annotation_key(
    method: str, annotator: str, producer: str, variant: str, pair_id: str, revision: str = ""
) -> str:
    """`Annotation.dedup_key`, one format for every annotator, human or model: a row whose key is stored
    adds nothing, so a rerun, a resume or a retried submit never stores a label twice. `revision` tells a
    human's successive labels of one pair apart (the queue state it was served in, or an undo); a model
    labels a pair once per producer and variant, and its keys have no revision."""
    key = f"{method}|{annotator}|{producer}|{variant}|{pair_id}"
    return f"{key}|{revision}" if revision else key


class LabelSet(SQLModel, table=True):
    """The aggregate label of a pair that export and training read."""

    __table_args__ = (UniqueConstraint("name", "pair_id"),)
    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(default="default", index=True)
    pair_id: str = Field(foreign_key="pair.id", index=True)
    label: str
    soft_label: float = Field(description="P(A is better)")
    entropy: float = 0.0
    weight: float = 1.0
    n_votes: int = 0
    method: str = ""
    params: dict = Field(default_factory=dict, sa_column=Column(JSON))
    created_at: datetime = Field(default_factory=utcnow)


class Job(SQLModel, table=True):
    """A long-running job; its params identify it so that a rerun resumes instead of starting over."""

    id: int | None = Field(default=None, primary_key=True)
    kind: str = Field(index=True)
    key: str = Field(unique=True, description="hash of kind and params")
    params: dict = Field(default_factory=dict, sa_column=Column(JSON))
    status: str = "running"
    done: int = 0
    total: int = 0
    created_at: datetime = Field(default_factory=utcnow)
    updated_at: datetime = Field(default_factory=utcnow)


class WorkItem(SQLModel, table=True):
    """One item (a pair id) of a Job that many worker processes share: who leases it until when, or done.
    w2s.store.work hands items out in leased chunks; a killed worker's lease runs out and its items go back."""

    __table_args__ = (Index("ix_workitem_claim", "job_id", "done", "position"),)
    job_id: int = Field(foreign_key="job.id", primary_key=True)
    item: str = Field(primary_key=True)
    position: int = Field(default=0, description="order of the item in the job's list")
    worker: str | None = Field(default=None, description="the worker holding (or that finished) it")
    lease_until: float | None = Field(default=None, description="epoch seconds; None when not leased")
    done: bool = False


class Draft(SQLModel, table=True):
    """An annotator's unsaved work on a pair (label, prunes, comment), kept across server restarts."""

    __table_args__ = (UniqueConstraint("user", "pair_id"),)
    id: int | None = Field(default=None, primary_key=True)
    user: str = Field(index=True)
    pair_id: str = Field(foreign_key="pair.id")
    state: dict = Field(default_factory=dict, sa_column=Column(JSON))
    updated_at: datetime = Field(default_factory=utcnow)


class Setting(SQLModel, table=True):
    """Project-wide settings (guidelines, queue overlap, gold rate, routing) as JSON values."""

    key: str = Field(primary_key=True)
    value: Any = Field(default=None, sa_column=Column(JSON))


class QueueItem(SQLModel, table=True):
    """One pair assigned to one human annotator's queue (the app). A person never gets a pair twice."""

    __table_args__ = (
        UniqueConstraint("user", "pair_id"),
        Index("ix_queueitem_user_status", "user", "status"),
    )
    id: int | None = Field(default=None, primary_key=True)
    user: str = Field(index=True)
    pair_id: str = Field(foreign_key="pair.id", index=True)
    status: str = Field(default="open", description="'open', 'done' or 'skipped'")
    is_gold: bool = Field(default=False, description="a gold/attention pair mixed into the queue")
    attempt: int = Field(default=0, description="bumped by an undo, so a resubmission is a new submission")
    annotation_id: int | None = Field(default=None, description="the user's latest row for this pair")
    assigned_at: datetime = Field(default_factory=utcnow)
    served_at: datetime | None = Field(
        default=None, description="when the pair was (re)opened: time per pair"
    )
    done_at: datetime | None = None


class QueuePool(SQLModel, table=True):
    """Pairs that may go to humans and how many queues hold each; its index makes next-pair one lookup."""

    __table_args__ = (Index("ix_queuepool_pick", "is_gold", "eligible", "n_assigned", "priority", "pair_id"),)
    pair_id: str = Field(primary_key=True, foreign_key="pair.id")
    is_gold: bool = False
    eligible: bool = Field(default=True, description="False when routing keeps the pair away from humans")
    n_assigned: int = Field(default=0, description="queues holding the pair (skips give the slot back)")
    priority: float = Field(default=0.0, description="lower goes first: minus the weak labels' uncertainty")


class SavedMaster(SQLModel, table=True):
    """A trained aligned master kept under a name (`w2s master train --name`, w2s.masters.saved): its
    kind, run id, config and fitted state, as its run directory (the export format) holds them."""

    __tablename__ = "saved_master"
    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(unique=True, description="what `--master NAME` names; KIND-RUN_ID by default")
    kind: str = Field(description="the master kind (w2s.masters.kinds)")
    run_id: str = Field(
        index=True, description="the master's run id: its labels are stored under master:RUN_ID"
    )
    config: dict = Field(default_factory=dict, sa_column=Column(JSON), description="MasterConfig as a dict")
    state: dict = Field(
        default_factory=dict, sa_column=Column(JSON), description="the fitted weights and metrics"
    )
    producer: dict = Field(
        default_factory=dict,
        sa_column=Column(JSON),
        description="what produced it: the command, or the run directory it was imported from",
    )
    created_at: datetime = Field(default_factory=utcnow)


# ---------------------------------------------------------------------------------------------- engine


def db_url(url: str | None = None) -> str:
    """The database URL: the argument, else $W2S_DB, else a SQLite file in the working directory."""
    url = url or os.environ.get("W2S_DB") or DEFAULT_DB
    if "://" not in url:  # a bare path means a SQLite file
        url = f"sqlite:///{Path(url).expanduser()}"
    for scheme in ("postgresql://", "postgres://"):  # psycopg 3 (the `postgres` extra), not psycopg2
        if url.startswith(scheme):
            url = "postgresql+psycopg://" + url[len(scheme) :]
    return url


def safe_url(url=None) -> str:
    """The database URL (text or an engine's URL) for messages and logs: its password replaced by ***."""
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    try:
        return make_url(db_url(None if url is None else str(url))).render_as_string(hide_password=True)
    except ArgumentError:
        return "<unparsable database URL>"


def redact(text: str, url: str | None = None) -> str:
    """`text` (an error message, say) with the database password masked wherever it appears."""
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    try:
        password = make_url(db_url(url)).password
    except ArgumentError:
        return text
    return text.replace(password, "***") if password else text


def _sqlite_pragmas(dbapi_conn, _record) -> None:
    # WAL lets readers run beside one writer; busy_timeout makes concurrent writers wait instead of failing.
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA busy_timeout=30000")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.close()


def _sqlite_begin_immediate(conn) -> None:
    # Take the write lock at BEGIN so that two writers never deadlock upgrading a read lock.
    conn.exec_driver_sql("BEGIN IMMEDIATE")


_engines: dict[str, Engine] = {}
on_open: Callable[[str], None] | None = None
"""Called with the URL when a process first opens a store (the CLI says which store it uses)."""


def get_engine(url: str | None = None) -> Engine:
    """One engine per URL per process. A new store is created at the newest schema revision; a store
    at another revision raises `w2s.store.schema.StoreOutOfDate` (run `w2s db upgrade`)."""
    from w2s.store.schema import ensure

    url = db_url(url)
    if url in _engines:
        return _engines[url]
    engine = make_engine(url)
    if on_open is not None:
        on_open(url)
    ensure(engine)
    _engines[url] = engine
    return engine


def make_engine(url: str) -> Engine:
    """An engine with the store's connection settings and no schema check (migrations use it)."""
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30})
        event.listen(engine, "connect", _sqlite_pragmas)
        # Let SQLAlchemy stop emitting its own BEGIN so ours (IMMEDIATE) is the one used.
        event.listen(engine, "connect", lambda c, r: setattr(c, "isolation_level", None))
        event.listen(engine, "begin", _sqlite_begin_immediate)
    else:
        engine = create_engine(url, pool_pre_ping=True)
    return engine


@contextmanager
def session_scope(url: str | None = None) -> Iterator[Session]:
    """A transaction: commits on success, rolls back everything on error."""
    with Session(get_engine(url), expire_on_commit=False) as session:
        try:
            yield session
            session.commit()
        except BaseException:
            session.rollback()
            raise


# ---------------------------------------------------------------------------------------------- helpers


def add_annotation(session: Session, annotation: Annotation) -> Annotation | None:
    """Insert an annotation; with a dedup_key already stored, return None and insert nothing.

    Uses a savepoint so that a duplicate does not abort the caller's transaction.
    """
    if annotation.dedup_key is not None:
        exists = session.exec(
            select(Annotation.id).where(Annotation.dedup_key == annotation.dedup_key)
        ).first()
        if exists is not None:
            return None
    from sqlalchemy.exc import IntegrityError

    try:
        with session.begin_nested():
            session.add(annotation)
    except IntegrityError:
        if annotation.dedup_key is None:
            raise
        stored = select(Annotation.id).where(Annotation.dedup_key == annotation.dedup_key)
        if session.exec(stored).first() is None:
            raise  # not a duplicate key (e.g. an unknown pair_id): do not hide it
        return None  # a concurrent writer stored the same key first
    return annotation


def current_annotations(session: Session, *, method: str | None = None, include_variants: bool = True):
    """Annotations that no later row supersedes, and that are not retractions."""
    superseded = select(Annotation.supersedes_id).where(Annotation.supersedes_id.is_not(None))
    query = select(Annotation).where(Annotation.id.not_in(superseded), Annotation.retracted == False)  # noqa: E712
    if method is not None:
        query = query.where(Annotation.method == method)
    if not include_variants:
        query = query.where(Annotation.variant == "")
    return session.exec(query.order_by(Annotation.id)).all()


def get_setting(session: Session, key: str, default: Any = None) -> Any:
    row = session.get(Setting, key)
    return default if row is None else row.value


def set_setting(session: Session, key: str, value: Any) -> None:
    row = session.get(Setting, key)
    if row is None:
        session.add(Setting(key=key, value=value))
    else:
        row.value = value
        session.add(row)


def ping(url: str | None = None) -> bool:
    with get_engine(url).connect() as conn:
        return conn.execute(text("SELECT 1")).scalar() == 1


# ------------------------------------------------------------------------------------- many ids at once

IN_CHUNK = 500
"""Ids per `IN (...)` clause: SQLite caps a statement's bound parameters."""


def chunks(items, size: int = IN_CHUNK) -> Iterator[list]:
    """`items` as lists of at most `size`, in order."""
    items = list(items)
    for i in range(0, len(items), size):
        yield items[i : i + size]


def select_in(session: Session, query, column, ids, size: int = IN_CHUNK) -> Iterator:
    """The rows of `query.where(column IN ids)`, asked `size` ids at a time (any number of ids); `query`'s
    own order holds within each chunk."""
    for chunk in chunks(ids, size):
        yield from getattr(session, "exec", session.execute)(query.where(column.in_(chunk)))
