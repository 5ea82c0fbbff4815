"""Schema migrations (Alembic, w2s/store/migrations/): a store made by the last w2s before migrations
(fixtures/v0.db, written by fixtures/make_v0.py at commit 5758463) is refused until `w2s db upgrade`,
then upgrades on SQLite and PostgreSQL with every row kept; a new store equals the migrated schema."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlmodel import SQLModel, select
from typer.testing import CliRunner

from w2s.cli import app, main
from w2s.store import Annotation, Pair, get_engine, make_engine, session_scope
from w2s.store.schema import BASELINE, StoreOutOfDate, head

FIXTURE = Path(__file__).parent / "fixtures" / "v0.db"
runner = CliRunner()
ORDER = [
    "pair",
    "principle",
    "tree",
    "node",
    "user",
    "annotation",
    "labelset",
    "job",
    "draft",
    "setting",
    "queueitem",
    "queuepool",
]


def v0_rows() -> dict[str, list[dict]]:
    """Every row of the fixture, by table, as the old schema stored it (ordered by primary key)."""
    engine = sa.create_engine(f"sqlite:///{FIXTURE}")
    meta = sa.MetaData()
    meta.reflect(engine)
    with engine.connect() as conn:
        out = {
            t: [
                dict(r._mapping)
                for r in conn.execute(meta.tables[t].select().order_by(*meta.tables[t].primary_key.columns))
            ]
            for t in ORDER
        }
    engine.dispose()
    return out


def rows_now(url: str, old: dict[str, list[dict]]) -> dict[str, list[dict]]:
    """The same tables and columns, read from the upgraded store."""
    engine = make_engine(url)
    meta = sa.MetaData()
    meta.reflect(engine)
    with engine.connect() as conn:
        out = {}
        for t, rows in old.items():
            table = meta.tables[t]
            cols = [table.c[c] for c in rows[0]] if rows else list(table.c)
            out[t] = [
                dict(r._mapping) for r in conn.execute(sa.select(*cols).order_by(*table.primary_key.columns))
            ]
    engine.dispose()
    return out


def same_values(a: dict[str, list[dict]], b: dict[str, list[dict]]) -> None:
    assert {t: len(r) for t, r in a.items()} == {t: len(r) for t, r in b.items()}
    for t, rows in a.items():
        for old, new in zip(rows, b[t]):
            for col, value in old.items():
                if hasattr(value, "tzinfo") and hasattr(new[col], "tzinfo"):  # PostgreSQL adds the zone
                    assert value.replace(tzinfo=None) == new[col].replace(tzinfo=None), (t, col)
                else:
                    assert value == new[col], (t, col, value, new[col])


def schema_diff(url: str) -> list:
    engine = make_engine(url)
    with engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), SQLModel.metadata)
    engine.dispose()
    return diff


def check_upgraded(url: str, old: dict) -> None:
    same_values(old, rows_now(url, old))
    assert schema_diff(url) == []
    with session_scope(url) as s:
        anns = s.exec(select(Annotation).order_by(Annotation.id)).all()
        human = [a.producer for a in anns if a.annotator_kind == "human"]
        model = {(a.method, a.producer) for a in anns if a.annotator_kind == "model"}
        assert human == ["", ""]
        assert len({p for _, p in model}) == 2 and all(p.startswith("v0-") for _, p in model)
        assert s.get(Pair, "p0").meta == {"row": 0, "tags": ["x", "é"]}
    # a new run of the same method stores beside the old rows; its producer is hex only, never 'v0-…'
    from annotators.base import get_annotator
    from w2s.backends import Model

    class Fixed(Model):
        spec = "transformers:smollm2"

        def score_choices(self, prompts, choices):
            return [[0.7, 0.3] for _ in prompts]

        def generate(self, prompts, max_tokens=64, **kw):
            raise AssertionError("not used")

    ann = get_annotator("naive", Fixed())
    with session_scope(url) as s:
        added = ann.annotate(s.exec(select(Pair)).all(), session=s)
    assert len(added) == 4
    with session_scope(url) as s:
        producers = {a.producer for a in s.exec(select(Annotation).where(Annotation.method == "naive"))}
    assert len(producers) == 2 and ann.producer_hash() in producers
    assert all(c in "0123456789abcdef" for c in ann.producer_hash())


def test_an_old_sqlite_store_is_refused_then_upgrades_keeping_every_row(tmp_path, monkeypatch, capsys):
    old = v0_rows()
    path = tmp_path / "old.db"
    shutil.copy(FIXTURE, path)
    url = f"sqlite:///{path}"
    monkeypatch.setenv("W2S_DB", url)
    with pytest.raises(
        StoreOutOfDate, match=r"revision 0001, this w2s needs .*run `w2s --db '.*old.db' db upgrade`"
    ):
        get_engine(url)
    # the command line says so without a traceback, and the app refuses to start
    monkeypatch.setattr("sys.argv", ["w2s", "pairs", "stats"])
    with pytest.raises(SystemExit) as exit_:
        main()
    assert exit_.value.code == 2 and "db upgrade" in capsys.readouterr().err
    from w2s_app.ui import launch

    with pytest.raises(StoreOutOfDate, match="db upgrade"):
        launch(url, block=False)
    assert "revision 0001" in runner.invoke(app, ["db", "current"]).output
    result = runner.invoke(app, ["db", "upgrade"])
    assert result.exit_code == 0 and f"revision {BASELINE} -> {head()}" in result.output, result.output
    assert "up to date" in runner.invoke(app, ["db", "current"]).output
    check_upgraded(url, old)


@pytest.mark.postgres
def test_an_old_postgresql_store_upgrades_keeping_every_row(pg_url):
    """The fixture's rows copied into a PostgreSQL database with the baseline schema and no version
    table (what `create_all` of the old w2s left), then upgraded."""
    from alembic import command

    from w2s.store.schema import _config

    old = v0_rows()
    engine = make_engine(pg_url)
    with engine.begin() as conn:
        command.upgrade(_config(conn), BASELINE)
        conn.execute(sa.text("DROP TABLE alembic_version"))
        meta = sa.MetaData()
        meta.reflect(conn)
        for t in ORDER:
            if old[t]:
                conn.execute(meta.tables[t].insert(), old[t])
            if old[t] and isinstance(
                old[t][0].get("id"), int
            ):  # the old server's sequences were past these ids
                conn.execute(
                    sa.text(
                        f"SELECT setval(pg_get_serial_sequence('\"{t}\"', 'id'), {max(r['id'] for r in old[t])})"
                    )
                )
    engine.dispose()
    with pytest.raises(StoreOutOfDate, match="db upgrade"):
        get_engine(pg_url)
    result = runner.invoke(app, ["--db", pg_url, "db", "upgrade"])
    assert result.exit_code == 0 and f"revision {BASELINE} -> {head()}" in result.output, result.output
    check_upgraded(pg_url, old)


def test_a_new_store_is_created_at_the_newest_revision_and_equals_the_migrated_one(store_url, tmp_path):
    get_engine(store_url)
    assert "up to date" in runner.invoke(app, ["--db", store_url, "db", "current"]).output
    assert schema_diff(store_url) == []
    # the migrations alone, from an empty database, build the same schema
    empty = f"sqlite:///{tmp_path / 'empty.db'}"
    assert runner.invoke(app, ["--db", empty, "db", "upgrade"]).exit_code == 0
    assert schema_diff(empty) == []


def test_a_store_of_an_unknown_revision_is_refused(db_url):
    get_engine(db_url)
    engine = make_engine(db_url)
    with engine.begin() as conn:
        conn.execute(sa.text("UPDATE alembic_version SET version_num = 'ffff'"))
    engine.dispose()
    from w2s.store import db as store

    store._engines.clear()
    with pytest.raises(StoreOutOfDate, match="unknown to this w2s"):
        get_engine(db_url)


def test_a_store_that_already_has_cached_tokens_upgrades(tmp_path):
    """main added Tree/Node.cached_tokens by create_all before this revision existed: such a store (no
    version table, the columns there) upgrades too."""
    path = tmp_path / "interim.db"
    shutil.copy(FIXTURE, path)
    url = f"sqlite:///{path}"
    engine = make_engine(url)
    with engine.begin() as conn:
        for table in ("tree", "node"):
            conn.execute(sa.text(f"ALTER TABLE {table} ADD COLUMN cached_tokens INTEGER NOT NULL DEFAULT 0"))
    engine.dispose()
    result = runner.invoke(app, ["--db", url, "db", "upgrade"])
    assert result.exit_code == 0 and f"-> {head()}" in result.output, result.output
    assert schema_diff(url) == []


def test_messages_name_a_store_without_its_password():
    from w2s.store import safe_url

    url = "postgresql://w2s:S3cret-pw@db.example:5432/w2s"
    # text from --db and an engine's URL (what `w2s db current` and StoreOutOfDate show) read the same
    assert (
        safe_url(url) == safe_url(make_engine(url).url) == "postgresql+psycopg://w2s:***@db.example:5432/w2s"
    )


def test_a_store_of_the_previous_revision_upgrades_and_holds_one_tree_per_pair_model_and_config(store_url):
    """0002 -> 0003 adds the work-item table of shared builds; the one-tree rule (a unique constraint since
    the baseline) is what turns two workers saving the same tree into one row and one lost race."""
    from alembic import command
    from sqlalchemy.exc import IntegrityError

    from w2s.store.schema import _config

    engine = make_engine(store_url)
    with engine.begin() as conn:
        command.upgrade(_config(conn), "0002")
        conn.execute(
            sa.text(
                "INSERT INTO pair (id, dataset, split, prompt, response_a, response_b, source, swapped, "
                "created_at) VALUES ('p', 'd', '', 'q', 'a', 'b', '', false, '2024-01-01')"
            )
        )
        tree = (
            "INSERT INTO tree (pair_id, strong_model, library, config_hash, depth, backtraces, tokens, seconds, "
            "cached_tokens, created_at) VALUES ('p', 's', 'l', 'c', 0, 0, 0, 0, 0, '2024-01-01')"
        )
        conn.execute(sa.text(tree))
    engine.dispose()
    result = runner.invoke(app, ["--db", store_url, "db", "upgrade"])
    assert result.exit_code == 0 and f"revision 0002 -> {head()}" in result.output, result.output
    assert schema_diff(store_url) == []
    engine = make_engine(store_url)
    with pytest.raises(IntegrityError), engine.begin() as conn:
        conn.execute(sa.text(tree))
    with engine.connect() as conn:
        assert conn.execute(sa.text("SELECT count(*) FROM tree")).scalar() == 1
    engine.dispose()


def test_a_store_at_the_revision_before_saved_masters_upgrades_and_keeps_masters(tmp_path):
    """0004 adds saved_master: a store made at 0003 (with a pair in it) is refused, upgrades, keeps its
    rows, and then keeps a master under a name."""
    from alembic import command

    from w2s.masters import Master, load_saved, save_master
    from w2s.store.schema import _config

    url = f"sqlite:///{tmp_path / 'at0003.db'}"
    engine = make_engine(url)
    with engine.begin() as conn:
        command.upgrade(_config(conn), "0003")
        conn.execute(
            sa.text(
                "INSERT INTO pair (id, dataset, split, prompt, response_a, response_b, source, swapped, "
                "meta, created_at) VALUES ('p0', 'd', '', 'q', 'a', 'b', '', 0, '{}', '2024-01-01')"
            )
        )
        assert not sa.inspect(conn).has_table("saved_master")
    engine.dispose()
    with pytest.raises(StoreOutOfDate, match="revision 0003"):
        get_engine(url)
    result = runner.invoke(app, ["--db", url, "db", "upgrade"])
    assert result.exit_code == 0 and f"0003 -> {head()}" in result.output, result.output
    assert schema_diff(url) == []
    run = Path(__file__).parents[1] / "seam" / "fixtures" / "master_runs" / "features-auto"
    master = Master.load(run)
    with session_scope(url) as s:
        assert s.get(Pair, "p0").prompt == "q"
        save_master(s, master, "js")
    with session_scope(url) as s:
        assert load_saved(s, "js") == master
