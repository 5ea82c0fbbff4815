"""What the benchmarks share: the machine line, and a seeded sample of any pair file imported into a
bench database (dataset = the file's folder name, split = its stem), so every bench runs unchanged on
pair files it has never seen."""

from __future__ import annotations

import os
import platform
import random
import re
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT / ".." / "shared" / "data"


def machine() -> str:
    import torch

    cpu = platform.processor() or ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    return (f"{os.cpu_count()} cores, {cpu}, torch {torch.__version__} ({torch.get_num_threads()} threads), "
            f"python {platform.python_version()}, load average {load:.1f} at start")


def dataset_of(path: str | Path) -> tuple[str, str]:
    """(dataset, split) of a pair file: its folder's name and its stem."""
    path = Path(path)
    return path.resolve().parent.name, path.name.split(".")[0]


def sqlite_url(path: str | Path) -> str:
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{Path(path).resolve()}"


def import_sample(path: str | Path, url: str, n: int | None = None, seed: int = 0) -> list[str]:
    """Import a seeded sample of `n` valid records of a pair file (all when n is None) and return their
    pair ids in sample order: the same seed gives the same order, so a sample of n is the first n of
    the whole file's. Invalid records are skipped and reported; importing again adds nothing."""
    import json

    from sqlmodel import select

    from w2s.importers import ImportConfig, RecordError, import_file, record_to_pair
    from w2s.store import Pair, session_scope

    dataset, split = dataset_of(path)
    config = ImportConfig(dataset=dataset, split=split, seed=seed, skip_invalid=True)
    lines = Path(path).read_text(encoding="utf-8").splitlines()
    order = [i for i in range(len(lines)) if lines[i].strip()]
    random.Random(seed).shuffle(order)
    take = order if n is None else order[: n + n // 20 + 2]  # a few records may be invalid
    with tempfile.TemporaryDirectory() as tmp:
        sample = Path(tmp) / Path(path).name
        sample.write_text("\n".join(lines[i] for i in take) + "\n", encoding="utf-8")
        result = import_file(sample, config, url=url)
    for error in result.skipped:  # named by the pair file's own line, not the shuffled sample's
        line = re.fullmatch(r"line (\d+)", error.where)
        where = f"line {take[int(line.group(1)) - 1] + 1}" if line else error.where
        print(f"skipped invalid record: {RecordError(str(path), where, error.field, error.message)}")
    ids = []  # in sample order, as the importer keys them
    for i in take:
        try:
            ids.append(record_to_pair(json.loads(lines[i]), file="", where="line", config=config)["id"])
        except ValueError:
            continue
    with session_scope(url) as s:
        stored = set(s.exec(select(Pair.id).where(Pair.dataset == dataset, Pair.split == split)))
    ids = [pid for pid in dict.fromkeys(ids) if pid in stored]
    return ids if n is None else ids[:n]


def gold_side(p_a, gold_is_a):
    """P(the gold response is better) from P(A better) and whether gold is A (bools, 0/1 or arrays)."""
    return gold_is_a * p_a + (1 - gold_is_a) * (1 - p_a)


def tree_config(sets: list[str], library: str):
    """The TreeConfig of `--set FIELD=VALUE` lines (each converted by its field's type; an unknown field
    is named with the known ones) on the library's defaults."""
    from w2s.options import apply_sets
    from w2s.trees import TreeConfig

    try:
        return apply_sets(TreeConfig, sets, library=library)
    except ValueError as e:
        raise SystemExit(f"--set: {e}") from None


def load_model(spec: str, threads: int):
    """A model by spec; llama.cpp gets its thread count (keep it on its own cores: see README)."""
    from w2s.backends import get_model

    return get_model(spec, threads=threads) if spec.startswith("llamacpp:") else get_model(spec)


# ---------------------------------------------------------------------- committed tree corpora (bench/trees/)


def default_corpus(path: str) -> Path:
    dataset, split = dataset_of(path)
    return ROOT / "bench" / "trees" / f"{dataset}-{split}.jsonl.gz"


def import_corpus(url: str, corpus: Path | None) -> int:
    from w2s.corpus import import_trees
    from w2s.store import session_scope

    if corpus is None or not corpus.is_file():
        return 0
    with session_scope(url) as s:
        report = import_trees(s, corpus)
    print(f"{corpus}: {report.trees} trees, {report.added} added, {report.already} already stored")
    return report.added


def save_corpus(url: str, corpus: Path, path: str) -> None:
    """Write every stored tree of the pair file's pairs (all of them are imported) to its corpus file."""
    from sqlmodel import select

    from w2s.corpus import export_trees
    from w2s.store import Pair, Tree, session_scope

    dataset, split = dataset_of(path)
    corpus.parent.mkdir(parents=True, exist_ok=True)
    with session_scope(url) as s:
        ids = select(Pair.id).where(Pair.dataset == dataset, Pair.split == split)
        n = export_trees(s, corpus, s.exec(select(Tree).where(Tree.pair_id.in_(ids)).order_by(Tree.pair_id, Tree.id)),
                         overwrite=True)
    print(f"saved {n} trees to {corpus}")
