"""`w2s annotate`: label pairs in batch with a weak model (SEAM or a baseline)."""

from __future__ import annotations

import typer
from rich.console import Console

out = Console()
err = Console(stderr=True)


def annotate(
    annotator: str = typer.Option(
        "seam", "--annotator", "-a",
        help="seam, naive, strong, cot-v1, cot-v2, cot-v3, consistency; aligned or seam-aligned (with --master).",
    ),
    weak: str | None = typer.Option(None, "--weak", help="Weak model spec, e.g. transformers:smollm2 (not with --master)."),
    strong: str | None = typer.Option(None, "--strong", help="Strong model spec (seam, strong, cot-*, consistency)."),
    dataset: str | None = typer.Option(None, "--dataset", "-d"),
    split: str | None = typer.Option(None, "--split", "-s"),
    pairs: str | None = typer.Option(None, "--pairs", help="Comma-separated pair ids / prefixes, or @FILE."),
    limit: int | None = typer.Option(None, "--limit", "-n", help="At most this many pairs (in id order)."),
    batch_size: int = typer.Option(16, "--batch-size", help="Pairs per batched model call and per commit."),
    principles: str | None = typer.Option(None, "--principles", help="Principle library [default: by dataset]."),
    top_k: int = typer.Option(2, help="seam: keep the k most informative nodes."),
    tau_info: float = typer.Option(0.5, help="seam: also keep nodes with info >= tau_info."),
    weak_prune: bool = typer.Option(True, help="seam: let the weak model prune irrelevant nodes."),
    tree_config: str | None = typer.Option(None, help="seam: use trees of this config hash [default: newest]."),
    master: str | None = typer.Option(None, "--master", help="aligned, seam-aligned: a run of `w2s master train`."),
) -> None:
    """Label the selected pairs with ANNOTATOR; one transaction per batch, so a killed run resumes
    exactly where it stopped and a rerun adds nothing (dedup key per method, model, variant, pair)."""
    from annotators.base import annotate_all, get_annotator
    from w2s.cli.trees import progress_bar, rate_text, select_pair_ids

    ids = select_pair_ids(dataset, split, pairs, limit)
    if not ids:
        err.print("[yellow]no pairs selected[/]")
        raise typer.Exit(1)
    options = {"top_k": top_k, "tau_info": tau_info, "weak_prune": weak_prune, "tree_config": tree_config}
    if master:
        options["master"] = master
    if principles:
        options["library"] = principles
    try:
        ann = get_annotator(annotator, weak, strong, **options)
    except (ValueError, FileNotFoundError) as e:
        raise typer.BadParameter(str(e)) from e
    with progress_bar() as bar:
        task = bar.add_task(annotator, total=len(ids), rate="- pairs/s")

        def advance(done: int, _added: int) -> None:
            bar.advance(task, done)
            bar.update(task, rate=rate_text(bar.tasks[task]))

        try:
            added = annotate_all(ann, ids, batch_size=batch_size, on_batch=advance)
        except LookupError as e:
            err.print(f"[red]{e}[/]")
            raise typer.Exit(1) from e
    out.print(f"{annotator}: added {added} annotations ({len(ids) - added} already stored) by {ann.annotator_id}")


def register(app: typer.Typer) -> None:
    app.command("annotate")(annotate)
