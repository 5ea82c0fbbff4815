"""Masters saved in the store by name: `w2s master import|list|show|export`, and `--master NAME` in
`w2s labels build` and `w2s annotate` (an unknown name is a clear error naming the saved ones)."""

from __future__ import annotations

import json
from pathlib import Path

from sqlmodel import select
from typer.testing import CliRunner

from w2s.cli import app
from w2s.masters import Master
from w2s.store import Annotation, LabelSet, Pair, session_scope

RUN = Path(__file__).parent / "fixtures" / "master_runs" / "features-auto"
runner = CliRunner()


def words(result) -> str:
    return " ".join(result.output.split())


def test_import_list_show_export(db_url, tmp_path):
    run_id = Master.load(RUN).run_id
    assert "no master is saved" in words(runner.invoke(app, ["master", "list"]))
    imported = runner.invoke(app, ["master", "import", str(RUN), "--name", "js"])
    assert (
        imported.exit_code == 0 and f"master {run_id}" in words(imported) and "saved as js" in words(imported)
    )
    default = runner.invoke(app, ["master", "import", str(RUN)])
    assert default.exit_code == 0 and f"saved as features-{run_id}" in words(default)
    listed = words(runner.invoke(app, ["master", "list"]))
    assert "js" in listed and f"features-{run_id}" in listed and run_id in listed
    for ref in ("js", str(RUN)):
        shown = runner.invoke(app, ["master", "show", ref])
        assert shown.exit_code == 0 and f"trust table of features master {run_id}" in words(shown)
    out = tmp_path / "exported"
    exported = runner.invoke(app, ["master", "export", "js", str(out)])
    assert exported.exit_code == 0, exported.output
    for name in ("config.json", "master.json"):
        assert json.loads((out / name).read_text()) == json.loads((RUN / name).read_text())
    again = runner.invoke(app, ["master", "export", "js", str(out)])
    assert again.exit_code == 1 and "not empty" in words(again)
    taken = runner.invoke(app, ["master", "import", str(RUN.parent / "rm"), "--name", "js"])
    assert taken.exit_code == 1 and "already saved" in words(taken)
    unknown = runner.invoke(app, ["master", "show", "nope"])
    assert unknown.exit_code == 1 and "no master named 'nope'" in words(unknown) and "js" in words(unknown)


def test_labels_build_and_annotate_take_a_master_by_name(db_url):
    run_id = Master.load(RUN).run_id
    assert runner.invoke(app, ["master", "import", str(RUN), "--name", "js"]).exit_code == 0
    with session_scope(db_url) as s:
        for i in range(3):
            s.add(Pair(id=f"p{i}", dataset="d", prompt=str(i), response_a="a", response_b="b"))
        s.flush()
        for i in range(3):
            s.add(
                Annotation(
                    pair_id=f"p{i}", annotator=f"master:{run_id}", label="a", p_a=0.8, method="seam-aligned"
                )
            )
            s.add(Annotation(pair_id=f"p{i}", annotator="other", label="b", p_a=0.2, method="naive"))
    for ref in ("js", str(RUN)):
        built = runner.invoke(app, ["labels", "build", "--master", ref, "-n", "mine"])
        assert built.exit_code == 0 and "3 pairs written" in words(built), built.output
        with session_scope(db_url) as s:
            assert {r.label for r in s.exec(select(LabelSet).where(LabelSet.name == "mine"))} == {"a"}
    unknown = runner.invoke(app, ["labels", "build", "--master", "nope"])
    assert unknown.exit_code != 0 and "no master named 'nope'" in words(unknown) and "js" in words(unknown)
    annotate = runner.invoke(app, ["annotate", "-a", "aligned", "--master", "nope", "--pairs", "p0"])
    assert annotate.exit_code != 0 and "no master named 'nope'" in words(annotate) and "js" in words(annotate)
