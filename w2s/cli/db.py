"""`w2s db upgrade` and `w2s db current`: the store's schema revision (Alembic, w2s/store/migrations/)."""

from __future__ import annotations

import typer

from w2s.cli.console import console

out = console()
db_app = typer.Typer(
    help="The store's schema: which revision it has, and upgrading it.", no_args_is_help=True
)


@db_app.command("current")
def current() -> None:
    """Print the store's schema revision and the one this w2s needs."""
    from w2s.store import db_url, make_engine, safe_url
    from w2s.store.schema import current as current_rev
    from w2s.store.schema import head

    engine = make_engine(db_url())
    with engine.connect() as conn:
        rev = current_rev(conn)
    engine.dispose()
    state = "empty" if rev is None else "up to date" if rev == head() else "behind: run `w2s db upgrade`"
    out.print(f"{safe_url(engine.url)}: revision {rev or '-'} (this w2s needs {head()}; {state})")


@db_app.command("upgrade")
def upgrade(revision: str = typer.Argument("head", help="Target revision.")) -> None:
    """Migrate the store to the newest schema, keeping every row (back it up first: a migration of a
    team database cannot be undone by w2s)."""
    from w2s.store import db_url, make_engine, safe_url
    from w2s.store.schema import upgrade as run_upgrade

    engine = make_engine(db_url())
    before, after = run_upgrade(engine, revision)
    engine.dispose()
    out.print(f"{safe_url(engine.url)}: revision {before or '-'} -> {after}")


def register(app: typer.Typer) -> None:
    app.add_typer(db_app, name="db")
