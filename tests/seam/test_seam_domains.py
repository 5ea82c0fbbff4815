"""bench/seam_domains.py end to end on a handful of pairs: scripted strong and weak models, the real
SmolLM2 as the aligned master's weak model, trees built, a corpus written and reused."""

import json
import runpy
import sys
from pathlib import Path

import pytest
from seam_scripted import SCRIPTS, Script

BENCH = Path(__file__).resolve().parents[2] / "bench" / "seam_domains.py"
SPEC = "Meets the specification and its examples"


def pair_file(path: Path, n: int, offset: int) -> Path:
    """Pairs whose responses carry the [A]/[B] markers the scripted model reads; gold alternates."""
    rows = []
    for i in range(offset, offset + n):
        good, bad = f"def f{i}(x):\n    return x + {i}", f"def f{i}(x):\n    return x - {i}"
        a, b, label = ("[A] " + good, "[B] " + bad, "a") if i % 2 else ("[A] " + bad, "[B] " + good, "b")
        rows.append({"prompt": f"Write f{i}: add {i}.", "response_a": a, "response_b": b, "label": label})
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def run(argv, monkeypatch):
    monkeypatch.setattr(sys, "argv", [str(BENCH), *argv])
    runpy.run_path(str(BENCH), run_name="__main__")


@pytest.mark.slow
def test_seam_domains_end_to_end(tmp_path, monkeypatch):
    # the strong model favours A whatever the order (zero-shot and on the first principle's node), which
    # is right on half of the alternating-gold pairs; every tree has an exit node
    SCRIPTS["dom-strong"] = Script(relevance={SPEC: 0.9}, verdict={SPEC: (0.9, 0.1)}, judge=(0.8, 0.4))
    SCRIPTS["dom-weak"] = Script(judge=(0.7, 0.4), decision=(0.6, 0.5))
    train = pair_file(tmp_path / "code-demo" / "train.jsonl", 12, 0)
    test = pair_file(tmp_path / "code-demo" / "test.jsonl", 4, 100)
    corpus = tmp_path / "trees" / "train.jsonl.gz"
    out = tmp_path / "out.json"
    args = [
        "--train",
        str(train),
        "--test",
        str(test),
        "--strong",
        "scripted:dom-strong",
        "--weak",
        "scripted:dom-weak",
        "--train-trees",
        str(corpus),
        "--test-trees",
        str(tmp_path / "trees" / "test.jsonl.gz"),
        "--save-trees",
        "--db",
        str(tmp_path / "b.db"),
        "--json",
        str(out),
        "--cot-tokens",
        "8",
    ]
    run(args, monkeypatch)
    result = json.loads(out.read_text())
    assert set(result["methods"]) == {
        "naive",
        "strong",
        "cot-v1",
        "cot-v2",
        "cot-v3",
        "seam",
        "aligned",
        "seam-aligned",
        "seam-gate",
        "seam-aligned-rm",
        "cot-v1-aligned",
        "cot-v2-aligned",
        "cot-v3-aligned",
    }
    for m in result["methods"].values():
        assert m["n"] == 4 and 0 <= m["accuracy"] <= 1 and m["ci_low"] <= m["accuracy"] <= m["ci_high"]
    assert result["methods"]["strong"]["accuracy"] == 0.5  # position-free "A" on alternating gold
    assert set(result["gaps"]) == {
        "seam-aligned - aligned",
        "seam-aligned - strong",
        "seam-aligned - best-cot",
        "seam-aligned - best-cot-aligned",
        "seam-gate - aligned",
        "seam-aligned-rm - aligned",
        "seam-aligned-rm - best-cot-aligned",
    }
    assert {
        k: len(v) for k, v in result["masters"].items()
    } == {  # one master per kind, the CoTs' by their reasoning
        "features": 12,
        "rm": 12,
        "cot-v1-aligned": 12,
        "cot-v2-aligned": 12,
        "cot-v3-aligned": 12,
    }
    assert result["trees"]["built"] == {"train": 12, "test": 4} and result["trees"]["reused"] == 0
    per_pair = result["per_pair"]  # what bench/pool_runs.py reads: P(gold) per test pair and method
    assert len(per_pair["ids"]) == 4 and set(per_pair["p_gold"]) == set(result["methods"])
    assert sum(p > 0.5 for p in per_pair["p_gold"]["strong"]) / 4 == result["methods"]["strong"]["accuracy"]
    # every tree exits on P(A) = 0.9, so seam-gate labels every pair with that verdict
    # (right on the two test pairs whose gold is A)
    assert sorted(per_pair["p_gold"]["seam-gate"]) == pytest.approx([0.1, 0.1, 0.9, 0.9])
    assert (
        corpus.is_file() and result["tree_config"]["library"] == "correctness"
    )  # chosen by the folder's name
    assert result["principle_weights"] in {
        "per-principle",
        "shared",
        "shrunk",
        "none",
    }  # what `auto` chose on train

    # a fresh database reuses the corpora: nothing is built again, the same figures come out
    args[args.index("--db") + 1] = str(tmp_path / "c.db")
    run(args, monkeypatch)
    again = json.loads(out.read_text())
    assert again["trees"]["built"] == {"train": 0, "test": 0} and again["trees"]["reused"] == 16
    assert {m: v["accuracy"] for m, v in again["methods"].items()} == {
        m: v["accuracy"] for m, v in result["methods"].items()
    }
    assert again["masters"] == result["masters"]  # same data, same config: the same masters


