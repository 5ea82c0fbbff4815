"""`w2s train`, `w2s eval student` and `w2s experiment w2s`: train a strong student on exported labels,
score it, and run the whole weak-to-strong protocol into one report."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import typer
from rich.table import Table

from w2s.cli.console import console
from w2s.options import cli_options
from w2s.training.config import ExperimentConfig, LoraSpec, TrainConfig

experiment_app = typer.Typer(help="Run experiments end to end.", no_args_is_help=True)
err = console(True, soft_wrap=True)
out = console()


def _lora(lora: bool, r: int, alpha: int, dropout: float, last_n: int | None):
    from w2s.training import LoraSpec

    return LoraSpec(r=r, alpha=alpha, dropout=dropout, last_n_layers=last_n) if lora else None


def train_cmd(
    objective: str = typer.Option(..., "--objective", "-o", help="rm | dpo | simpo | sft"),
    model: str = typer.Option(
        ..., "--model", "-m", help="Model spec, alias or Hugging Face folder (e.g. `transformers:smollm2`)."
    ),
    data: Path = typer.Option(
        ..., "--data", "-d", help="Export rows: JSONL, Parquet or a `datasets` folder."
    ),
    run_dir: Path = typer.Option(..., "--out", help="Run directory (rerun the same command to resume)."),
    lora: bool = typer.Option(False, "--lora/--no-lora", help="Train LoRA adapters instead of all weights."),
    lora_r: int = typer.Option(LoraSpec.r, help="LoRA rank r."),
    lora_alpha: int = typer.Option(LoraSpec.alpha, help="LoRA α."),
    lora_dropout: float = typer.Option(LoraSpec.dropout, help="LoRA dropout."),
    lora_last_n: int | None = typer.Option(None, help="Adapters on the last n layers only."),
    aux_conf: bool = typer.Option(
        False, "--aux-conf", help="Auxiliary confidence loss (Burns et al. 2023), c → 0.5."
    ),
    epochs: float = typer.Option(TrainConfig.epochs, help="Epochs over the data."),
    max_steps: int | None = typer.Option(None, help="Optimiser steps (overrides --epochs)."),
    batch_size: int = typer.Option(TrainConfig.batch_size, help="Pairs per step."),
    lr: float | None = typer.Option(None, "--lr", help="Learning rate [default: the objective's]."),
    max_length: int = typer.Option(TrainConfig.max_length, help="Tokens per prompt+response."),
    seed: int = typer.Option(TrainConfig.seed),
    weights: bool = typer.Option(
        TrainConfig.use_weights,
        "--weights/--no-weights",
        help="Multiply each example's loss by its `weight`.",
    ),
    filter_percentile: float | None = typer.Option(None, help="Keep rows with entropy ≤ this percentile."),
    conflict_alpha: float = typer.Option(
        TrainConfig.conflict_alpha, help="Explicit conflict weight α (needs a `gold` column)."
    ),
    extra_data: list[Path] = typer.Option([], help="Extra rows mixed in (implicit conflict)."),
    beta: float | None = typer.Option(None, help="DPO/SimPO β [default 0.1 / 2.0]."),
    gamma: float | None = typer.Option(None, help="SimPO γ [default 1.0]."),
    pooling: str | None = typer.Option(None, help="Reward model pooling: last | mean."),
    save_steps: int = typer.Option(TrainConfig.save_steps, help="Checkpoint every n steps."),
    threads: int | None = typer.Option(None, help="torch threads on CPU."),
) -> None:
    """Train a strong student (reward model, DPO, SimPO or SFT) on exported labels."""
    from w2s.training import make_config, train
    from w2s.training.data import DataError

    kw = dict(
        model=model,
        out=str(run_dir),
        lora=_lora(lora, lora_r, lora_alpha, lora_dropout, lora_last_n),
        aux_conf=aux_conf,
        epochs=epochs,
        max_steps=max_steps,
        batch_size=batch_size,
        max_length=max_length,
        seed=seed,
        use_weights=weights,
        filter_entropy_percentile=filter_percentile,
        conflict_alpha=conflict_alpha,
        extra_data=[str(p) for p in extra_data],
        save_steps=save_steps,
        torch_threads=threads,
    )
    if lr is not None:
        kw["learning_rate"] = lr
    for name, val, ok in (
        ("beta", beta, ("dpo", "simpo")),
        ("gamma", gamma, ("simpo",)),
        ("pooling", pooling, ("rm",)),
    ):
        if val is not None:
            if objective not in ok:
                raise typer.BadParameter(f"--{name} applies to {'/'.join(ok)} only")
            kw[name] = val
    try:
        cfg = make_config(objective, **kw)
        run = train(cfg, data=str(data))
    except (DataError, ValueError, FileNotFoundError) as e:
        err.print(f"[red]error:[/] {e}")
        raise typer.Exit(1) from None
    s = json.loads((run / "summary.json").read_text())
    out.print(
        f"trained {s['objective']} on {s['rows']} rows, {s['steps']} steps, "
        f"{s['pairs_per_s']:.2f} pairs/s, peak RSS {s['peak_rss_mb']:.0f} MiB → {run}"
    )


def eval_student_cmd(
    run_dir: Path = typer.Argument(..., help="A finished `w2s train` run directory."),
    data: Path = typer.Option(
        ..., "--data", "-d", help="Test pairs whose `chosen` is the gold-better response."
    ),
    limit: int | None = typer.Option(None, help="Score only the first n pairs."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Test accuracy of a trained student (writes RUN_DIR/eval.json)."""
    from w2s.training.data import DataError, load_rows
    from w2s.training.evaluate import evaluate_run

    try:
        rows = load_rows(data)[:limit]
        res = evaluate_run(run_dir, rows, progress=not as_json)
    except (DataError, FileNotFoundError) as e:
        err.print(f"[red]error:[/] {e}")
        raise typer.Exit(1) from None
    if as_json:
        out.print_json(data={k: v for k, v in res.items() if k != "p_chosen"})
    else:
        out.print(f"accuracy {res['accuracy']:.3f} on {res['n']} pairs (ECE {res['ece']:.3f})")


