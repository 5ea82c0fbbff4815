"""w2s.pipeline step by step on small real data: the demo code pairs and their committed trees (no strong
model needed), scripted models where a tree is built, the real SmolLM2 as the master's weak model, the
README's "From Python" snippet run as written, and the shared helpers (one machine line, chunked IN)."""

import gzip
import json
import re
from pathlib import Path

import pytest
from seam_scripted import SCRIPTS, Script
from test_seam_domains import SPEC, pair_file

from w2s import pipeline as P
from w2s.store import Pair, chunks, select_in, session_scope

ROOT = Path(__file__).resolve().parents[2]
DEMO = ROOT / "data" / "demo-code"
TREES_BY = "llamacpp:qwen2.5-coder-1.5b"  # the strong model that built the committed demo trees


def demo(url: str) -> tuple[list[str], list[str]]:
    train = P.import_pairs(url, DEMO / "train.jsonl", "demo-code", "train", log=None)
    test = P.import_pairs(url, DEMO / "test.jsonl", "demo-code", "test", log=None)
    for split in ("train", "test"):
        P.import_tree_corpus(url, DEMO / f"trees-{split}.jsonl.gz", log=None)
    return train, test


# ---------------------------------------------------------------------------------------------- import


def test_import_pairs_returns_the_stored_ids_in_file_order_and_again_on_a_rerun(db_url):
    lines = (DEMO / "train.jsonl").read_text().splitlines()
    ids = P.import_pairs(db_url, DEMO / "train.jsonl", "demo-code", "train", log=None)
    assert len(ids) == len(lines) == len(set(ids))
    with session_scope(db_url) as s:
        source = {p.id: p.source for p in s.exec(select_in_pairs(ids))}
    assert [int(source[pid].rsplit(":", 1)[1]) for pid in ids] == list(range(1, len(lines) + 1))
    assert (
        P.import_pairs(db_url, DEMO / "train.jsonl", "demo-code", "train", log=None) == ids
    )  # nothing added
    assert P.split_ids(db_url, "demo-code", "train") == ids
    # the same file under another split: its pairs are the train split's, so none is returned
    assert P.import_pairs(db_url, DEMO / "train.jsonl", "demo-code", "test", log=None) == []


def select_in_pairs(ids):
    from sqlmodel import select

    return select(Pair).where(Pair.id.in_(ids))


def test_import_pairs_seeded_sample_is_a_prefix_and_names_invalid_lines(tmp_path, db_url):
    rows = [
        {"prompt": f"Q{i}", "response_a": f"a{i}", "response_b": f"b{i}", "label": "a"} for i in range(12)
    ]
    rows[4]["response_a"] = ""  # line 5
    path = tmp_path / "toy" / "dev.jsonl"
    path.parent.mkdir()
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    said = []
    ids = P.import_pairs(db_url, path, seed=3, log=said.append)
    assert len(ids) == 11 and any(f"{path}: line 5: field 'response_a'" in s for s in said)
    assert P.import_pairs(db_url, path, seed=3, log=None) == ids
    assert P.import_pairs(db_url, path, n=4, seed=3, log=None) == ids[:4]
    assert P.dataset_of(path) == ("toy", "dev")
    with session_scope(db_url) as s:
        assert {p.split for p in s.exec(select_in_pairs(ids))} == {"dev"}


def test_import_file_result_names_a_pair_stored_the_other_way_round(tmp_path, db_url):
    from w2s.store.importers import ImportConfig, import_file

    path = tmp_path / "one.jsonl"
    path.write_text(json.dumps({"prompt": "Q", "chosen": "good", "rejected": "bad"}) + "\n")
    first = import_file(path, ImportConfig(dataset="d", split="s"), url=db_url)
    mirror = tmp_path / "two.jsonl"  # the stored pair's A and B, as an export would list them
    with session_scope(db_url) as s:
        pair = s.get(Pair, first.pair_ids[0])
        mirror.write_text(
            json.dumps(
                {
                    "prompt": "Q",
                    "response_a": pair.response_b,
                    "response_b": pair.response_a,
                    "label": "b" if pair.gold == "a" else "a",
                }
            )
            + "\n"
        )
    again = import_file(mirror, ImportConfig(dataset="d", split="s"), url=db_url)
    assert again.new == 0 and again.present_reordered == 1 and again.pair_ids == first.pair_ids