# the master's methods only, with the scripted models of the end-to-end test
SCRIPTED = (
    "--strong scripted:dom-strong --weak scripted:dom-weak --methods naive,aligned,seam-aligned".split()
)


@pytest.fixture
def scripted():
    SCRIPTS["dom-strong"] = Script(relevance={SPEC: 0.9}, verdict={SPEC: (0.9, 0.1)}, judge=(0.8, 0.4))
    SCRIPTS["dom-weak"] = Script(judge=(0.7, 0.4), decision=(0.6, 0.5))


@pytest.mark.slow
def test_seam_domains_learns_from_several_train_files(tmp_path, monkeypatch, scripted):
    # leave-one-language-out: the master learns from two files (here two splits of one folder)
    one = pair_file(tmp_path / "code-demo" / "one.jsonl", 6, 0)
    two = pair_file(tmp_path / "code-demo" / "two.jsonl", 5, 50)
    test = pair_file(tmp_path / "code-demo" / "test.jsonl", 4, 100)
    out = tmp_path / "out.json"
    files = ["--train", str(one), "--train", str(two), "--test", str(test)]
    args = [*files, *SCRIPTED, "--db", str(tmp_path / "b.db"), "--json", str(out)]
    run(args, monkeypatch)
    result = json.loads(out.read_text())
    assert result["train"] == [str(one), str(two)]
    assert result["trees"]["train_with_tree"] == 11 and result["trees"]["built"] == {"train": 11, "test": 4}
    assert set(result["methods"]) == {"naive", "aligned", "seam-aligned"}
    assert all(m["n"] == 4 for m in result["methods"].values())
    with pytest.raises(SystemExit, match="--train-trees"):  # one corpus file cannot stand for two train files
        run([*args, "--train-trees", str(tmp_path / "t.jsonl.gz")], monkeypatch)


@pytest.mark.slow
def test_seam_gate_takes_decisive_exits_and_the_twin_elsewhere(tmp_path, monkeypatch):
    # the node on the one relevant principle says P(A) = 0.65 in both orders: above tau_uniform, so the
    # search ends on it as the tail exit of a search that ran out, below tau_exit 0.75
    SCRIPTS["gate-strong"] = Script(relevance={SPEC: 0.9}, verdict={SPEC: (0.65, 0.35)})
    SCRIPTS["gate-weak"] = Script(judge=(0.7, 0.4))
    train = pair_file(tmp_path / "code-demo" / "train.jsonl", 10, 0)
    test = pair_file(tmp_path / "code-demo" / "test.jsonl", 4, 100)
    out = tmp_path / "out.json"
    args = ["--train", str(train), "--test", str(test), "--strong", "scripted:gate-strong"]
    args += ["--weak", "scripted:gate-weak", "--methods", "aligned,seam-gate", "--db", str(tmp_path / "b.db")]
    run([*args, "--json", str(out)], monkeypatch)
    p_gold = json.loads(out.read_text())["per_pair"]["p_gold"]
    assert p_gold["seam-gate"] == p_gold["aligned"]  # no decisive exit: the twin decides every pair
    run([*args, "--set", "tau_exit=0.6", "--json", str(out)], monkeypatch)
    p_gold = json.loads(out.read_text())["per_pair"]["p_gold"]
    assert sorted(p_gold["seam-gate"]) == pytest.approx([0.35, 0.35, 0.65, 0.65])  # the exits decide
    assert p_gold["seam-gate"] != p_gold["aligned"]


