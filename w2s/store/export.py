"""Export a label set as preference rows that TRL's RewardTrainer / DPOTrainer read directly, and every
raw annotation for audit. Everything streams in chunks: memory stays flat however large the export.

A row: {prompt, chosen, rejected, weight, soft_label, entropy, n_votes, pair_id, source}
- chosen / rejected: the label set's preferred response and the other one (A/B resolved);
- soft_label: P(chosen is better) under the label set (so always >= 0.5 for a one-row-per-pair export);
- weight: the reliability weight (1.0 when the set was built with `--weights none`);
- source: the pair's dataset name (lets training mix or separate datasets);
- pairs labelled 'tie' are skipped: a tie names no chosen response.

`include_variants=True` writes the re-weighted training set of Guo & Yang (2024) instead: one row per
distinct answer a pair received (from variants or annotators), chosen = that answer's response, weight =
that answer's softmax weight, so contradictory answers both appear, each weighted by its reliability.

Every export's columns, their order and their types are defined once, below (`LABEL_SET_COLUMNS`,
`RAW_COLUMNS`, `HUMAN_COLUMNS`): the row builders, the Parquet schemas and the `datasets` features are all
made from them.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import NamedTuple

from sqlalchemy import literal, select
from sqlmodel import Session

from w2s.store.db import Annotation, LabelSet, Node, Pair, select_in

FORMATS = ("jsonl", "parquet", "hf")
CHUNK = 5000


# ------------------------------------------------------------------------------------- the columns


class Column(NamedTuple):
    name: str
    kind: str
    """'string', 'float', 'int', 'bool', or 'json' (a list or dict: nested in JSONL, text in Parquet)."""


LABEL_SET_COLUMNS = (
    Column("prompt", "string"),
    Column("chosen", "string"),
    Column("rejected", "string"),
    Column("weight", "float"),
    Column("soft_label", "float"),
    Column("entropy", "float"),
    Column("n_votes", "int"),
    Column("pair_id", "string"),
    Column("source", "string"),
)
"""A label-set export (JSONL, Parquet, `datasets`): what TRL's trainers and `w2s train` read."""

COLUMNS = tuple(c.name for c in LABEL_SET_COLUMNS)

RAW_COLUMNS = (
    # every field of `w2s.store.Annotation`, in its order (tests/reliability/test_export.py checks)
    Column("id", "int"),
    Column("pair_id", "string"),
    Column("annotator", "string"),
    Column("annotator_kind", "string"),
    Column("label", "string"),
    Column("confidence", "float"),
    Column("p_a", "float"),
    Column("method", "string"),
    Column("variant", "string"),
    Column("producer", "string"),
    Column("tree_id", "int"),
    Column("consulted_node_ids", "json"),
    Column("pruned", "json"),
    Column("comment", "string"),
    Column("seconds", "float"),
    Column("supersedes_id", "int"),
    Column("retracted", "bool"),
    Column("dedup_key", "string"),
    Column("meta", "json"),
    Column("created_at", "string"),
    # then what the audit adds: the pair's dataset and gold, and the nodes the annotation names
    Column("dataset", "string"),
    Column("gold", "string"),
    Column("superseded", "bool"),
    Column("consulted_nodes", "json"),
    Column("pruned_nodes", "json"),
)
"""A raw export (`w2s export --raw`, the admin page's 'raw'): every annotation row ever written."""

HUMAN_COLUMNS = tuple(
    c
    for name in (
        "id",
        "pair_id",
        "annotator",
        "annotator_kind",
        "method",
        "label",
        "confidence",
        "comment",
        "seconds",
        "tree_id",
        "consulted_node_ids",
        "pruned",
        "supersedes_id",
        "retracted",
        "created_at",
    )
    for c in RAW_COLUMNS
    if c.name == name
)
"""The admin page's 'current' export of human labels (JSONL): the annotation fields a person sets."""