def test_train_test_ids_never_share_a_pair():
    train, test = P.train_test_ids(["a", "b", "c", "d"], ["d", "c", "e", "f", "g"], train_n=3, test_n=2)
    assert train == ["a", "b", "c"] and test == ["d", "e"]


# ---------------------------------------------------------------------------------------------- trees


def test_tree_corpus_round_trip_and_trees_of(tmp_path, db_url):
    train, test = demo(db_url)
    trees = P.trees_of(db_url, train + test, TREES_BY, _config(DEMO / "trees-train.jsonl.gz"))
    with gzip.open(DEMO / "trees-train.jsonl.gz", "rt") as f:
        committed = sum(1 for line in f if line.strip())
    assert sum(p in trees for p in train) == committed and all(t.pair_id in trees for t in trees.values())
    out = tmp_path / "again.jsonl.gz"
    assert P.save_tree_corpus(db_url, out, "demo-code", "train", log=None) == committed
    assert P.import_tree_corpus(db_url, out, log=None) == 0  # all there already
    assert P.import_tree_corpus(db_url, tmp_path / "absent.jsonl.gz", log=None) == 0


def _config(corpus: Path) -> str:
    with gzip.open(corpus, "rt") as f:
        return json.loads(f.readline())["tree"]["config_hash"]


def test_ensure_trees_builds_only_the_missing_ones(tmp_path, db_url):
    from w2s.backends import get_model
    from w2s.trees import TreeConfig

    SCRIPTS["pipe-strong"] = Script(relevance={SPEC: 0.9}, verdict={SPEC: (0.9, 0.2)})
    ids = P.import_pairs(db_url, pair_file(tmp_path / "code-demo" / "dev.jsonl", 4, 0), log=None)
    strong, cfg = get_model("scripted:pipe-strong"), TreeConfig(library="correctness")
    said = []
    assert P.ensure_trees(db_url, strong, ids[:2], cfg, label="dev", log=said.append) == 2
    assert said[-1].startswith("dev trees: built 2/2")
    assert P.ensure_trees(db_url, strong, ids, cfg, log=None) == 2  # the other two
    assert P.ensure_trees(db_url, strong, ids, cfg, deadline=0.0, log=None) == 0
    assert set(P.trees_of(db_url, ids, strong.spec, cfg.hash())) == set(ids)


# ---------------------------------------------------------------------------------------------- labels


def test_scores_and_gaps_from_stored_labels(db_url):
    from seam_scripted import add_pairs

    from w2s.backends import get_model

    SCRIPTS["pipe-weak"] = Script(judge=(0.8, 0.3))  # prefers whichever response is shown first
    ids = add_pairs(db_url, 4, gold="a")
    naive = P.annotator("naive", weak=get_model("scripted:pipe-weak"))
    assert P.annotate(db_url, naive, ids, log=None) == 4 and P.annotate(db_url, naive, ids, log=None) == 0
    scores = P.score_methods(db_url, {"naive": naive}, ids)
    assert scores["pairs"] == ids and scores["methods"]["naive"]["n"] == 4
    assert scores["methods"]["naive"]["accuracy"] == sum(p > 0.5 for p in scores["p_gold"]["naive"]) / 4
    assert P.gold_probs(db_url, {"x": dict.fromkeys(ids, 0.9)}, ids) == {"x": [0.9] * 4}
    gaps = P.label_gaps({"a": [1.0, 1.0, 0.0, 1.0], "b": [0.0, 1.0, 0.0, 0.0]}, [("a", "b"), ("a", "c")])
    assert list(gaps) == ["a - b"] and gaps["a - b"]["gap"] == 0.5
    assert P.score_methods(db_url, {"naive": naive}, ["not-a-pair"])["pairs"] == []


# ------------------------------------------------------------------------------ master and the README


README_SNIPPET = re.compile(r"## From Python\n.*?```python\n(.*?)```", re.DOTALL)


