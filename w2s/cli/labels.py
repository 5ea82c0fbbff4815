"""`w2s labels build|list|report` and `w2s export`: from annotations to a label set, and out to training."""

from __future__ import annotations

from enum import Enum
from pathlib import Path

import typer
from rich.progress import MofNCompleteColumn, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table

from w2s.cli.console import CliProgress, console
from w2s.labels.aggregate import build_label_set, parse_weights
from w2s.store import session_scope

labels_app = typer.Typer(
    help="Aggregate annotations into label sets and report on them.", no_args_is_help=True
)
err = console(True)
out = console()


class Method(str, Enum):
    majority = "majority"
    soft = "soft"
    dawid_skene = "dawid-skene"


class Format(str, Enum):
    jsonl = "jsonl"
    parquet = "parquet"
    hf = "hf"


@labels_app.command("build")
def build_cmd(
    method: Method = typer.Option(
        Method.majority, "--method", "-m", help="How several answers become one label."
    ),
    name: str = typer.Option(
        "default", "--name", "-n", help="Label set name; rebuilding a name replaces it."
    ),
    filter_entropy: float | None = typer.Option(
        None,
        "--filter-entropy",
        min=0,
        max=100,
        help="Keep pairs whose answer entropy is <= this percentile of all entropies (Guo & Yang: 50).",
    ),
    weights: str = typer.Option(
        "softmax:0.2", help="Reliability weights: softmax:T (w_k = softmax(p_k/T)) or none."
    ),
    annotators: list[str] | None = typer.Option(
        None, "--annotators", "-a", help="Only these annotators (repeat)."
    ),
    methods: list[str] | None = typer.Option(
        None, "--methods", help="Only these annotation methods (repeat)."
    ),
    variants: bool = typer.Option(
        True, help="Count answers of prompt variants (--no-variants: canonical only)."
    ),
    masters: list[str] | None = typer.Option(
        None,
        "--master",
        help="Only the labels of this master (repeat): a saved master's name or a run directory; "
        "the same as -a master:RUN_ID.",
    ),
) -> None:
    """Aggregate the current annotations into the label set NAME, in one transaction.

    Ties: a draw between the top labels gives 'tie' (never a coin flip); export skips ties.
    """
    try:
        temperature = parse_weights(weights)
    except ValueError as e:
        raise typer.BadParameter(str(e), param_hint="--weights") from None
    if masters:
        from w2s.masters import resolve_master

        try:
            annotators = [*(annotators or []), *(f"master:{resolve_master(m).run_id}" for m in masters)]
        except (FileNotFoundError, ValueError) as e:
            raise typer.BadParameter(str(e), param_hint="--master") from None
    with session_scope() as session:
        rep = build_label_set(
            session,
            name=name,
            method=method.value,
            temperature=temperature,
            filter_percentile=filter_entropy,
            annotators=annotators,
            methods=methods,
            include_variants=variants,
        )
    if rep.n_pairs == 0:
        err.print("[yellow]no annotations matched: the label set is empty[/yellow]")
    filtered = (
        f", {rep.n_filtered} filtered out above entropy {rep.entropy_threshold:.4f}"
        if rep.entropy_threshold is not None
        else ""
    )
    out.print(
        f"label set '{rep.name}' ({rep.method}): {rep.n_written} pairs written{filtered}, {rep.n_ties} ties"
    )


@labels_app.command("list")
def list_cmd() -> None:
    """The label sets in the store, with their sizes and mean weight."""
    from sqlalchemy import func, select

    from w2s.store import LabelSet

    with session_scope() as session:
        rows = session.execute(
            select(
                LabelSet.name,
                func.min(LabelSet.method),
                func.count(),
                func.avg(LabelSet.weight),
                func.avg(LabelSet.entropy),
            )
            .group_by(LabelSet.name)
            .order_by(LabelSet.name)
        ).all()
    table = Table("name", "method", "pairs", "mean weight", "mean entropy")
    for name, method, n, w, h in rows:
        table.add_row(name, method, str(n), f"{w:.3f}", f"{h:.3f}")
    out.print(table)


