"""`w2s train`, `w2s eval student`, `w2s experiment w2s` end to end on the tiny model."""

import json

from typer.testing import CliRunner

from tests.training.conftest import toy_rows
from w2s.cli import app

runner = CliRunner()


def _write(path, rows):
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def test_train_then_eval_student(tiny_model, tmp_path):
    data = _write(tmp_path / "export.jsonl", toy_rows(32))
    test = _write(tmp_path / "test.jsonl", toy_rows(16, seed=3))
    run = tmp_path / "run"
    r = runner.invoke(
        app,
        [
            "train",
            "--objective",
            "rm",
            "--model",
            tiny_model,
            "--data",
            str(data),
            "--out",
            str(run),
            "--lora",
            "--lora-r",
            "4",
            "--aux-conf",
            "--max-steps",
            "12",
            "--batch-size",
            "8",
            "--lr",
            "3e-3",
            "--pooling",
            "last",
        ],
    )
    assert r.exit_code == 0, r.output
    assert "trained rm on 32 rows, 12 steps" in r.output
    cfg = json.loads((run / "config.json").read_text())
    assert cfg["lora"]["r"] == 4 and cfg["aux_conf"] is True
    assert len((run / "metrics.jsonl").read_text().splitlines()) >= 2
    r = runner.invoke(app, ["eval", "student", str(run), "--data", str(test), "--json"])
    assert r.exit_code == 0, r.output
    res = json.loads(r.stdout)
    assert res["n"] == 16 and 0.0 <= res["accuracy"] <= 1.0
    assert (run / "eval.json").exists()


def test_train_rejects_bad_rows_and_options(tiny_model, tmp_path):
    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps(toy_rows(1)[0]) + "\n{not json\n")
    r = runner.invoke(
        app, ["train", "-o", "sft", "-m", tiny_model, "-d", str(bad), "--out", str(tmp_path / "r")]
    )
    assert r.exit_code == 1 and "bad.jsonl: line 2: invalid JSON" in r.output
    r = runner.invoke(
        app,
        ["train", "-o", "sft", "-m", tiny_model, "-d", str(bad), "--out", str(tmp_path / "r"), "--beta", "1"],
    )
    assert r.exit_code != 0 and "--beta applies to dpo/simpo only" in r.output
    r = runner.invoke(
        app, ["train", "-o", "ppo", "-m", tiny_model, "-d", str(bad), "--out", str(tmp_path / "r")]
    )
    assert r.exit_code == 1  # stops at the bad file or the unknown objective, never half-trains