@pytest.mark.slow
def test_readme_from_python_runs_as_written(tmp_path, monkeypatch, capsys):
    """The README's snippet, exactly: import, trees, master, labels on the test split, export."""
    snippet = README_SNIPPET.search((ROOT / "README.md").read_text()).group(1)
    assert 8 <= len(snippet.strip().splitlines()) <= 16
    (tmp_path / "data").symlink_to(ROOT / "data")
    monkeypatch.chdir(tmp_path)
    exec(compile(snippet, "README.md", "exec"), {})  # noqa: S102  (the README's own code)
    printed = capsys.readouterr().out
    assert "features master" in printed and "'seam-aligned': {'accuracy':" in printed
    url = P.sqlite_url(tmp_path / "out/py/w2s.db")
    test = P.split_ids(url, "demo-code", "test")
    rows = [json.loads(line) for line in (tmp_path / "out/py/seam.jsonl").read_text().splitlines()]
    assert rows and {r["pair_id"] for r in rows} <= set(test)
    masters = list((tmp_path / "out/py/masters").iterdir())
    assert len(masters) == 1 and P.load_master(masters[0]).config.strong == TREES_BY

    # the next steps: the twin's labels, both scored on the same pairs, and the gap between them
    aligned = P.annotator("aligned", master=masters[0])
    P.annotate(url, aligned, test, log=None)
    seam = P.annotator("seam-aligned", master=masters[0])
    scores = P.score_methods(url, {"seam-aligned": seam, "aligned": aligned}, test)
    assert set(scores["methods"]) == {"seam-aligned", "aligned"} and len(scores["pairs"]) == len(rows)
    gap = P.label_gaps(scores["p_gold"], [("seam-aligned", "aligned")])["seam-aligned - aligned"]
    acc = scores["methods"]
    assert gap["gap"] == pytest.approx(acc["seam-aligned"]["accuracy"] - acc["aligned"]["accuracy"])

    # the annotators and the masters trained here read one weak model (one feature cache) per process
    from w2s.masters import shared_features

    assert seam.features is aligned.features is shared_features(P.load_master(masters[0]).config)

    # a master trained again with a cache shares its features and margin, and is the same master
    train = P.split_ids(url, "demo-code", "train")
    cache = {}
    again = P.train_master(url, train, strong=TREES_BY, weak="transformers:smollm2", cache=cache)
    assert again.run_id == masters[0].name and cache["margin_pairs"] == [
        p for p in train if p in cache["margin_pairs"]
    ]
    with pytest.raises(ValueError, match="none of the 1 pairs"):
        P.train_master(url, ["no-such-pair"], strong=TREES_BY)


# --------------------------------------------------------------------------------------------- student


@pytest.mark.slow
def test_gold_rows_train_a_student(tmp_path, db_url):
    from tests.training.conftest import make_tiny_model

    P.import_pairs(db_url, DEMO / "train.jsonl", "demo-code", "train_gt", log=None)
    rows = P.gold_rows(db_url, "demo-code", "train_gt")
    assert len(rows) == 50 and all(r["soft_label"] == 1.0 and r["chosen"] != r["rejected"] for r in rows)
    with session_scope(db_url) as s:
        gold = {
            p.id: p.response_a if p.gold == "a" else p.response_b
            for p in s.exec(select_in_pairs([r["pair_id"] for r in rows]))
        }
    assert all(gold[r["pair_id"]] == r["chosen"] for r in rows)
    run = P.train_student(
        rows[:16],
        str(make_tiny_model(tmp_path / "tiny")),
        tmp_path / "student",
        epochs=1,
        batch_size=8,
        max_length=64,
        progress=False,
    )
    assert (run / "summary.json").is_file() and json.loads((run / "summary.json").read_text())["rows"] == 16


# --------------------------------------------------------------------------------------- shared helpers


def test_select_in_reads_any_number_of_ids_in_chunks(db_url):
    from sqlmodel import select

    from w2s.store import get_engine

    get_engine(db_url)
    with session_scope(db_url) as s:
        s.add_all(
            Pair(id=f"p{i:04d}", dataset="d", prompt="q", response_a="a", response_b="b") for i in range(1203)
        )
    ids = [f"p{i:04d}" for i in range(0, 1203, 2)] + ["absent"]
    with session_scope(db_url) as s:
        got = list(select_in(s, select(Pair.id), Pair.id, ids, size=100))
    assert sorted(got) == sorted(ids[:-1])
    assert [len(c) for c in chunks(range(1203))] == [500, 500, 203] and list(chunks([])) == []


def test_machine_is_one_line():
    from w2s.machine import machine

    line = machine()
    assert (
        "\n" not in line and re.match(r"\d+ cores, .+, torch .+, python \d", line) and "load average" in line
    )
