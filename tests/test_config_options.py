"""Configs declared once: a config dataclass makes its command-line options (`cli_options`) and its
`--set key=value` keys (`apply_sets`), with the class's defaults, types and help."""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Literal

import pytest
import typer
from typer.main import get_command
from typer.testing import CliRunner

from w2s.cli import app
from w2s.options import UnknownField, apply_sets, cli_options, field_docs, flag
from w2s.store.work import WorkOptions
from w2s.training.config import ExperimentConfig
from w2s.trees import TreeConfig

runner = CliRunner()


def command(*path: str):
    cmd = get_command(app)
    for name in path:
        cmd = cmd.commands[name]
    return cmd


def options(cmd, into: str) -> dict:
    """{field: click option} of the options `cli_options` made for `into`."""
    prefix = f"{into}__"
    return {p.name[len(prefix) :]: p for p in cmd.params if p.name and p.name.startswith(prefix)}


def parsed(cmd, args: list[str], into: str) -> dict:
    ctx = cmd.make_context(cmd.name, args)
    return {k[len(into) + 2 :]: v for k, v in ctx.params.items() if k.startswith(f"{into}__")}


def plain(value):
    return getattr(value, "value", value)  # a Literal's choice comes as an Enum member


# ---------------------------------------------------------------------------------------------- TreeConfig


def test_every_tree_config_field_is_an_option_of_trees_build_with_its_default():
    opts = options(command("trees", "build"), "cfg")
    assert set(opts) == {f.name for f in fields(TreeConfig)} - {"library"}  # library: --principles
    for f in fields(TreeConfig):
        if f.name in opts:
            assert plain(opts[f.name].default) == f.default, f.name
            assert flag(f.name) in opts[f.name].opts + opts[f.name].secondary_opts
            assert opts[f.name].help == field_docs(TreeConfig)[f.name] != ""


def test_every_tree_config_field_is_a_set_key():
    for f in fields(TreeConfig):
        text = {bool: "false", int: "3", float: "0.5"}.get(type(f.default), "per-principle")
        if f.name in ("library", "thought_template"):
            text = "x"
        cfg = apply_sets(TreeConfig, [f"{f.name}={text}"])
        assert getattr(cfg, f.name) == {"false": False, "3": 3, "0.5": 0.5}.get(text, text)


def test_trees_build_defaults_are_the_dataclass_defaults():
    values = parsed(command("trees", "build"), ["--strong", "m"], "cfg")
    assert TreeConfig(**{k: plain(v) for k, v in values.items()}) == TreeConfig()
    work = parsed(command("trees", "build"), ["--strong", "m"], "work")
    assert WorkOptions(**work) == WorkOptions()


def test_old_tree_flags_still_parse():
    old = [
        "--strong",
        "m",
        "-B",
        "5",
        "-D",
        "6",
        "--thought-tokens",
        "96",
        "--tau-exit",
        "0.7",
        "--no-thought-both-orders",
        "--post-relevance",
        "--relevance",
        "per-principle",
    ]
    values = parsed(command("trees", "build"), old, "cfg")
    assert values["max_backtraces"] == 5 and values["max_depth"] == 6 and values["thought_max_tokens"] == 96
    assert (
        values["tau_exit"] == 0.7
        and values["thought_both_orders"] is False
        and values["post_relevance"] is True
    )
    assert plain(values["relevance"]) == "per-principle"
    for long in ("--backtraces", "--max-backtraces"):
        assert parsed(command("trees", "build"), ["--strong", "m", long, "3"], "cfg")["max_backtraces"] == 3
    assert parsed(command("trees", "build"), ["--strong", "m", "--depth", "2"], "cfg")["max_depth"] == 2


def test_a_literal_field_takes_only_its_choices():
    r = runner.invoke(app, ["trees", "build", "--strong", "m", "--relevance", "pairwise"])
    assert r.exit_code == 2 and "pairwise" in r.output
    with pytest.raises(ValueError, match="listwise, per-principle"):
        apply_sets(TreeConfig, ["relevance=pairwise"])


def test_trees_build_help_lists_the_fields():
    r = runner.invoke(app, ["trees", "build", "--help"], env={"COLUMNS": "250"})
    assert r.exit_code == 0
    for name in [f.name for f in fields(TreeConfig) if f.name != "library"] + [
        f.name for f in fields(WorkOptions)
    ]:
        assert flag(name) in r.output, name
    assert "Tree search" in r.output and "Shared work" in r.output
    assert "B: stop after this many backtraced" in r.output  # the field's docstring is its help


# ---------------------------------------------------------------------------------------------- WorkOptions


def test_work_options_in_trees_build_and_annotate():
    for cmd in (command("trees", "build"), command("annotate")):
        opts = options(cmd, "work")
        assert set(opts) == {"chunk_size", "lease_seconds", "worker_id"}
        assert {o for p in opts.values() for o in p.opts} == {
            "--chunk-size",
            "--lease-seconds",
            "--worker-id",
        }
        assert opts["lease_seconds"].default == WorkOptions.lease_seconds
    args = ["--strong", "m", "--chunk-size", "4", "--lease-seconds", "60", "--worker-id", "w1"]
    assert parsed(command("trees", "build"), args, "work") == {
        "chunk_size": 4,
        "lease_seconds": 60.0,
        "worker_id": "w1",
    }
    r = runner.invoke(app, ["annotate", "--chunk-size", "0"])
    assert r.exit_code == 2 and "--chunk-size" in r.output  # the field's metadata: min=1


