"""The README's two commands: `w2s master train`, then `w2s annotate -a seam-aligned|aligned --master NAME|DIR`
(and seam-gate, the tree where it exits and the twin elsewhere)."""

import pytest
from sqlmodel import select
from typer.testing import CliRunner

from w2s.cli import app
from w2s.store import Annotation, Pair, session_scope
from w2s.trees import TreeConfig, build_trees

SPEC = "Meets the specification and its examples"
runner = CliRunner()


def add_code_pairs(url, split, n, offset=0):
    ids = []
    with session_scope(url) as s:
        for i in range(offset, offset + n):
            good, bad = f"return x + {i}", f"return x - {i}"
            a, b, gold = ("[A] " + good, "[B] " + bad, "a") if i % 2 else ("[A] " + bad, "[B] " + good, "b")
            s.add(
                Pair(
                    id=f"{split}{i}",
                    dataset="code-demo",
                    split=split,
                    prompt=f"Add {i}.",
                    response_a=a,
                    response_b=b,
                    gold=gold,
                )
            )
            ids.append(f"{split}{i}")
    return ids


@pytest.mark.slow
def test_train_a_master_then_label_with_it(scripted, db_url, tmp_path):
    ids = add_code_pairs(db_url, "train", 12) + add_code_pairs(db_url, "test", 4, offset=50)
    strong = scripted(relevance={SPEC: 0.9}, verdict={SPEC: (0.9, 0.1)})
    build_trees(strong, ids, TreeConfig(library="correctness"), url=db_url)
    run = tmp_path / "master"
    bad = runner.invoke(
        app,
        [
            "master",
            "train",
            "--strong",
            strong.spec,
            "--dataset",
            "code-demo",
            "--principle-weights",
            "pooled",
            "--out",
            str(run),
        ],
    )
    assert bad.exit_code == 1 and "unknown principle_weights 'pooled'" in " ".join(bad.output.split())
    assert not (run / "master.json").exists()
    result = runner.invoke(
        app,
        [
            "master",
            "train",
            "--strong",
            strong.spec,
            "--dataset",
            "code-demo",
            "--split",
            "train",
            "--name",
            "demo",
            "--out",
            str(run),
        ],
    )
    assert result.exit_code == 0, result.output
    out = " ".join(result.output.split())
    assert (
        "trust table" in out
        and "No missing logic" in out
        and "margin weight" in out
        and (run / "master.json").is_file()
    )
    assert "saved as demo" in out
    again = runner.invoke(
        app, ["master", "train", "--strong", strong.spec, "--dataset", "code-demo", "--out", str(run)]
    )
    assert again.exit_code == 1 and "not empty" in again.output  # a run directory is never overwritten
    twin = runner.invoke(
        app,
        [
            "master",
            "train",
            "--strong",
            strong.spec,
            "--dataset",
            "code-demo",
            "--split",
            "train",
            "--principle-weights",
            "none",
            "--out",
            str(tmp_path / "twin"),
        ],
    )
    assert twin.exit_code == 0 and "so it is its twin" in " ".join(twin.output.split())

    for method, master in (
        ("seam-aligned", "demo"),
        ("aligned", str(run)),
    ):  # by its name, or its run directory
        result = runner.invoke(
            app, ["annotate", "-a", method, "--master", master, "--dataset", "code-demo", "--split", "test"]
        )
        assert result.exit_code == 0, result.output
        assert "added 4 annotations" in " ".join(result.output.split())
    with session_scope(db_url) as s:
        rows = list(s.exec(select(Annotation)))
    assert {r.method for r in rows} == {"seam-aligned", "aligned"} and len(rows) == 8
    master_id = (run / "master.json").read_text().split('"run_id": "')[1][:12]
    assert {r.annotator for r in rows} == {f"master:{master_id}"}
    assert all(r.tree_id is not None for r in rows if r.method == "seam-aligned")
    wrong = runner.invoke(
        app, ["annotate", "-a", "seam-aligned-rm", "--master", "demo", "--dataset", "code-demo"]
    )
    assert wrong.exit_code != 0 and "kind rm" in " ".join(wrong.output.split())
    # the label set of the master's labels, named as the master is
    by_name = runner.invoke(app, ["labels", "build", "--master", "demo", "-n", "by-name"])
    assert by_name.exit_code == 0 and "4 pairs written" in " ".join(by_name.output.split()), by_name.output
    by_id = runner.invoke(app, ["labels", "build", "-a", f"master:{master_id}", "-n", "by-id"])
    assert by_id.exit_code == 0 and "4 pairs written" in " ".join(by_id.output.split()), by_id.output

    # seam-gate: every tree here exits on P(A) = 0.9, so that verdict is every label (one node consulted)
    gate = ["annotate", "-a", "seam-gate", "--master", "demo", "--dataset", "code-demo", "--split", "test"]
    result = runner.invoke(app, gate)
    assert result.exit_code == 0 and "added 4 annotations" in " ".join(result.output.split()), result.output
    with session_scope(db_url) as s:
        rows = list(s.exec(select(Annotation).where(Annotation.method == "seam-gate")))
    assert len(rows) == 4 and {r.annotator for r in rows} == {f"master:{master_id}"}
    assert all(r.p_a == pytest.approx(0.9) and r.meta["decided_by"] == "tree" for r in rows)
    assert all(r.tree_id is not None and len(r.consulted_node_ids) == 1 for r in rows)