def arrow_schema(columns: Iterable[Column]):
    import pyarrow as pa

    types = {
        "string": pa.string(),
        "float": pa.float64(),
        "int": pa.int64(),
        "bool": pa.bool_(),
        "json": pa.string(),
    }
    return pa.schema([(c.name, types[c.kind]) for c in columns])


def hf_features(columns: Iterable[Column]):
    from datasets import Features, Value

    dtypes = {"string": "string", "float": "float64", "int": "int64", "bool": "bool"}
    return Features({c.name: Value(dtypes[c.kind]) for c in columns})


def annotation_row(ann: Annotation, columns: Iterable[Column] = HUMAN_COLUMNS, **extra) -> dict:
    """An annotation as an export row: `columns` in their order, taken from the annotation or `extra`."""
    created = ann.created_at.isoformat() if ann.created_at else None
    values = {**ann.model_dump(), "created_at": created, **extra}
    return {c.name: values[c.name] for c in columns}


def _pair_rows(r, include_variants: bool) -> Iterator[dict]:
    """Export rows of one (LabelSet, Pair) record."""
    base = {"entropy": float(r.entropy), "n_votes": int(r.n_votes), "pair_id": r.pair_id, "source": r.dataset}
    if include_variants:
        params = r.params or {}
        votes, weights = params.get("votes", {}), params.get("answer_weights", {})
        answers = [(k, float(weights.get(k, 1.0))) for k in ("a", "b") if votes.get(k)]
    else:
        answers = [(r.label, float(r.weight))] if r.label in ("a", "b") else []
    p_a = float(r.soft_label)
    for label, weight in answers:
        chosen, rejected = (r.response_a, r.response_b) if label == "a" else (r.response_b, r.response_a)
        soft = p_a if label == "a" else 1.0 - p_a
        values = {
            "prompt": r.prompt,
            "chosen": chosen,
            "rejected": rejected,
            "weight": weight,
            "soft_label": soft,
            **base,
        }
        yield {name: values[name] for name in COLUMNS}


def iter_export_rows(
    session: Session,
    label_set: str = "default",
    min_weight: float = 0.0,
    *,
    include_variants: bool = False,
    chunk_size: int = CHUNK,
) -> Iterator[dict]:
    """The export rows of `label_set` in pair-id order, read from the store `chunk_size` rows at a time.
    Rows whose weight is below `min_weight` are left out."""
    # params (JSON, slow to decode) holds the per-answer weights: read it only when they are needed
    params = LabelSet.params if include_variants else literal(None).label("params")
    query = (
        select(
            LabelSet.pair_id,
            LabelSet.label,
            LabelSet.soft_label,
            LabelSet.entropy,
            LabelSet.weight,
            LabelSet.n_votes,
            params,
            Pair.prompt,
            Pair.response_a,
            Pair.response_b,
            Pair.dataset,
        )
        .join(Pair, Pair.id == LabelSet.pair_id)
        .where(LabelSet.name == label_set)
        .order_by(LabelSet.pair_id)
        .execution_options(yield_per=chunk_size)
    )
    if not include_variants:  # the per-answer weights live in params; only that mode needs them
        query = query.where(LabelSet.weight >= min_weight, LabelSet.label != "tie")
    for r in session.execute(query):
        for row in _pair_rows(r, include_variants):
            if row["weight"] >= min_weight:
                yield row


def label_set_names(session: Session) -> list[str]:
    return list(session.execute(select(LabelSet.name).distinct().order_by(LabelSet.name)).scalars())


# ------------------------------------------------------------------------------------- raw annotations


