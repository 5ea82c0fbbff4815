"""`w2s master train|list|show|export|import`: aligned weak masters trained on gold pairs and their trees
(or, for a cot-* master, the strong model's stored free reasoning), kept in the store under a name; a
run directory is their export/import format. The work is in w2s.masters."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

from w2s.store import session_scope

master_app = typer.Typer(
    help="Aligned weak masters: trained on gold, they decide with (or without) a tree.", no_args_is_help=True
)
out = Console()
err = Console(stderr=True)


def fail(message: str) -> typer.Exit:
    err.print(f"[red]{message}[/]")
    return typer.Exit(1)


@master_app.command("train")
def train(
    strong: str = typer.Option(..., "--strong", help="The strong model whose trees the master reads."),
    name: str | None = typer.Option(
        None, "--name", help="Save the master in the store under this name [default: KIND-RUN_ID]."
    ),
    out_dir: Path | None = typer.Option(
        None, "--out", help="Also write it as a run directory (config.json, master.json)."
    ),
    tree_config: str | None = typer.Option(
        None, "--tree-config", help="Tree config hash [default: the one with the most trees on these pairs]."
    ),
    kind: str = typer.Option(
        "features",
        "--kind",
        help="features (tree features + weak margin), rm (reads the tree as text), or cot-v1, cot-v2, cot-v3 (reads "
        "that CoT's stored reasoning by --strong as text, no tree: label the pairs with "
        "`w2s annotate -a cot-v1` first).",
    ),
    reasoning_max_tokens: int | None = typer.Option(
        None,
        "--reasoning-max-tokens",
        help="cot-*: the reasoning of this token budget [default: the most common].",
    ),
    weak: str = typer.Option(
        "transformers:smollm2", "--weak", help="Weak model whose frozen features give its margin."
    ),
    principle_weights: str = typer.Option(
        "auto",
        "--principle-weights",
        help="features: per-principle, shared (one set whatever the principle), shrunk (per-principle, pulled "
        "toward shared), none (no tree weights: the twin) or auto (the lowest cross-validated log-loss on "
        "these pairs; none when the trees do not lower it).",
    ),
    dataset: str | None = typer.Option(None, "--dataset", "-d"),
    split: str | None = typer.Option(None, "--split", "-s"),
    pairs: str | None = typer.Option(None, "--pairs", help="Comma-separated pair ids / prefixes, or @FILE."),
    limit: int | None = typer.Option(None, "--limit", "-n"),
    seed: int = typer.Option(0, "--seed"),
) -> None:
    """Train a master (KIND features or rm) and its no-tree twin on the selected gold pairs that have a tree
    (KIND cot-v1/2/3: that have the CoT's reasoning), and save it in the store under NAME."""
    from w2s.cli.trees import select_pair_ids
    from w2s.masters import MasterConfig, MasterInputs, get_kind, training_inputs
    from w2s.masters.data import reasoning_rows

    if out_dir is not None and out_dir.exists() and any(out_dir.iterdir()):
        raise fail(f"{out_dir} exists and is not empty: choose a new run directory")
    try:
        reads = get_kind(kind).reads
    except ValueError as e:
        raise fail(str(e)) from e
    ids = select_pair_ids(dataset, split, pairs, limit)
    if reads == "reasoning":
        with session_scope() as session:
            budget, pair_rows, reasoning = reasoning_rows(session, ids, kind, strong, reasoning_max_tokens)
        if not pair_rows:
            raise fail(
                f"none of the {len(ids)} selected pairs has gold (a/b) and {kind} reasoning by {strong}: "
                f"run `w2s annotate -a {kind} --strong {strong}` on them first"
            )
        if len(ids) > len(pair_rows):
            err.print(
                f"[yellow]{len(ids) - len(pair_rows)} selected pairs have no gold or no {kind} reasoning "
                f"({budget} tokens): left out[/]"
            )
        cfg = MasterConfig(kind=kind, weak=weak, seed=seed, strong=strong, reasoning_max_tokens=budget)
        inputs, read = (
            MasterInputs(pair_rows, reasoning=reasoning),
            f"{kind} reasoning of {budget} tokens by {strong}",
        )
    else:
        with session_scope() as session:
            try:
                config_hash, inputs = training_inputs(session, ids, strong, tree_config)
            except ValueError as e:
                raise fail(str(e)) from e
        if not inputs.pairs:
            raise fail(
                f"none of the {len(ids)} selected pairs has gold (a/b) and a tree by {strong}: "
                f"run `w2s trees build` first"
            )
        skipped = len(ids) - len(inputs)
        if skipped:
            err.print(
                f"[yellow]{skipped} selected pairs have no gold or no tree of config {config_hash}: left out[/]"
            )
        cfg = MasterConfig(
            kind=kind,
            weak=weak,
            seed=seed,
            strong=strong,
            tree_config=config_hash,
            library=inputs.library.name,
            principle_weights=principle_weights,
        )
        read = f"trees {config_hash} by {strong}"
    producer = {
        "command": "w2s master train",
        "dataset": dataset,
        "split": split,
        "pairs": pairs,
        "limit": limit,
        "read": read,
    }
    _fit_and_save(inputs, cfg, name, out_dir, read, producer)


def _fit_and_save(inputs, cfg, name: str | None, out_dir: Path | None, read: str, producer: dict) -> None:
    """Train, save in the store (and the run directory), print the trust table."""
    from w2s.masters import save_master, train_master

    try:
        master = train_master(inputs, cfg)
        with session_scope() as session:
            row = save_master(session, master, name, producer=producer)
            saved = row.name
    except ValueError as e:
        raise fail(str(e)) from e
    if out_dir is not None:
        master.save(out_dir)
    out.print(trust_view(master))
    written = f", written to {out_dir}" if out_dir is not None else ""
    out.print(f"master {master.run_id} ({len(inputs)} pairs, {read}) saved as {saved}{written}")


def trust_view(master) -> Table:
    m = master.metrics
    why = (
        "auto: the trees did not lower the cross-validated log-loss on its training pairs"
        if master.config.principle_weights == "auto"
        else "--principle-weights none"
    )
    sharing = (
        f"no tree weights ({why}), so it is its twin"
        if master.principle_weights == "none"
        else f"{master.principle_weights} weights"
    )
    margin = (
        f"{sharing}, margin weight {m['margin_weight']:+.2f}; "
        if m["margin_weight"] is not None
        else f"reads the {'tree' if master.config.kind == 'rm' else 'reasoning'} as text; "
    )
    table = Table(
        title=f"trust table of {master.config.kind} master {master.run_id} ({margin}"
        f"training accuracy {m['train_accuracy_master']:.3f}, twin {m['train_accuracy_twin']:.3f})"
    )
    for col in ("principle", "verdict", "×exit", "×both orders", "×relevance", "trust"):
        table.add_column(col, justify="left" if col == "principle" else "right")
    for row in m["trust"]:
        table.add_row(
            row["name"], *(f"{row[k]:+.2f}" for k in ("verdict", "exit", "both_orders", "relevance", "trust"))
        )
    return table


@master_app.command("show")
def show(master: str = typer.Argument(..., help="A saved master's name, or a run directory.")) -> None:
    """Print a master's config and trust table."""
    from w2s.masters import resolve_master

    try:
        found = resolve_master(master)
    except (FileNotFoundError, ValueError) as e:
        raise fail(str(e)) from e
    out.print(found.config)
    out.print(trust_view(found))


@master_app.command("list")
def list_cmd() -> None:
    """The masters saved in the store."""
    from w2s.masters import saved_masters

    with session_scope() as session:
        rows = saved_masters(session)
        table = Table()
        for col in ("name", "kind", "run id", "strong", "reads", "pairs", "created"):
            table.add_column(col, no_wrap=col in ("name", "run id"))
        for r in rows:
            reads = r.config.get("tree_config") or (
                f"{r.config.get('reasoning_max_tokens')} tokens" if r.kind.startswith("cot") else ""
            )
            table.add_row(
                r.name,
                r.kind,
                r.run_id,
                r.config.get("strong", ""),
                reads,
                str((r.state.get("metrics") or {}).get("train_pairs", "")),
                f"{r.created_at:%Y-%m-%d}",
            )
    if not rows:
        err.print(
            "[yellow]no master is saved in this store: `w2s master train --name NAME` or `w2s master import DIR`[/]"
        )
        return
    out.print(table)


@master_app.command("export")
def export_cmd(
    name: str = typer.Argument(..., help="A saved master's name."),
    out_dir: Path = typer.Argument(..., help="The run directory to write (new or empty)."),
) -> None:
    """Write a saved master as a run directory (config.json, master.json)."""
    from w2s.masters import export_run

    with session_scope() as session:
        try:
            master = export_run(session, name, out_dir)
        except ValueError as e:
            raise fail(str(e)) from e
    out.print(f"master {name} ({master.config.kind} {master.run_id}) written to {out_dir}")


@master_app.command("import")
def import_cmd(
    run_dir: Path = typer.Argument(..., help="A master run directory."),
    name: str | None = typer.Option(None, "--name", help="Save it under this name [default: KIND-RUN_ID]."),
) -> None:
    """Save the master of a run directory in the store."""
    from w2s.masters import import_run

    with session_scope() as session:
        try:
            row = import_run(session, run_dir, name)
            saved, run_id = row.name, row.run_id
        except (FileNotFoundError, ValueError) as e:
            raise fail(str(e)) from e
    out.print(f"master {run_id} from {run_dir} saved as {saved}")


def register(app: typer.Typer) -> None:
    app.add_typer(master_app, name="master")
