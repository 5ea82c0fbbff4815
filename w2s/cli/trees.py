"""`w2s trees build` and `w2s trees show`: principle fast-and-frugal trees by a strong model."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from pathlib import Path

import typer
from rich.markup import escape
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskProgressColumn,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.tree import Tree as RichTree
from sqlalchemy import or_
from sqlmodel import select

from w2s.cli.console import CliProgress, console
from w2s.options import cli_options
from w2s.store import Pair, Tree, session_scope
from w2s.store.work import WorkOptions
from w2s.trees import TreeConfig

TREE_ALIASES = {
    "max_backtraces": ["--backtraces", "-B"],
    "max_depth": ["--depth", "-D"],
    "thought_max_tokens": ["--thought-tokens"],
}
"""The TreeConfig options' older and short names, kept beside `--max-backtraces` etc."""

trees_app = typer.Typer(help="Principle fast-and-frugal trees built by a strong model.", no_args_is_help=True)
out = console()
err = console(True)


# ---------------------------------------------------------------------------------------------- pair selection


def select_pair_ids(
    dataset: str | None = None,
    split: str | None = None,
    pairs: str | None = None,
    limit: int | None = None,
    url: str | None = None,
) -> list[str]:
    """Pair ids (in id order) by dataset, split and `pairs`: comma-separated ids or unique id prefixes,
    or `@FILE` with one id per line."""
    with session_scope(url) as session:
        query = select(Pair.id)
        if dataset:
            query = query.where(Pair.dataset == dataset)
        if split:
            query = query.where(Pair.split == split)
        if pairs:
            wanted = _pair_query(pairs)
            query = query.where(or_(*[Pair.id.startswith(w) for w in wanted]))
        ids = list(session.exec(query.order_by(Pair.id)))
    if pairs:
        for w in _pair_query(pairs):
            if not any(i.startswith(w) for i in ids):
                raise typer.BadParameter(f"no stored pair matches {w!r}", param_hint="--pairs")
    return ids[:limit] if limit else ids


def _pair_query(pairs: str) -> list[str]:
    if pairs.startswith("@"):
        path = Path(pairs[1:])
        if not path.is_file():
            raise typer.BadParameter(f"{path}: no such file", param_hint="--pairs")
        return [line.strip() for line in path.read_text().splitlines() if line.strip()]
    return [p.strip() for p in pairs.split(",") if p.strip()]


def progress_bar() -> Progress:
    """A progress bar with count, rate and ETA (on stderr)."""
    return CliProgress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TaskProgressColumn(),
        TextColumn("[cyan]{task.fields[rate]}"),
        TimeElapsedColumn(),
        TextColumn("ETA"),
        TimeRemainingColumn(),
        console=err,
    )


def rate_text(task) -> str:
    return f"{task.speed:.2f} pairs/s" if task.speed else "- pairs/s"


# ---------------------------------------------------------------------------------------------- commands