@experiment_app.command("w2s")
@cli_options(
    ExperimentConfig,
    "cfg",
    required=["weak", "strong"],
    panel="Experiment",
    exclude=["weak_lora", "strong_lora", "variants", "progress", "label_sets"],
    aliases={"n_weak_gt": ["--weak-gt"], "torch_threads": ["--threads"], "dataset": ["-d"]},
)
def experiment_w2s_cmd(
    cfg: ExperimentConfig = None,  # its fields' options (but the LoRA specs and the variants: below)
    subsample: int | None = typer.Option(
        None, help="Pairs per split (train_gt, train_w2s, test), for each --n-* not given."
    ),
    lora_r: int = typer.Option(LoraSpec.r, help="The student's LoRA rank (α = 2r)."),
    lora_last_n: int | None = typer.Option(None, help="Student LoRA on the last n layers only."),
    label_set: list[str] = typer.Option(
        [],
        "--label-set",
        help="NAME=LABEL_SET: a student on a label set of the store (`w2s labels build`); repeat.",
    ),
    variants: str = typer.Option(
        "all",
        help="The students on the weak labels: all, or some of naive,aux_conf,filtered,reweighted, or none "
        "(only the students on --seam-labels and --aligned-labels; a later run resumes the rest).",
    ),
) -> None:
    """The standard protocol: weak and ceiling on train_gt, weak labels on train_w2s, students on them,
    everything scored on test_dev; writes OUT/report.md with plots."""
    from w2s.training.protocol import parse_variants, run_experiment
    from w2s.training.report import label_gaps

    if not cfg.data and not cfg.dataset:
        err.print("[red]error:[/] give --data FOLDER or --dataset NAME (its splits in the store)")
        raise typer.Exit(1)
    label_sets = dict(item.split("=", 1) if "=" in item else (item, item) for item in label_set)
    sizes = {k: subsample for k in ("n_train_gt", "n_train_w2s", "n_test") if getattr(cfg, k) is None}
    cfg = replace(
        cfg,
        **sizes,
        strong_lora=LoraSpec(r=lora_r, alpha=2 * lora_r, last_n_layers=lora_last_n),
        variants=parse_variants(variants),
        label_sets=label_sets,
    )
    out_dir = Path(cfg.out)
    from w2s.training.data import DataError

    try:
        res = run_experiment(cfg)
    except (DataError, ValueError, FileNotFoundError) as e:  # bad input: say what, without a traceback
        err.print(f"[red]error:[/] {e}")
        raise typer.Exit(1) from None
    t = Table("model", "test accuracy", "PGR")
    for k, a in res["accuracy"].items():
        p = res["pgr"].get(k)
        t.add_row(
            k, f"{a:.3f}", "" if not k.startswith("w2s_") else ("undefined" if p is None else f"{p:.3f}")
        )
    out.print(t)
    for name, g in label_gaps(res).items():
        a, _, b = name.partition(" - ")
        out.print(f"w2s_{a} − w2s_{b}: {g['gap']:+.3f} ({g['lo']:+.3f} … {g['hi']:+.3f})")
    out.print(f"report: {out_dir / 'report.md'}")


def register(app: typer.Typer) -> None:
    from w2s.cli import eval_app

    app.command("train")(train_cmd)
    eval_app.command("student")(eval_student_cmd)
    app.add_typer(experiment_app, name="experiment")
