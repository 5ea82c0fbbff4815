"""`w2s eval annotations`: annotation quality per method against gold."""

from __future__ import annotations

import json
from pathlib import Path

import typer
from rich.table import Table

from w2s.cli import eval_app
from w2s.cli.console import console
from w2s.store import session_scope

out = console()


@eval_app.command("annotations")
def annotations(
    dataset: str | None = typer.Option(None, "--dataset", "-d"),
    split: str | None = typer.Option(None, "--split", "-s"),
    baseline: str = typer.Option("naive", help="Method whose labels corrections are counted against."),
    out_file: Path | None = typer.Option(None, "--out", help="Also write the figures to this JSON file."),
) -> None:
    """Accuracy vs gold per dataset, method, annotator and producer config (Wilson 95% CI; `config` names
    what sets a config apart from the method's others), risky corrections (the method flips a correct
    baseline label to wrong) and good ones, and tree statistics."""
    from w2s.labels.quality import evaluate_annotations

    with session_scope() as session:
        report = evaluate_annotations(session, dataset=dataset, split=split, baseline=baseline)
    if not report["methods"]:
        out.print(f"[yellow]no model annotations of the {report['pairs_with_gold']} pairs with gold[/]")
    out.print(methods_table(report))
    if report["trees"]:
        out.print(trees_table(report["trees"]))
    if out_file is not None:
        out_file.write_text(json.dumps(report, indent=2))
        out.print(f"wrote {out_file}")


def methods_table(report: dict) -> Table:
    key = "vs_" + report["baseline"]
    table = Table(title=f"Annotation accuracy vs gold ({report['pairs_with_gold']} pairs with gold)")
    left = ("dataset", "method", "annotator", "producer", "config")
    for col in (
        *left,
        "n",
        "accuracy",
        "95% CI",
        "coverage",
        f"risky vs {report['baseline']}",
        f"good vs {report['baseline']}",
        "s/pair",
    ):
        table.add_column(col, justify="left" if col in left else "right")
    for m in report["methods"]:
        corr = m[key]
        table.add_row(
            m["dataset"],
            m["method"],
            m["annotator"],
            m["producer"][:8] or "-",
            m["config"],
            str(m["n"]),
            f"{m['accuracy']:.3f}",
            f"[{m['ci95'][0]:.3f}, {m['ci95'][1]:.3f}]",
            f"{m['coverage']:.2f}",
            str(corr["risky"]) if corr else "-",
            str(corr["good"]) if corr else "-",
            f"{m['seconds_per_pair']:.2f}",
        )
    return table


def trees_table(trees: list[dict]) -> Table:
    table = Table(title="Trees")
    for col in (
        "strong model",
        "config",
        "trees",
        "depth",
        "backtraces",
        "nodes",
        "tokens",
        "s/tree",
        "stops",
        "exit verdict acc",
        "answer acc (tail exits too)",
    ):
        table.add_column(col)
    for t in trees:
        table.add_row(
            t["strong_model"],
            t["config_hash"],
            str(t["trees"]),
            f"{t['mean_depth']:.2f}",
            f"{t['mean_backtraces']:.2f}",
            f"{t['mean_nodes']:.2f}",
            f"{t['mean_tokens']:.0f}",
            f"{t['mean_seconds']:.2f}",
            ", ".join(f"{k} {v}" for k, v in sorted(t["stops"].items())),
            *(
                (
                    "-"
                    if t[f"{k}_accuracy"] is None
                    else f"{t[f'{k}_accuracy']:.3f} ({t[f'{k}_coverage']:.0%} of trees)"
                )
                for k in ("exit", "answer")
            ),
        )
    return table


def register(app: typer.Typer) -> None:
    pass  # the command is on the shared `eval_app` group, added when this module is imported
