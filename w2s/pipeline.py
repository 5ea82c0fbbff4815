"""SEAM end to end as library calls: import → trees → master → labels → export → student.

Each step is one function over a store URL (None: `$W2S_DB` or ./w2s.db) that returns what the next
step needs, so a script or a notebook runs the pipeline without the CLI:

    from w2s import pipeline
    url = pipeline.sqlite_url("out/w2s.db")
    train = pipeline.import_pairs(url, "data/demo-code/train.jsonl", "demo-code", "train")
    pipeline.import_tree_corpus(url, "data/demo-code/trees-train.jsonl.gz")
    master = pipeline.train_master(url, train, strong="llamacpp:qwen2.5-coder-1.5b")
    ...

Every step is resumable through the store: pairs, trees and labels are keyed by content, so running a
step again adds only what is missing. Steps that take long report progress through `log` (print by
default; None is silent).
"""

from __future__ import annotations

import random
import re
import sys
import tempfile
import time
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path

from w2s.store import Pair, Tree, select_in, session_scope

Log = Callable[[str], None] | None
WEAK = "transformers:smollm2"


def _say(log: Log, text: str) -> None:
    if log is not None:
        log(text)


def dataset_of(path: str | Path) -> tuple[str, str]:
    """(dataset, split) a pair file is filed under by default: its folder's name and its stem."""
    path = Path(path)
    return path.resolve().parent.name, path.name.split(".")[0]


def sqlite_url(path: str | Path) -> str:
    """The URL of a SQLite store file (its folder is made)."""
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{Path(path).resolve()}"


# ---------------------------------------------------------------------------------------------- pairs


