"""bench/trees_dev.py: builds a seeded sample's trees and summarises them; `--no-build` summarises what the
database already holds without loading a model."""

import json
import runpy
import sys
from pathlib import Path

from seam_scripted import SCRIPTS, Script
from test_seam_domains import pair_file

BENCH = Path(__file__).resolve().parents[2] / "bench" / "trees_dev.py"
SPEC = "Meets the specification and its examples"


def run(argv, monkeypatch, capsys) -> str:
    monkeypatch.setattr(sys, "argv", [str(BENCH), *argv])
    runpy.run_path(str(BENCH), run_name="__main__")
    return capsys.readouterr().out


def summary(path: Path) -> dict:
    return json.loads(path.read_text())["results"]["code-demo/dev"]


def test_trees_dev_builds_then_summarises_without_a_model(tmp_path, monkeypatch, capsys):
    # S favours A in both orders: every tree exits on its first node, right on the pairs whose gold is A
    # (every other pair of the file)
    SCRIPTS["dev-strong"] = Script(relevance={SPEC: 0.9}, verdict={SPEC: (0.9, 0.1)})
    pairs = pair_file(tmp_path / "code-demo" / "dev.jsonl", 6, 0)
    db, built, again = tmp_path / "dev.db", tmp_path / "built.json", tmp_path / "again.json"
    common = [
        "--pairs",
        str(pairs),
        "--n",
        "6",
        "--db",
        str(db),
        "--set",
        "max_backtraces=2",
        "--set",
        "max_depth=3",
    ]
    out = run([*common, "--strong", "scripted:dev-strong", "--json", str(built)], monkeypatch, capsys)
    assert "trees 6 (built 6)" in out
    first = summary(built)
    assert first["exit_coverage"] == 1.0 and first["exit_accuracy"] == 0.5
    assert first["first_node_right"] == 0.5 and first["nodes_per_tree"] == 1.0

    del SCRIPTS["dev-strong"]  # S is gone: the summary must come from the stored trees alone
    out = run(
        [*common, "--strong", "scripted:dev-strong", "--no-build", "--json", str(again)], monkeypatch, capsys
    )
    assert "trees 6 (built 0)" in out and "by step" not in out
    assert {k: v for k, v in summary(again).items() if k != "built"} == {
        k: v for k, v in first.items() if k != "built"
    }

    # another config has no trees here, and none are built for it
    out = run(
        [*common, "--strong", "scripted:dev-strong", "--no-build", "--set", "tau_exit=0.9"],
        monkeypatch,
        capsys,
    )
    assert "trees 0 (built 0)" in out
