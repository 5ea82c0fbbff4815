"""What the benchmarks share over the library (`w2s.pipeline`): the machine line, a seeded sample of any
pair file imported into a bench database (dataset = the file's folder name, split = its stem), so every
bench runs unchanged on pair files it has never seen, the committed tree corpora (bench/trees/), the
`--set FIELD=VALUE` tree config, and the SEAM methods and gaps the domain benches report."""

from __future__ import annotations

from pathlib import Path

from w2s.machine import machine  # noqa: F401  (every bench prints it)
from w2s.pipeline import dataset_of, gold_side, import_pairs, import_tree_corpus, save_tree_corpus, sqlite_url  # noqa: F401

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT / ".." / "shared" / "data"

COTS = ["cot-v1", "cot-v2", "cot-v3"]
COT_ALIGNED = {f"{c}-aligned": c for c in COTS}
"""Each CoT decided by an aligned master reading its reasoning (a master of kind cot-vN)."""
TREE_MASTERS = {
    "aligned": "features",
    "seam-aligned": "features",
    "seam-gate": "features",
    "seam-aligned-rm": "rm",
}
METHODS = [
    "naive",
    "strong",
    *COTS,
    "seam",
    "aligned",
    "seam-aligned",
    "seam-gate",
    "seam-aligned-rm",
    *COT_ALIGNED,
]
GAPS = [
    ("seam-aligned", "aligned"),
    ("seam-gate", "aligned"),
    ("seam-aligned", "strong"),
    ("seam-aligned", "best-cot"),
    ("seam-aligned", "best-cot-aligned"),
    ("seam-aligned-rm", "aligned"),
    ("seam-aligned-rm", "best-cot-aligned"),
]


def add_best(probs: dict[str, list[float]], accuracy: dict[str, float]) -> None:
    """Add "best-cot" and "best-cot-aligned": the most accurate of each group on these test pairs, so that
    the gap against it is the hardest one."""
    for best, group in (("best-cot", COTS), ("best-cot-aligned", list(COT_ALIGNED))):
        present = [m for m in group if m in probs]
        if present:
            probs[best] = probs[max(present, key=lambda m: accuracy[m])]


def import_sample(path: str | Path, url: str, n: int | None = None, seed: int = 0) -> list[str]:
    """A seeded sample of `n` valid records of a pair file (all when None), imported; their pair ids in
    sample order (`w2s.pipeline.import_pairs`)."""
    return import_pairs(url, path, n=n, seed=seed)


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


def default_corpus(path: str) -> Path:
    """The committed tree corpus of a pair file: bench/trees/<dataset>-<split>.jsonl.gz."""
    dataset, split = dataset_of(path)
    return ROOT / "bench" / "trees" / f"{dataset}-{split}.jsonl.gz"


def import_corpus(url: str, corpus: Path | None) -> int:
    return import_tree_corpus(url, corpus)


def save_corpus(url: str, corpus: Path, path: str) -> None:
    """Write every stored tree of the pair file's pairs (all of them are imported) to its corpus file."""
    save_tree_corpus(url, corpus, *dataset_of(path))


def config_from(args, library: str):
    """The TreeConfig of a bench's `--set FIELD=VALUE` options (args.set) and a principle library."""
    return tree_config(args.set, library)