def test_experiment_w2s_writes_one_report(tiny_model, tmp_path):
    d = tmp_path / "data"
    d.mkdir()
    for split, n, seed in (("train_gt", 24, 0), ("train_w2s", 24, 1), ("test_dev", 16, 2)):
        # HH-RLHF style lines: the prompt is inside both transcripts
        _write(
            d / f"{split}.jsonl",
            [
                {"chosen": r["prompt"] + r["chosen"], "rejected": r["prompt"] + r["rejected"]}
                for r in toy_rows(n, seed)
            ],
        )
    out = tmp_path / "exp"
    seam = _write(tmp_path / "seam.jsonl", toy_rows(24, 1))  # stands in for an export of SEAM labels
    # the aligned master's labels on the same pairs, a third of them the wrong way round
    aligned = _write(
        tmp_path / "aligned.jsonl",
        [
            dict(r, chosen=r["rejected"], rejected=r["chosen"]) if i % 3 == 0 else r
            for i, r in enumerate(toy_rows(24, 1))
        ],
    )
    other = _write(tmp_path / "other.jsonl", toy_rows(20, 1))
    args = [
        "experiment",
        "w2s",
        "--weak",
        tiny_model,
        "--strong",
        tiny_model,
        "--data",
        str(d),
        "--out",
        str(out),
        "--batch-size",
        "8",
        "--lora-r",
        "4",
        "--weak-gt",
        "16",
        "--seam-labels",
        str(seam),
    ]
    r = runner.invoke(
        app, args + ["--aligned-labels", str(other)]
    )  # not the same pairs: refused before training
    assert (
        r.exit_code == 1
        and "label different pairs (4 in one only" in r.output
        and not (out / "weak").exists()
    )
    r = runner.invoke(
        app, args + ["--aligned-labels", str(aligned), "--conflict", "--intermediate", tiny_model]
    )
    assert r.exit_code == 0, r.output
    res = json.loads((out / "results.json").read_text())
    assert res["sizes"] == {"train_gt": 24, "train_w2s": 24, "test_dev": 16, "weak_train_gt": 16}
    assert res["timings"]["weak"]["rows"] == 16 and res["timings"]["ceiling"]["rows"] == 24
    assert set(res["accuracy"]) >= {
        "weak",
        "ceiling",
        "w2s_naive",
        "w2s_aux_conf",
        "w2s_filtered",
        "w2s_reweighted",
        "w2s_conflict",
        "w2s_seam",
        "w2s_aligned",
        "intermediate",
        "w2s_bootstrap",
    }
    assert res["train_rows"]["seam"] == res["train_rows"]["aligned"] == 24
    gap = res["label_gaps"]["seam - aligned"]
    assert (
        gap["gap"] == res["accuracy"]["w2s_seam"] - res["accuracy"]["w2s_aligned"] and gap["lo"] <= gap["hi"]
    )
    assert "w2s_seam − w2s_aligned:" in r.output
    assert (
        res["timings"]["w2s_bootstrap"]["rows"] == 12
    )  # the intermediate labels the second half of the pool
    assert res["train_rows"]["filtered"] < 24  # half the pool by entropy (ties at the median stay)
    assert res["deception"]["areas"] and sum(res["deception"]["areas"].values()) == 16
    report = (out / "report.md").read_text()
    assert "| strong ceiling (trained on gt) |" in report and "deception score" in report
    assert (
        "| w2s on aligned weak labels (no tree) |" in report
        and "w2s on SEAM labels − w2s on aligned" in report
    )
    assert "| w2s on SEAM labels |" in report and "| w2s bootstrapped via intermediate |" in report
    for png in ("calibration.png", "entropy_accuracy.png", "accuracy.png"):
        assert (out / png).stat().st_size > 1000
    labels = [json.loads(line) for line in (out / "weak_labels.jsonl").read_text().splitlines()]
    assert set(labels[0]) >= {
        "prompt",
        "chosen",
        "rejected",
        "weight",
        "soft_label",
        "entropy",
        "n_votes",
        "pair_id",
        "source",
    }
    # rerunning resumes: every run directory is finished, nothing retrains
    mtime = (out / "weak" / "model" / "trainable.pt").stat().st_mtime
    assert (
        runner.invoke(
            app,
            [
                "experiment",
                "w2s",
                "--weak",
                tiny_model,
                "--strong",
                tiny_model,
                "--data",
                str(d),
                "--out",
                str(out),
                "--batch-size",
                "8",
                "--conflict",
                "--lora-r",
                "4",
                "--weak-gt",
                "16",
            ],
        ).exit_code
        == 0
    )
    assert (out / "weak" / "model" / "trainable.pt").stat().st_mtime == mtime
    again = json.loads((out / "results.json").read_text())  # the resumed report keeps the first run's figures
    assert (
        all(res["accuracy"][k] == a for k, a in again["accuracy"].items())
        and again["timings"]["ceiling"]["score_test_pairs_per_s"] > 0
    )
    assert again["peak_rss_mb"] >= res["timings"]["ceiling"]["peak_rss_mb"]


def test_two_process_ddp_through_accelerate(tiny_model, tmp_path):
    """The same command under torchrun (2 CPU processes, gloo): accelerate shards every batch."""
    import os
    import shutil
    import subprocess
    import sys

    data = _write(tmp_path / "export.jsonl", toy_rows(32))
    w2s = shutil.which("w2s", path=os.path.dirname(sys.executable))
    env = dict(os.environ, ACCELERATE_USE_CPU="true", OMP_NUM_THREADS="1")
    cmd = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--nproc_per_node",
        "2",
        w2s,
        "train",
        "-o",
        "rm",
        "-m",
        tiny_model,
        "-d",
        str(data),
        "--out",
        str(tmp_path / "ddp"),
        "--max-steps",
        "4",
        "--batch-size",
        "4",
    ]
    p = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, p.stderr[-2000:]
    s = json.loads((tmp_path / "ddp" / "summary.json").read_text())
    assert s["pairs"] == 4 * 4 * 2 and s["device"] == "cpu:0"  # 4 steps × 4 pairs × 2 processes