@labels_app.command("report")
def report_cmd(
    out_dir: Path = typer.Option(
        ..., "--out", "-o", help="Folder for the PNG plots, CSV tables and report.md."
    ),
    name: str = typer.Option("default", "--name", "-n", help="Label set to report on."),
    buckets: int = typer.Option(5, min=1, help="Entropy buckets (one per value when fewer distinct values)."),
) -> None:
    """Entropy bucket vs weak-label accuracy (bar chart) and weak label vs gold (heatmap), for the pairs
    of the label set that have gold."""
    from w2s.labels.calibration import write_report

    with session_scope() as session:
        try:
            summary = write_report(session, out_dir, name, buckets)
        except ValueError as e:
            err.print(f"[red]{e}[/red]")
            raise typer.Exit(1) from None
    table = Table(
        "entropy (nats)", "n", "accuracy", title=f"'{name}' vs gold: accuracy {summary['accuracy']:.3f}"
    )
    for b in summary["buckets"]:
        table.add_row(b.name, str(b.n), f"{b.accuracy:.3f}")
    out.print(table)
    out.print(f"wrote {out_dir}/entropy_accuracy.png, heatmap.png, *.csv, report.md")


def export_cmd(
    out_path: Path = typer.Option(..., "--out", "-o", help="Output file (jsonl, parquet) or folder (hf)."),
    fmt: Format = typer.Option(
        Format.jsonl, "--format", "-f", help="jsonl, parquet, or hf (datasets.save_to_disk)."
    ),
    label_set: str = typer.Option("default", "--label-set", "-l", help="Label set to export."),
    min_weight: float = typer.Option(0.0, "--min-weight", help="Leave out rows whose weight is below W."),
    include_variants: bool = typer.Option(
        False,
        "--include-variants",
        help="One row per distinct answer a pair received, weighted by that answer's reliability weight.",
    ),
    raw: bool = typer.Option(
        False, "--raw", help="Every annotation row (all annotators, nodes consulted/pruned)."
    ),
) -> None:
    """Export a label set as {prompt, chosen, rejected, weight, soft_label, entropy, n_votes, pair_id, source}
    rows for TRL's RewardTrainer / DPOTrainer, or with --raw every annotation for audit.

    soft_label is P(chosen is better). Pairs labelled 'tie' are skipped (a tie names no chosen response).
    The file appears only when complete (written to a temporary name, then renamed).

    TRL's trainers read prompt/chosen/rejected and ignore weight and soft_label (every pair then counts
    fully, as a hard label); w2s.training.trl_reward.WeightedRewardTrainer is a RewardTrainer that uses
    both, and `w2s train` uses both for every objective.
    """
    from w2s.store.export import ExportError, export_label_set, iter_raw_rows, label_set_names, write_raw

    bar = CliProgress(
        SpinnerColumn(),
        TextColumn("exporting"),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=err,
        transient=True,
    )
    try:
        with session_scope() as session, bar:
            task = bar.add_task("export", total=None)
            if raw:
                if fmt == Format.hf:
                    raise typer.BadParameter("--raw writes jsonl or parquet", param_hint="--format")
                rows = iter_raw_rows(session)
                n = write_raw((bar.advance(task) or r for r in rows), out_path, fmt.value)
            else:
                if label_set not in label_set_names(session):
                    known = ", ".join(label_set_names(session)) or "none; run `w2s labels build` first"
                    err.print(f"[red]no label set named '{label_set}' (known: {known})[/red]")
                    raise typer.Exit(1)
                n = export_label_set(
                    session,
                    fmt.value,
                    out_path,
                    label_set=label_set,
                    min_weight=min_weight,
                    include_variants=include_variants,
                    progress=lambda _r: bar.advance(task),
                )
    except ExportError as e:  # the target holds files that are not ours: nothing was written
        err.print(f"[red]error: {e}[/red]")
        raise typer.Exit(1) from None
    what = "annotations" if raw else f"rows of label set '{label_set}'"
    out.print(f"wrote {n} {what} to {out_path} ({fmt.value})")


def register(app: typer.Typer) -> None:
    app.add_typer(labels_app, name="labels")
    app.command("export")(export_cmd)