@pytest.mark.slow
def test_seam_lolo_tests_each_file_on_masters_of_the_others(tmp_path, monkeypatch, scripted):
    langs = ("x", "y", "z")
    files = [
        str(pair_file(tmp_path / "code-demo" / f"{lang}.jsonl", 6, 10 * i)) for i, lang in enumerate(langs)
    ]
    lolo = BENCH.parent / "seam_lolo.py"
    argv = [
        str(lolo),
        *files,
        "--out",
        str(tmp_path / "lolo"),
        "--",
        *SCRIPTED,
        "--db",
        str(tmp_path / "b.db"),
    ]
    monkeypatch.setattr(sys, "argv", argv)
    runpy.run_path(str(lolo), run_name="__main__")
    folds = {f: json.loads((tmp_path / "lolo" / f"{f}.json").read_text()) for f in langs}
    for name, fold in folds.items():
        assert sorted(Path(t).stem for t in fold["train"]) == sorted(set(langs) - {name})
        assert Path(fold["test"]).stem == name
        assert fold["trees"]["train_with_tree"] == 12 and len(fold["per_pair"]["ids"]) == 6
    pooled = json.loads((tmp_path / "lolo" / "pooled.json").read_text())
    assert pooled["n"] == 18 and pooled["runs"] == 3 and "seam-aligned - aligned" in pooled["gaps"]

    # bench/exit_gate.py on the folds: every tree exits on its first node with P(A) = 0.9 (in both orders),
    # right on the half of the alternating-gold pairs whose gold is A; the gate is that verdict everywhere
    gate = BENCH.parent / "exit_gate.py"
    runs = [str(tmp_path / "lolo" / f"{f}.json") for f in langs]
    monkeypatch.setattr(
        sys, "argv", [str(gate), *runs, "--taus", "0.6,0.75", "--json", str(tmp_path / "g.json")]
    )
    runpy.run_path(str(gate), run_name="__main__")
    tables = json.loads((tmp_path / "g.json").read_text())
    twin = pooled["methods"]["aligned"]["accuracy"]
    assert tables["pooled"]["n"] == 18 and tables["pooled"]["twin"] == pytest.approx(twin)
    for row in tables["pooled"]["taus"].values():
        assert row["exit_coverage"] == 1.0 and row["exit_accuracy"] == 0.5 and row["gate"] == 0.5
        assert row["twin_on_exits"] == pytest.approx(twin)
        assert row["gap"]["gap"] == pytest.approx(0.5 - twin)
    monkeypatch.setattr(sys, "argv", [str(gate), runs[0], "--taus", "0.8"])
    with pytest.raises(SystemExit, match="cannot be replayed at"):  # trees built at 0.75 never went past it
        runpy.run_path(str(gate), run_name="__main__")


def test_pool_runs_counts_every_runs_pairs_and_pairs_the_gaps(tmp_path):
    sys.path.insert(0, str(BENCH.parent))
    from pool_runs import load_run, pooled

    def run_json(name, p_gold):
        path = tmp_path / name
        ids = [f"{name}-{i}" for i in range(len(p_gold["aligned"]))]
        path.write_text(json.dumps({"per_pair": {"ids": ids, "p_gold": p_gold}}))
        return load_run(str(path))

    one = run_json(
        "one", {"aligned": [0.9, 0.2, 0.4], "seam-aligned": [0.9, 0.8, 0.6], "strong": [0.1, 0.1, 0.9]}
    )
    two = run_json("two", {"aligned": [0.7, 0.3], "seam-aligned": [0.2, 0.6]})
    result = pooled([one, two])
    assert result["n"] == 5 and set(result["methods"]) == {"aligned", "seam-aligned"}  # strong: one run only
    assert result["methods"]["aligned"]["accuracy"] == pytest.approx(2 / 5)
    assert result["methods"]["seam-aligned"]["accuracy"] == pytest.approx(4 / 5)
    gap = result["gaps"]["seam-aligned - aligned"]
    assert gap["gap"] == pytest.approx(2 / 5) and gap["lo"] <= gap["gap"] <= gap["hi"]
    # the best aligned CoT over the pooled pairs is the one the gap is taken against (cot-v2 here, 3/5)
    cots = {"cot-v1-aligned": [0.4, 0.4, 0.6, 0.3, 0.6], "cot-v2-aligned": [0.6, 0.6, 0.4, 0.3, 0.6]}
    one = run_json(
        "one",
        {"aligned": [0.9, 0.2, 0.4], "seam-aligned": [0.9, 0.8, 0.6], **{m: v[:3] for m, v in cots.items()}},
    )
    two = run_json(
        "two", {"aligned": [0.7, 0.3], "seam-aligned": [0.2, 0.6], **{m: v[3:] for m, v in cots.items()}}
    )
    result = pooled([one, two])
    assert result["methods"]["cot-v2-aligned"]["accuracy"] == pytest.approx(3 / 5)
    assert result["gaps"]["seam-aligned - best-cot-aligned"]["gap"] == pytest.approx(1 / 5)
    old = tmp_path / "old.json"
    old.write_text(json.dumps({"methods": {}}))
    with pytest.raises(SystemExit, match="old.json: no per-pair figures"):
        load_run(str(old))
