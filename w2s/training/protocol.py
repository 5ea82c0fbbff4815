"""The standard weak-to-strong protocol (Burns et al. 2023; Yang et al. 2024), top to bottom:

1. the weak supervisor and the strong ceiling train on the ground-truth split (`train_gt`);
2. the weak supervisor labels `train_w2s` (soft label P(chosen), its entropy, a reliability weight);
3. a strong student trains on those labels: naive, with AuxConf, uncertainty-filtered,
   re-weighted, on SEAM labels (when given), bootstrapped through an intermediate model, and
   under explicit conflict (for the deception score);
4. everything is scored on the test split and written to one report.

Every step is a resumable run directory under `out/`; a rerun skips what is finished.
"""

from __future__ import annotations

import dataclasses
import json
import time
from pathlib import Path

import numpy as np

from w2s.labels.reliability import majority_weight
from w2s.training import metrics as M
from w2s.training.config import WEAK_LABEL_STUDENTS, ExperimentConfig, RewardConfig
from w2s.training.data import load_rows, subsample, write_rows
from w2s.training.trainer import peak_rss_mb, train
from w2s.vocab import binary_entropy

SPLITS = ("train_gt", "train_w2s", "test_dev")


def parse_variants(text: str) -> list[str]:
    """Weak-label students, comma-separated: 'all' (the default), or 'none' (e.g. a run of only the
    exported labels' students, which a later run with them resumes). `Experiment.run` refuses an unknown
    name before anything trains."""
    text = text.strip()
    if text in ("all", "none"):
        return list(WEAK_LABEL_STUDENTS) if text == "all" else []
    return [n.strip() for n in text.split(",") if n.strip()]


def label_rows(rows: list[dict], p: np.ndarray, T: float, source: str) -> list[dict]:
    """Export-style rows carrying a model's labels; `gold` keeps the truth for the conflict setting."""
    w = majority_weight(p, T)  # Guo & Yang 2024's softmax weight over {chosen, rejected}
    h = binary_entropy(p)
    return [
        dict(r, soft_label=float(pi), entropy=float(hi), weight=float(wi), n_votes=1, source=source, gold=1.0)
        for r, pi, hi, wi in zip(rows, p, h, w)
    ]


def store_url(c: ExperimentConfig) -> str:
    from w2s.store import db_url

    return db_url(c.db)


def label_exports(c: ExperimentConfig) -> dict[str, list[dict]]:
    """The rows of the students trained on labels, by name: the exported files (--seam-labels,
    --aligned-labels) and the store's label sets (`label_sets`). Label sets compared side by side must
    cover the same pairs, or their students' gap would mix the labels with the data."""
    from w2s.pipeline import label_rows
    from w2s.training.data import normalise_rows

    files = {k: v for k, v in (("seam", c.seam_labels), ("aligned", c.aligned_labels)) if v}
    exports = {k: load_rows(v) for k, v in files.items()}
    for name, label_set in c.label_sets.items():
        if name in exports:
            raise ValueError(f"two label sources are named {name!r}")
        rows = label_rows(store_url(c), label_set)
        if not rows:
            raise ValueError(
                f"label set {label_set!r} has no rows in {store_url(c)}: build it with `w2s labels build`"
            )
        exports[name] = normalise_rows(rows, f"label set {label_set}")
        files[name] = f"label set {label_set}"
    if c.gap_baseline in exports:
        base = sorted(r["pair_id"] for r in exports[c.gap_baseline])
        for name, rows in exports.items():
            ids = sorted(r["pair_id"] for r in rows)
            if ids != base:
                only = sorted(set(ids) ^ set(base))
                raise ValueError(
                    f"{files[name]} and {files[c.gap_baseline]} label different pairs "
                    f"({len(only)} in one only, e.g. {only[:3]}): export both for the same pairs"
                )
    return exports


