"""`w2s serve`: the annotation app."""

from __future__ import annotations

import typer


def register(app: typer.Typer) -> None:
    @app.command()
    def serve(
        db: str | None = typer.Option(
            None, "--db", help="Database URL or SQLite path [default: $W2S_DB or w2s.db]"
        ),
        host: str = typer.Option("127.0.0.1", "--host", help="Interface to listen on (0.0.0.0 for a team)"),
        port: int = typer.Option(7860, "--port", help="Port to listen on"),
    ) -> None:
        """Serve the annotation app: annotators label their queues, admins watch progress and export.

        Users log in with accounts made by `w2s users add NAME --role annotator|admin`.
        """
        import os

        os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
        from app.ui import launch
        from w2s.store import db_url, safe_url

        url = db_url(db)
        typer.echo(f"w2s: serving {safe_url(url)} on http://{host}:{port}")
        launch(url, host=host, port=port, block=True)
