"""`w2s annotate`: label pairs in batch with a weak model (SEAM or a baseline)."""

from __future__ import annotations

import typer

from annotators.base import AnnotatorOptions
from annotators.methods import CoTOptions, SeamConfig
from w2s.cli.console import console
from w2s.options import cli_options
from w2s.store.work import WorkOptions

out = console()
err = console(True)


@cli_options(WorkOptions, "work", panel="Shared work")
def annotate(
    annotator: str = typer.Option(
        "seam",
        "--annotator",
        "-a",
        help="seam, naive, strong, cot-v1, cot-v2, cot-v3, consistency; "
        "aligned, seam-aligned, seam-gate, seam-aligned-rm or cot-aligned (with --master).",
    ),
    weak: str | None = typer.Option(
        None, "--weak", help="Weak model spec, e.g. transformers:smollm2 (not with --master)."
    ),
    strong: str | None = typer.Option(
        None, "--strong", help="Strong model spec (seam, strong, cot-*, consistency)."
    ),
    dataset: str | None = typer.Option(None, "--dataset", "-d"),
    split: str | None = typer.Option(None, "--split", "-s"),
    pairs: str | None = typer.Option(None, "--pairs", help="Comma-separated pair ids / prefixes, or @FILE."),
    limit: int | None = typer.Option(None, "--limit", "-n", help="At most this many pairs (in id order)."),
    batch_size: int = typer.Option(16, "--batch-size", help="Pairs per batched model call and per commit."),
    # The annotators' options: None = the default of the method's Options dataclass (named in the help),
    # and an option the method does not have is an error (tests/seam/test_annotators.py checks the match).
    principles: str | None = typer.Option(
        None, "--principles", help="Principle library [default: by dataset]."
    ),
    both_orders: bool | None = typer.Option(
        None,
        "--both-orders/--one-order",
        help=f"Average both presentation orders [default: {AnnotatorOptions.both_orders}].",
    ),
    top_k: int | None = typer.Option(
        None, help=f"seam: keep the k most informative nodes [default: {SeamConfig.top_k}]."
    ),
    tau_info: float | None = typer.Option(
        None, help=f"seam: also keep nodes with info >= tau_info [default: {SeamConfig.tau_info}]."
    ),
    weak_prune: bool | None = typer.Option(
        None, help=f"seam: let the weak model prune irrelevant nodes [default: {SeamConfig.weak_prune}]."
    ),
    tau_weak_rel: float | None = typer.Option(
        None,
        help=f"seam: prune a node with weak P(relevant) below this [default: {SeamConfig.tau_weak_rel}].",
    ),
    tree_config: str | None = typer.Option(
        None, help="seam: use trees of this config hash [default: newest]."
    ),
    reasoning_max_tokens: int | None = typer.Option(
        None,
        help=f"cot-*: token budget of the strong reasoning [default: {CoTOptions.reasoning_max_tokens}].",
    ),
    master: str | None = typer.Option(
        None,
        "--master",
        help="aligned, seam-aligned(-rm), cot-aligned: a master saved in the store "
        "(its name, `w2s master list`) or a run directory.",
    ),
    work: WorkOptions = None,  # --chunk-size, --lease-seconds, --worker-id
) -> None:
    """Label the selected pairs with ANNOTATOR; one transaction per batch, so a killed run resumes
    exactly where it stopped and a rerun adds nothing. Every label records its producer (method, models,
    options, templates, principles, tree config): a run with other options is stored beside the old one.
    Any number of runs of the same selection and options, on one machine or many, share the work through
    the store: each claims chunks of pairs under a lease (see README, "Many workers, one store")."""
    from annotators.base import annotate_shared, annotation_queue, get_annotator
    from w2s.cli.trees import progress_bar, rate_text, select_pair_ids
    from w2s.store.work import waiting_line

    ids = select_pair_ids(dataset, split, pairs, limit)
    if not ids:
        err.print("[yellow]no pairs selected[/]")
        raise typer.Exit(1)
    given = {
        "library": principles,
        "both_orders": both_orders,
        "top_k": top_k,
        "tau_info": tau_info,
        "weak_prune": weak_prune,
        "tau_weak_rel": tau_weak_rel,
        "tree_config": tree_config,
        "reasoning_max_tokens": reasoning_max_tokens,
        "master": master,
    }
    options = {k: v for k, v in given.items() if v is not None}
    try:
        ann = get_annotator(annotator, weak, strong, **options)
    except (ValueError, FileNotFoundError) as e:
        raise typer.BadParameter(str(e)) from e
    queue = annotation_queue(ann, ids, **work.queue_kwargs(batch_size))
    with queue, progress_bar() as bar:
        already = len(ids) - queue.counts()["left"]
        task = bar.add_task(annotator, total=len(ids), rate="- pairs/s")

        def advance(done: int, _added: int) -> None:
            # the whole job's progress: this worker's pairs, and what the others finished meanwhile
            job_wide = len(ids) - queue.counts()["left"]
            bar.update(task, completed=max(bar.tasks[task].completed + done, job_wide))
            bar.update(task, rate=rate_text(bar.tasks[task]))

        advance(0, 0)
        try:
            added = annotate_shared(
                ann,
                queue,
                batch_size=batch_size,
                on_batch=advance,
                on_wait=lambda status: err.print(waiting_line(queue.worker, status)),
                poll_seconds=min(5.0, work.lease_seconds / 3),
            )
        except LookupError as e:
            err.print(f"[red]{e}[/]")
            raise typer.Exit(1) from e
        bar.update(task, completed=len(ids))
    others = len(ids) - already - added
    shared = f", {others} by other workers" if others else ""
    out.print(
        f"{annotator}: added {added} annotations ({already} already stored{shared}) by {ann.annotator_id}, "
        f"producer {ann.producer_hash()}"
    )


def register(app: typer.Typer) -> None:
    app.command("annotate")(annotate)
