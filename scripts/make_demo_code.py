#!/usr/bin/env python3
"""Writes data/demo-code/{train,test}.jsonl from data/demo-code/tasks.yaml.

    python3 scripts/make_demo_code.py            # (re)write the two files
    python3 scripts/make_demo_code.py --check    # exit 1, naming the file, if a committed file differs

Every task gives two pairs, one per language, and both land in the same split: the tasks are shuffled with
random.Random(SPLIT_SEED) and the first half goes to train, the rest to test, so a model trained on train
never sees the sibling of a test pair. Within a file, pairs follow the order of tasks.yaml (Python, then
JavaScript). The correct response is shown as A or B by one seeded coin, random.Random(POSITION_SEED),
tossed once per pair over all pairs in tasks.yaml order; `label` names the side of the correct response and
`meta.position_seed` records the seed. The output is deterministic: two runs give byte-identical files.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "data" / "demo-code"
TASKS = DATA / "tasks.yaml"
LANGUAGES = ("python", "javascript")
BUG_TYPES = (
    "operator",
    "constant",
    "off-by-one",
    "missing condition",
    "extra condition",
    "wrong variable",
    "wrong call",
)
SPLIT_SEED = 0
POSITION_SEED = 0


def load_tasks(path: Path = TASKS) -> list[dict]:
    tasks = yaml.safe_load(path.read_text(encoding="utf-8"))
    names = [t["name"] for t in tasks]
    if len(set(names)) != len(names):
        raise SystemExit(f"{path}: task names repeat")
    for t in tasks:
        for lang in LANGUAGES:
            entry = t[lang]
            if entry["bug_type"] not in BUG_TYPES:
                raise SystemExit(f"{path}: {t['name']}/{lang}: unknown bug_type {entry['bug_type']!r}")
            if entry["correct"] == entry["buggy"]:
                raise SystemExit(f"{path}: {t['name']}/{lang}: buggy is the same as correct")
    return tasks


def split_names(tasks: list[dict]) -> dict[str, str]:
    """Task name -> 'train' or 'test': a seeded shuffle of the tasks, first half train."""
    names = [t["name"] for t in tasks]
    shuffled = list(names)
    random.Random(SPLIT_SEED).shuffle(shuffled)
    train = set(shuffled[: len(shuffled) // 2])
    return {n: ("train" if n in train else "test") for n in names}


def build(tasks: list[dict]) -> dict[str, list[dict]]:
    split = split_names(tasks)
    coin = random.Random(POSITION_SEED)
    out: dict[str, list[dict]] = {"train": [], "test": []}
    for t in tasks:
        for lang in LANGUAGES:
            e = t[lang]
            correct_at_a = coin.random() < 0.5
            a, b = (e["correct"], e["buggy"]) if correct_at_a else (e["buggy"], e["correct"])
            out[split[t["name"]]].append(
                {
                    "id": f"{lang}/{t['name']}",
                    "prompt": e["statement"],
                    "response_a": a,
                    "response_b": b,
                    "label": "a" if correct_at_a else "b",
                    "meta": {
                        "language": lang,
                        "bug_type": e["bug_type"],
                        "entry_point": e["entry_point"],
                        "examples": e["examples"],
                        "position_seed": POSITION_SEED,
                    },
                }
            )
    return out


def render(records: list[dict]) -> str:
    return "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--check", action="store_true", help="compare with the committed files, write nothing")
    args = ap.parse_args(argv)
    files = {f"{name}.jsonl": render(records) for name, records in build(load_tasks()).items()}
    stale = []
    for fname, text in files.items():
        path = DATA / fname
        if args.check:
            if not path.exists() or path.read_bytes() != text.encode("utf-8"):
                stale.append(path.relative_to(ROOT))
        else:
            path.write_bytes(text.encode("utf-8"))
            print(f"wrote {path.relative_to(ROOT)} ({text.count(chr(10))} pairs)")
    if stale:
        for p in stale:
            print(
                f"{p} is out of date with {TASKS.relative_to(ROOT)}: run python3 scripts/make_demo_code.py",
                file=sys.stderr,
            )
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