def test_experiment_with_a_frozen_weak_probe_and_a_cached_student_prefix(tiny_model, tmp_path):
    """The options the CPU benchmark uses reach the run configs: a head-only weak supervisor with its
    own epochs and head learning rate, a student whose frozen layers run once per sequence."""
    from w2s.training.models import _PREFIX_CACHE

    d = tmp_path / "data"
    d.mkdir()
    for split, n, seed in (("train_gt", 16, 0), ("train_w2s", 16, 1), ("test_dev", 8, 2)):
        _write(d / f"{split}.jsonl", toy_rows(n, seed))
    out = tmp_path / "exp"
    _PREFIX_CACHE.clear()
    r = runner.invoke(
        app,
        [
            "experiment",
            "w2s",
            "--weak",
            tiny_model,
            "--strong",
            tiny_model,
            "--data",
            str(d),
            "--out",
            str(out),
            "--batch-size",
            "8",
            "--lora-r",
            "4",
            "--lora-last-n",
            "1",
            "--cache-frozen-prefix",
            "--weak-frozen",
            "--weak-epochs",
            "3",
            "--weak-head-lr",
            "0.01",
        ],
    )
    assert r.exit_code == 0, r.output
    weak = json.loads((out / "weak" / "config.json").read_text())
    assert (weak["freeze_backbone"], weak["epochs"], weak["head_lr"]) == (True, 3.0, 0.01)
    ceiling = json.loads((out / "ceiling" / "config.json").read_text())
    assert (ceiling["cache_frozen_prefix"], ceiling["epochs"], ceiling["head_lr"]) == (True, 1.0, 1e-3)
    timings = json.loads((out / "results.json").read_text())["timings"]
    unique = len({(r["prompt"], r[side]) for r in toy_rows(16, 0) for side in ("chosen", "rejected")})
    assert timings["weak"]["prefix_sequences"] == timings["ceiling"]["prefix_sequences"] == unique


def test_experiment_runs_only_the_chosen_students_and_a_later_run_adds_the_rest(tiny_model, tmp_path):
    """--variants none trains only the students on the exported labels (the quick SEAM-labels run);
    a later run with a weak-label student resumes the finished runs and adds it; an unknown name is
    refused before anything trains."""
    d = tmp_path / "data"
    d.mkdir()
    for split, n, seed in (("train_gt", 16, 0), ("train_w2s", 16, 1), ("test_dev", 8, 2)):
        _write(d / f"{split}.jsonl", toy_rows(n, seed))
    seam = _write(tmp_path / "seam.jsonl", toy_rows(12, 1))
    aligned = _write(
        tmp_path / "aligned.jsonl",
        [
            dict(r, chosen=r["rejected"], rejected=r["chosen"]) if i % 2 else r
            for i, r in enumerate(toy_rows(12, 1))
        ],
    )
    out = tmp_path / "exp"
    args = [
        "experiment",
        "w2s",
        "--weak",
        tiny_model,
        "--strong",
        tiny_model,
        "--data",
        str(d),
        "--out",
        str(out),
        "--batch-size",
        "8",
        "--lora-r",
        "4",
        "--seam-labels",
        str(seam),
        "--aligned-labels",
        str(aligned),
    ]
    r = runner.invoke(app, args + ["--variants", "naive,bogus"])
    assert r.exit_code == 1 and "unknown variant 'bogus'" in r.output and not (out / "weak").exists()
    r = runner.invoke(app, args + ["--variants", "none"])
    assert r.exit_code == 0, r.output
    res = json.loads((out / "results.json").read_text())
    assert set(res["accuracy"]) == {"weak", "ceiling", "w2s_seam", "w2s_aligned"}
    assert (
        res["train_rows"] == {"seam": 12, "aligned": 12} and res["label_gaps"]["seam - aligned"] is not None
    )
    mtime = (out / "ceiling" / "model" / "trainable.pt").stat().st_mtime
    r = runner.invoke(app, args + ["--variants", "naive"])
    assert r.exit_code == 0, r.output
    again = json.loads((out / "results.json").read_text())
    assert set(again["accuracy"]) == {"weak", "ceiling", "w2s_seam", "w2s_aligned", "w2s_naive"}
    assert (out / "ceiling" / "model" / "trainable.pt").stat().st_mtime == mtime  # resumed, not retrained
    assert again["accuracy"]["w2s_seam"] == res["accuracy"]["w2s_seam"]


