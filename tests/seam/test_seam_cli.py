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
from seam_scripted import add_pairs
from seam_scripted import SCRIPTS, Script
from sqlmodel import func, select
from typer.testing import CliRunner

from w2s.cli import app
from w2s.store import Annotation, session_scope

runner = CliRunner()
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
    out = invoke("trees", "build", "--strong", script, "--principles", "harmlessness", "--dataset", "hh-harmless")
    assert "built 4 trees" in out
    assert "built 0 trees (4 already stored)" in invoke("trees", "build", "--strong", script, "--principles", "harmlessness")
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

    from w2s.annotation_eval import evaluate_annotations

    with session_scope(db_url) as s:
        subset = evaluate_annotations(s, pair_ids=set(ids[:2]))
    assert subset["pairs_with_gold"] == 2 and {m["n"] for m in subset["methods"]} == {2}
    assert subset["trees"][0]["trees"] == 2


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
    cmd = [sys.executable, str(HERE / "scripted_cli.py"), "annotate", "--annotator", "naive",
           "--weak", "scripted:slow", "--batch-size", str(batch)]
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
