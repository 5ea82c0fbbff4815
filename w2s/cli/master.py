"""`w2s master train` and `w2s master show`: aligned weak masters trained on gold pairs and their trees
(or, for a cot-* master, the strong model's stored free reasoning)."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table
from sqlmodel import select

from w2s.store import Node, Pair, Tree, session_scope

master_app = typer.Typer(help="Aligned weak masters: trained on gold, they decide with (or without) a tree.",
                         no_args_is_help=True)
out = Console()
err = Console(stderr=True)


def trees_for(session, pair_ids: list[str], strong: str, config_hash: str | None) -> tuple[str, dict[str, Tree]]:
    """(config hash, pair id -> tree) of the pairs' trees by `strong`; without a hash, the config that
    most of the pairs have a tree of."""
    trees = list(session.exec(select(Tree).where(Tree.strong_model == strong, Tree.pair_id.in_(pair_ids))))
    if not config_hash:
        counts = Counter(t.config_hash for t in trees)
        if not counts:
            return "", {}
        config_hash = counts.most_common(1)[0][0]
    chosen = {}
    for t in sorted(trees, key=lambda t: t.id):
        if t.config_hash == config_hash:
            chosen[t.pair_id] = t
    return config_hash, chosen


def nodes_of(session, trees: list[Tree]) -> list[list[Node]]:
    by_tree: dict[int, list[Node]] = {t.id: [] for t in trees}
    ids = list(by_tree)
    for i in range(0, len(ids), 500):
        for n in session.exec(select(Node).where(Node.tree_id.in_(ids[i : i + 500])).order_by(Node.position)):
            by_tree[n.tree_id].append(n)
    return [by_tree[t.id] for t in trees]


def training_rows(session, pair_ids: list[str], strong: str, config_hash: str | None):
    """(config hash, pairs, trees, nodes): the pairs of `pair_ids` (in that order) with gold a/b and a
    tree by `strong` of that config (or the most common one), detached from the session."""
    gold = {p.id: p for p in session.exec(select(Pair).where(Pair.id.in_(pair_ids), Pair.gold.in_(["a", "b"])))}
    config_hash, trees = trees_for(session, list(gold), strong, config_hash)
    chosen = [pid for pid in pair_ids if pid in gold and pid in trees]
    pairs, tree_rows = [gold[pid] for pid in chosen], [trees[pid] for pid in chosen]
    nodes = nodes_of(session, tree_rows)
    for row in (*pairs, *tree_rows, *[n for ns in nodes for n in ns]):
        session.expunge(row)
    return config_hash, pairs, tree_rows, nodes


def reasoning_rows(session, pair_ids: list[str], method: str, strong: str, max_tokens: int | None):
    """(token budget, pairs, reasoning texts): the pairs of `pair_ids` (in that order) with gold a/b and
    `method`'s stored reasoning by `strong` (of that budget, or the most common one), detached."""
    from w2s.reasoning import stored_reasoning

    gold = {p.id: p for p in session.exec(select(Pair).where(Pair.id.in_(pair_ids), Pair.gold.in_(["a", "b"])))}
    budget, found = stored_reasoning(session, list(gold), method, strong, max_tokens)
    chosen = [pid for pid in pair_ids if pid in gold and pid in found]
    for pid in chosen:
        session.expunge(gold[pid])
    return budget, [gold[pid] for pid in chosen], [found[pid].text for pid in chosen]


