"""`w2s serve`: the annotation app."""

from __future__ import annotations

import typer

ANY = "any"
"""`--strong any` / `--tree-config any`: drop the choice (serve the newest tree of any model / config)."""


def choose_trees(url: str, strong: str | None, tree_config: str | None) -> str:
    """Store which trees the project serves (`w2s_app.queue.TreeSource`) and say what that choice covers.

    `--strong` alone means any config of that model; `--tree-config` alone keeps the stored model. With
    neither, the stored choice stays."""
    from sqlalchemy import func
    from sqlmodel import select

    from w2s.store import Pair, Tree, session_scope
    from w2s_app import queue as Q

    with session_scope(url) as s:
        source = Q.load_tree_source(s)
        if strong is not None or tree_config is not None:
            model = source.strong_model if strong is None else strong
            config = tree_config or ""  # a new --strong alone drops the config chosen for the old model
            source = Q.TreeSource(*("" if v == ANY else v for v in (model, config)))
            Q.save_tree_source(s, source)
        query = select(func.count(func.distinct(Tree.pair_id)))
        if source.strong_model:
            query = query.where(Tree.strong_model == source.strong_model)
        if source.config_hash:
            query = query.where(Tree.config_hash == source.config_hash)
        with_tree, pairs = s.exec(query).one(), s.exec(select(func.count()).select_from(Pair)).one()
        covered = f"{with_tree} of {pairs} pairs have one"
        message = f"w2s: serving the newest tree of {source.describe()} ({covered})"
        if not with_tree and (source.strong_model or source.config_hash):
            built = s.exec(select(Tree.strong_model, Tree.config_hash).distinct()).all()
            listed = ", ".join(f"{m} (config {c})" for m, c in sorted(built)) or "none"
            message += f" (trees in this store: {listed}; `--strong {ANY}` serves any)"
    return message


def register(app: typer.Typer) -> None:
    @app.command()
    def serve(
        db: str | None = typer.Option(
            None, "--db", help="Database URL or SQLite path [default: $W2S_DB or w2s.db]"
        ),
        host: str = typer.Option("127.0.0.1", "--host", help="Interface to listen on (0.0.0.0 for a team)"),
        port: int = typer.Option(7860, "--port", help="Port to listen on"),
        strong: str | None = typer.Option(
            None,
            "--strong",
            help="Serve the trees of this strong model (spec as given to `w2s trees build`); stored for the "
            f"project until changed; '{ANY}': the newest tree of any model "
            "[default: the stored choice, else any]",
        ),
        tree_config: str | None = typer.Option(
            None,
            "--tree-config",
            help=f"Serve only trees of this config hash (`w2s trees show`); '{ANY}' drops it. "
            "Stored like --strong",
        ),
    ) -> None:
        """Serve the annotation app: annotators label their queues, admins watch progress and export.

        Users log in with accounts made by `w2s users add NAME --role annotator|admin`.
        """
        import os

        os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
        from w2s.store import db_url, safe_url
        from w2s_app.ui import launch

        url = db_url(db)
        typer.echo(choose_trees(url, strong, tree_config))
        typer.echo(f"w2s: serving {safe_url(url)} on http://{host}:{port}")
        launch(url, host=host, port=port, block=True)