@trees_app.command("build")
@cli_options(WorkOptions, "work", panel="Shared work")
@cli_options(TreeConfig, "cfg", exclude=["library"], panel="Tree search", aliases=TREE_ALIASES)
def build(
    strong: str = typer.Option(..., "--strong", help="Strong model spec, e.g. llamacpp:qwen2.5-coder-1.5b."),
    principles: str | None = typer.Option(
        None,
        "--principles",
        help="Principle library (prompts/principles/NAME.yaml) [default: by dataset name].",
    ),
    dataset: str | None = typer.Option(None, "--dataset", "-d"),
    split: str | None = typer.Option(None, "--split", "-s"),
    pairs: str | None = typer.Option(None, "--pairs", help="Comma-separated pair ids / prefixes, or @FILE."),
    limit: int | None = typer.Option(None, "--limit", "-n", help="At most this many pairs (in id order)."),
    in_flight: int = typer.Option(
        32,
        "--in-flight",
        "--batch-size",
        help="Pairs searched at once, each its own search; a finished one's slot goes to the next pair at once "
        "(--batch-size is the old name).",
    ),
    concurrency: int | None = typer.Option(
        None, "--concurrency", help="Remote backends: requests in flight at once [default: --in-flight]."
    ),
    timeout: float | None = typer.Option(None, "--timeout", help="Remote backends: seconds per request."),
    rpm: float | None = typer.Option(None, "--rpm", help="Remote backends: requests per minute at most."),
    tpm: float | None = typer.Option(None, "--tpm", help="Remote backends: tokens per minute at most."),
    option: list[str] = typer.Option(
        [],
        "--option",
        "-o",
        metavar="KEY=VALUE",
        help="Any option of the strong model's backend (repeatable).",
    ),
    max_tokens: int | None = typer.Option(
        None,
        "--max-tokens",
        help="Token budget: start no pair once the run has spent this many tokens "
        "(the pairs in flight finish and are saved).",
    ),
    price_in: float | None = typer.Option(
        None, "--price-in", help="USD per 1M prompt tokens (for the cost line)."
    ),
    price_out: float | None = typer.Option(None, "--price-out", help="USD per 1M completion tokens."),
    extend_from: str | None = typer.Option(
        None,
        "--extend-from",
        metavar="CONFIG_HASH",
        help="Replay this config's trees (same strong model; only -B/-D and the taus may differ) instead of "
        "building again: only nodes its searches never reached cost tokens.",
    ),
    cfg: TreeConfig = None,  # the TreeConfig fields' options (but library: --principles)
    work: WorkOptions = None,  # --chunk-size, --lease-seconds, --worker-id
) -> None:
    """Build the FF-tree of every selected pair (skips pairs that already have one for this model and
    config, so a killed build resumes and a rerun adds nothing). With --extend-from, a pair that has a tree
    of that config (other search thresholds: -B, -D, the taus) gets its search replayed under these ones:
    only nodes the stored search never reached cost tokens (none when these stop it sooner).
    Without --principles each pair is judged with the library its dataset's name picks (a dataset that
    picks none is named, with the fallback).
    Any number of builds of the same selection, on one machine or many, share the work through the store:
    each claims chunks of pairs under a lease (see README, "Many workers, one store")."""
    from w2s.backends import get_model
    from w2s.store.work import waiting_line
    from w2s.trees import run_build
    from w2s.trees.principles import fallback_notice, library_for_dataset, load_library

    if principles:
        try:
            load_library(principles)
        except ValueError as e:
            raise typer.BadParameter(str(e), param_hint="--principles") from e
    ids = select_pair_ids(dataset, split, pairs, limit)
    if not ids:
        err.print("[yellow]no pairs selected[/]")
        raise typer.Exit(1)
    groups: dict[str, list[str]] = {}
    for name, pair_ids in datasets_of(ids).items():
        if not principles and fallback_notice(name):
            err.print(f"[yellow]{escape(fallback_notice(name))}[/]")
        groups.setdefault(principles or library_for_dataset(name), []).extend(pair_ids)
    named = {"max_concurrency": concurrency, "timeout": timeout, "rpm": rpm, "tpm": tpm}
    try:
        options = {**backend_options(option), **{k: v for k, v in named.items() if v is not None}}
        model = get_model(strong, **options)
    except ValueError as e:
        raise typer.BadParameter(str(e), param_hint="--option") from e
    if concurrency is None and hasattr(getattr(model, "config", None), "max_concurrency"):
        model.config.max_concurrency = max(model.config.max_concurrency, in_flight)
    budget = max_tokens
    for library, group in groups.items():
        cfg = replace(cfg, library=library)
        queue = tree_queue(model.spec, cfg, group, **work.queue_kwargs(in_flight))
        with queue, progress_bar() as bar:
            already = len(group) - queue.counts()["left"]
            task = bar.add_task(f"trees ({library})", total=len(group), completed=already, rate="- pairs/s")
            said = [""]

            def advance(report, task=task, library=library, queue=queue, already=already, said=said) -> None:
                if report.note.startswith("waiting for pairs") and not said[0]:
                    err.print(waiting_line(queue.worker, queue.status()))  # once per wait, in a log too
                said[0] = report.note
                bar.update(
                    task,
                    completed=already + report.done,
                    rate=rate_text(bar.tasks[task]),
                    description=f"trees ({library}){': ' + escape(report.note) if report.note else ''}",
                )

            try:
                report = asyncio.run(
                    run_build(
                        model,
                        queue,
                        cfg,
                        in_flight=in_flight,
                        progress=advance,
                        extend_from=extend_from,
                        max_tokens=budget,
                    )
                )
            except ValueError as e:
                raise typer.BadParameter(str(e), param_hint="--extend-from") from e
        others = len(group) - already - report.built - report.stored
        shared = f", {others} built by other workers" if others > 0 else ""
        out.print(
            f"built {report.built} trees ({already + report.stored} already stored{shared}), library {library}, "
            f"config {cfg.hash()}, strong {strong}"
        )
        out.print(run_line(report, getattr(model, "retries", 0), price_in, price_out))
        if budget is not None:
            budget -= report.tokens
            if report.budget_reached:
                out.print(f"stopped at the token budget (--max-tokens {max_tokens}): rerun to go on")
                break