@pytest.mark.slow
def test_a_cot_master_reads_the_reasoning_stored_with_cot_labels(scripted, db_url, tmp_path):
    ids = add_code_pairs(db_url, "train", 12) + add_code_pairs(db_url, "test", 4, offset=50)
    strong, weak = scripted(thought="Reply A is correct."), scripted(decision=(0.6, 0.5))
    run = tmp_path / "cot"
    train = [
        "master",
        "train",
        "--kind",
        "cot-v1",
        "--strong",
        strong.spec,
        "--dataset",
        "code-demo",
        "--split",
        "train",
        "--out",
        str(run),
    ]
    none = runner.invoke(app, train)
    assert none.exit_code == 1 and f"run `w2s annotate -a cot-v1 --strong {strong.spec}`" in " ".join(
        none.output.split()
    )
    cot = [
        "annotate",
        "-a",
        "cot-v1",
        "--weak",
        weak.spec,
        "--strong",
        strong.spec,
        "--dataset",
        "code-demo",
        "--reasoning-max-tokens",
        "3",
    ]
    assert runner.invoke(app, [*cot, "--split", "train"]).exit_code == 0
    result = runner.invoke(app, train)
    assert result.exit_code == 0, result.output
    out = " ".join(result.output.split())
    assert "reads the reasoning as text" in out and "cot-v1 reasoning of 3 tokens" in out
    config = (run / "config.json").read_text()
    assert '"kind": "cot-v1"' in config and '"reasoning_max_tokens": 3' in config

    label = [
        "annotate",
        "-a",
        "cot-aligned",
        "--master",
        str(run),
        "--dataset",
        "code-demo",
        "--split",
        "test",
    ]
    missing = runner.invoke(app, label)  # the test pairs have no reasoning yet
    assert missing.exit_code == 1
    assert f"run `w2s annotate -a cot-v1 --strong {strong.spec} --reasoning-max-tokens 3`" in " ".join(
        missing.output.split()
    )
    assert runner.invoke(app, [*cot, "--split", "test"]).exit_code == 0
    result = runner.invoke(app, label)
    assert result.exit_code == 0 and "added 4 annotations" in " ".join(result.output.split()), result.output
    with session_scope(db_url) as s:
        rows = {r.method: r for r in s.exec(select(Annotation).where(Annotation.pair_id == ids[-1]))}
    assert rows["cot-aligned"].meta["reasoning_from"] == rows["cot-v1"].id  # which reasoning it read
    assert rows["cot-v1"].meta["reasoning"] == "Reply A is"
    wrong = runner.invoke(
        app, ["annotate", "-a", "seam-aligned", "--master", str(run), "--dataset", "code-demo"]
    )
    assert wrong.exit_code != 0 and "kind features" in " ".join(wrong.output.split())
