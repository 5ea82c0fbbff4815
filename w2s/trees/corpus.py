"""Portable tree corpora: trees written to a gzipped JSONL file and read back into any store.

A corpus names each pair by its content key (a hash of prompt, response A and response B), never by
the store's pair id nor its text: the pair files stay where they are, and a store that imported the same
pairs (under any dataset name) gets the trees. A pair stored with A and B the other way round gets the
tree mirrored (verdicts flipped, 'Reply A'/'Reply B' swapped in the thoughts). A tree's identity is its
pair, strong model and config hash, as in the store: importing a corpus twice adds nothing.

One line per tree:
    {"format": "w2s-tree/1", "pair": KEY, "tree": {strong_model, library, config_hash, config, depth,
     backtraces, tokens, cached_tokens, seconds}, "nodes": [{position, principle_id, ..., seconds}]}
"""

from __future__ import annotations

import gzip
import hashlib
import json
import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from sqlmodel import Session, select

from w2s.store import Node, Pair, Tree
from w2s.trees.search import swap_labels

FORMAT = "w2s-tree/1"
TREE_FIELDS = (
    "strong_model",
    "library",
    "config_hash",
    "config",
    "depth",
    "backtraces",
    "tokens",
    "cached_tokens",
    "seconds",
)
NODE_FIELDS = (
    "position",
    "principle_id",
    "principle_name",
    "relevance",
    "thought",
    "p_a",
    "p_b",
    "entropy",
    "info",
    "role",
    "model",
    "template_hash",
    "tokens",
    "cached_tokens",
    "seconds",
)


def content_key(prompt: str, response_a: str, response_b: str) -> str:
    """24 hex digits over the pair's text in this A/B order (the dataset name plays no part)."""
    return hashlib.sha256(json.dumps([prompt, response_a, response_b]).encode()).hexdigest()[:24]


class CorpusError(ValueError):
    """A corpus file that cannot be read; the message names the file and line."""


@dataclass
class ImportReport:
    trees: int = 0
    """Tree lines read."""
    added: int = 0
    already: int = 0
    mirrored: int = 0
    """Trees added for a pair stored with A and B the other way round."""
    absent: list[str] = field(default_factory=list)
    """Content keys of trees whose pair is not in the store."""


# ---------------------------------------------------------------------------------------------- export


def export_trees(session: Session, out: str | Path, trees: Iterable[Tree], *, overwrite: bool = False) -> int:
    """Write `trees` (with their nodes) to `out` (.jsonl.gz); returns how many. An existing file is
    refused unless `overwrite`; the file appears only when complete (written beside it, then renamed)."""
    out = Path(out)
    if out.exists() and not overwrite:
        raise FileExistsError(f"{out} exists: choose another path or pass --overwrite")
    tmp = out.with_name(f".{out.name}.{os.getpid()}.part")
    n = 0
    try:
        # mtime=0: the same trees give the same bytes, so a committed corpus changes only when its trees do
        with open(tmp, "wb") as raw, gzip.GzipFile(fileobj=raw, mode="wb", mtime=0) as gz:
            for tree in trees:
                pair = session.get(Pair, tree.pair_id)
                nodes = session.exec(select(Node).where(Node.tree_id == tree.id).order_by(Node.position))
                line = {
                    "format": FORMAT,
                    "pair": content_key(pair.prompt, pair.response_a, pair.response_b),
                    "tree": {f: getattr(tree, f) for f in TREE_FIELDS},
                    "nodes": [{f: getattr(node, f) for f in NODE_FIELDS} for node in nodes],
                }
                gz.write((json.dumps(line, sort_keys=True) + "\n").encode())
                n += 1
        tmp.replace(out)
    finally:
        tmp.unlink(missing_ok=True)
    return n


# ---------------------------------------------------------------------------------------------- import


def read_corpus(path: str | Path) -> list[dict]:
    """Every tree line of a corpus, validated; the first bad line raises CorpusError naming it."""
    path = Path(path)
    opener = gzip.open if path.suffix == ".gz" else open
    rows = []
    try:
        with opener(path, "rt", encoding="utf-8") as f:
            for number, text in enumerate(f, 1):
                if text.strip():
                    rows.append(_parse(text, f"{path}:{number}"))
    except (OSError, EOFError, UnicodeDecodeError) as e:  # a truncated or non-gzip file
        raise CorpusError(f"{path}: cannot read: {e}") from e
    return rows


def _parse(text: str, where: str) -> dict:
    try:
        row = json.loads(text)
    except (json.JSONDecodeError, RecursionError) as e:
        raise CorpusError(f"{where}: not JSON: {e}") from e
    if not isinstance(row, dict) or row.get("format") != FORMAT:
        raise CorpusError(f"{where}: field 'format': expected {FORMAT!r}")
    if not isinstance(row.get("pair"), str):
        raise CorpusError(f"{where}: field 'pair': expected a content key")
    tree, nodes = row.get("tree"), row.get("nodes")
    if not isinstance(tree, dict) or not isinstance(nodes, list):
        raise CorpusError(f"{where}: fields 'tree' and 'nodes': expected an object and a list")
    for name in TREE_FIELDS:
        if name not in tree:
            raise CorpusError(f"{where}: field 'tree.{name}' is missing")
    for i, node in enumerate(nodes):
        missing = [f for f in NODE_FIELDS if not isinstance(node, dict) or f not in node]
        if missing:
            raise CorpusError(f"{where}: field 'nodes[{i}].{missing[0]}' is missing")
    return row


def pair_keys(session: Session, dataset: str | None = None) -> dict[str, list[tuple[str, bool]]]:
    """content key -> [(pair id, mirrored)] for the stored pairs (of one dataset), both A/B orders."""
    query = select(Pair.id, Pair.prompt, Pair.response_a, Pair.response_b)
    if dataset:
        query = query.where(Pair.dataset == dataset)
    keys: dict[str, list[tuple[str, bool]]] = {}
    for pid, prompt, a, b in session.exec(query):
        keys.setdefault(content_key(prompt, a, b), []).append((pid, False))
        keys.setdefault(content_key(prompt, b, a), []).append((pid, True))
    return keys


def import_trees(session: Session, path: str | Path, *, dataset: str | None = None) -> ImportReport:
    """Add the corpus's trees whose pair is stored (in the caller's transaction: the whole file or
    nothing). Trees already stored (same pair, strong model, config hash) are skipped."""
    rows = read_corpus(path)
    keys = pair_keys(session, dataset)
    have = set(session.exec(select(Tree.pair_id, Tree.strong_model, Tree.config_hash)))
    report = ImportReport(trees=len(rows))
    for row in rows:
        targets = keys.get(row["pair"])
        if not targets:
            report.absent.append(row["pair"])
            continue
        t = row["tree"]
        for pid, mirrored in targets:
            if (pid, t["strong_model"], t["config_hash"]) in have:
                report.already += 1
                continue
            tree = Tree(pair_id=pid, **t)
            session.add(tree)
            session.flush()
            for node in row["nodes"]:
                session.add(Node(tree_id=tree.id, **(_mirror(node) if mirrored else node)))
            have.add((pid, t["strong_model"], t["config_hash"]))
            report.added += 1
            report.mirrored += mirrored
    return report


def _mirror(node: dict) -> dict:
    """A node as seen with A and B exchanged."""
    return {**node, "p_a": node["p_b"], "p_b": node["p_a"], "thought": swap_labels(node["thought"])}