def backend_options(pairs: list[str]) -> dict[str, str]:
    """`--option key=value` pairs (the backend's typed options convert and check them)."""
    options = {}
    for pair in pairs:
        key, eq, value = pair.partition("=")
        if not eq or not key.strip():
            raise typer.BadParameter(f"{pair!r} is not KEY=VALUE", param_hint="--option")
        options[key.strip()] = value.strip()
    return options


def run_line(report, retries: int, price_in: float | None, price_out: float | None) -> str:
    """The run's summary: trees/s, calls, tokens (and their cost when prices are given), retries."""
    rate = report.built / report.seconds if report.seconds else 0.0
    line = (
        f"run: {report.seconds:.1f} s, {rate:.2f} trees/s, {report.calls} calls, {report.tokens} tokens "
        f"({report.prompt_tokens} prompt, {report.cached_tokens} of them cached, {report.completion_tokens} "
        f"completion)"
    )
    if price_in is not None or price_out is not None:
        usd = (report.prompt_tokens * (price_in or 0.0) + report.completion_tokens * (price_out or 0.0)) / 1e6
        line += f", ${usd:.4f}"
    return line + (f", {retries} requests retried" if retries else "")


def tree_queue(strong_spec: str, cfg: TreeConfig, pair_ids: list[str], **kwargs):
    """The work of building `pair_ids`' trees by one strong model under one config, shared by every
    worker given the same pairs; a pair with such a tree is done."""
    from w2s.store.work import WorkQueue
    from w2s.trees import stored_pair_ids

    config_hash = cfg.hash()
    stored = lambda session, ids: stored_pair_ids(session, strong_spec, config_hash, ids)  # noqa: E731
    return WorkQueue(None, f"trees {strong_spec} {config_hash}", pair_ids, stored=stored, **kwargs)


def datasets_of(pair_ids: list[str]) -> dict[str, list[str]]:
    """The selected pairs grouped by dataset (in selection order)."""
    with session_scope() as session:
        names = dict(session.exec(select(Pair.id, Pair.dataset).where(Pair.id.in_(pair_ids))).all())
    groups: dict[str, list[str]] = {}
    for pid in pair_ids:
        groups.setdefault(names[pid], []).append(pid)
    return groups