def split_rows(c: ExperimentConfig) -> dict[str, list[dict]]:
    """The gold rows of each split: with `dataset`, its pairs in the store (in import order); else the
    data folder's files as they are (an HH transcript keeps its `Human:`/`Assistant:` framing in the
    prompt, which the store's pairs do not, so results of a data folder stay what they were)."""
    if not c.dataset:
        return {s: load_rows(Path(c.data) / f"{s}.jsonl") for s in SPLITS}
    from w2s.pipeline import gold_rows

    url = store_url(c)
    rows = {s: gold_rows(url, c.dataset, s) for s in SPLITS}
    if empty := [s for s, r in rows.items() if not r]:
        raise ValueError(f"dataset {c.dataset!r} has no gold pairs in split {empty[0]!r} of {url}")
    return rows


class Experiment:
    def __init__(self, cfg: ExperimentConfig):
        self.cfg = cfg
        self.out = Path(cfg.out)
        self.out.mkdir(parents=True, exist_ok=True)
        (self.out / "experiment.json").write_text(json.dumps(dataclasses.asdict(cfg), indent=2))
        self.timings: dict[str, dict] = {}

    def splits(self) -> dict[str, list[dict]]:
        c = self.cfg
        sizes = {"train_gt": c.n_train_gt, "train_w2s": c.n_train_w2s, "test_dev": c.n_test}
        return {s: subsample(rows, sizes[s], c.seed) for s, rows in split_rows(c).items()}

    def rm_config(self, name: str, model: str, strong: bool, **kw) -> RewardConfig:
        c = self.cfg
        return RewardConfig(
            model=model,
            out=str(self.out / name),
            lora=c.strong_lora if strong else c.weak_lora,
            pooling=c.strong_pooling if strong else c.weak_pooling,
            learning_rate=c.strong_lr if strong else c.weak_lr,
            head_lr=c.head_lr if strong or c.weak_head_lr is None else c.weak_head_lr,
            epochs=c.epochs if strong or c.weak_epochs is None else c.weak_epochs,
            batch_size=c.batch_size,
            max_length=c.max_length,
            seed=c.seed,
            torch_threads=c.torch_threads,
            cache_frozen_prefix=c.cache_frozen_prefix and strong,
            freeze_backbone=c.weak_frozen and not strong,
            progress=c.progress,
            save_steps=25,
            logging_steps=5,
            **kw,
        )

    def fit(self, name: str, rows: list[dict], model: str, strong: bool, **kw) -> Path:
        run = train(self.rm_config(name, model, strong, **kw), rows=rows)
        self.timings[name] = json.loads((run / "summary.json").read_text())
        return run

    def scores(self, run: Path, rows: list[dict], tag: str) -> np.ndarray:
        """P(chosen) of a run on rows, cached in the run directory."""
        from w2s.training.evaluate import load_run, predict

        cache = run / f"p_{tag}_{len(rows)}.npy"
        timing = cache.with_suffix(".json")  # kept so that a resumed experiment still reports it
        key = f"score_{tag}_pairs_per_s"
        if cache.exists():
            if timing.exists():
                self.timings.setdefault(run.name, {})[key] = json.loads(timing.read_text())[key]
            return np.load(cache)
        config, tok, model = load_run(run)
        t = time.time()
        p = predict(config, tok, model, rows, batch_size=8, progress=self.cfg.progress)
        self.timings.setdefault(run.name, {})[key] = len(rows) / max(time.time() - t, 1e-9)
        np.save(cache, p)
        timing.write_text(json.dumps({key: self.timings[run.name][key]}))
        return p

    def label_gaps(self, p_test: dict[str, np.ndarray], exports: dict) -> dict[str, dict]:
        c = self.cfg
        base = c.gap_baseline if c.gap_baseline in p_test else f"w2s_{c.gap_baseline}"
        if base not in p_test:
            return {}
        return {
            f"{name} - {c.gap_baseline}": M.accuracy_gap_ci(p_test[base], p_test[f"w2s_{name}"], seed=c.seed)
            for name in exports
            if name != c.gap_baseline
        }

    def run(self) -> dict:
        c = self.cfg
        exports = label_exports(c)  # read and checked before anything trains
        if unknown := [n for n in c.variants if n not in WEAK_LABEL_STUDENTS]:
            raise ValueError(
                f"unknown variant {unknown[0]!r}; choose from {', '.join(WEAK_LABEL_STUDENTS)}, "
                "'all' or 'none'"
            )
        data = self.splits()
        gt, pool, test = data["train_gt"], data["train_w2s"], data["test_dev"]

        weak = self.fit("weak", subsample(gt, c.n_weak_gt, c.seed), c.weak, strong=False)
        ceiling = self.fit("ceiling", gt, c.strong, strong=True)
        p_test = {"weak": self.scores(weak, test, "test"), "ceiling": self.scores(ceiling, test, "test")}

        p_pool = self.scores(weak, pool, "w2s_pool")
        weak_labels = label_rows(pool, p_pool, c.reweight_T, f"weak:{c.weak}")
        write_rows(weak_labels, self.out / "weak_labels.jsonl")

        train_rows = {}
        for name in c.variants:
            run = self.fit(f"w2s_{name}", weak_labels, c.strong, strong=True, **WEAK_LABEL_STUDENTS[name](c))
            train_rows[name] = self.timings[f"w2s_{name}"]["rows"]
            p_test[f"w2s_{name}"] = self.scores(run, test, "test")
        for name, rows in exports.items():
            run = self.fit(f"w2s_{name}", rows, c.strong, strong=True, use_weights=False)
            train_rows[name] = self.timings[f"w2s_{name}"]["rows"]
            p_test[f"w2s_{name}"] = self.scores(run, test, "test")
        if c.intermediate:  # weak labels half the pool → intermediate; it labels the other half → student
            half = len(pool) // 2
            mid = self.fit("intermediate", weak_labels[:half], c.intermediate, strong=True, use_weights=False)
            mid_labels = label_rows(
                pool[half:],
                self.scores(mid, pool[half:], "w2s_pool2"),
                c.reweight_T,
                f"intermediate:{c.intermediate}",
            )
            run = self.fit("w2s_bootstrap", mid_labels, c.strong, strong=True, use_weights=False)
            p_test["intermediate"] = self.scores(mid, test, "test")
            p_test["w2s_bootstrap"] = self.scores(run, test, "test")
        deception = None
        if c.conflict:
            run = self.fit(
                "w2s_conflict",
                weak_labels,
                c.strong,
                strong=True,
                use_weights=False,
                conflict_alpha=c.conflict_alpha,
            )
            p_test["w2s_conflict"] = self.scores(run, test, "test")
            if "w2s_naive" in p_test:
                deception = M.deception_score(
                    p_test["ceiling"],
                    p_test["weak"],
                    p_test["w2s_naive"],
                    p_test["w2s_conflict"],
                    c.deception_T,
                )

        acc = {k: M.accuracy(v) for k, v in p_test.items()}
        results = {
            "sizes": {**{s: len(v) for s, v in data.items()}, "weak_train_gt": self.timings["weak"]["rows"]},
            "weak_label_accuracy": M.accuracy(p_pool),
            "accuracy": acc,
            "pgr": {k: M.pgr(acc["weak"], v, acc["ceiling"]) for k, v in acc.items() if k.startswith("w2s_")},
            # paired bootstrap over the test pairs: is the ceiling clearly above the weak model, and how
            # sure is each PGR
            "ceiling_minus_weak": M.accuracy_gap_ci(p_test["weak"], p_test["ceiling"], seed=c.seed),
            "pgr_ci": {
                k: M.pgr_ci(p_test["weak"], v, p_test["ceiling"], seed=c.seed)
                for k, v in p_test.items()
                if k.startswith("w2s_")
            },
            # every label-set student against the baseline, paired over the test pairs
            "label_gaps": self.label_gaps(p_test, exports),
            "ece": {k: M.expected_calibration_error(v) for k, v in p_test.items()},
            "train_rows": train_rows,
            "timings": self.timings,
            "deception": deception,
            # this process, or on a resumed experiment the largest peak its training runs recorded
            "peak_rss_mb": max([peak_rss_mb()] + [t.get("peak_rss_mb", 0.0) for t in self.timings.values()]),
        }
        (self.out / "results.json").write_text(json.dumps(results, indent=2))
        from w2s.training.report import write_report

        write_report(self.out, results, p_test, p_pool, c)
        return results


def run_experiment(cfg: ExperimentConfig) -> dict:
    return Experiment(cfg).run()
