"""Training data: the reliability engineer's export rows
`{prompt, chosen, rejected, weight, soft_label, entropy, n_votes, pair_id, source}`
(JSONL, Parquet or a `datasets.save_to_disk` folder), plus raw HH-RLHF `{chosen, rejected}` lines.

`soft_label` is read as P(chosen ≻ rejected) (1.0 when absent); an optional `gold` column
(1/0: is `chosen` the gold-better response?) feeds the explicit-conflict setting.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable
from pathlib import Path

import numpy as np

from w2s.labels.reliability import filter_by_entropy

EXPORT_FIELDS = (
    "prompt",
    "chosen",
    "rejected",
    "weight",
    "soft_label",
    "entropy",
    "n_votes",
    "pair_id",
    "source",
)
ASSISTANT = "\n\nAssistant:"


class DataError(ValueError):
    """Bad training data, with the file, line and field named."""


def split_hh(text: str) -> tuple[str, str]:
    """Split an HH-RLHF transcript at the last `\\n\\nAssistant:` into (prompt, response)."""
    i = text.rfind(ASSISTANT)
    if i < 0:
        raise ValueError("no '\\n\\nAssistant:' turn")
    return text[: i + len(ASSISTANT)], text[i + len(ASSISTANT) :]


def _normalise(raw: dict, where: str, index: int) -> dict:
    if not isinstance(raw, dict):
        raise DataError(f"{where}: expected an object, got {type(raw).__name__}")
    row = dict(raw)
    for f in ("chosen", "rejected"):
        if not isinstance(row.get(f), str):
            raise DataError(f"{where}: field '{f}' is missing or not a string")
    if row.get("prompt") is None:  # HH-RLHF: the prompt is inside both transcripts
        try:
            p, c = split_hh(row["chosen"])
            _, r = split_hh(
                row["rejected"]
            )  # a few HH lines differ in the prompt's whitespace: keep chosen's
        except ValueError as e:
            raise DataError(f"{where}: field 'chosen'/'rejected': {e} and no 'prompt' field") from None
        row.update(prompt=p, chosen=c, rejected=r)
    elif not isinstance(row["prompt"], str):
        raise DataError(f"{where}: field 'prompt' is not a string")
    for f, default in (("weight", 1.0), ("soft_label", 1.0), ("entropy", 0.0)):
        v = row.get(f)
        if v is None:
            v = default
        try:
            v = float(v)
        except (TypeError, ValueError):
            raise DataError(f"{where}: field '{f}' is not a number: {row.get(f)!r}") from None
        if math.isnan(v) or (f != "entropy" and not (0.0 <= v <= (1.0 if f == "soft_label" else math.inf))):
            raise DataError(f"{where}: field '{f}' out of range: {v}")
        row[f] = v
    row["n_votes"] = int(row.get("n_votes") or 0)
    row["pair_id"] = str(row.get("pair_id") or index)
    row["source"] = str(row.get("source") or "")
    if row.get("gold") is not None:
        row["gold"] = float(row["gold"])
    return row


def normalise_rows(rows: Iterable[dict], where: str) -> list[dict]:
    """Validate rows read from elsewhere than a file (e.g. a label set in the store), as `load_rows` does."""
    return [_normalise(r, f"{where}: row {i + 1}", i) for i, r in enumerate(rows)]


def load_rows(path: str | Path) -> list[dict]:
    """Read and validate rows from a JSONL file, a Parquet file or a `datasets` folder.
    Nothing is returned half-read: the first bad row raises a `DataError` naming file, line and field."""
    path = Path(path)
    if not path.exists():
        raise DataError(f"{path}: no such file or folder")
    if path.is_dir():
        from datasets import load_from_disk

        ds = load_from_disk(str(path))
        if hasattr(ds, "keys"):  # a DatasetDict: take 'train' or the only split
            ds = ds["train"] if "train" in ds else ds[next(iter(ds.keys()))]
        return [_normalise(r, f"{path}: row {i + 1}", i) for i, r in enumerate(ds)]
    if path.suffix == ".parquet":
        import pyarrow.parquet as pq

        return [
            _normalise(r, f"{path}: row {i + 1}", i) for i, r in enumerate(pq.read_table(path).to_pylist())
        ]
    rows = []
    with path.open(encoding="utf-8") as fh:
        for lineno, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                raw = json.loads(line)
            except json.JSONDecodeError as e:
                raise DataError(f"{path}: line {lineno}: invalid JSON ({e.msg})") from None
            rows.append(_normalise(raw, f"{path}: line {lineno}", len(rows)))
    if not rows:
        raise DataError(f"{path}: no rows")
    return rows


def write_rows(rows: Iterable[dict], path: str | Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8") as fh:
        for r in rows:
            fh.write(json.dumps(r, ensure_ascii=False) + "\n")
    return path


def orient(rows: list[dict]) -> list[dict]:
    """Make `chosen` the label's winner (soft_label ≥ 0.5), swapping sides where needed; the
    generative objectives (SFT, and DPO/SimPO's hard form) need the winner in `chosen`."""
    out = []
    for r in rows:
        if r["soft_label"] < 0.5:
            r = dict(r, chosen=r["rejected"], rejected=r["chosen"], soft_label=1.0 - r["soft_label"])
            if r.get("gold") is not None:
                r["gold"] = 1.0 - r["gold"]
        out.append(r)
    return out


def filter_rows_by_entropy(rows: list[dict], percentile: float) -> list[dict]:
    """Uncertainty filtering (w2s.labels.reliability.filter_by_entropy) of export rows by their `entropy`."""
    keep = filter_by_entropy({i: r["entropy"] for i, r in enumerate(rows)}, percentile)
    return [r for i, r in enumerate(rows) if i in keep]


def subsample(rows: list[dict], n: int | None, seed: int = 0) -> list[dict]:
    if n is None or n >= len(rows):
        return list(rows)
    idx = np.random.default_rng(seed).choice(len(rows), size=n, replace=False)
    return [rows[i] for i in sorted(idx)]


def encode_pair_side(tok, prompt: str, response: str, max_length: int) -> tuple[list[int], int]:
    """Token ids of prompt+response and the index where the response starts. The prompt is cut
    from the left (the end of the conversation matters most), the response from the right, keeping
    at least a quarter of the budget for the prompt."""
    p = tok(prompt, add_special_tokens=False)["input_ids"]
    r = tok(response, add_special_tokens=False)["input_ids"]
    if tok.eos_token_id is not None:
        r = r + [tok.eos_token_id]
    r = r[: max(1, max_length - max_length // 4)]
    p = p[-(max_length - len(r)) :] if len(p) + len(r) > max_length else p
    bos = tok.bos_token_id if tok.bos_token_id is not None else getattr(tok, "cls_token_id", None)
    if bos is not None and (not p or p[0] != bos) and len(p) + len(r) < max_length:
        p = [bos] + p
    return p + r, len(p)


def pad_batch(seqs: list[list[int]], pad_id: int):
    """Right-pad to a tensor; returns (input_ids, attention_mask)."""
    import torch

    n = max(len(s) for s in seqs)
    ids = torch.full((len(seqs), n), pad_id, dtype=torch.long)
    mask = torch.zeros((len(seqs), n), dtype=torch.long)
    for i, s in enumerate(seqs):
        ids[i, : len(s)] = torch.tensor(s, dtype=torch.long)
        mask[i, : len(s)] = 1
    return ids, mask