def test_work_options_make_the_queue_arguments():
    assert WorkOptions().queue_kwargs(16) == {"worker": None, "chunk_size": 16, "lease_seconds": 300.0}
    assert WorkOptions(chunk_size=2, worker_id="w").queue_kwargs(16)["chunk_size"] == 2


# ---------------------------------------------------------------------------------------------- ExperimentConfig


def test_experiment_options_are_the_dataclass_fields_with_its_defaults():
    opts = options(command("experiment", "w2s"), "cfg")
    assert set(opts) == {f.name for f in fields(ExperimentConfig)} - {
        "weak_lora",
        "strong_lora",
        "variants",
        "progress",
        "label_sets",
    }
    for name in ("weak", "strong"):
        assert opts[name].required
    assert not opts["data"].required and not opts["dataset"].required  # one of the two: the command checks
    values = parsed(command("experiment", "w2s"), ["--weak", "w", "--strong", "s", "--data", "d"], "cfg")
    assert ExperimentConfig(**{k: plain(v) for k, v in values.items()}) == ExperimentConfig(
        weak="w", strong="s", data="d"
    )


def test_old_experiment_flags_still_parse():
    args = [
        "--weak",
        "w",
        "--strong",
        "s",
        "--data",
        "d",
        "--weak-gt",
        "50",
        "--threads",
        "2",
        "--weak-frozen",
        "--out",
        "o",
        "--weak-pooling",
        "mean",
        "--conflict",
        "--cache-frozen-prefix",
        "--n-test",
        "9",
    ]
    values = parsed(command("experiment", "w2s"), args, "cfg")
    assert values["n_weak_gt"] == 50 and values["torch_threads"] == 2 and values["weak_frozen"] is True
    assert values["out"] == "o" and plain(values["weak_pooling"]) == "mean" and values["conflict"] is True
    assert values["cache_frozen_prefix"] is True and values["n_test"] == 9


# ---------------------------------------------------------------------------------------------- the machinery


@dataclass
class Toy:
    name: str = "a"
    """The name."""
    depth: int = 4  # chain depth
    # how sure
    tau: float = 0.5
    mode: Literal["fast", "slow"] = "fast"
    on: bool = False
    limit: int | None = None
    items: list[str] = field(default_factory=list)


def toy_app(seen: list):
    toy = typer.Typer()

    @toy.command("go")
    @cli_options(Toy, "cfg", exclude=["items"], aliases={"depth": ["-D"]}, panel="Toy")
    def go(label: str = typer.Option("x", "--label"), cfg: Toy = None) -> None:
        seen.append((label, cfg))

    @toy.command("other")
    def other() -> None:
        pass

    return toy


def test_cli_options_build_the_dataclass():
    seen: list = []
    r = runner.invoke(
        toy_app(seen), ["go", "-D", "7", "--mode", "slow", "--on", "--limit", "3", "--label", "y"]
    )
    assert r.exit_code == 0, r.output
    assert seen == [("y", Toy(depth=7, mode="slow", on=True, limit=3))]
    seen.clear()
    assert runner.invoke(toy_app(seen), ["go"]).exit_code == 0
    assert seen == [("x", Toy())]


def test_field_docs_read_docstrings_and_comments():
    assert field_docs(Toy) == {
        "name": "The name.",
        "depth": "chain depth",
        "tau": "how sure",
        "mode": "",
        "on": "",
        "limit": "",
        "items": "",
    }
    assert field_docs(ExperimentConfig)["n_weak_gt"].startswith("The weak supervisor's share of train_gt")


def test_apply_sets_converts_by_field_type():
    cfg = apply_sets(Toy, ["on=yes", "limit=none", "mode=slow", "depth=3", "tau=0.25"])
    assert cfg == Toy(on=True, limit=None, mode="slow", depth=3, tau=0.25)
    assert apply_sets(cfg, ["limit=8", "on=false"]) == Toy(on=False, limit=8, mode="slow", depth=3, tau=0.25)
    assert apply_sets(Toy, [], name="fixed").name == "fixed"
    for bad, message in (
        ("on=maybe", "true or false"),
        ("depth=1.5", "an integer"),
        ("tau=x", "a number"),
        ("mode=medium", "fast, slow"),
        ("depth", "KEY=VALUE"),
    ):
        with pytest.raises(ValueError, match=message):
            apply_sets(Toy, [bad])


def test_a_bad_set_key_names_itself_and_the_fields():
    with pytest.raises(UnknownField) as e:
        apply_sets(TreeConfig, ["max_dept=3"])
    assert "'max_dept'" in str(e.value) and "max_depth" in str(e.value) and "tau_exit" in str(e.value)


def test_bench_set_lines_go_through_apply_sets():
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))
    try:
        from common import tree_config
    finally:
        sys.path.pop(0)
    cfg = tree_config(["max_backtraces=1", "post_relevance=true"], "python")
    assert cfg == TreeConfig(library="python", max_backtraces=1, post_relevance=True)
    with pytest.raises(SystemExit, match="max_dept"):
        tree_config(["max_dept=2"], "python")


def test_typed_options_take_an_optional_fields_type_from_its_annotation():
    from w2s.backends.llamacpp_backend import LlamaCppConfig
    from w2s.options import typed_options

    assert (
        typed_options(LlamaCppConfig, {"threads": "1"}, "llama.cpp").threads == 1
    )  # `int | None`, default None
    with pytest.raises(ValueError, match="threads"):
        typed_options(LlamaCppConfig, {"threads": "one"}, "llama.cpp")
