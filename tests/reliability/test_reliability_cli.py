"""Every command of `w2s labels` and `w2s export`, run through the real CLI app."""

import json

import pandas as pd
import pytest
from datasets import load_from_disk
from sqlmodel import select
from typer.testing import CliRunner

from w2s.cli import app
from w2s.store import LabelSet, session_scope


@pytest.fixture
def cli():
    runner = CliRunner()

    def invoke(*args):
        return runner.invoke(app, [str(a) for a in args])

    return invoke


def label_rows(url, name):
    with session_scope(url) as s:
        return s.exec(select(LabelSet).where(LabelSet.name == name)).all()


def test_labels_build_every_method(cli, crowd):
    for method in ("majority", "soft", "dawid-skene"):
        r = cli("labels", "build", "--method", method, "--name", method)
        assert r.exit_code == 0, r.output
        assert f"label set '{method}' ({method}): 40 pairs written" in r.stdout
        assert len(label_rows(crowd.url, method)) == 40
    r = cli("labels", "build", "--method", "majority", "--name", "majority", "--weights", "none")
    assert r.exit_code == 0 and all(x.weight == 1.0 for x in label_rows(crowd.url, "majority"))
    r = cli("labels", "list")
    assert r.exit_code == 0 and "dawid-skene" in r.stdout and "40" in r.stdout


def test_labels_build_filter_and_selection(cli, crowd):
    r = cli("labels", "build", "--filter-entropy", 50, "--weights", "softmax:0.5")
    assert r.exit_code == 0, r.output
    assert "filtered out above entropy" in r.stdout
    assert 20 <= len(label_rows(crowd.url, "default")) < 40
    r = cli("labels", "build", "--name", "humans", "--annotators", "alice")
    assert r.exit_code == 0 and all(x.n_votes == 1 for x in label_rows(crowd.url, "humans"))
    r = cli("labels", "build", "--name", "seam", "--methods", "seam", "--no-variants")
    assert r.exit_code == 0 and all(x.n_votes == 1 for x in label_rows(crowd.url, "seam"))
    r = cli("labels", "build", "--name", "nobody", "--annotators", "nobody")
    assert r.exit_code == 0 and "empty" in r.output


def test_labels_build_rejects_bad_options(cli, crowd):
    r = cli("labels", "build", "--weights", "softmax:-1")
    assert r.exit_code == 2 and "temperature" in r.output
    r = cli("labels", "build", "--method", "median")
    assert r.exit_code == 2
    r = cli("labels", "build", "--filter-entropy", 120)
    assert r.exit_code == 2


def test_labels_report_writes_plots_and_tables(cli, crowd, tmp_path):
    assert cli("labels", "build", "--method", "dawid-skene").exit_code == 0
    r = cli("labels", "report", "--out", tmp_path / "rep")
    assert r.exit_code == 0, r.output
    assert "accuracy" in r.stdout
    for name in ("entropy_accuracy.png", "heatmap.png", "entropy_accuracy.csv", "heatmap.csv", "report.md"):
        assert (tmp_path / "rep" / name).stat().st_size > 0
    assert (tmp_path / "rep" / "heatmap.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    heat = pd.read_csv(tmp_path / "rep" / "heatmap.csv")
    assert heat[["a", "b", "tie"]].to_numpy().sum() == 40
    r = cli("labels", "report", "--out", tmp_path / "none", "--name", "missing")
    assert r.exit_code == 1 and "no pair with a gold label" in r.output


@pytest.mark.parametrize("fmt", ["jsonl", "parquet", "hf"])
def test_export_formats(cli, crowd, tmp_path, fmt):
    assert cli("labels", "build").exit_code == 0
    out = tmp_path / f"x.{fmt}"
    r = cli("export", "--format", fmt, "--out", out, "--min-weight", 0.9)
    assert r.exit_code == 0, r.output
    if fmt == "jsonl":
        rows = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    elif fmt == "parquet":
        rows = pd.read_parquet(out).to_dict("records")
    else:
        rows = list(load_from_disk(str(out)))
    assert rows and all(x["weight"] >= 0.9 for x in rows)
    assert f"wrote {len(rows)} rows of label set 'default'" in r.stdout
    assert "ünïcode ✓" in rows[0]["prompt"]
    r = cli("export", "--format", fmt, "--out", tmp_path / f"v.{fmt}", "--include-variants")
    assert r.exit_code == 0, r.output


def test_export_raw_and_errors(cli, crowd, tmp_path):
    r = cli("export", "--raw", "--out", tmp_path / "raw.jsonl")
    assert r.exit_code == 0, r.output
    lines = (tmp_path / "raw.jsonl").read_text(encoding="utf-8").splitlines()
    assert len(lines) == crowd.n_annotations
    assert {"consulted_nodes", "pruned_nodes", "annotator", "variant"} <= set(json.loads(lines[0]))
    r = cli("export", "--raw", "--format", "parquet", "--out", tmp_path / "raw.parquet")
    assert r.exit_code == 0 and len(pd.read_parquet(tmp_path / "raw.parquet")) == crowd.n_annotations
    r = cli("export", "--raw", "--format", "hf", "--out", tmp_path / "raw.hf")
    assert r.exit_code == 2
    r = cli("export", "--out", tmp_path / "x.jsonl", "--label-set", "nope")
    assert r.exit_code == 1 and "no label set named 'nope'" in r.output
    assert not (tmp_path / "x.jsonl").exists()


def test_export_hf_never_deletes_files_it_did_not_write(cli, crowd, tmp_path):
    assert cli("labels", "build").exit_code == 0
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "notes.txt").write_text("my work", encoding="utf-8")
    r = cli("export", "--format", "hf", "--out", mine)
    assert r.exit_code == 1 and "not a previous w2s export" in " ".join(r.output.split())
    assert sorted(p.name for p in mine.iterdir()) == ["notes.txt"]  # untouched, nothing added

    empty, again = tmp_path / "empty", tmp_path / "again"
    empty.mkdir()
    assert cli("export", "--format", "hf", "--out", empty).exit_code == 0  # an empty folder is fine
    assert cli("export", "--format", "hf", "--out", again).exit_code == 0
    r = cli("export", "--format", "hf", "--out", again, "--min-weight", 0.9)  # our own export is replaced
    assert r.exit_code == 0, r.output
    assert len(load_from_disk(str(again))) < len(load_from_disk(str(empty)))
    (again / "README.md").write_text("added by hand", encoding="utf-8")
    r = cli("export", "--format", "hf", "--out", again)
    assert r.exit_code == 1 and (again / "README.md").read_text(encoding="utf-8") == "added by hand"
    r = cli("export", "--format", "jsonl", "--out", again)
    assert r.exit_code == 1 and "is a folder" in " ".join(r.output.split())  # rich wraps long lines
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temporary left behind
