"""Import preference pairs into the store from JSONL, CSV, Parquet files and `datasets.load_from_disk` folders.

Record formats (detected per record from its fields):

- HH-RLHF ``{chosen, rejected}``: whole conversations; the prompt is split off at the last
  ``"\\n\\nAssistant:"`` and both sides must share it. A single human turn is stored as plain text, a
  longer conversation as its ``Human: ...\\n\\nAssistant: ...\\n\\nHuman: ...`` transcript.
- TRL ``{prompt, chosen, rejected}``: text, or conversational lists of ``{role, content}`` messages
  (also TRL's implicit-prompt form ``{chosen, rejected}`` with message lists).
- Labelled ``{prompt, response_a, response_b, label}``: label 'a', 'b', 'tie' or missing.

When gold comes from chosen/rejected, which side is shown as A is a seeded coin per pair
(``random.Random(f"{seed}:{pair_id}")``), so the layout does not depend on row order or on skipped rows;
the seed goes to ``Pair.position_seed``, the flip to ``Pair.swapped`` and gold names the side shown.
Pair ids are content hashes of (dataset, prompt, first response, second response) in the file's order, so
re-importing a file adds nothing; a record whose responses come the other way round (an export, which lists
chosen first) is recognised too: the id it would have in the other order is looked up before inserting.
A file is imported in one transaction: with any bad record nothing is stored, unless ``skip_invalid`` is set,
in which case the bad records are reported and the rest stored.
"""

from __future__ import annotations

import csv
import hashlib
import json
import math
import random
import sys
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import insert, select
from sqlalchemy.dialects import postgresql, sqlite

from w2s.store.db import Pair, session_scope, utcnow
from w2s.vocab import LABELS

FORMATS = ("auto", "jsonl", "csv", "parquet", "hf")
ASSISTANT = "\n\nAssistant:"
HUMAN = "\n\nHuman:"
ROLE_NAMES = {"user": "Human", "human": "Human", "assistant": "Assistant", "system": "System"}


@dataclass
class ImportConfig:
    """How one file is imported."""

    dataset: str
    """Dataset name stored on every pair (part of the pair id)."""
    split: str = "train"
    """Split stored on every pair ('train', 'test', ...)."""
    seed: int = 0
    """Seed of the A/B position randomisation of pairs whose gold comes from chosen/rejected."""
    format: str = "auto"
    """File format: 'auto' (from the suffix, or a folder means 'hf'), 'jsonl', 'csv', 'parquet', 'hf'."""
    skip_invalid: bool = False
    """Store the valid records and report the invalid ones, instead of storing nothing."""
    max_field_bytes: int = 1_000_000
    """Largest accepted text field, in UTF-8 bytes: a bigger one is almost surely a broken record."""
    batch_size: int = 1000
    """Rows per INSERT statement."""


class RecordError(ValueError):
    """One bad record: where it is (file, line or row) and which field is wrong."""

    def __init__(self, file: str, where: str, field: str | None, message: str):
        self.file, self.where, self.field, self.message = file, where, field, message
        at = f" field '{field}':" if field else ""
        super().__init__(f"{file}: {where}:{at} {message}")

    def to_dict(self) -> dict:
        return {"file": self.file, "where": self.where, "field": self.field, "error": self.message}


class ImportFailed(ValueError):
    """The file was not imported (nothing was stored); `errors` lists the bad records."""

    def __init__(self, file: str, errors: list[RecordError], n_errors: int | None = None, reason: str = ""):
        self.file, self.errors = file, errors
        self.n_errors = len(errors) if n_errors is None else n_errors
        if reason:
            msg = f"{file}: {reason}"
        else:
            shown = "\n".join(f"  {e}" for e in errors[:10])
            more = f"\n  ... and {self.n_errors - 10} more" if self.n_errors > 10 else ""
            msg = (
                f"{file}: {self.n_errors} invalid record(s); nothing was imported "
                f"(use --skip-invalid to import the valid ones):\n{shown}{more}"
            )
        super().__init__(msg)


