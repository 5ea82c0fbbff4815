"""Run ids and run directories: a master's id names what made it, and a run directory (config.json,
master.json) is the export/import format of a trained master (the store keeps them by name:
w2s.masters.saved).

Every run directory written since masters existed loads and predicts as it did, and a master trained
again on the same data and config gets the same run id (its labels are stored under master:RUN_ID, so
an id that changed would orphan them): tests/seam/test_master_runs.py checks both on run directories
of the old code (tests/seam/fixtures/master_runs/).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path

from w2s.masters.config import PRINCIPLE_WEIGHTS, MasterConfig
from w2s.reasoning import COT_METHODS
from w2s.store import Pair, Tree

CONFIG_FILE, MASTER_FILE = "config.json", "master.json"


def data_hash(pairs: Sequence[Pair], trees: Sequence[Tree], reasoning: Sequence[str] | None = None) -> str:
    """12 hex digits over the training pairs (ids, gold) and their trees' ids by content, or the
    reasoning texts a cot-* master read."""
    if reasoning is None:
        rows = [[p.id, p.gold, t.strong_model, t.config_hash] for p, t in zip(pairs, trees, strict=True)]
    else:
        rows = [[p.id, p.gold, r] for p, r in zip(pairs, reasoning, strict=True)]
    return hashlib.sha256(json.dumps(rows).encode()).hexdigest()[:12]


def run_id(cfg: MasterConfig, data: str) -> str:
    """12 hex digits over the config and the data hash. The two special cases keep old runs' ids."""
    config = asdict(cfg)
    if cfg.kind not in COT_METHODS:
        del config["reasoning_max_tokens"]  # a tree master's id is what it was before cot-* masters
    if cfg.kind == "features" and cfg.principle_weights == "auto":
        # what `auto` chooses from: a run from before `none` was a candidate must not pass for one after
        config["auto_candidates"] = list(PRINCIPLE_WEIGHTS)
    return hashlib.sha256(json.dumps({"config": config, "data": data}, sort_keys=True).encode()).hexdigest()[
        :12
    ]


def is_run_dir(path: str | Path) -> bool:
    return (Path(path) / MASTER_FILE).is_file()


def write_run(out: Path, config: dict, state: dict) -> None:
    """config.json (the MasterConfig) and master.json (everything else of the Master)."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    (out / CONFIG_FILE).write_text(json.dumps(config, indent=2))
    (out / MASTER_FILE).write_text(json.dumps(state, indent=2))


def read_run(run_dir: str | Path) -> tuple[MasterConfig, dict]:
    """(config, state) of a run directory, the config completed as older runs meant it."""
    run_dir = Path(run_dir)
    if not is_run_dir(run_dir):
        raise FileNotFoundError(
            f"{run_dir} is not a master run directory (no {MASTER_FILE}): train one with `w2s master train`"
        )
    return config_of(json.loads((run_dir / CONFIG_FILE).read_text())), json.loads(
        (run_dir / MASTER_FILE).read_text()
    )


def config_of(stored: dict) -> MasterConfig:
    """A stored config as a MasterConfig. Runs from before weights could be shared across principles
    name no `principle_weights`: they had one set per principle."""
    return MasterConfig(**{"principle_weights": "per-principle", **stored})