@master_app.command("train")
def train(
    out_dir: Path = typer.Option(..., "--out", help="Run directory to write (config.json, master.json)."),
    strong: str = typer.Option(..., "--strong", help="The strong model whose trees the master reads."),
    tree_config: str | None = typer.Option(None, "--tree-config", help="Tree config hash [default: the most common]."),
    kind: str = typer.Option(
        "features", "--kind",
        help="features (tree features + weak margin), rm (reads the tree as text), or cot-v1, cot-v2, cot-v3 (reads "
             "that CoT's stored reasoning by --strong as text, no tree: label the pairs with `w2s annotate -a cot-v1` first)."),
    reasoning_max_tokens: int | None = typer.Option(
        None, "--reasoning-max-tokens", help="cot-*: the reasoning of this token budget [default: the most common]."),
    weak: str = typer.Option("transformers:smollm2", "--weak", help="Weak model whose frozen features give its margin."),
    principle_weights: str = typer.Option(
        "auto", "--principle-weights",
        help="features: per-principle, shared (one set whatever the principle), shrunk (per-principle, pulled "
             "toward shared), none (no tree weights: the twin) or auto (the lowest cross-validated log-loss on "
             "these pairs; none when the trees do not lower it)."),
    dataset: str | None = typer.Option(None, "--dataset", "-d"),
    split: str | None = typer.Option(None, "--split", "-s"),
    pairs: str | None = typer.Option(None, "--pairs", help="Comma-separated pair ids / prefixes, or @FILE."),
    limit: int | None = typer.Option(None, "--limit", "-n"),
    seed: int = typer.Option(0, "--seed"),
) -> None:
    """Train a master (KIND features or rm) and its no-tree twin on the selected gold pairs that have a tree
    (KIND cot-v1/2/3: that have the CoT's reasoning)."""
    from w2s.cli.trees import select_pair_ids
    from w2s.master import KINDS, MasterConfig
    from w2s.principles import load_library
    from w2s.reasoning import COT_METHODS

    if (out_dir / "master.json").exists() or (out_dir.exists() and any(out_dir.iterdir())):
        err.print(f"[red]{out_dir} exists and is not empty: choose a new run directory[/]")
        raise typer.Exit(1)
    if kind not in KINDS:
        err.print(f"[red]unknown master kind {kind!r}: {', '.join(KINDS)}[/]")
        raise typer.Exit(1)
    ids = select_pair_ids(dataset, split, pairs, limit)
    if kind in COT_METHODS:
        _train_on_reasoning(out_dir, ids, kind, strong, reasoning_max_tokens, weak, seed)
        return
    with session_scope() as session:
        config_hash, pair_rows, tree_rows, node_rows = training_rows(session, ids, strong, tree_config)
    if not pair_rows:
        err.print(f"[red]none of the {len(ids)} selected pairs has gold (a/b) and a tree by {strong}: "
                  f"run `w2s trees build` first[/]")
        raise typer.Exit(1)
    libraries = {t.library for t in tree_rows}
    if len(libraries) != 1:
        err.print(f"[red]the trees use several libraries ({', '.join(sorted(libraries))}): select one dataset[/]")
        raise typer.Exit(1)
    library = load_library(libraries.pop())
    skipped = len(ids) - len(pair_rows)
    if skipped:
        err.print(f"[yellow]{skipped} selected pairs have no gold or no tree of config {config_hash}: left out[/]")
    cfg = MasterConfig(kind=kind, weak=weak, seed=seed, strong=strong, tree_config=config_hash, library=library.name,
                       principle_weights=principle_weights)
    _fit_and_save(out_dir, f"trees {config_hash} by {strong}", pair_rows, tree_rows, node_rows, library, cfg)


def _fit_and_save(out_dir: Path, read: str, pairs, *args, **kwargs) -> None:
    """Train (`w2s.master.train(pairs, *args, **kwargs)`), write the run directory, print the trust table."""
    from w2s.master import train as fit

    try:
        master = fit(pairs, *args, **kwargs)
    except ValueError as e:
        err.print(f"[red]{e}[/]")
        raise typer.Exit(1) from e
    master.save(out_dir)
    out.print(trust_view(master))
    out.print(f"master {master.run_id} ({len(pairs)} pairs, {read}) written to {out_dir}")


def _train_on_reasoning(out_dir: Path, ids: list[str], kind: str, strong: str, max_tokens: int | None, weak: str,
                        seed: int) -> None:
    from w2s.master import MasterConfig

    with session_scope() as session:
        budget, pair_rows, reasoning = reasoning_rows(session, ids, kind, strong, max_tokens)
    if not pair_rows:
        err.print(f"[red]none of the {len(ids)} selected pairs has gold (a/b) and {kind} reasoning by {strong}: "
                  f"run `w2s annotate -a {kind} --strong {strong}` on them first[/]")
        raise typer.Exit(1)
    if len(ids) > len(pair_rows):
        err.print(f"[yellow]{len(ids) - len(pair_rows)} selected pairs have no gold or no {kind} reasoning "
                  f"({budget} tokens): left out[/]")
    cfg = MasterConfig(kind=kind, weak=weak, seed=seed, strong=strong, reasoning_max_tokens=budget)
    _fit_and_save(out_dir, f"{kind} reasoning of {budget} tokens by {strong}", pair_rows, [], [], None, cfg,
                  reasoning=reasoning)


def trust_view(master) -> Table:
    m = master.metrics
    why = ("auto: the trees did not lower the cross-validated log-loss on its training pairs"
           if master.config.principle_weights == "auto" else "--principle-weights none")
    sharing = (f"no tree weights ({why}), so it is its twin"
               if master.principle_weights == "none" else f"{master.principle_weights} weights")
    margin = (f"{sharing}, margin weight {m['margin_weight']:+.2f}; "
              if m["margin_weight"] is not None else f"reads the {'tree' if master.config.kind == 'rm' else 'reasoning'} as text; ")
    table = Table(title=f"trust table of {master.config.kind} master {master.run_id} ({margin}"
                        f"training accuracy {m['train_accuracy_master']:.3f}, twin {m['train_accuracy_twin']:.3f})")
    for col in ("principle", "verdict", "×exit", "×both orders", "×relevance", "trust"):
        table.add_column(col, justify="left" if col == "principle" else "right")
    for row in m["trust"]:
        table.add_row(row["name"], *(f"{row[k]:+.2f}" for k in ("verdict", "exit", "both_orders", "relevance", "trust")))
    return table


@master_app.command("show")
def show(run_dir: Path = typer.Argument(..., help="A master run directory.")) -> None:
    """Print a master's config and trust table."""
    from w2s.master import Master

    try:
        master = Master.load(run_dir)
    except FileNotFoundError as e:
        err.print(f"[red]{e}[/]")
        raise typer.Exit(1) from e
    out.print(master.config)
    out.print(trust_view(master))


def register(app: typer.Typer) -> None:
    app.add_typer(master_app, name="master")
