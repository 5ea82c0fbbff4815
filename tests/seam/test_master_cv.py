"""bench/master_cv.py: cross-validation of masters over two tree configs of one pair file, on the same
pairs and folds (scripted strong model, the real SmolLM2 as the master's weak model)."""

import json
import math
import runpy
import sys
from pathlib import Path

import pytest
from seam_scripted import SCRIPTS, Script
from test_seam_domains import pair_file

from w2s.trees import TreeConfig, build_trees

BENCH = Path(__file__).resolve().parents[2] / "bench"
SPEC = "Meets the specification and its examples"
EDGES = "Edge cases and boundaries"


def run(argv, monkeypatch):
    monkeypatch.setattr(sys, "argv", [str(BENCH / "master_cv.py"), *argv])
    runpy.run_path(str(BENCH / "master_cv.py"), run_name="__main__")


@pytest.mark.slow
def test_master_cv_scores_configs_on_the_same_pairs_and_folds(tmp_path, monkeypatch):
    sys.path.insert(0, str(BENCH))
    from common import import_sample, sqlite_url

    # two near-uniform nodes end a B = 1 tree after its first; B = 2, D = 3 gets a second node
    SCRIPTS["cv-strong"] = Script(
        relevance={SPEC: 0.9, EDGES: 0.8}, verdict={SPEC: (0.9, 0.1), EDGES: (0.8, 0.3)}
    )
    pairs = pair_file(tmp_path / "code-demo" / "train.jsonl", 20, 0)
    url = sqlite_url(tmp_path / "cv.db")
    ids = import_sample(pairs, url)
    from w2s.backends import get_model

    strong = get_model("scripted:cv-strong")
    shallow, deep = (
        TreeConfig(library="correctness", max_backtraces=b, max_depth=d) for b, d in ((1, 2), (2, 3))
    )
    for cfg in (shallow, deep):
        build_trees(
            strong, ids[: 18 if cfg is shallow else 20], cfg, url=url
        )  # two pairs lack a shallow tree
    out = tmp_path / "cv.json"
    args = [
        str(pairs),
        "--strong",
        strong.spec,
        "--configs",
        f"{shallow.hash()},{deep.hash()}",
        "--principle-weights",
        "auto,shared",
        "--folds",
        "3",
        "--repeats",
        "2",
        "--db",
        str(tmp_path / "cv.db"),
        "--corpus",
        str(tmp_path / "none.jsonl.gz"),
        "--json",
        str(out),
    ]
    run(args, monkeypatch)
    result = json.loads(out.read_text())
    assert result["n"] == 18 and set(result["pair_ids"]) == set(ids[:18])  # pairs with a tree of every config
    rows = result["rows"]
    configs = (shallow.hash(), deep.hash())
    assert set(rows) == {f"{h}/{pw}" for h in configs for pw in ("auto", "shared", "gate")} | {"twin"}
    for name, row in rows.items():
        assert 0 <= row["accuracy"] <= 1 and row["log_loss"] > 0
        if name != "twin":
            assert row["minus_twin"]["lo"] <= row["minus_twin"]["gap"] <= row["minus_twin"]["hi"]
        if name.endswith(("/auto", "/shared")):
            assert sum(row["chosen"].values()) == 3 * 2  # one master per fold and repeat
    for h in configs:  # every tree exits on P(A) = 0.9: the gate is that verdict, right on the 9 gold-A pairs
        assert rows[f"{h}/gate"]["accuracy"] == 0.5
        assert rows[f"{h}/gate"]["log_loss"] == pytest.approx(-(math.log(0.9) + math.log(0.1)) / 2)
    assert rows[f"{shallow.hash()}/shared"]["chosen"] == {"shared": 6}
    assert set(rows[f"{deep.hash()}/auto"]["chosen"]) <= {"per-principle", "shared", "shrunk", "none"}
    first = rows[f"{shallow.hash()}/auto"]
    assert first["minus_first"]["gap"] == first["minus_first"]["lo"] == 0.0  # paired: a row against itself

    shared_only = [a if a != "auto,shared" else "shared" for a in args]
    run(shared_only, monkeypatch)  # same seed, same folds: the same figures
    again = json.loads(out.read_text())["rows"]
    for h in (shallow.hash(), deep.hash()):
        assert again[f"{h}/shared"]["accuracy"] == rows[f"{h}/shared"]["accuracy"]
        assert again[f"{h}/shared"]["log_loss"] == rows[f"{h}/shared"]["log_loss"]

    args[args.index("--strong") + 1] = "scripted:nobody"
    with pytest.raises(SystemExit, match="no tree of scripted:nobody"):
        run(args[: args.index("--configs")] + args[args.index("--principle-weights") :], monkeypatch)
