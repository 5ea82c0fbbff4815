"""Portable tree corpora (`w2s trees export` / `import`) and each tree's own cost figures."""

import gzip
import json

import pytest
from seam_scripted import add_pairs
from sqlmodel import func, select
from typer.testing import CliRunner

from w2s.cli import app
from w2s.store import Node, Pair, Tree, session_scope
from w2s.trees import TreeConfig, build_trees
from w2s.trees.corpus import CorpusError, content_key, import_trees, read_corpus

CRIME, PRIVACY = "No help with crime", "Respect privacy"
runner = CliRunner()


def flat(result) -> str:
    """The command's output with rich's line wrapping undone."""
    return " ".join(result.output.split())


def nodes_by_pair(url):
    with session_scope(url) as s:
        out = {}
        for tree in s.exec(select(Tree)):
            pair = s.get(Pair, tree.pair_id)
            nodes = s.exec(select(Node).where(Node.tree_id == tree.id).order_by(Node.position))
            out[content_key(pair.prompt, pair.response_a, pair.response_b)] = (
                {k: getattr(tree, k) for k in ("strong_model", "config_hash", "config", "tokens", "seconds")},
                [n.model_dump(exclude={"id", "tree_id"}) for n in nodes],
            )
        return out


@pytest.fixture
def built(scripted, db_url):
    ids = add_pairs(db_url, 4)
    model = scripted(relevance={CRIME: 0.9, PRIVACY: 0.8}, verdict={CRIME: (0.65, 0.35), PRIVACY: (0.9, 0.1)})
    build_trees(model, ids, TreeConfig(), url=db_url, in_flight=3)
    return ids, model


def test_export_import_round_trip_gives_identical_nodes(built, db_url, tmp_path, monkeypatch):
    corpus = tmp_path / "trees.jsonl.gz"
    result = runner.invoke(app, ["trees", "export", "--out", str(corpus)])
    assert result.exit_code == 0, result.output
    assert "exported 4 trees" in flat(result)
    before = nodes_by_pair(db_url)

    other = f"sqlite:///{tmp_path / 'other.db'}"
    monkeypatch.setenv("W2S_DB", other)
    add_pairs(other, 3)  # the same pairs' content (one of the four missing), under the same dataset
    result = runner.invoke(app, ["trees", "import", str(corpus)])
    assert result.exit_code == 0, result.output
    assert "4 trees read, 3 added" in flat(result) and "1 whose pair is not in this store" in flat(result)
    after = nodes_by_pair(other)
    assert after == {k: v for k, v in before.items() if k in after} and len(after) == 3

    result = runner.invoke(app, ["trees", "import", str(corpus)])  # twice: nothing more
    assert "0 added" in flat(result) and "3 already stored" in flat(result)
    with session_scope(other) as s:
        assert s.exec(select(func.count()).select_from(Tree)).one() == 3


def test_pair_stored_the_other_way_round_gets_the_mirrored_tree(built, db_url, tmp_path):
    corpus = tmp_path / "t.jsonl.gz"
    assert runner.invoke(app, ["trees", "export", "--out", str(corpus)]).exit_code == 0
    other = f"sqlite:///{tmp_path / 'swapped.db'}"
    with session_scope(db_url) as s:
        pair = s.exec(select(Pair).order_by(Pair.id)).first()
        s.expunge(pair)
    original = nodes_by_pair(db_url)[content_key(pair.prompt, pair.response_a, pair.response_b)][1]
    with session_scope(other) as o:
        o.add(
            Pair(
                id="mirror",
                dataset="elsewhere",
                prompt=pair.prompt,
                response_a=pair.response_b,
                response_b=pair.response_a,
            )
        )
    with session_scope(other) as o:
        report = import_trees(o, corpus)
    assert report.added == 1 and report.mirrored == 1
    with session_scope(other) as o:
        nodes = list(o.exec(select(Node).order_by(Node.position)))
    assert [n.p_a for n in nodes] == pytest.approx([n["p_b"] for n in original])
    assert (
        nodes[0].thought.replace("Reply A", "X").replace("Reply B", "Reply A").replace("X", "Reply B")
        == original[0]["thought"]
    )


def test_corrupt_line_names_it_and_imports_nothing(built, db_url, tmp_path):
    corpus = tmp_path / "t.jsonl.gz"
    assert runner.invoke(app, ["trees", "export", "--out", str(corpus)]).exit_code == 0
    lines = gzip.decompress(corpus.read_bytes()).decode().splitlines()
    bad = json.loads(lines[2])
    del bad["nodes"][0]["p_a"]
    broken = tmp_path / "broken.jsonl.gz"
    broken.write_bytes(
        gzip.compress(("\n".join([lines[0], lines[1], json.dumps(bad), lines[3]]) + "\n").encode())
    )
    with pytest.raises(CorpusError, match=r"broken.jsonl.gz:3: field 'nodes\[0\].p_a' is missing"):
        read_corpus(broken)
    other = f"sqlite:///{tmp_path / 'o.db'}"
    add_pairs(other, 4)
    result = runner.invoke(app, ["--db", other, "trees", "import", str(broken)])
    assert result.exit_code == 1 and ":3:" in flat(result) and "nothing imported" in flat(result)
    with session_scope(other) as s:
        assert s.exec(select(func.count()).select_from(Tree)).one() == 0


def test_export_refuses_an_existing_file(built, tmp_path):
    target = tmp_path / "mine.jsonl.gz"
    target.write_text("not ours")
    result = runner.invoke(app, ["trees", "export", "--out", str(target)])
    assert result.exit_code == 1 and "exists" in flat(result)
    assert target.read_text() == "not ours"


def test_each_tree_is_charged_its_own_tokens(scripted, db_url):
    from seam_scripted import add_pairs as add

    ids = add(db_url, 3)
    with session_scope(db_url) as s:  # a longer prompt for one pair: its tree must cost more
        s.get(Pair, ids[1]).prompt = "How do I do this much longer thing " * 20
    model = scripted(relevance={CRIME: 0.9}, verdict={CRIME: (0.9, 0.1)})
    used = model.usage.prompt_tokens + model.usage.completion_tokens
    build_trees(model, ids, TreeConfig(), url=db_url, in_flight=3)
    with session_scope(db_url) as s:
        trees = {t.pair_id: t for t in s.exec(select(Tree))}
        nodes = list(s.exec(select(Node)))
    total = model.usage.prompt_tokens + model.usage.completion_tokens - used
    assert sum(t.tokens for t in trees.values()) == total  # per-tree figures add up to the batch's
    assert trees[ids[1]].tokens > trees[ids[0]].tokens == trees[ids[2]].tokens
    for t in trees.values():  # a tree's tokens: its relevance pass plus its nodes
        assert t.tokens > sum(n.tokens for n in nodes if n.tree_id == t.id) > 0