@dataclass
class ImportResult:
    file: str
    dataset: str
    split: str
    read: int = 0
    new: int = 0
    present: int = 0
    """Pairs already in the store (a re-import)."""
    present_other_split: int = 0
    """Of `present`, pairs stored under another split of the same dataset (a train/test overlap)."""
    present_reordered: int = 0
    """Of `present`, pairs stored with their responses in the other order (e.g. an export re-imported)."""
    duplicates: int = 0
    """Records repeating an earlier record of the same file."""
    skipped: list[RecordError] = field(default_factory=list)
    seconds: float = 0.0
    pair_ids: list[str] = field(default_factory=list)
    """The stored id of every valid record, in file order, once each: new pairs, pairs already present
    (under the id they are stored with, also when stored with A and B the other way round)."""

    def summary(self) -> str:
        parts = [f"{self.new} new", f"{self.present} already present"]
        if self.present_other_split:
            parts.append(f"{self.present_other_split} of them in another split")
        if self.present_reordered:
            parts.append(f"{self.present_reordered} of them stored with A and B the other way round")
        if self.duplicates:
            parts.append(f"{self.duplicates} duplicate(s) within the file")
        if self.skipped:
            parts.append(f"{len(self.skipped)} invalid skipped")
        return (
            f"{self.file}: {self.read} records -> {', '.join(parts)} "
            f"(dataset {self.dataset!r}, split {self.split!r}, {self.seconds:.2f} s)"
        )


# ---------------------------------------------------------------------------------------------- ids, sides


def pair_id(dataset: str, prompt: str, first: str, second: str) -> str:
    """Content hash of a pair, with its responses in the order the source file gives them."""
    blob = json.dumps([dataset, prompt, first, second], ensure_ascii=False).encode("utf-8", "surrogatepass")
    return hashlib.sha256(blob).hexdigest()[:24]


def mirror_id(row: dict) -> str:
    """The id a pair row would have from a file listing its responses the other way round (an export lists
    them chosen first). Looking it up on import recognises the comparison whatever the file's A/B order,
    without changing the ids of stored pairs."""
    a, b = row["response_a"], row["response_b"]
    first, second = (b, a) if row["swapped"] else (a, b)  # the order of the file
    return pair_id(row["dataset"], row["prompt"], second, first)


def is_swapped(seed: int, pid: str) -> bool:
    """The seeded coin that puts the original first response (chosen) on side B."""
    return random.Random(f"{seed}:{pid}").random() < 0.5


# ---------------------------------------------------------------------------------------------- readers


def detect_format(path: Path) -> str:
    if not path.exists():
        raise ImportFailed(str(path), [], reason="no such file or folder")
    if path.is_dir():
        return "hf"
    suffix = path.suffix.lower()
    if suffix in (".jsonl", ".ndjson", ".json"):
        return "jsonl"
    if suffix in (".csv", ".tsv"):
        return "csv"
    if suffix in (".parquet", ".pq"):
        return "parquet"
    with path.open("rb") as f:
        head = f.read(4)
    if head == b"PAR1":
        return "parquet"
    if head.lstrip()[:1] == b"{":
        return "jsonl"
    raise ImportFailed(str(path), [], reason="cannot tell the file format from its name; pass --format")


Row = tuple[str, Any]  # (where, record dict or a RecordError)


def _surrogate_field(record: dict) -> str | None:
    for key, value in record.items():
        if isinstance(value, str) and any("\udc80" <= ch <= "\udcff" for ch in value):
            return key
    return None


def _bad_utf8(raw: bytes, err: UnicodeDecodeError) -> str:
    return f"not valid UTF-8 (byte 0x{raw[err.start]:02x} at byte {err.start} of the line)"


def read_jsonl(path: Path, file: str, progress: Callable[[int], None]) -> Iterator[Row]:
    with path.open("rb") as f:
        for n, raw in enumerate(f, 1):
            progress(1)
            if n == 1 and raw.startswith(b"\xef\xbb\xbf"):
                raw = raw[3:]
            where = f"line {n}"
            if not raw.strip():
                continue
            try:
                text = raw.decode("utf-8")
            except UnicodeDecodeError as e:
                try:  # name the field when the rest of the line still parses
                    fld = _surrogate_field(json.loads(raw.decode("utf-8", "surrogateescape")))
                except (ValueError, AttributeError):
                    fld = None
                yield where, RecordError(file, where, fld, _bad_utf8(raw, e))
                continue
            try:
                record = json.loads(text)
            except json.JSONDecodeError as e:  # e.msg may end in "at" ("Unterminated string starting at")
                yield where, RecordError(file, where, None, f"malformed JSON: {e.msg} (column {e.colno})")
                continue
            except RecursionError:
                yield where, RecordError(file, where, None, "JSON nested too deeply to read")
                continue
            if not isinstance(record, dict):
                yield (
                    where,
                    RecordError(file, where, None, f"expected a JSON object, got {type(record).__name__}"),
                )
                continue
            yield where, record


