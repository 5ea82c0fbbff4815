"""Every command of `w2s import`, `w2s pairs` and `w2s users`, run through the real CLI app."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from sqlmodel import select
from typer.testing import CliRunner

from w2s.cli import app
from w2s.store import Annotation, Pair, add_annotation, session_scope
from w2s.store.auth import authenticate

DEMO = Path(__file__).resolve().parents[2] / "data" / "demo_pairs.jsonl"


@pytest.fixture
def cli():
    """Runs `w2s ARGS...` in-process against $W2S_DB (set by the db_url / store_url fixture)."""
    runner = CliRunner()

    def invoke(*args, input=None):
        return runner.invoke(app, [str(a) for a in args], input=input)

    return invoke


def test_import_demo_then_reimport_is_a_noop(cli, store_url):
    r = cli("import", DEMO, "--dataset", "demo", "--split", "test")
    assert r.exit_code == 0, r.output
    assert "30 records -> 30 new, 0 already present" in r.stdout
    r = cli("import", DEMO, "--dataset", "demo", "--split", "test")
    assert r.exit_code == 0 and "0 new, 30 already present" in r.stdout
    with session_scope(store_url) as s:
        pairs = s.exec(select(Pair)).all()
    cats = sorted(p.meta["category"] for p in pairs)
    assert cats == ["harmlessness"] * 10 + ["helpfulness"] * 10 + ["honesty"] * 10
    assert all(p.gold in ("a", "b") and p.meta["difficulty"] in ("clear", "subtle") for p in pairs)


def test_import_bad_file_exits_1_and_imports_nothing(cli, db_url, tmp_path):
    path = tmp_path / "bad.jsonl"
    path.write_text(
        '{"prompt": "q", "chosen": "good", "rejected": "bad"}\n{"prompt": "q2", "chosen": "good"}\n'
    )
    r = cli("import", path, "--dataset", "x", "--report", tmp_path / "errors.csv")
    assert r.exit_code == 1
    assert (
        f"{path}: line 2: field 'rejected': missing field" in r.stderr and "nothing was imported" in r.stderr
    )
    assert "line 2" in (tmp_path / "errors.csv").read_text()
    with session_scope(db_url) as s:
        assert s.exec(select(Pair)).all() == []


def test_import_skip_invalid_writes_report(cli, db_url, tmp_path, monkeypatch):
    path = tmp_path / "mixed.jsonl"
    path.write_text('{"prompt": "q", "chosen": "good", "rejected": "bad"}\nnot json\n')
    monkeypatch.chdir(tmp_path)
    r = cli("import", path, "--dataset", "x", "--skip-invalid")
    assert r.exit_code == 0, r.output
    assert "1 new" in r.stdout and "1 invalid skipped" in r.stdout
    (row,) = [json.loads(line) for line in (tmp_path / "mixed.skipped.jsonl").read_text().splitlines()]
    assert row["where"] == "line 2" and row["error"].startswith("malformed JSON")


def test_import_options_seed_format_and_default_dataset(cli, db_url, tmp_path):
    path = tmp_path / "pairs.data"
    path.write_text("prompt,chosen,rejected\nq,good,bad\n")
    assert cli("import", path, "--format", "xml").exit_code != 0
    r = cli("import", path, "--format", "csv", "--seed", "3", "--split", "dev")
    assert r.exit_code == 0, r.output
    with session_scope(db_url) as s:
        (p,) = s.exec(select(Pair)).all()
    assert (p.dataset, p.split, p.position_seed) == ("pairs", "dev", 3)


def test_import_missing_file(cli, db_url, tmp_path):
    r = cli("import", tmp_path / "nope.jsonl")
    assert r.exit_code == 1 and "nope.jsonl: no such file or folder" in r.stderr


def test_import_max_field_bytes(cli, db_url, tmp_path):
    path = tmp_path / "p.jsonl"
    path.write_text(json.dumps({"prompt": "q", "chosen": "g" * 50, "rejected": "bad"}) + "\n")
    r = cli("import", path, "--max-field-bytes", "10")
    assert r.exit_code == 1 and "field 'chosen': 50 bytes" in r.stderr


def test_pairs_stats_list_show(cli, store_url):
    assert "no pairs stored" in cli("pairs", "stats").stdout
    cli("import", DEMO, "--dataset", "demo", "--split", "test")
    with session_scope(store_url) as s:
        first = s.exec(select(Pair).order_by(Pair.id)).first()
        add_annotation(s, Annotation(pair_id=first.id, annotator="alice", annotator_kind="human", label="a"))
        n_a = len(s.exec(select(Pair).where(Pair.gold == "a")).all())
    r = cli("pairs", "stats")
    assert r.exit_code == 0
    row = next(line for line in r.stdout.splitlines() if "demo" in line)
    assert [c.strip() for c in row.strip("│ ").split("│")] == [
        "demo",
        "test",
        "30",
        str(n_a),
        str(30 - n_a),
        "0",
        "0",
        "1",
    ]
    r = cli("pairs", "list", "--dataset", "demo", "--limit", "5")
    assert r.exit_code == 0 and len(r.stdout.splitlines()) == 5
    r = cli("pairs", "show", first.id[:10])
    assert (
        r.exit_code == 0 and first.id in r.stdout and first.response_b in r.stdout and "category" in r.stdout
    )
    assert cli("pairs", "show", "zzz").exit_code == 1


def test_users_add_list_passwd_deactivate(cli, store_url):
    r = cli("users", "add", "alice", "--role", "admin", "--password-stdin", input="s3cret\n")
    assert r.exit_code == 0 and "added admin 'alice'" in r.stdout
    r = cli("users", "add", "bob", input="pw1\npw1\n")  # prompted twice, annotator by default
    assert r.exit_code == 0, r.output
    assert authenticate("alice", "s3cret").role == "admin" and authenticate("bob", "pw1").role == "annotator"
    assert cli("users", "add", "alice", "--password-stdin", input="x\n").exit_code == 1
    assert cli("users", "add", "carol", "--role", "boss", "--password-stdin", input="x\n").exit_code != 0
    assert cli("users", "add", "dave", "--password-stdin", input="\n").exit_code == 1
    lines = cli("users", "list").stdout.splitlines()
    assert [line.split("\t")[:3] for line in lines] == [
        ["alice", "admin", "active"],
        ["bob", "annotator", "active"],
    ]
    assert cli("users", "list", "--role", "admin").stdout.count("\n") == 1

    assert cli("users", "passwd", "bob", "--password-stdin", input="pw2\n").exit_code == 0
    assert authenticate("bob", "pw1") is None and authenticate("bob", "pw2") is not None
    assert cli("users", "passwd", "nobody", "--password-stdin", input="x\n").exit_code == 1

    assert cli("users", "deactivate", "bob").exit_code == 0
    assert authenticate("bob", "pw2") is None and "inactive" in cli("users", "list").stdout
    assert cli("users", "deactivate", "bob", "--undo").exit_code == 0
    assert authenticate("bob", "pw2") is not None


def test_help_documents_the_commands(cli):
    for args in (["import", "--help"], ["pairs", "--help"], ["users", "--help"], ["users", "add", "--help"]):
        r = cli(*args)
        assert r.exit_code == 0 and "Usage" in r.stdout


def test_db_is_taken_after_the_subcommand_and_named_when_not_the_default(cli, tmp_path, monkeypatch):
    monkeypatch.delenv("W2S_DB", raising=False)
    monkeypatch.chdir(tmp_path)
    other = tmp_path / "team.db"
    r = cli("import", DEMO, "--dataset", "demo", "--db", other)
    assert r.exit_code == 0, r.output
    assert f"w2s: store sqlite:///{other}" in r.stderr and "w2s: store" not in r.stdout
    r = cli("pairs", "stats", f"--db={other}")
    assert r.exit_code == 0 and "demo" in r.stdout
    assert not (tmp_path / "w2s.db").exists()
    monkeypatch.delenv("W2S_DB")  # the root callback exported --db for the commands of its process
    r = cli("pairs", "stats")  # the default store is not announced
    assert r.exit_code == 0 and "w2s: store" not in r.output and (tmp_path / "w2s.db").exists()


def test_tables_written_to_a_log_are_not_cut_to_80_columns():
    from w2s.cli.console import LOG_WIDTH, console

    with open("/dev/null", "w") as log:
        c = console(file=log)
        assert not c.is_terminal and c.width == LOG_WIDTH