def import_pairs(
    url: str | None,
    path: str | Path,
    dataset: str | None = None,
    split: str | None = None,
    *,
    n: int | None = None,
    seed: int | None = None,
    log: Log = print,
) -> list[str]:
    """Import a pair file under (dataset, split) (by default `dataset_of(path)`) and return the ids of its
    pairs stored there, in file order, or with `seed` in a seeded shuffled order: the same seed gives the
    same order, so a sample of `n` is the first n of the whole file's (only those records, and a few
    spare for invalid ones, are imported). Invalid records are skipped and reported through `log`, named
    by their line in the file; importing again adds nothing. A pair already stored under another split
    is not returned (train and test never share a pair)."""
    from sqlmodel import select

    from w2s.store.importers import ImportConfig, RecordError, import_file

    default_dataset, default_split = dataset_of(path)
    dataset, split = dataset or default_dataset, split or default_split
    config = ImportConfig(dataset=dataset, split=split, seed=seed or 0, skip_invalid=True)
    if seed is None and n is None:
        result, line_of = import_file(path, config, url=url), None
    else:
        lines = Path(path).read_text(encoding="utf-8").splitlines()
        order = [i for i in range(len(lines)) if lines[i].strip()]
        if seed is not None:
            random.Random(seed).shuffle(order)
        take = order if n is None else order[: n + n // 20 + 2]  # a few records may be invalid
        with tempfile.TemporaryDirectory() as tmp:
            sample = Path(tmp) / Path(path).name
            sample.write_text("\n".join(lines[i] for i in take) + "\n", encoding="utf-8")
            result = import_file(sample, config, url=url)
        line_of = take
    for error in result.skipped:  # named by the pair file's own line, not the sample's
        line = re.fullmatch(r"line (\d+)", error.where)
        where = f"line {line_of[int(line.group(1)) - 1] + 1}" if line and line_of else error.where
        _say(log, f"skipped invalid record: {RecordError(str(path), where, error.field, error.message)}")
    query = select(Pair.id).where(Pair.dataset == dataset, Pair.split == split)
    with session_scope(url) as s:
        stored = set(select_in(s, query, Pair.id, result.pair_ids))
    ids = [pid for pid in dict.fromkeys(result.pair_ids) if pid in stored]
    return ids if n is None else ids[:n]


def split_ids(url: str | None, dataset: str, split: str) -> list[str]:
    """The ids of the pairs stored under (dataset, split), in the order they were imported (file, line)."""
    from sqlmodel import select

    with session_scope(url) as s:
        rows = list(s.exec(select(Pair.id, Pair.source).where(Pair.dataset == dataset, Pair.split == split)))
    return [pid for pid, _ in sorted(rows, key=lambda r: _source_order(r[1]))]


def _source_order(source: str) -> tuple[str, int, str]:
    file, _, line = source.rpartition(":")
    return (file, int(line), "") if line.isdigit() else (source, 0, source)


def train_test_ids(
    train: Sequence[str], test: Sequence[str], *, train_n: int | None = None, test_n: int | None = None
) -> tuple[list[str], list[str]]:
    """The first `train_n` of `train`, and the first `test_n` of `test` that are not train pairs (when
    train and test are drawn from one file, the test sample never overlaps the train sample)."""
    train = list(train)[:train_n]
    seen = set(train)
    return train, [p for p in test if p not in seen][:test_n]


# ---------------------------------------------------------------------------------------------- trees


def import_tree_corpus(url: str | None, corpus: str | Path | None, log: Log = print) -> int:
    """Import a tree corpus file (`w2s trees export`) into the store; returns the trees added (0 when the
    file is absent)."""
    from w2s.trees.corpus import import_trees

    if corpus is None or not Path(corpus).is_file():
        return 0
    with session_scope(url) as s:
        report = import_trees(s, corpus)
    _say(log, f"{corpus}: {report.trees} trees, {report.added} added, {report.already} already stored")
    return report.added


def save_tree_corpus(url: str | None, corpus: str | Path, dataset: str, split: str, log: Log = print) -> int:
    """Write every stored tree of the pairs under (dataset, split) to a corpus file; returns how many."""
    from sqlmodel import select

    from w2s.trees.corpus import export_trees

    corpus = Path(corpus)
    corpus.parent.mkdir(parents=True, exist_ok=True)
    with session_scope(url) as s:
        ids = select(Pair.id).where(Pair.dataset == dataset, Pair.split == split)
        n = export_trees(
            s,
            corpus,
            s.exec(select(Tree).where(Tree.pair_id.in_(ids)).order_by(Tree.pair_id, Tree.id)),
            overwrite=True,
        )
    _say(log, f"saved {n} trees to {corpus}")
    return n


def ensure_trees(
    url: str | None,
    strong,
    pair_ids: Sequence[str],
    cfg,
    *,
    deadline: float | None = None,
    label: str = "trees",
    extend_from: str | None = None,
    log: Log = print,
) -> int:
    """Build the missing trees of `pair_ids` by the strong model (a `w2s.backends` model) under `cfg` (a
    `TreeConfig`), one pair at a time (llama.cpp keeps one prefix cached), going on from a tree of config
    `extend_from` where a pair has one; none is started after `deadline` (`time.monotonic()`). Returns
    how many were built."""
    from w2s.trees import build_trees, stored_pair_ids

    with session_scope(url) as s:
        have = stored_pair_ids(s, strong.spec, cfg.hash(), list(pair_ids))
    todo = [p for p in pair_ids if p not in have]
    built, tty = 0, log is print and sys.stdout.isatty()
    start = time.monotonic()
    for pid in todo:
        if deadline is not None and time.monotonic() > deadline:
            break
        built += build_trees(strong, [pid], cfg, url=url, in_flight=1, extend_from=extend_from)
        rate = (time.monotonic() - start) / max(1, built)
        # one line per tree in a log file, one updated line on a terminal
        if tty:
            print(f"\r{label} trees: built {built}/{len(todo)} ({rate:.1f} s/tree)", end="", flush=True)
        else:
            _say(log, f"{label} trees: built {built}/{len(todo)} ({rate:.1f} s/tree)")
    if todo and tty:
        print()
    return built


def trees_of(url: str | None, pair_ids: Sequence[str], strong: str, config_hash: str) -> dict[str, Tree]:
    """pair id -> its tree by `strong` under `config_hash` (detached from the session), for the pairs
    that have one."""
    from sqlmodel import select

    query = select(Tree).where(Tree.strong_model == strong, Tree.config_hash == config_hash)
    with session_scope(url) as s:
        out = {t.pair_id: t for t in select_in(s, query, Tree.pair_id, pair_ids)}
        for t in out.values():
            s.expunge(t)
    return out


# --------------------------------------------------------------------------------------------- master


def train_master(
    url: str | None,
    pair_ids: Sequence[str],
    *,
    strong: str,
    kind: str = "features",
    tree_config: str | None = None,
    library: str | None = None,
    weak: str = WEAK,
    seed: int = 0,
    principle_weights: str = "auto",
    cot_tokens: int | None = None,
    cache: dict | None = None,
):
    """Train an aligned master of `kind` and its no-tree twin on the gold pairs among `pair_ids`: for
    `features` and `rm`, those with a tree by `strong` of config `tree_config` (default: the config most
    of them have a tree of; the library is the trees' own unless named); for `cot-v1/2/3`, those with
    that CoT's stored reasoning by `strong` (`cot_tokens` of it; default: the most common budget).
    Every master in the process reads the weak model's features through one cache (`shared_features`);
    masters trained with one `cache` dict on the same pairs also share the margin fit. Returns the
    master (`save_master` writes it). Raises ValueError when no pair qualifies.

    This is the one place the pipeline calls the master code."""
    from dataclasses import replace

    from w2s.masters import (
        MasterConfig,
        MasterInputs,
        fit_margin,
        reasoning_rows,
        shared_features,
        training_rows,
    )
    from w2s.masters import train_master as fit
    from w2s.reasoning import COT_METHODS
    from w2s.trees.principles import load_library

    cache = {} if cache is None else cache
    base = MasterConfig(weak=weak, seed=seed, strong=strong, principle_weights=principle_weights)
    features = shared_features(base)
    with session_scope(url) as s:
        if kind in COT_METHODS:
            budget, pairs, reasoning = reasoning_rows(s, list(pair_ids), kind, strong, cot_tokens)
            trees, nodes, lib = [], [], None
            cfg = replace(base, kind=kind, tree_config="", library="", reasoning_max_tokens=budget)
        else:
            config_hash, pairs, trees, nodes = training_rows(s, list(pair_ids), strong, tree_config)
            reasoning = None
            libraries = {t.library for t in trees}
            if library is None and len(libraries) > 1:
                raise ValueError(
                    f"the trees use several libraries ({', '.join(sorted(libraries))}): name one"
                )
            library = library or (libraries.pop() if libraries else "")
            lib = load_library(library) if library else None
            cfg = replace(base, kind=kind, tree_config=config_hash, library=library)
    if not pairs:
        what = f"{kind} reasoning" if kind in COT_METHODS else "a tree"
        raise ValueError(f"none of the {len(pair_ids)} pairs has gold (a/b) and {what} by {strong}")
    ids = [p.id for p in pairs]
    margin = cache.get("margin") if cache.get("margin_pairs") == ids else None
    if margin is None:
        margin = fit_margin(pairs, features, cfg)
        cache.update(margin=margin, margin_pairs=ids)
    return fit(MasterInputs(pairs, trees, nodes, lib, reasoning), cfg, features, margin)


def save_master(master, root: str | Path, log: Log = print) -> Path:
    """Write a trained master to root/<run id> (unless it is there already), say what it learnt, and
    return the run directory (what `annotator(..., master=)` reads)."""
    run = Path(root) / master.run_id
    if not (run / "master.json").exists():
        master.save(run)
    m = master.metrics
    sharing = f"{master.principle_weights} weights, " if master.config.kind == "features" else ""
    _say(
        log,
        f"{master.config.kind} master {master.run_id} on {m['train_pairs']} train pairs ({sharing}training "
        f"accuracy {m['train_accuracy_master']:.3f}, twin {m['train_accuracy_twin']:.3f})"
        + "".join(f"; {r['name']} {r['trust']:+.2f}" for r in m["trust"]),
    )
    return run


def load_master(run_dir: str | Path):
    """The master stored in a run directory."""
    from w2s.masters import Master

    return Master.load(run_dir)


# --------------------------------------------------------------------------------------------- labels


def annotator(method: str, *, weak=None, strong=None, master: str | Path | None = None, **options):
    """The annotator of a method (`naive`, `seam`, `cot-v1`, `aligned`, `seam-aligned`, ...); the master
    methods read the master run directory `master`, the others the weak and strong models (specs or
    loaded models)."""
    if master is not None:
        options["master"] = str(master)
    return annotator_api().get_annotator(method, weak, strong, **options)


def annotator_api():
    """The annotators' API (`get_annotator`, `annotate_all`), found through the `w2s.annotators` entry
    point: the annotators build on w2s, so w2s never imports them by name."""
    from importlib.metadata import entry_points

    found = entry_points(group="w2s.annotators", name="api")
    if not found:
        raise RuntimeError("no annotators are installed (entry point w2s.annotators:api): pip install -e .")
    return next(iter(found)).load()


def progress(label: str, total: int, log: Log = print):
    """An `annotate_all` callback: one line per committed batch (a log file), or one updated line (a
    terminal). Its first call reports the pairs already labelled, which the rate leaves out."""
    seen, tty, start = [], log is print and sys.stdout.isatty(), time.monotonic()

    def on_batch(n: int, _added: int) -> None:
        seen.append(n)
        done = sum(seen)
        rate = (time.monotonic() - start) / max(1, done - seen[0])
        line = f"{label}: {done}/{total} pairs ({rate:.1f} s/pair)"
        if tty:
            print(f"\r{line}", end="" if done < total else "\n", flush=True)
        else:
            _say(log, line)

    return on_batch


def annotate(
    url: str | None,
    ann,
    pair_ids: Sequence[str],
    *,
    label: str | None = None,
    batch_size: int = 8,
    log: Log = print,
) -> int:
    """Label every pair of `pair_ids` that `ann` (an `annotator`) has not labelled yet, one transaction
    per batch; returns the labels added."""
    on_batch = progress(label or ann.name, len(pair_ids), log) if log is not None else None
    return annotator_api().annotate_all(
        ann, list(pair_ids), url=url, batch_size=batch_size, on_batch=on_batch
    )


def stored_labels(url: str | None, annotators: dict, pair_ids: Sequence[str]) -> dict[str, dict[str, tuple]]:
    """name -> pair id -> (p_a, seconds) of that annotator's stored label (by its dedup key)."""
    from sqlmodel import select

    from w2s.store import Annotation

    out = {}
    query = select(Annotation.dedup_key, Annotation.p_a, Annotation.seconds)
    with session_scope(url) as s:
        for name, ann in annotators.items():
            keys = {ann.key(p): p for p in pair_ids}
            out[name] = {
                keys[k]: (p_a, sec) for k, p_a, sec in select_in(s, query, Annotation.dedup_key, keys)
            }
    return out


def gold_side(p_a, gold_is_a):
    """P(the gold response is better) from P(A better) and whether gold is A (bools, 0/1 or arrays)."""
    return gold_is_a * p_a + (1 - gold_is_a) * (1 - p_a)


def gold_probs(
    url: str | None, p_a: dict[str, dict[str, float]], pair_ids: Sequence[str]
) -> dict[str, list[float]]:
    """name -> P(gold response better) per pair of `pair_ids`, in that order, from name -> pair -> P(A)."""
    from sqlmodel import select

    with session_scope(url) as s:
        gold = dict(select_in(s, select(Pair.id, Pair.gold), Pair.id, pair_ids))
    return {m: [gold_side(rows[p], gold[p] == "a") for p in pair_ids] for m, rows in p_a.items()}


def score_methods(url: str | None, annotators: dict, pair_ids: Sequence[str]) -> dict:
    """Each annotator's stored labels scored against gold on the pairs every one of them labelled:
    {"pairs": [...], "methods": {name: {accuracy, ci_low, ci_high, n, coverage, s_per_pair}},
    "p_gold": {name: [P(gold) per pair]}}. Empty "pairs" when no pair has every label yet."""
    from w2s.labels.quality import wilson_interval

    stored = stored_labels(url, annotators, pair_ids)
    common = [p for p in pair_ids if all(p in stored[m] for m in annotators)]
    out = {"pairs": common, "methods": {}, "p_gold": {}}
    if not common:
        return out
    probs = gold_probs(url, {m: {p: v[0] for p, v in rows.items()} for m, rows in stored.items()}, common)
    for m in annotators:
        correct = sum(p > 0.5 for p in probs[m])
        lo, hi = wilson_interval(correct, len(common))
        out["methods"][m] = {
            "accuracy": correct / len(common),
            "ci_low": lo,
            "ci_high": hi,
            "n": len(common),
            "coverage": sum(p != 0.5 for p in probs[m]) / len(common),
            "s_per_pair": sum(stored[m][p][1] for p in common) / len(common),
        }
    out["p_gold"] = probs
    return out


def score_table(scores: dict) -> list[str]:
    """`score_methods`' table as text lines: accuracy, its Wilson 95% interval, n, coverage, s/pair."""
    lines = [f"{'method':<14} {'acc':>6} {'95% CI':>15} {'n':>4} {'cover':>6} {'s/pair':>7}"]
    for m, r in scores["methods"].items():
        lines.append(
            f"{m:<14} {r['accuracy']:>6.3f} [{r['ci_low']:.3f},{r['ci_high']:.3f}] {r['n']:>4} "
            f"{r['coverage']:>6.2f} {r['s_per_pair']:>7.2f}"
        )
    return lines


def label_gaps(
    p_gold: dict[str, Sequence[float]], pairs: Iterable[tuple[str, str]], seed: int = 0
) -> dict[str, dict]:
    """ "a - b" -> the paired-bootstrap accuracy gap of a over b (`w2s_metrics.accuracy_gap_ci`), for
    each (a, b) of `pairs` where both have P(gold) on the same items."""
    from w2s.training.metrics import accuracy_gap_ci

    return {
        f"{a} - {b}": accuracy_gap_ci(p_gold[b], p_gold[a], seed=seed)
        for a, b in pairs
        if a in p_gold and b in p_gold
    }


def build_labels(
    url: str | None, name: str, ann, *, method: str = "soft", temperature: float | None = None
) -> str:
    """Aggregate `ann`'s labels (that annotator and method only) into the label set `name` (rebuilt if
    there); `soft` keeps each label's P(chosen) as its soft label. Returns the name."""
    from w2s.labels.aggregate import build_label_set

    with session_scope(url) as s:
        build_label_set(
            s,
            name=name,
            method=method,
            temperature=temperature,
            annotators=[ann.annotator_id],
            methods=[ann.name],
        )
    return name


def label_rows(url: str | None, label_set: str, pair_ids: Iterable[str] | None = None) -> list[dict]:
    """The export rows of a label set (`w2s export`'s), only of `pair_ids` when given."""
    from w2s.store.export import iter_export_rows

    keep = None if pair_ids is None else set(pair_ids)
    with session_scope(url) as s:
        return [r for r in iter_export_rows(s, label_set) if keep is None or r["pair_id"] in keep]


def export_labels(
    url: str | None, label_set: str, out: str | Path, pair_ids: Iterable[str] | None = None
) -> int:
    """Write a label set's export rows (of `pair_ids` when given) as JSONL; returns the rows written."""
    from w2s.store.export import write_jsonl

    return write_jsonl(label_rows(url, label_set, pair_ids), Path(out))


# -------------------------------------------------------------------------------------------- student


def gold_rows(url: str | None, dataset: str, split: str) -> list[dict]:
    """Training rows of the gold pairs under (dataset, split), in import order: `chosen` is the gold-better
    response, soft label 1 (what `w2s experiment` trains the weak supervisor and the ceiling on)."""
    from sqlmodel import select

    ids = split_ids(url, dataset, split)
    with session_scope(url) as s:
        pairs = {p.id: p for p in select_in(s, select(Pair), Pair.id, ids)}
    rows = []
    for pid in ids:
        p = pairs[pid]
        if p.gold not in ("a", "b"):
            continue
        chosen, rejected = (p.response_a, p.response_b) if p.gold == "a" else (p.response_b, p.response_a)
        rows.append(
            {
                "prompt": p.prompt,
                "chosen": chosen,
                "rejected": rejected,
                "weight": 1.0,
                "soft_label": 1.0,
                "entropy": 0.0,
                "n_votes": 0,
                "pair_id": pid,
                "source": "",
            }
        )
    return rows


def train_student(rows: list[dict], model: str, out: str | Path, **options) -> Path:
    """Train a reward-model student (`w2s.training.RewardConfig` options) on export rows; returns its run
    directory (a rerun resumes or leaves a finished run as it is)."""
    from w2s.training.config import RewardConfig
    from w2s.training.trainer import train

    return train(RewardConfig(model=model, out=str(out), **options), rows=rows)