def read_csv(path: Path, file: str, progress: Callable[[int], None]) -> Iterator[Row]:
    delimiter = "\t" if path.suffix.lower() == ".tsv" else ","
    csv.field_size_limit(min(sys.maxsize, 2**31 - 1))  # sizes are checked per field with a clear error

    def lines() -> Iterator[str]:
        with path.open("rb") as f:
            for i, raw in enumerate(f):
                if i == 0 and raw.startswith(b"\xef\xbb\xbf"):
                    raw = raw[3:]
                yield raw.decode("utf-8", "surrogateescape")  # bad bytes are reported per field below

    reader = csv.reader(lines(), delimiter=delimiter)
    try:
        header = next(reader)
    except StopIteration:
        return
    last_line = reader.line_num
    for values in reader:
        progress(1)
        where, last_line = f"line {last_line + 1}", reader.line_num
        if not any(v.strip() for v in values):
            continue
        if len(values) != len(header):
            yield (
                where,
                RecordError(file, where, None, f"{len(values)} columns, the header has {len(header)}"),
            )
            continue
        record = dict(zip(header, values))
        bad = _surrogate_field(record)
        if bad is not None:
            raw = record[bad].encode("utf-8", "surrogateescape")
            try:
                raw.decode("utf-8")
            except UnicodeDecodeError as e:
                msg = f"not valid UTF-8 (byte 0x{raw[e.start]:02x} at byte {e.start} of the field)"
                yield where, RecordError(file, where, bad, msg)
                continue
        yield where, record


def read_parquet(path: Path, file: str, progress: Callable[[int], None]) -> Iterator[Row]:
    import pyarrow.parquet as pq

    try:
        pf = pq.ParquetFile(path)
    except Exception as e:  # pyarrow raises several types for a broken file
        raise ImportFailed(file, [], reason=f"not a readable Parquet file: {e}") from e
    n = 0
    for batch in pf.iter_batches(batch_size=1000):
        for record in batch.to_pylist():
            n += 1
            progress(1)
            yield f"row {n}", record


def load_hf(path: Path, split: str):
    """A `datasets` Dataset saved with `save_to_disk`; from a DatasetDict, the split named `split`."""
    from datasets import DatasetDict, load_from_disk

    try:
        ds = load_from_disk(str(path))
    except Exception as e:  # FileNotFoundError or datasets' own errors for a folder that is not a dataset
        raise ImportFailed(str(path), [], reason=f"not a `datasets.save_to_disk` folder: {e}") from e
    if isinstance(ds, DatasetDict):
        if split in ds:
            return ds[split]
        if len(ds) == 1:
            return next(iter(ds.values()))
        raise ImportFailed(str(path), [], reason=f"no split {split!r} in the DatasetDict (has {sorted(ds)})")
    return ds


def read_hf(ds, file: str, progress: Callable[[int], None]) -> Iterator[Row]:
    n = 0
    for start in range(0, len(ds), 1000):
        batch = ds[start : start + 1000]
        keys = list(batch)
        for values in zip(*(batch[k] for k in keys)):
            n += 1
            progress(1)
            yield f"row {n}", dict(zip(keys, values))


# ---------------------------------------------------------------------------------------------- records


class _Record:
    """Field access for one record that raises RecordError naming the field."""

    def __init__(self, record: dict, file: str, where: str, max_bytes: int):
        self.record, self.file, self.where, self.max_bytes = record, file, where, max_bytes
        self.used: set[str] = set()

    def error(self, field: str | None, message: str) -> RecordError:
        return RecordError(self.file, self.where, field, message)

    def has(self, name: str) -> bool:
        return name in self.record

    def raw(self, name: str) -> Any:
        self.used.add(name)
        value = self.record.get(name)
        if value is None:
            raise self.error(name, "missing field")
        if isinstance(value, float) and math.isnan(value):  # JSON's NaN, or a null pandas wrote as NaN
            raise self.error(name, "expected text, got NaN")
        return value

    def check_text(self, name: str, value: Any, *, what: str = "field") -> str:
        if not isinstance(value, str):
            raise self.error(name, f"expected text, got {type(value).__name__}")
        try:
            size = len(value.encode("utf-8"))
        except UnicodeEncodeError:
            raise self.error(name, "contains invalid Unicode (a lone surrogate)") from None
        if size > self.max_bytes:
            raise self.error(name, f"{size:,} bytes, more than the maximum field size of {self.max_bytes:,}")
        if not value.strip():
            raise self.error(name, f"empty {what}")
        return value

    def text(self, name: str, *, what: str = "field") -> str:
        return self.check_text(name, self.raw(name), what=what)

    def extras(self) -> dict:
        out = {}
        for k, v in self.record.items():
            if k not in self.used:
                try:
                    out[k] = _jsonable(v)
                except _TooDeep:
                    raise self.error(k, f"nested more than {MAX_DEPTH} levels deep") from None
        return out