def iter_raw_rows(session: Session, chunk_size: int = CHUNK) -> Iterator[dict]:
    """Every annotation row ever written (superseded and retracted ones too, flagged), with its pair's
    dataset and gold, and the principle of every node consulted or pruned."""
    superseded = set(
        session.execute(
            select(Annotation.supersedes_id).where(Annotation.supersedes_id.is_not(None))
        ).scalars()
    )
    query = (
        select(Annotation, Pair.dataset, Pair.gold)
        .join(Pair, Pair.id == Annotation.pair_id)
        .order_by(Annotation.id)
        .execution_options(yield_per=chunk_size)
    )
    batch: list = []
    for rec in session.execute(query):
        batch.append(rec)
        if len(batch) >= chunk_size:
            yield from _raw_batch(session, batch, superseded)
            batch = []
    yield from _raw_batch(session, batch, superseded)


def _raw_batch(session: Session, batch: list, superseded: set) -> Iterator[dict]:
    node_ids = {int(n) for rec in batch for n in rec[0].consulted_node_ids or []}
    node_ids |= {int(p["node_id"]) for rec in batch for p in rec[0].pruned or [] if "node_id" in p}
    nodes = {}
    ids = sorted(node_ids)
    for n in select_in(session, select(Node.id, Node.principle_id, Node.info), Node.id, ids):
        nodes[n.id] = {"node_id": n.id, "principle_id": n.principle_id, "info": n.info}
    for ann, dataset, gold in batch:
        yield annotation_row(
            ann,
            RAW_COLUMNS,
            dataset=dataset,
            gold=gold,
            superseded=ann.id in superseded,
            consulted_nodes=[nodes.get(int(n), {"node_id": int(n)}) for n in ann.consulted_node_ids or []],
            pruned_nodes=[
                {**nodes.get(int(p["node_id"]), {"node_id": p["node_id"]}), "reason": p.get("reason", "")}
                for p in ann.pruned or []
                if "node_id" in p
            ],
        )


# ------------------------------------------------------------------------------------- writers


def _chunks(rows: Iterable[dict], size: int) -> Iterator[list[dict]]:
    chunk: list[dict] = []
    for row in rows:
        chunk.append(row)
        if len(chunk) >= size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


MANIFEST = ".w2s-export.json"
"""Written into every folder export: the files it holds, so that a later export may replace them (and only them)."""


class ExportError(ValueError):
    """The export was refused before anything was written (e.g. its target holds files that are not ours)."""


def _manifest(folder: Path) -> set[str] | None:
    """The file names a previous w2s export wrote into `folder`, or None when it is not one of ours."""
    try:
        files = json.loads((folder / MANIFEST).read_text(encoding="utf-8"))["files"]
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return {str(f) for f in files} | {MANIFEST}


def check_target(out: Path, folder: bool) -> None:
    """Refuse a target whose replacement would delete what the tool did not write."""
    out = Path(out)
    if folder:
        if out.is_symlink() or (out.exists() and not out.is_dir()):
            raise ExportError(f"{out} exists and is not a folder; choose a new folder for --format hf")
        if out.is_dir():
            names = set(os.listdir(out))
            ours = _manifest(out)
            if names and (ours is None or not names <= ours):
                raise ExportError(
                    f"{out} is a non-empty folder that is not a previous w2s export; nothing was written "
                    "(choose a new or empty folder: the export never deletes files it did not write)"
                )
    elif out.is_dir():
        raise ExportError(f"{out} is a folder; give a file name for this format")


def _atomic(out: Path, write: Callable[[Path], int], folder: bool = False) -> int:
    """Write to a temporary sibling, then rename: a failed export never leaves half a file at `out`.
    A folder replaces only an empty folder or a previous w2s export (see `check_target`)."""
    out = Path(out)
    check_target(out, folder)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.tmp-{os.getpid()}")
    old = out.with_name(f".{out.name}.old-{os.getpid()}")
    try:
        n = write(tmp)
        check_target(out, folder)  # again: the folder may have changed while we wrote
        if folder and out.is_dir() and os.listdir(out):
            os.replace(out, old)  # a previous export of ours: its files go once the new one is in place
        os.replace(tmp, out)
        if old.is_dir():
            shutil.rmtree(old)
        return n
    except BaseException:
        if tmp.is_dir():
            shutil.rmtree(tmp, ignore_errors=True)
        else:
            tmp.unlink(missing_ok=True)
        if old.is_dir() and not out.exists():
            os.replace(old, out)
        raise


