"""`w2s import` and `w2s pairs ...`: bring preference pairs into the store and look at them."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    TextColumn,
    TimeRemainingColumn,
)
from rich.table import Table
from sqlalchemy import case, func
from sqlmodel import select

from w2s.cli.console import CliProgress, console
from w2s.store import Annotation, Pair, session_scope
from w2s.store.importers import FORMATS, ImportConfig, ImportFailed, detect_format, import_file, write_report

pairs_app = typer.Typer(help="Look at the stored preference pairs.", no_args_is_help=True)
err = console(True)
out = console()


def import_cmd(
    file: Path = typer.Argument(
        ..., help="JSONL, CSV/TSV or Parquet file, or a `datasets.save_to_disk` folder."
    ),
    dataset: str | None = typer.Option(
        None, "--dataset", "-d", help="Dataset name [default: the file's stem]."
    ),
    split: str = typer.Option("train", "--split", "-s", help="Split name stored on every pair."),
    seed: int = typer.Option(0, help="Seed of the A/B position randomisation of pairs with chosen/rejected."),
    fmt: str = typer.Option("auto", "--format", "-f", help=f"One of: {', '.join(FORMATS)}."),
    skip_invalid: bool = typer.Option(
        False, "--skip-invalid", help="Import the valid records, report the rest."
    ),
    report: Path | None = typer.Option(
        None,
        help="Where to write the invalid records (JSONL, or CSV for a .csv path) "
        "[default with --skip-invalid: ./<stem>.skipped.jsonl].",
    ),
    max_field_bytes: int = typer.Option(1_000_000, help="Largest accepted text field in UTF-8 bytes."),
    progress: bool = typer.Option(True, help="Show a progress bar (on a terminal)."),
) -> None:
    """Import preference pairs from FILE into the store.

    Record formats: HH-RLHF `{chosen, rejected}`, TRL `{prompt, chosen, rejected}` and
    `{prompt, response_a, response_b, label}`; other fields are kept as metadata. The whole file is one
    transaction: an invalid record means nothing is imported, unless `--skip-invalid`. Re-importing a file
    adds nothing (pair ids are content hashes).
    """
    if fmt not in FORMATS:
        raise typer.BadParameter(f"expected one of {', '.join(FORMATS)}", param_hint="--format")
    try:
        fmt = detect_format(file) if fmt == "auto" else fmt
    except ImportFailed as e:
        typer.echo(str(e), err=True)
        raise typer.Exit(1) from None
    config = ImportConfig(
        dataset=dataset or file.stem,
        split=split,
        seed=seed,
        format=fmt,
        skip_invalid=skip_invalid,
        max_field_bytes=max_field_bytes,
    )
    bar = CliProgress(
        TextColumn("importing"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        console=err,
        transient=True,
        disable=not (progress and err.is_terminal),
    )
    task = bar.add_task("records imported", total=None)
    try:
        with bar:
            result = import_file(
                file,
                config,
                on_start=lambda total: bar.update(task, total=total),
                on_progress=lambda n: bar.advance(task, n),
            )
    except ImportFailed as e:
        if report and e.errors:
            write_report(e.errors, report)
            typer.echo(f"invalid records written to {report}", err=True)
        typer.echo(str(e), err=True)
        raise typer.Exit(1) from None
    if result.skipped:
        path = write_report(result.skipped, report or Path(f"{file.stem}.skipped.jsonl"))
        typer.echo(f"{len(result.skipped)} invalid record(s) skipped; report: {path}", err=True)
    typer.echo(result.summary())


@pairs_app.command("stats")
def stats(dataset: str | None = typer.Option(None, "--dataset", "-d")) -> None:
    """Counts per dataset and split: pairs, gold labels, pairs with annotations."""
    annotated = select(Annotation.pair_id).distinct()
    with session_scope() as s:
        q = (
            select(
                Pair.dataset,
                Pair.split,
                func.count(),
                *(func.sum(case((Pair.gold == g, 1), else_=0)) for g in ("a", "b", "tie")),
                func.sum(case((Pair.gold.is_(None), 1), else_=0)),
                func.sum(case((Pair.id.in_(annotated), 1), else_=0)),
            )
            .group_by(Pair.dataset, Pair.split)
            .order_by(Pair.dataset, Pair.split)
        )
        if dataset:
            q = q.where(Pair.dataset == dataset)
        rows = s.exec(q).all()
    if not rows:
        typer.echo("no pairs stored")
        return
    table = Table("dataset", "split", "pairs", "gold a", "gold b", "tie", "no gold", "annotated")
    for row in rows:
        table.add_row(*(str(v or 0) if i > 1 else str(v) for i, v in enumerate(row)))
    out.print(table)


@pairs_app.command("list")
def list_pairs(
    dataset: str | None = typer.Option(None, "--dataset", "-d"),
    split: str | None = typer.Option(None, "--split", "-s"),
    limit: int = typer.Option(20, "--limit", "-n"),
) -> None:
    """Pair ids with their gold label and the start of the prompt."""
    with session_scope() as s:
        q = select(Pair).order_by(Pair.dataset, Pair.split, Pair.created_at, Pair.id).limit(limit)
        if dataset:
            q = q.where(Pair.dataset == dataset)
        if split:
            q = q.where(Pair.split == split)
        pairs = s.exec(q).all()
    for p in pairs:
        prompt = " ".join(p.prompt.split())[:70]
        typer.echo(f"{p.id}  {p.dataset}/{p.split}  gold={p.gold or '-'}  {prompt}")


@pairs_app.command("show")
def show(pair_id: str = typer.Argument(..., help="A pair id or a unique prefix of one.")) -> None:
    """One pair in full."""
    with session_scope() as s:
        found = s.exec(select(Pair).where(Pair.id.startswith(pair_id)).limit(2)).all()
    if len(found) != 1:
        typer.echo(f"{'no pair' if not found else 'more than one pair'} matches {pair_id!r}", err=True)
        raise typer.Exit(1)
    p = found[0]
    typer.echo(
        f"id: {p.id}\ndataset: {p.dataset}  split: {p.split}  gold: {p.gold}  swapped: {p.swapped}  "
        f"position_seed: {p.position_seed}\nsource: {p.source}"
    )
    if p.meta:
        typer.echo(f"meta: {p.meta}")
    for title, text in (("PROMPT", p.prompt), ("RESPONSE A", p.response_a), ("RESPONSE B", p.response_b)):
        typer.echo(f"\n--- {title} ---\n{text}")


def register(app: typer.Typer) -> None:
    app.command("import")(import_cmd)
    app.add_typer(pairs_app, name="pairs")