MAX_DEPTH = 64
"""Deepest nesting kept in a pair's metadata: deeper is no real dataset, and would overflow the JSON column."""


class _TooDeep(ValueError):
    pass


def _jsonable(value: Any, depth: int = 0) -> Any:
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    if depth >= MAX_DEPTH:
        raise _TooDeep
    if isinstance(value, dict):
        return {str(k): _jsonable(v, depth + 1) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v, depth + 1) for v in value]
    if isinstance(value, datetime):
        return value.isoformat()
    if hasattr(value, "tolist"):  # numpy arrays and scalars
        return _jsonable(value.tolist(), depth)
    return str(value)


def _hh_prompt(transcript: str) -> str:
    """An HH transcript prefix as a prompt: a single human turn becomes plain text."""
    p = transcript.strip()
    if p.startswith("Human:") and HUMAN not in p and ASSISTANT not in p:
        return p[len("Human:") :].strip()
    return p


def _split_hh(rec: _Record) -> tuple[str, str, str]:
    chosen, rejected = rec.text("chosen"), rec.text("rejected")
    cut = {}
    for name, text in (("chosen", chosen), ("rejected", rejected)):
        i = text.rfind(ASSISTANT)
        if i < 0:
            raise rec.error(name, "no '\\n\\nAssistant:' turn to split the prompt from the response")
        cut[name] = i
    pc, pr = chosen[: cut["chosen"]], rejected[: cut["rejected"]]
    if pc != pr:
        # A response that itself continues the dialogue (HH has these) holds a later "Assistant:" turn:
        # the shared prompt is then the shorter side's, and the longer side must extend it by a turn.
        short, long_name, long_text = (
            (pc, "rejected", rejected) if len(pc) < len(pr) else (pr, "chosen", chosen)
        )
        if not (long_text.startswith(short) and long_text[len(short) :].startswith(ASSISTANT)):
            raise rec.error("rejected", "chosen and rejected have different prompts")
        cut[long_name] = len(short)
        pc = short
    responses = []
    for name, text in (("chosen", chosen), ("rejected", rejected)):
        response = text[cut[name] + len(ASSISTANT) :].strip()
        if not response:
            raise rec.error(name, "empty response")
        responses.append(response)
    return _hh_prompt(pc), responses[0], responses[1]


def _messages(rec: _Record, name: str, value: list) -> list[tuple[str, str]]:
    out = []
    for i, m in enumerate(value):
        if not isinstance(m, dict) or "content" not in m or "role" not in m:
            raise rec.error(name, f"message {i} is not a {{role, content}} object")
        out.append((str(m["role"]), rec.check_text(name, m["content"], what="message")))
    if not out:
        raise rec.error(name, "empty message list")
    return out


def _render(messages: list[tuple[str, str]]) -> str:
    if len(messages) == 1 and messages[0][0] in ("user", "human"):
        return messages[0][1]
    return "\n\n".join(f"{ROLE_NAMES.get(r, r.capitalize())}: {c}" for r, c in messages)


def _split_conversational(rec: _Record) -> tuple[str, str, str]:
    """TRL conversational data: `prompt` plus assistant messages, or whole conversations (implicit prompt)."""
    chosen = _messages(rec, "chosen", rec.raw("chosen"))
    rejected_raw = rec.raw("rejected")
    if not isinstance(rejected_raw, list):
        raise rec.error(
            "rejected", f"expected a message list like 'chosen', got {type(rejected_raw).__name__}"
        )
    rejected = _messages(rec, "rejected", rejected_raw)
    if rec.has("prompt"):
        prompt_raw = rec.raw("prompt")
        prompt = (
            _render(_messages(rec, "prompt", prompt_raw))
            if isinstance(prompt_raw, list)
            else rec.text("prompt")
        )
    else:
        if chosen[:-1] != rejected[:-1]:
            raise rec.error("rejected", "chosen and rejected have different prompts")
        if len(chosen) < 2:
            raise rec.error(
                "chosen", "an implicit-prompt conversation needs a prompt message before the response"
            )
        prompt, chosen, rejected = _render(chosen[:-1]), chosen[-1:], rejected[-1:]
    return prompt, "\n\n".join(c for _, c in chosen), "\n\n".join(c for _, c in rejected)


