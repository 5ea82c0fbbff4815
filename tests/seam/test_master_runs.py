"""Run directories of masters trained before w2s.masters (tests/seam/fixtures/master_runs/, written by the
old `w2s/master.py`: make_master_runs.py) load with today's code, keep their run ids and predict the same
probabilities; trained again today on the same data, they come out the same; and they survive a trip
through the store (import, load by name, export)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from fixtures.make_master_runs import synthetic, weak

from w2s.masters import (
    Master,
    MasterConfig,
    MasterInputs,
    export_run,
    import_run,
    load_saved,
    resolve_master,
    run_id,
    train_master,
)
from w2s.store import session_scope
from w2s.trees.principles import load_library

FIXTURES = Path(__file__).parent / "fixtures"
RUNS = FIXTURES / "master_runs"
EXPECTED = json.loads((RUNS / "expected.json").read_text())


def predictions(master: Master, run: dict) -> tuple[np.ndarray, np.ndarray]:
    diffs = np.array(EXPECTED["diffs"])
    return master.p_a(diffs, np.array(run["x"])), master.p_a_alone(diffs)


@pytest.mark.parametrize("name", sorted(EXPECTED["runs"]))
def test_an_old_run_directory_loads_with_its_run_id_and_probabilities(name):
    run = EXPECTED["runs"][name]
    master = Master.load(RUNS / name)
    assert master.run_id == run["run_id"]
    if name != "features-before-principle-weights":  # its config lost the field its id was computed with
        assert run_id(master.config, run["data_hash"]) == run["run_id"]
    p_a, alone = predictions(master, run)
    np.testing.assert_array_equal(p_a, run["p_a"])
    np.testing.assert_array_equal(alone, run["p_a_alone"])


def test_the_run_before_principle_weights_is_per_principle():
    master = Master.load(RUNS / "features-before-principle-weights")
    assert master.config.principle_weights == master.principle_weights == "per-principle"


@pytest.mark.parametrize("name", ["features-auto", "cot-v1"])
def test_training_again_gives_the_same_master(name):
    pairs, trees, nodes = synthetic(60)
    old = Master.load(RUNS / name)
    if old.config.kind == "cot-v1":
        texts = [f"Reply {'A' if p.gold == 'a' else 'B'} is correct." for p in pairs]
        inputs = MasterInputs(pairs, reasoning=texts)
    else:
        inputs = MasterInputs(pairs, trees, nodes, load_library("correctness"))
    again = train_master(inputs, old.config, features=weak)
    # the last bits of a fit depend on the machine's BLAS, so numbers match to 1e-9, everything else exactly
    assert_same_state(again.state(), json.loads((RUNS / name / "master.json").read_text()))


def assert_same_state(got, want, where="state"):
    if isinstance(want, dict):
        assert isinstance(got, dict) and got.keys() == want.keys(), where
        for key in want:
            assert_same_state(got[key], want[key], f"{where}.{key}")
    elif isinstance(want, list):
        assert isinstance(got, list) and len(got) == len(want), where
        for i, (g, w) in enumerate(zip(got, want)):
            assert_same_state(g, w, f"{where}[{i}]")
    elif isinstance(want, float) and not isinstance(want, bool):
        assert got == pytest.approx(want, rel=1e-9, abs=1e-12), where
    else:
        assert got == want, where


def test_an_old_run_round_trips_through_the_store(db_url, tmp_path):
    run = EXPECTED["runs"]["features-auto"]
    with session_scope(db_url) as s:
        row = import_run(s, RUNS / "features-auto")
        assert row.name == f"features-{run['run_id']}" and row.kind == "features"
        assert import_run(s, RUNS / "features-auto").id == row.id  # importing it again adds nothing
    with session_scope(db_url) as s:
        master = load_saved(s, row.name)
        export_run(s, row.name, tmp_path / "out")
    assert master == Master.load(RUNS / "features-auto")
    p_a, _ = predictions(master, run)
    np.testing.assert_array_equal(p_a, run["p_a"])
    assert Master.load(tmp_path / "out") == master
    assert resolve_master(row.name, db_url) == master and resolve_master(RUNS / "features-auto") == master


def test_config_defaults_are_what_old_runs_were_trained_with():
    """run ids hash the whole config: a new field needs a default that keeps old ids (see runs.run_id)."""
    stored = json.loads((RUNS / "features-auto" / "config.json").read_text())
    assert set(stored) == set(MasterConfig.__dataclass_fields__)