def test_experiment_reads_splits_and_label_sets_from_the_store(tiny_model, tmp_path, db_url):
    """--dataset: the three splits come from the store; --label-set: a student on each stored label set,
    and every one's paired gap against the baseline (here: aligned)."""
    from w2s.pipeline import import_pairs, split_ids
    from w2s.store import LabelSet, Pair, session_scope

    for split, n, seed in (("train_gt", 16, 0), ("train_w2s", 12, 1), ("test_dev", 8, 2)):
        rows = [{k: r[k] for k in ("prompt", "chosen", "rejected")} for r in toy_rows(n, seed)]
        assert (
            len(import_pairs(db_url, _write(tmp_path / f"{split}.jsonl", rows), "toy", split, log=None)) == n
        )
    pool = split_ids(db_url, "toy", "train_w2s")
    with session_scope(
        db_url
    ) as s:  # two label sets on the pool: right, and a third of them the wrong way round
        for name, wrong in (("seam", set()), ("aligned", set(pool[::3]))):
            for pid in pool:
                gold = s.get(Pair, pid).gold
                label = gold if pid not in wrong else {"a": "b", "b": "a"}[gold]
                s.add(
                    LabelSet(
                        name=name,
                        pair_id=pid,
                        label=label,
                        soft_label=0.9,
                        entropy=0.3,
                        weight=1.0,
                        n_votes=1,
                        method="soft",
                        params={},
                    )
                )
    out = tmp_path / "exp"
    args = [
        "experiment",
        "w2s",
        "--weak",
        tiny_model,
        "--strong",
        tiny_model,
        "--out",
        str(out),
        "--batch-size",
        "8",
        "--lora-r",
        "4",
        "--variants",
        "none",
    ]
    r = runner.invoke(app, args)
    assert r.exit_code == 1 and "--data FOLDER or --dataset NAME" in r.output
    r = runner.invoke(app, [*args, "--dataset", "toy", "--label-set", "seam=nothing-here"])
    assert r.exit_code == 1 and "label set 'nothing-here' has no rows" in r.output
    r = runner.invoke(
        app, [*args, "--dataset", "toy", "--label-set", "seam", "--label-set", "aligned=aligned"]
    )
    assert r.exit_code == 0, r.output
    res = json.loads((out / "results.json").read_text())
    assert res["sizes"] == {"train_gt": 16, "train_w2s": 12, "test_dev": 8, "weak_train_gt": 16}
    assert res["train_rows"] == {"seam": 12, "aligned": 12} and set(res["label_gaps"]) == {"seam - aligned"}
    gap = res["label_gaps"]["seam - aligned"]
    assert gap["gap"] == res["accuracy"]["w2s_seam"] - res["accuracy"]["w2s_aligned"]
    assert "w2s_seam − w2s_aligned:" in r.output
    assert "w2s on SEAM labels − w2s on aligned weak labels (same pairs)" in (out / "report.md").read_text()


def test_results_written_before_the_label_gaps_table_still_read():
    from w2s.training.report import gap_line, label_gaps

    g = {"gap": 0.02, "lo": -0.01, "hi": 0.05, "level": 0.95}
    assert label_gaps({"seam_minus_aligned": g}) == {"seam - aligned": g} and label_gaps({}) == {}
    assert label_gaps({"label_gaps": {"x - aligned": g}, "seam_minus_aligned": None}) == {"x - aligned": g}
    assert gap_line("seam - aligned", g).startswith(
        "w2s on SEAM labels − w2s on aligned weak labels (same pairs): +0.020"
    )
    assert gap_line("x - naive", g).startswith("w2s on x labels − w2s on naive labels (same pairs): +0.020")