def _label(rec: _Record) -> str | None:
    if not rec.has("label"):
        return None
    rec.used.add("label")
    value = rec.record["label"]
    if (
        value is None
        or (isinstance(value, str) and not value.strip())
        or (isinstance(value, float) and math.isnan(value))
    ):
        return None
    label = str(value).strip().lower()
    if label not in LABELS:
        raise rec.error("label", f"unknown label {value!r}: expected a, b, tie or empty")
    return label


def record_to_pair(record: dict, *, file: str, where: str, config: ImportConfig) -> dict:
    """One record as a row of the pair table; raises RecordError naming the field."""
    rec = _Record(record, file, where, config.max_field_bytes)
    if rec.has("response_a") or rec.has("response_b"):
        prompt = rec.text("prompt")
        a, b = rec.text("response_a", what="response"), rec.text("response_b", what="response")
        gold, swapped, seed = _label(rec), False, None
        pid = pair_id(config.dataset, prompt, a, b)
    elif rec.has("chosen") or rec.has("rejected"):
        if isinstance(record.get("chosen"), list):
            prompt, chosen, rejected = _split_conversational(rec)
        elif rec.has("prompt"):
            prompt = rec.text("prompt")
            chosen, rejected = rec.text("chosen", what="response"), rec.text("rejected", what="response")
        else:
            prompt, chosen, rejected = _split_hh(rec)
        if chosen == rejected:
            raise rec.error("rejected", "chosen and rejected are the same response")
        pid = pair_id(config.dataset, prompt, chosen, rejected)
        seed, swapped = config.seed, is_swapped(config.seed, pid)
        a, b, gold = (rejected, chosen, "b") if swapped else (chosen, rejected, "a")
    else:
        raise rec.error(
            None,
            "no known fields: expected {chosen, rejected}, {prompt, chosen, rejected} or "
            f"{{prompt, response_a, response_b[, label]}}; found {sorted(record)}",
        )
    return {
        "id": pid,
        "dataset": config.dataset,
        "split": config.split,
        "prompt": prompt,
        "response_a": a,
        "response_b": b,
        "gold": gold,
        "source": f"{file}:{where.split()[-1]}",
        "position_seed": seed,
        "swapped": swapped,
        "meta": rec.extras(),
    }


# ---------------------------------------------------------------------------------------------- import


_INSERT_OR_SKIP = {"sqlite": sqlite.insert, "postgresql": postgresql.insert}


def _insert_new(session, rows: list[dict]) -> set[str]:
    """Insert rows whose id is not stored yet; returns the ids inserted. Safe beside concurrent importers."""
    table = Pair.__table__
    dialect = session.get_bind().dialect.name
    if dialect in _INSERT_OR_SKIP:
        stmt = (
            _INSERT_OR_SKIP[dialect](table)
            .on_conflict_do_nothing(index_elements=["id"])
            .returning(table.c.id)
        )
        return set(session.execute(stmt, rows).scalars().all())
    ids = [r["id"] for r in rows]
    present = set(session.execute(select(table.c.id).where(table.c.id.in_(ids))).scalars())
    fresh = [r for r in rows if r["id"] not in present]
    if fresh:
        session.execute(insert(table), fresh)
    return {r["id"] for r in fresh}


def _stored_ids(session, ids: list[str]) -> set[str]:
    table = Pair.__table__
    return set(session.execute(select(table.c.id).where(table.c.id.in_(ids))).scalars()) if ids else set()


def _other_split(session, ids: Iterable[str], split: str) -> int:
    table = Pair.__table__
    ids = list(ids)
    if not ids:
        return 0
    q = select(table.c.id).where(table.c.id.in_(ids), table.c.split != split)
    return len(session.execute(q).all())


def count_lines(path: Path) -> int:
    """Lines of a text file (a last line without a newline counts), read in blocks."""
    n, last = 0, b"\n"
    with path.open("rb") as f:
        while block := f.read(1 << 20):
            n += block.count(b"\n")
            last = block[-1:]
    return n + (last != b"\n")


