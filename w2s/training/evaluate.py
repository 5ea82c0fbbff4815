"""Scoring pairs with a trained run: P(chosen ≻ rejected) per pair, and test accuracy."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch

from w2s.training import metrics as w2s_metrics
from w2s.training.config import TrainConfig
from w2s.training.models import build_model
from w2s.training.trainer import collate, forward_pair, reference_logps, warm_prefix_cache


def load_run(run_dir: str | Path):
    """(config, tokenizer, model) of a finished run, in eval mode."""
    run_dir = Path(run_dir)
    if not (run_dir / "model" / "trainable.pt").exists():
        raise FileNotFoundError(f"{run_dir}: no trained model (model/trainable.pt); has the run finished?")
    config = TrainConfig.load(run_dir / "config.json")
    tok, model = build_model(config)
    model.load_state_dict(torch.load(run_dir / "model" / "trainable.pt"), strict=False)
    return config, tok, model.eval()


@torch.no_grad()
def predict(
    config: TrainConfig, tok, model, rows: list[dict], batch_size: int = 8, progress: bool = False
) -> np.ndarray:
    """σ(margin) for each row: the model's probability that `chosen` is the better response.
    DPO needs the reference model's log-probs: they come from a fresh copy of the base model."""
    from tqdm.auto import tqdm

    device = next(model.parameters()).device
    if config.objective == "dpo":
        _, base = build_model(config)
        rows = reference_logps(base.to(device), tok, config, rows, device, batch_size)
        del base
    model.eval()
    warm_prefix_cache(model, tok, config, rows, progress=progress)
    out = []
    for i in tqdm(range(0, len(rows), batch_size), desc="score", disable=not progress):
        b = collate(rows[i : i + batch_size], tok, config, device)
        out.append(torch.sigmoid(forward_pair(model, b, config)["margin"].float()).cpu().numpy())
    return np.concatenate(out) if out else np.zeros(0)


def evaluate_run(run_dir: str | Path, rows: list[dict], batch_size: int = 8, progress: bool = True) -> dict:
    """Accuracy of a run on rows whose `chosen` is the gold-better response; writes eval.json."""
    config, tok, model = load_run(run_dir)
    p = predict(config, tok, model, rows, batch_size, progress)
    res = {
        "n": len(p),
        "accuracy": w2s_metrics.accuracy(p),
        "ece": w2s_metrics.expected_calibration_error(p),
        "p_chosen": p.tolist(),
    }
    (Path(run_dir) / "eval.json").write_text(json.dumps(res))
    return res
