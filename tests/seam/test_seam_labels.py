"""bench/seam_labels.py end to end: scripted strong model, real SmolLM2 as the master's weak model, trees
built for a gold file and a pool file, the master's and its twin's labels exported for the same pairs."""

import json
import runpy
import sys
from pathlib import Path

import pytest
from seam_scripted import SCRIPTS, Script
from test_seam_domains import SPEC, pair_file

BENCH = Path(__file__).resolve().parents[2] / "bench" / "seam_labels.py"


def run(argv, monkeypatch, capsys):
    monkeypatch.setattr(sys, "argv", [str(BENCH), *argv])
    runpy.run_path(str(BENCH), run_name="__main__")
    return capsys.readouterr().out


@pytest.mark.slow
def test_seam_labels_exports_both_masters_labels_for_the_same_pairs(tmp_path, monkeypatch, capsys):
    SCRIPTS["lab-strong"] = Script(relevance={SPEC: 0.9}, verdict={SPEC: (0.9, 0.2)})
    gt = pair_file(tmp_path / "code-demo" / "train_gt.jsonl", 12, 0)
    pool = pair_file(tmp_path / "code-demo" / "train_w2s.jsonl", 6, 100)
    out = tmp_path / "labels"
    args = [
        "--gt",
        str(gt),
        "--pool",
        str(pool),
        "--strong",
        "scripted:lab-strong",
        "--db",
        str(tmp_path / "b.db"),
        "--out",
        str(out),
        "--pool-n",
        "5",
    ]
    printed = run(args, monkeypatch, capsys)
    summary = json.loads((out / "summary.json").read_text())
    assert (
        summary["gt_pairs"] == 12
        and summary["pool_pairs"] == 5
        and summary["tree_config"]["library"] == "correctness"
    )
    assert (out / "masters" / summary["master"] / "master.json").is_file()
    rows = {
        name: [json.loads(line) for line in (out / f"{name}.jsonl").read_text().splitlines()]
        for name in ("seam-aligned", "aligned")
    }
    assert sorted(r["pair_id"] for r in rows["seam-aligned"]) == sorted(r["pair_id"] for r in rows["aligned"])
    assert len(rows["aligned"]) == 5
    gold = set()  # the gold-better responses of the pool file
    for line in pool.read_text().splitlines():
        r = json.loads(line)
        gold.add(r["response_" + r["label"]])
    for name, rs in rows.items():  # the export's chosen is the label's side, P(chosen) ≥ ½
        assert all(0.5 <= r["soft_label"] <= 1 and r["weight"] == 1.0 for r in rs)
        assert summary["label_accuracy"][name] == sum(r["chosen"] in gold for r in rs) / 5
    assert f"--seam-labels {out / 'seam-aligned.jsonl'} --aligned-labels {out / 'aligned.jsonl'}" in printed

    # a rerun labels nothing again and exports the same rows
    printed = run(args, monkeypatch, capsys)
    assert "seam-aligned: 0 labels added" in printed and "aligned: 0 labels added" in printed
    assert [json.loads(line) for line in (out / "aligned.jsonl").read_text().splitlines()] == rows["aligned"]


def test_seam_labels_refuses_a_pool_that_shares_the_gold_pairs(tmp_path, monkeypatch, capsys):
    gt = pair_file(tmp_path / "code-demo" / "train_gt.jsonl", 4, 0)
    with pytest.raises(SystemExit, match="share pairs"):
        run(
            [
                "--gt",
                str(gt),
                "--pool",
                str(gt),
                "--strong",
                "scripted:lab-strong",
                "--db",
                str(tmp_path / "b.db"),
                "--out",
                str(tmp_path / "o"),
                "--no-build",
            ],
            monkeypatch,
            capsys,
        )
