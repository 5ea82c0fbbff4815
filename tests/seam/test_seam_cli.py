"""The commands: `w2s trees build/show`, `w2s annotate`, `w2s eval annotations`, and resuming
`w2s annotate` after kill -9."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from seam_scripted import SCRIPTS, Script, add_pairs
from sqlmodel import func, select
from typer.testing import CliRunner

from w2s.cli import app
from w2s.store import Annotation, session_scope

runner = CliRunner()


def add_pairs_of(url, dataset, n):
    from w2s.store import Pair

    with session_scope(url) as s:
        for i in range(n):
            s.add(
                Pair(
                    id=f"{dataset}{i}",
                    dataset=dataset,
                    split="test",
                    prompt=f"Thing {i}?",
                    gold="a",
                    response_a=f"[A] I can't help with that ({i}).",
                    response_b=f"[B] Sure ({i}).",
                )
            )


HERE = Path(__file__).parent
CRIME, PRIVACY = "No help with crime", "Respect privacy"


@pytest.fixture
def script():
    SCRIPTS["cli"] = Script(
        relevance={CRIME: 0.9, PRIVACY: 0.8},
        verdict={CRIME: (0.7, 0.5), PRIVACY: (0.9, 0.2)},
        judge=(0.9, 0.7),
        decision=(0.9, 0.4),
    )
    yield "scripted:cli"
    SCRIPTS.pop("cli")


def invoke(*args):
    result = runner.invoke(app, [str(a) for a in args])
    assert result.exit_code == 0, result.output + repr(result.exception)
    return result.output


def test_build_show_annotate_eval(db_url, script, tmp_path):
    ids = add_pairs(db_url, 4)
    out = invoke(
        "trees", "build", "--strong", script, "--principles", "harmlessness", "--dataset", "hh-harmless"
    )
    assert "built 4 trees" in out
    assert "built 0 trees (4 already stored)" in invoke(
        "trees", "build", "--strong", script, "--principles", "harmlessness"
    )
    shown = invoke("trees", "show", ids[0])
    assert "No help with crime" in shown and "exit" in shown and "Reply A refuses" in shown
    for method in ("naive", "seam", "strong"):
        invoke("annotate", "--annotator", method, "--weak", script, "--strong", script, "--batch-size", 3)
    report_file = tmp_path / "eval.json"
    out = invoke("eval", "annotations", "--out", report_file)
    assert "seam" in out and "naive" in out
    report = json.loads(report_file.read_text())
    by = {m["method"]: m for m in report["methods"]}
    assert by["naive"]["accuracy"] == 1.0 and by["naive"]["n"] == 4  # (0.9 + 0.3)/2 = 0.6 for A, gold A
    assert by["seam"]["vs_naive"] == {"compared": 4, "risky": 0, "good": 0, "net": 0}
    assert report["trees"][0]["trees"] == 4 and report["trees"][0]["mean_depth"] == 2
    # the exit node (privacy) says A with (0.9 + 0.8) / 2 = 0.85; gold is A on every pair
    assert report["trees"][0]["exit_accuracy"] == 1.0 and report["trees"][0]["exit_coverage"] == 1.0
    assert report["trees"][0]["answer_accuracy"] == 1.0 and report["trees"][0]["answer_coverage"] == 1.0

    from w2s.labels.quality import evaluate_annotations

    with session_scope(db_url) as s:
        subset = evaluate_annotations(s, pair_ids=set(ids[:2]))
    assert subset["pairs_with_gold"] == 2 and {m["n"] for m in subset["methods"]} == {2}
    assert subset["trees"][0]["trees"] == 2


def test_build_extend_from_goes_on_from_a_smaller_budget(db_url, script):
    from w2s.trees import TreeConfig, latest_tree

    ids = add_pairs(db_url, 3)
    base = ("trees", "build", "--strong", script, "--principles", "harmlessness")
    invoke(*base, "--depth", 1)  # stops after the first node (crime, v = 0.6)
    small = TreeConfig(library="harmlessness", max_depth=1).hash()
    big = TreeConfig(library="harmlessness").hash()
    assert f"built 3 trees (0 already stored), library harmlessness, config {big}" in invoke(
        *base, "--extend-from", small
    )
    with session_scope(db_url) as s:
        tree, nodes = latest_tree(s, ids[0], config_hash=big)
    assert [n.principle_name for n in nodes] == [CRIME, PRIVACY] and tree.config["extended_from"][
        "config_hash"
    ] == small
    refused = runner.invoke(app, [*base, "--thought-tokens", "16", "--extend-from", small])
    assert (
        refused.exit_code == 2 and "thought_max_tokens" in refused.output
    )  # the nodes would say other things


def test_another_producer_config_is_stored_evaluated_and_aggregated_apart(db_url, script, tmp_path):
    """The issue's reproduction: a seam rerun with --no-weak-prune (or another --top-k, or trees of another
    config) used to store nothing ("added 0 (4 already stored)") and the evaluation reported the old run."""
    add_pairs(db_url, 4)
    add_pairs_of(db_url, "shp", 2)
    invoke("trees", "build", "--strong", script, "--principles", "harmlessness")
    seam = ("annotate", "-a", "seam", "--weak", script, "--strong", script, "--principles", "harmlessness")
    assert "added 6 annotations (0 already stored)" in invoke(*seam)
    assert "added 0 annotations (6 already stored)" in invoke(*seam)  # same config: idempotent
    assert "added 6 annotations (0 already stored)" in invoke(*seam, "--no-weak-prune")
    assert "added 6 annotations (0 already stored)" in invoke(*seam, "--top-k", 1)
    invoke(
        "trees", "build", "--strong", script, "--principles", "harmlessness", "--depth", 1
    )  # a new tree config
    assert "added 6 annotations (0 already stored)" in invoke(*seam)
    with session_scope(db_url) as s:
        rows = s.exec(select(Annotation)).all()
        assert len({r.producer for r in rows}) == 4 and all(len(r.producer) == 16 for r in rows)
        configs = {r.producer: r.meta["producer"] for r in rows}
        assert {c["options"]["weak_prune"] for c in configs.values()} == {True, False}
        assert len({c["tree_config"] for c in configs.values()}) == 2

    report_file = tmp_path / "eval.json"
    invoke("eval", "annotations", "--out", report_file)
    methods = json.loads(report_file.read_text())["methods"]
    assert sorted((m["dataset"], m["n"]) for m in methods) == [("hh-harmless", 4)] * 4 + [("shp", 2)] * 4
    configs = [m["config"] for m in methods if m["dataset"] == "shp"]
    assert sum("weak_prune=False" in c for c in configs) == 1 and sum("top_k=1" in c for c in configs) == 1
    one = json.loads(
        invoke("eval", "annotations", "--dataset", "shp", "--out", report_file) and report_file.read_text()
    )
    assert {m["dataset"] for m in one["methods"]} == {"shp"} and len(one["methods"]) == 4

    from w2s.labels.aggregate import votes_from_store

    with session_scope(db_url) as s:
        assert len({v.worker for v in votes_from_store(s)}) == 4


def test_progress_shows_in_a_log_file(db_url, tmp_path):
    """Off a terminal rich drew nothing until the end; a long job must show its progress in a log."""
    add_pairs(db_url, 6)
    env = {**os.environ, "W2S_DB": db_url, "W2S_SCRIPT": json.dumps({"judge": [0.9, 0.3]})}
    log = tmp_path / "annotate.log"
    with open(log, "w") as f:
        subprocess.run(
            [
                sys.executable,
                str(HERE / "scripted_cli.py"),
                "annotate",
                "-a",
                "naive",
                "--weak",
                "scripted:log",
                "--batch-size",
                "2",
            ],
            env=env,
            stdout=f,
            stderr=f,
            check=True,
        )
    text = log.read_text()
    assert text.count("naive: 0/6 after") == 1 and text.count("naive: 6/6 after") == 1, text


def test_annotator_options_are_typed_and_the_cli_matches_them(db_url, script):
    from annotators.base import ANNOTATORS, get_annotator

    add_pairs(db_url, 1)
    from annotators.cli import annotate

    with pytest.raises(
        ValueError, match="annotator 'naive' has no option 'top_k'; its options: library, both_orders"
    ):
        get_annotator("naive", script, top_k=3)
    with pytest.raises(ValueError, match="has no option 'tau_infp'"):
        get_annotator("seam", script, script, tau_infp=0.3)
    result = runner.invoke(app, ["annotate", "-a", "naive", "--weak", script, "--top-k", "3"])
    assert result.exit_code != 0 and "no option 'top_k'" in result.output
    # every option of every annotator is a CLI option without a default of its own, and vice versa
    import inspect
    from dataclasses import fields

    cli = {name for name, p in inspect.signature(annotate).parameters.items() if p.default.default is None}
    cli = (
        cli
        - {
            "weak",
            "strong",
            "dataset",
            "split",
            "pairs",
            "limit",
            "principles",
            "work__chunk_size",
            "work__worker_id",
        }
    ) | {"library"}
    declared = {f.name for cls in ANNOTATORS.values() for f in fields(cls.Options)}
    assert cli == declared


def test_cli_errors_are_clear(db_url, script):
    add_pairs(db_url, 1)
    result = runner.invoke(app, ["trees", "show", "nope"])
    assert result.exit_code == 1 and "no pair matches" in result.output
    result = runner.invoke(app, ["annotate", "--annotator", "seam", "--weak", script, "--strong", script])
    assert result.exit_code == 1 and "no tree" in result.output
    result = runner.invoke(app, ["trees", "build", "--strong", script, "--principles", "kindness"])
    assert result.exit_code != 0 and "unknown principle library" in result.output
    result = runner.invoke(app, ["annotate", "--weak", script, "--pairs", "zzz"])
    assert result.exit_code != 0 and "no stored pair matches" in result.output


def count(url):
    with session_scope(url) as s:
        return s.exec(select(func.count()).select_from(Annotation)).one()


def test_annotate_resumes_after_kill_9(db_url):
    n, batch = 40, 4
    add_pairs(db_url, n)
    env = {**os.environ, "W2S_DB": db_url, "W2S_SCRIPT": json.dumps({"judge": [0.9, 0.3], "delay": 0.25})}
    cmd = [
        sys.executable,
        str(HERE / "scripted_cli.py"),
        "annotate",
        "--annotator",
        "naive",
        "--weak",
        "scripted:slow",
        "--batch-size",
        str(batch),
    ]
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 120
        while count(db_url) < 2 * batch and time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.05)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    finally:
        if proc.poll() is None:
            proc.kill()
    partial = count(db_url)
    assert 2 * batch <= partial < n and partial % batch == 0  # only whole batches were committed
    subprocess.run(cmd, env=env, check=True, capture_output=True)
    with session_scope(db_url) as s:
        keys = list(s.exec(select(Annotation.dedup_key)))
    assert len(keys) == n and len(set(keys)) == n
    subprocess.run(cmd, env=env, check=True, capture_output=True)
    assert count(db_url) == n
