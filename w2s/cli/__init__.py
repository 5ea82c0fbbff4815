"""The `w2s` command line. Each command group lives in its own module under `w2s/cli/`;
packages outside the core (`annotators`, `w2s_app`) add their commands through the `w2s.cli`
entry point group, so the core never imports them."""

from __future__ import annotations

import os
from importlib import import_module
from importlib.metadata import entry_points

import typer
from typer.core import TyperGroup


class _Root(TyperGroup):
    """Takes `--db URL` anywhere on the line (`w2s pairs stats --db x.db` as well as `w2s --db x.db pairs
    stats`): the store is a property of the whole call."""

    def parse_args(self, ctx, args: list[str]) -> list[str]:
        return super().parse_args(ctx, hoist_db(args))


def hoist_db(args: list[str]) -> list[str]:
    front, rest, i = [], [], 0
    while i < len(args):
        if args[i] == "--":
            rest += args[i:]
            break
        if args[i] == "--db" and i + 1 < len(args):
            front += args[i : i + 2]
            i += 2
            continue
        (front if args[i].startswith("--db=") else rest).append(args[i])
        i += 1
    return front + rest


app = typer.Typer(
    cls=_Root,
    name="w2s",
    help="Weak-to-strong preference annotation: strong models build principle trees, the weak side decides.",
    no_args_is_help=True,
    rich_markup_mode="markdown",
    pretty_exceptions_show_locals=False,
)

CORE_MODULES = ["db", "data", "models", "users", "trees", "master", "evaluate", "labels", "train"]

# Groups that more than one module adds commands to.
eval_app = typer.Typer(help="Evaluate annotations and students.", no_args_is_help=True)
app.add_typer(eval_app, name="eval")


@app.callback()
def _root(
    db: str | None = typer.Option(
        None,
        "--db",
        envvar="W2S_DB",
        help="Database: any SQLAlchemy URL or a SQLite file path [default: w2s.db]",
    ),
) -> None:
    if db:
        os.environ["W2S_DB"] = db
    from w2s.store import db

    db.on_open = _announce  # the hook lives in w2s.store.db, where get_engine calls it


def _announce(url: str) -> None:
    """Say which store a command uses when it is not the default `w2s.db` (on stderr, once)."""
    from w2s.store import DEFAULT_DB, db_url, safe_url

    if url != db_url(DEFAULT_DB):
        typer.echo(f"w2s: store {safe_url(url)}", err=True)


def _register_all() -> None:
    for name in CORE_MODULES:
        import_module(f"w2s.cli.{name}").register(app)
    for ep in entry_points(group="w2s.cli"):
        try:
            register = ep.load()
        except ModuleNotFoundError as e:
            # metadata of an older install naming a package that has since moved (`app` became `w2s_app`):
            # say so and run without those commands, rather than fail every command
            if e.name is None or not ep.module.startswith(e.name):
                raise
            hint = f"w2s: skipped the commands of {ep.value} ({e}): reinstall w2s (pip install -e .)"
            typer.echo(hint, err=True)
            continue
        register(app)


_register_all()


def main() -> None:
    from w2s.store.schema import StoreOutOfDate

    try:
        app()
    except StoreOutOfDate as e:  # not a bug: say what to run, without a traceback
        typer.echo(f"error: {e}", err=True)
        raise SystemExit(2) from e