def write_jsonl(rows: Iterable[dict], out: Path) -> int:
    def write(path: Path) -> int:
        n = 0
        with open(path, "w", encoding="utf-8") as f:
            for chunk in _chunks(rows, CHUNK):
                f.write("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in chunk))
                n += len(chunk)
        return n

    return _atomic(out, write)


def write_parquet(rows: Iterable[dict], out: Path, schema=None, chunk_size: int = CHUNK) -> int:
    """Stream row chunks through a pyarrow ParquetWriter (one row group per chunk)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    schema = schema or arrow_schema(LABEL_SET_COLUMNS)

    def write(path: Path) -> int:
        n = 0
        with pq.ParquetWriter(path, schema) as writer:
            for chunk in _chunks(rows, chunk_size):
                cols = {name: [r[name] for r in chunk] for name in schema.names}
                writer.write_table(pa.Table.from_pydict(cols, schema=schema))
                n += len(chunk)
        return n

    return _atomic(out, write)


def write_hf(rows: Iterable[dict], out: Path) -> int:
    """A `datasets` folder (`datasets.load_from_disk(out)`), built by `Dataset.from_generator` into a
    private cache next to `out` (so nothing lands in ~/.cache) and saved with `save_to_disk`."""
    import tempfile

    from datasets import Dataset

    features = hf_features(LABEL_SET_COLUMNS)
    rows_iter = iter(rows)

    def gen():
        yield from rows_iter

    def write(path: Path) -> int:
        cache = tempfile.mkdtemp(prefix=".w2s-hf-", dir=path.parent)
        try:
            import datasets

            datasets.disable_progress_bars()
            ds = Dataset.from_generator(
                gen, features=features, cache_dir=cache, fingerprint=f"w2s-{os.getpid()}"
            )
            ds.save_to_disk(str(path))
            files = sorted(os.listdir(path))
            (path / MANIFEST).write_text(json.dumps({"files": files}), encoding="utf-8")
            return len(ds)
        finally:
            shutil.rmtree(cache, ignore_errors=True)

    return _atomic(out, write, folder=True)


def write_raw(rows: Iterable[dict], out: Path, fmt: str) -> int:
    """Raw annotations: JSONL keeps nested fields; Parquet stores them as JSON strings."""
    if fmt == "jsonl":
        return write_jsonl(rows, out)
    if fmt != "parquet":
        raise ValueError(f"raw export supports jsonl and parquet, not {fmt!r}")
    nested = {c.name for c in RAW_COLUMNS if c.kind == "json"}

    def flat(rows):
        for r in rows:
            yield {k: (json.dumps(v, ensure_ascii=False) if k in nested else v) for k, v in r.items()}

    return write_parquet(flat(rows), out, schema=arrow_schema(RAW_COLUMNS))


def export_label_set(
    session: Session,
    fmt: str,
    out: Path,
    *,
    label_set: str = "default",
    min_weight: float = 0.0,
    include_variants: bool = False,
    progress: Callable[[dict], None] | None = None,
) -> int:
    """Write the label set to `out` in `fmt`; returns the number of rows written."""
    if fmt not in FORMATS:
        raise ValueError(f"unknown export format {fmt!r}; choose one of {', '.join(FORMATS)}")
    rows = iter_export_rows(session, label_set, min_weight, include_variants=include_variants)
    if progress is not None:
        rows = _tap(rows, progress)
    return {"jsonl": write_jsonl, "parquet": write_parquet, "hf": write_hf}[fmt](rows, Path(out))


def _tap(rows: Iterable[dict], fn: Callable[[dict], None]) -> Iterator[dict]:
    for r in rows:
        fn(r)
        yield r