def iter_records(path: Path, config: ImportConfig, file: str, progress: Callable[[int], None]):
    """(records expected, or None where unknown before reading; iterator of (where, record or RecordError)).
    `progress(1)` is called per record read (per line of a JSONL file, blank ones included)."""
    fmt = detect_format(path) if config.format == "auto" else config.format
    if fmt not in FORMATS[1:]:
        raise ValueError(f"unknown format {fmt!r}; expected one of {', '.join(FORMATS)}")
    if fmt == "hf":
        ds = load_hf(path, config.split)
        return len(ds), read_hf(ds, file, progress)
    if not path.is_file():
        raise ImportFailed(file, [], reason="no such file")
    if fmt == "parquet":
        import pyarrow.parquet as pq

        try:
            total = pq.ParquetFile(path).metadata.num_rows
        except Exception as e:
            raise ImportFailed(file, [], reason=f"not a readable Parquet file: {e}") from e
        return total, read_parquet(path, file, progress)
    if fmt == "jsonl":
        return count_lines(path), read_jsonl(path, file, progress)
    return None, read_csv(path, file, progress)  # a quoted field may span lines: rows are known once read


def import_file(
    path: str | Path,
    config: ImportConfig,
    url: str | None = None,
    *,
    on_start: Callable[[int], None] | None = None,
    on_progress: Callable[[int], None] | None = None,
) -> ImportResult:
    """Import one file in one transaction. Raises ImportFailed (storing nothing) on any invalid record,
    unless `config.skip_invalid`, which stores the valid records and lists the others in `result.skipped`.
    `on_start(total)` and `on_progress(advance)` drive a progress bar in records (total None for CSV).
    """
    path = Path(path)
    file = str(path)
    t0 = time.perf_counter()
    total, records = iter_records(path, config, file, on_progress or (lambda n: None))
    if on_start:
        on_start(total)
    result = ImportResult(file=file, dataset=config.dataset, split=config.split)
    errors: list[RecordError] = []
    n_errors = 0
    seen: set[str] = set()
    batch: list[dict] = []

    def flush(session) -> None:
        if not batch:
            return
        mirrors = [mirror_id(r) for r in batch]
        reordered = _stored_ids(session, mirrors)  # the same comparison, stored from the other A/B order
        result.pair_ids += [m if m in reordered else r["id"] for r, m in zip(batch, mirrors)]
        result.present_reordered += len(reordered)
        result.present += len(reordered)
        batch[:] = [r for r, m in zip(batch, mirrors) if m not in reordered]
        new = _insert_new(session, batch) if batch else set()
        result.new += len(new)
        result.present += len(batch) - len(new)
        result.present_other_split += _other_split(
            session, (r["id"] for r in batch if r["id"] not in new), config.split
        )
        batch.clear()

    with session_scope(url) as session:
        for where, record in records:
            result.read += 1
            if not isinstance(record, RecordError):
                try:
                    record = record_to_pair(record, file=file, where=where, config=config)
                except RecordError as e:
                    record = e
            if isinstance(record, RecordError):
                n_errors += 1
                if config.skip_invalid or len(errors) < 1000:
                    errors.append(record)
                continue
            if record["id"] in seen or mirror_id(record) in seen:
                result.duplicates += 1
                continue
            seen.add(record["id"])
            if n_errors and not config.skip_invalid:
                continue  # the file will be rejected: only keep validating
            record["created_at"] = utcnow()
            batch.append(record)
            if len(batch) >= config.batch_size:
                flush(session)
        if n_errors and not config.skip_invalid:
            raise ImportFailed(file, errors, n_errors)  # rolls the whole file back
        if result.read == 0:
            raise ImportFailed(file, [], reason="no records (an empty file?); nothing was imported")
        flush(session)
    result.skipped = errors
    result.seconds = time.perf_counter() - t0
    return result


def write_report(errors: list[RecordError], path: str | Path) -> Path:
    """The skipped records as JSONL, or CSV when the path ends in .csv."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    rows = [e.to_dict() for e in errors]
    if path.suffix.lower() == ".csv":
        with path.open("w", newline="", encoding="utf-8") as f:
            writer = csv.DictWriter(f, fieldnames=["file", "where", "field", "error"])
            writer.writeheader()
            writer.writerows(rows)
    else:
        with path.open("w", encoding="utf-8") as f:
            for row in rows:
                f.write(json.dumps(row, ensure_ascii=False) + "\n")
    return path
