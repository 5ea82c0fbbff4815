"""bench/build_corpus.py: extends a pair file's corpus in the seeded order; a second process goes on further
along the order into its own database and corpus, and the two corpora merge into one tree per pair."""

import gzip
import runpy
import sys
from pathlib import Path

import pytest
from seam_scripted import SCRIPTS, Script
from test_seam_domains import pair_file

BENCH = Path(__file__).resolve().parents[2] / "bench"
SPEC = "Meets the specification and its examples"


def run(argv, monkeypatch, capsys) -> str:
    monkeypatch.setattr(sys, "argv", [str(BENCH / "build_corpus.py"), *argv])
    runpy.run_path(str(BENCH / "build_corpus.py"), run_name="__main__")
    return capsys.readouterr().out


def with_tree(url: str) -> set[str]:
    from sqlmodel import select

    from w2s.store import Tree, session_scope

    with session_scope(url) as s:
        return set(s.exec(select(Tree.pair_id)))


def corpus_lines(corpus: Path) -> int:
    return sum(1 for _ in gzip.open(corpus, "rt"))


def test_build_corpus_in_order_resumes_and_splits_across_processes(tmp_path, monkeypatch, capsys):
    sys.path.insert(0, str(BENCH))
    from common import import_sample, sqlite_url

    from w2s.store import session_scope
    from w2s.trees.corpus import import_trees

    SCRIPTS["corpus-strong"] = Script(relevance={SPEC: 0.9}, verdict={SPEC: (0.9, 0.1)})
    pairs = pair_file(tmp_path / "code-demo" / "dev.jsonl", 8, 0)
    order = import_sample(pairs, sqlite_url(tmp_path / "order.db"))
    first, second = tmp_path / "first.jsonl.gz", tmp_path / "second.jsonl.gz"
    common = [str(pairs), "--strong", "scripted:corpus-strong", "--save-every", "2"]
    out = run(
        [*common, "--n", "6", "--db", str(tmp_path / "a.db"), "--corpus", str(first)], monkeypatch, capsys
    )
    assert "built 6 trees for 6 pairs" in out
    assert (
        with_tree(sqlite_url(tmp_path / "a.db")) == set(order[:6]) and corpus_lines(first) == 6
    )  # in seeded order
    again = run(
        [*common, "--n", "6", "--db", str(tmp_path / "fresh.db"), "--corpus", str(first)], monkeypatch, capsys
    )
    assert "built 0 trees" in again  # a fresh database reads the corpus: nothing is built twice

    with pytest.raises(SystemExit):  # a second process without its own files would clobber the first's corpus
        run([*common, "--start", "6"], monkeypatch, capsys)
    assert "--start needs its own --db and --corpus" in capsys.readouterr().err
    out = run(
        [*common, "--start", "6", "--db", str(tmp_path / "b.db"), "--corpus", str(second)],
        monkeypatch,
        capsys,
    )
    assert "built 2 trees for 2 pairs" in out and with_tree(sqlite_url(tmp_path / "b.db")) == set(order[6:])

    out = run(
        [str(pairs), "--merge", str(second), "--db", str(tmp_path / "a.db"), "--corpus", str(first)],
        monkeypatch,
        capsys,
    )
    assert (
        "saved 8 trees" in out and corpus_lines(first) == 8
    )  # the second process's trees joined the first's
    again = run(
        [
            *common,
            "--n",
            "2",
            "--set",
            "tau_exit=0.9",
            "--db",
            str(tmp_path / "short.db"),
            "--corpus",
            str(first),
        ],
        monkeypatch,
        capsys,
    )
    assert "built 2 trees" in again and corpus_lines(first) == 10  # a short sample keeps the others' trees
    url = sqlite_url(tmp_path / "order.db")  # merged: every pair of the file has its one tree
    with session_scope(url) as s:
        reports = [import_trees(s, path) for path in (first, second)]
    assert [r.added for r in reports] == [10, 0] and with_tree(url) == set(order)
    with pytest.raises(SystemExit):
        run([str(pairs)], monkeypatch, capsys)
    assert "--strong is required (unless --merge)" in capsys.readouterr().err