@trees_app.command("export")
def export(
    out_path: Path = typer.Option(..., "--out", help="Corpus file to write (.jsonl.gz)."),
    dataset: str | None = typer.Option(None, "--dataset", "-d"),
    split: str | None = typer.Option(None, "--split", "-s"),
    strong: str | None = typer.Option(None, "--strong", help="Only trees by this strong model."),
    config_hash: str | None = typer.Option(None, "--config", help="Only trees of this config hash."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace an existing corpus file."),
) -> None:
    """Write the selected trees to a portable corpus (pairs named by content, not by store id)."""
    from w2s.trees.corpus import export_trees

    ids = select_pair_ids(dataset, split)
    with session_scope() as session:
        query = select(Tree).where(Tree.pair_id.in_(ids)) if (dataset or split) else select(Tree)
        if strong:
            query = query.where(Tree.strong_model == strong)
        if config_hash:
            query = query.where(Tree.config_hash == config_hash)
        try:
            n = export_trees(
                session, out_path, session.exec(query.order_by(Tree.pair_id, Tree.id)), overwrite=overwrite
            )
        except FileExistsError as e:
            err.print(f"[red]{escape(str(e))}[/]")
            raise typer.Exit(1) from e
    out.print(f"exported {n} trees to {out_path}")


@trees_app.command("import")
def import_(
    path: Path = typer.Argument(
        ..., exists=True, dir_okay=False, help="A corpus written by `w2s trees export`."
    ),
    dataset: str | None = typer.Option(None, "--dataset", "-d", help="Match only pairs of this dataset."),
) -> None:
    """Add a corpus's trees to the pairs of this store that have the same content (in one transaction:
    a corrupt line stores nothing). Trees already stored are skipped; trees whose pair is not stored are
    counted and reported."""
    from w2s.trees.corpus import CorpusError, import_trees

    try:
        with session_scope() as session:
            report = import_trees(session, path, dataset=dataset)
    except CorpusError as e:
        err.print(f"[red]{escape(str(e))}[/] (nothing imported)")
        raise typer.Exit(1) from e
    out.print(
        f"{path}: {report.trees} trees read, {report.added} added ({report.mirrored} for pairs stored with A/B "
        f"swapped), {report.already} already stored, {len(report.absent)} whose pair is not in this store"
    )
    if report.absent:
        err.print(
            f"[yellow]no stored pair for {len(report.absent)} trees (import their pair files first), e.g. "
            f"{', '.join(report.absent[:3])}[/]"
        )


@trees_app.command("show")
def show(
    pair_id: str = typer.Argument(..., help="A pair id or a unique prefix."),
    strong: str | None = typer.Option(None, "--strong", help="Only trees by this strong model."),
) -> None:
    """Print a pair's newest tree: nodes in search order with relevance, verdict, info, role and thought."""
    from w2s.trees import latest_tree

    with session_scope() as session:
        exact = session.get(Pair, pair_id)
        matches = (
            [exact] if exact else list(session.exec(select(Pair).where(Pair.id.startswith(pair_id)).limit(2)))
        )
        if len(matches) != 1:
            err.print(f"[red]{'no pair' if not matches else 'more than one pair'} matches {pair_id!r}[/]")
            raise typer.Exit(1)
        pair = matches[0]
        tree, nodes = latest_tree(session, pair.id, strong)
        if tree is None:
            err.print(
                f"[red]pair {pair.id} has no tree{' by ' + strong if strong else ''}: run `w2s trees build`[/]"
            )
            raise typer.Exit(1)
        out.print(render_tree(pair, tree, nodes))


def render_tree(pair: Pair, tree: Tree, nodes) -> RichTree:
    gold = f", gold {pair.gold.upper()}" if pair.gold else ""
    root = RichTree(
        f"[bold]{pair.id[:12]}[/] tree {tree.id} by {tree.strong_model} "
        f"({tree.library}, config {tree.config_hash}{gold})\n"
        f"depth {tree.depth}, backtraces {tree.backtraces}, {tree.tokens} tokens, {tree.seconds:.1f} s, "
        f"stop: {tree.config.get('stop', '?')}"
    )
    root.add(f"[dim]prompt:[/] {_short(pair.prompt)}")
    root.add(f"[dim]A:[/] {_short(pair.response_a)}")
    root.add(f"[dim]B:[/] {_short(pair.response_b)}")
    style = {"exit": "green", "continue": "cyan", "pruned_by_search": "red"}
    for n in nodes:
        branch = root.add(
            f"[{style.get(n.role, 'white')}]{n.position}. {escape(n.principle_name)}[/] "
            f"\\[{n.role}]  r={n.relevance:.2f}  "
            f"v=(A {n.p_a:.2f}, B {n.p_b:.2f})  H={n.entropy:.2f}  info={n.info:.2f}  {n.tokens} tok {n.seconds:.1f}s"
        )
        branch.add(n.thought or "[dim](no thought)[/]")
    return root


def _short(text: str, n: int = 200) -> str:
    text = " ".join(text.split())
    return text if len(text) <= n else text[: n - 1] + "…"


def register(app: typer.Typer) -> None:
    app.add_typer(trees_app, name="trees")
