"""The training loop for every objective, readable top to bottom.

Why not TRL's trainers: TRL (1.16) has no per-example weight column; `RewardTrainer`,
`DPOTrainer` and CPO/SimPO would each need `compute_loss` overridden *and* their data
collators taught to carry `weight`, `soft_label` and `gold` through, which leaves little of
them but the loop, and four different checkpoint layouts. One short loop over
`accelerate.Accelerator` gives every objective the same weighted losses (`losses.py`), the
same run directory and exact resume, and still runs unchanged on a GPU or under
`accelerate launch` (DDP: each process takes its slice of every global batch).

Run directory: config.json, metrics.jsonl (one JSON object per logged step),
checkpoints/step-N/ (trainable weights, optimiser, scheduler, RNG state), model/ (final
trainable weights, a PEFT adapter when LoRA is on, the tokenizer), summary.json.
"""

from __future__ import annotations

import hashlib
import json
import math
import random
import resource
import shutil
import time
from pathlib import Path

import numpy as np
import torch

from w2s.training import losses as L
from w2s.training.config import TrainConfig
from w2s.training.data import encode_pair_side, filter_rows_by_entropy, load_rows, orient, pad_batch
from w2s.training.models import build_model, sequence_logps, trainable_state


def peak_rss_mb() -> float:
    """Peak resident memory of this process so far (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def prepare_rows(config: TrainConfig, rows: list[dict]) -> list[dict]:
    """Mix in extra data (implicit conflict), filter by entropy, orient for generative objectives."""
    rows = list(rows)
    for extra in config.extra_data:
        rows += [dict(r, source=r["source"] or f"extra:{extra}") for r in load_rows(extra)]
    if config.filter_entropy_percentile is not None:
        rows = filter_rows_by_entropy(rows, config.filter_entropy_percentile)
    if config.objective != "rm":
        rows = orient(rows)
    if not config.use_weights:
        rows = [dict(r, weight=1.0) for r in rows]
    if not rows:
        raise ValueError("no training rows left after filtering")
    return rows


def collate(rows: list[dict], tok, config: TrainConfig, device) -> dict:
    """Tokenise a list of rows into one batch: chosen and rejected stacked into a single forward pass."""
    enc_c = [encode_pair_side(tok, r["prompt"], r["chosen"], config.max_length) for r in rows]
    enc_r = [encode_pair_side(tok, r["prompt"], r["rejected"], config.max_length) for r in rows]
    ids, mask = pad_batch([e[0] for e in enc_c] + [e[0] for e in enc_r], tok.pad_token_id)
    f = lambda k, d=float("nan"): torch.tensor(
        [float(r.get(k, d) if r.get(k) is not None else d) for r in rows]
    )
    b = {
        "input_ids": ids,
        "attention_mask": mask,
        "start": torch.tensor([e[1] for e in enc_c] + [e[1] for e in enc_r]),
        "target": f("soft_label", 1.0),
        "weight": f("weight", 1.0),
        "gold": f("gold"),
        "ref_chosen": f("ref_chosen_logp"),
        "ref_rejected": f("ref_rejected_logp"),
    }
    return {k: v.to(device) for k, v in b.items()}


def forward_pair(model, batch: dict, config: TrainConfig) -> dict:
    """The quantities the losses read. `margin` is the model's preference logit
    (P(chosen ≻ rejected) = σ(margin)); `z` is the training logit (SimPO subtracts γ)."""
    n = batch["target"].size(0)
    if config.objective == "rm":
        r = model(batch["input_ids"], batch["attention_mask"])
        return {"margin": r[:n] - r[n:], "z": r[:n] - r[n:]}
    tok_lp, mask = sequence_logps(model, batch["input_ids"], batch["attention_mask"], batch["start"])
    logp = tok_lp.sum(-1)
    avg = logp / mask.sum(-1).clamp(min=1)
    out = {"tok_lp": tok_lp[:n], "mask": mask[:n], "logp": logp, "avg": avg}
    if config.objective == "dpo":
        z = L.dpo_logits(logp[:n], logp[n:], batch["ref_chosen"], batch["ref_rejected"], config.beta)
        out.update(margin=z, z=z)
    elif config.objective == "simpo":
        out.update(
            margin=config.beta * (avg[:n] - avg[n:]),
            z=L.simpo_logits(avg[:n], avg[n:], config.beta, config.gamma),
        )
    else:  # sft: the length-normalised log-likelihood ratio serves as its preference
        out.update(margin=avg[:n] - avg[n:], z=avg[:n] - avg[n:])
    return out


def compute_loss(
    model, batch: dict, config: TrainConfig, step: int, total_steps: int
) -> tuple[torch.Tensor, dict]:
    out = forward_pair(model, batch, config)
    w = batch["weight"]
    stats = {}
    if config.objective == "sft":
        loss = L.sft_loss(out["tok_lp"], out["mask"], w)
    else:
        target = batch["target"]
        if config.aux_conf:
            c = L.aux_conf_coef(step, total_steps, config.aux_conf_max, config.aux_conf_warmup)
            target = L.aux_conf_target(target, out["margin"], c)
            stats["aux_c"] = c
        loss = L.weighted_mean(L.preference_bce(out["z"], target), w)
    if config.conflict_alpha:
        gold = batch["gold"]
        if torch.isnan(gold).any():
            raise ValueError("conflict_alpha needs a 'gold' column in every training row")
        conflict = L.explicit_conflict_loss(out["margin"], gold, w)
        loss = loss + config.conflict_alpha * conflict
        stats["conflict"] = float(conflict)
    stats["acc_vs_label"] = float(
        ((out["margin"] > 0).float() == (batch["target"] > 0.5).float()).float().mean()
    )
    return loss, stats


@torch.no_grad()
def reference_logps(
    model, tok, config: TrainConfig, rows: list[dict], device, batch_size: int = 8
) -> list[dict]:
    """DPO's reference log-probs from the model before any update (with LoRA this *is* the base
    model: adapters start at zero), unless the rows already carry them."""
    if all(r.get("ref_chosen_logp") is not None for r in rows):
        return rows
    model.eval()
    out = []
    for i in range(0, len(rows), batch_size):
        chunk = rows[i : i + batch_size]
        b = collate(chunk, tok, config, device)
        lp, _ = sequence_logps(model, b["input_ids"], b["attention_mask"], b["start"])
        s = lp.sum(-1).tolist()
        n = len(chunk)
        out += [dict(r, ref_chosen_logp=s[j], ref_rejected_logp=s[n + j]) for j, r in enumerate(chunk)]
    return out


def warm_prefix_cache(
    model, tok, config: TrainConfig, rows: list[dict], progress: bool = False
) -> tuple[int, float]:
    """With `cache_frozen_prefix` (or `freeze_backbone`), run the frozen layers once over every
    sequence of `rows` (length-sorted batches) before training or scoring. Returns (sequences
    computed, seconds)."""
    if not getattr(model, "caches_frozen", False):  # causal LMs and uncached reward models
        return 0, 0.0
    t = time.time()
    seqs = [
        encode_pair_side(tok, r["prompt"], r[side], config.max_length)[0]
        for r in rows
        for side in ("chosen", "rejected")
    ]
    return model.fill(seqs, tok.pad_token_id, progress=progress), time.time() - t


def _micro_batches(n_rows: int, micro: int, seed: int, epoch: int) -> list[np.ndarray]:
    """This epoch's shuffled micro-batches of global size `micro` (a fixed order per seed and epoch)."""
    perm = torch.randperm(n_rows, generator=torch.Generator().manual_seed(seed * 1000 + epoch)).numpy()
    return [perm[i : i + micro] for i in range(0, n_rows, micro)]


def _checkpoints(out: Path) -> list[Path]:
    d = out / "checkpoints"
    return sorted(d.glob("step-*"), key=lambda p: int(p.name.split("-")[1])) if d.exists() else []


def _save_checkpoint(out: Path, step: int, model, optimizer, scheduler, config: TrainConfig) -> None:
    d = out / "checkpoints" / f"step-{step}"
    tmp = d.with_name(d.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    torch.save(trainable_state(model), tmp / "trainable.pt")
    torch.save(optimizer.state_dict(), tmp / "optimizer.pt")
    torch.save(scheduler.state_dict(), tmp / "scheduler.pt")
    torch.save(
        {"torch": torch.get_rng_state(), "numpy": np.random.get_state(), "python": random.getstate()},
        tmp / "rng.pt",
    )
    (tmp / "state.json").write_text(json.dumps({"step": step}))
    shutil.rmtree(d, ignore_errors=True)
    tmp.rename(d)  # a checkpoint appears whole or not at all
    for old in _checkpoints(out)[: -config.keep_checkpoints]:
        shutil.rmtree(old, ignore_errors=True)


# Fields that do not change what a run computes: a rerun may differ in them and still resume
_VOLATILE = ("out", "progress", "torch_threads", "logging_steps", "save_steps", "keep_checkpoints")


def rows_fingerprint(rows: list[dict]) -> str:
    """sha256 of what training reads from the rows (texts, labels, weights), in order."""
    h = hashlib.sha256()
    for r in rows:
        h.update(
            json.dumps(
                [r["prompt"], r["chosen"], r["rejected"], r.get("soft_label"), r.get("weight"), r.get("gold")]
            ).encode()
        )
    return h.hexdigest()


def check_same_run(out: Path, config: TrainConfig, fingerprint: str) -> None:
    """A run directory resumes only the run it holds: a different config or different training rows
    raise instead of silently reusing (or continuing) another run's weights."""
    # loaded through the config class, so fields added since the run was saved take their defaults
    saved = TrainConfig.load(out / "config.json").to_dict() if (out / "config.json").exists() else None
    if saved is not None:
        new = config.to_dict()
        diff = sorted(k for k in set(saved) | set(new) if k not in _VOLATILE and saved.get(k) != new.get(k))
        if diff:
            raise ValueError(
                f"{out} holds a run with a different config ({', '.join(diff)}); "
                "choose another run directory or delete it"
            )
    summary = json.loads((out / "summary.json").read_text()) if (out / "summary.json").exists() else {}
    if summary.get("rows_sha256", fingerprint) != fingerprint:
        raise ValueError(
            f"{out} holds a run trained on different rows; choose another run directory or delete it"
        )


def train(config: TrainConfig, rows: list[dict] | None = None, data: str | None = None) -> Path:
    """Train (or resume training) into `config.out`; returns the run directory.

    Rerunning with the same config resumes from the newest checkpoint; a finished run is left as is."""
    from accelerate import Accelerator
    from accelerate.utils import set_seed
    from tqdm.auto import tqdm

    if config.torch_threads:
        torch.set_num_threads(config.torch_threads)
    out = Path(config.out)
    if rows is None:
        if data is None:
            raise ValueError("give rows or a data path")
        rows = load_rows(data)
    rows = prepare_rows(config, rows)
    fingerprint = rows_fingerprint(rows)
    check_same_run(out, config, fingerprint)
    if (out / "summary.json").exists():
        return out

    accelerator = Accelerator()
    main = accelerator.is_main_process
    if main:
        out.mkdir(parents=True, exist_ok=True)
        config.save(out / "config.json")
    set_seed(config.seed)
    tok, model = build_model(config)
    model.to(accelerator.device)
    n_prefix, prefix_s = warm_prefix_cache(model, tok, config, rows, progress=config.progress and main)
    if config.objective == "dpo":
        rows = reference_logps(model, tok, config, rows, accelerator.device)

    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=config.learning_rate, weight_decay=config.weight_decay)
    if getattr(config, "head_lr", None) and hasattr(model, "head"):
        head = {id(p) for p in model.head.parameters()}
        body = [p for p in params if id(p) not in head]
        optimizer = torch.optim.AdamW(
            ([{"params": body}] if body else [])
            + [{"params": list(model.head.parameters()), "lr": config.head_lr}],
            lr=config.learning_rate,
            weight_decay=config.weight_decay,
        )
    micro = config.batch_size * accelerator.num_processes
    per_epoch = math.ceil(len(rows) / micro)
    total_steps = config.max_steps or max(1, math.ceil(config.epochs * per_epoch / config.grad_accum))
    warm = int(config.warmup_ratio * total_steps)
    schedule = lambda s: (
        (s + 1) / (warm + 1) if s < warm else max(0.0, (total_steps - s) / max(1, total_steps - warm))
    )
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, schedule)

    start = 0
    ckpts = _checkpoints(out)
    if ckpts:  # resume: restore weights, optimiser, schedule and RNG exactly
        d = ckpts[-1]
        start = json.loads((d / "state.json").read_text())["step"]
        model.load_state_dict(torch.load(d / "trainable.pt"), strict=False)
        optimizer.load_state_dict(torch.load(d / "optimizer.pt"))
        scheduler.load_state_dict(torch.load(d / "scheduler.pt"))
        rng = torch.load(d / "rng.pt", weights_only=False)
        torch.set_rng_state(rng["torch"])
        np.random.set_state(rng["numpy"])
        random.setstate(rng["python"])
        if main and (out / "metrics.jsonl").exists():  # drop metrics logged after that checkpoint
            kept = [
                line
                for line in (out / "metrics.jsonl").read_text().splitlines()
                if json.loads(line)["step"] <= start
            ]
            (out / "metrics.jsonl").write_text("".join(line + "\n" for line in kept))
    model, optimizer = accelerator.prepare(model, optimizer)

    model.train()
    bar = tqdm(
        total=total_steps,
        initial=start,
        desc=f"train {config.objective}",
        disable=not (config.progress and main),
    )
    t0, pairs, epoch_batches, log_losses = time.time(), 0, {}, []
    for step in range(start, total_steps):
        for k in range(config.grad_accum):
            m = step * config.grad_accum + k
            epoch, pos = divmod(m, per_epoch)
            if epoch not in epoch_batches:
                epoch_batches = {epoch: _micro_batches(len(rows), micro, config.seed, epoch)}
            idx = epoch_batches[epoch][pos][accelerator.process_index :: accelerator.num_processes]
            batch = collate([rows[i] for i in idx], tok, config, accelerator.device)
            loss, stats = compute_loss(model, batch, config, step, total_steps)
            accelerator.backward(loss / config.grad_accum)
            log_losses.append(float(loss.detach()))
            pairs += len(idx) * accelerator.num_processes
        if config.max_grad_norm:
            accelerator.clip_grad_norm_(params, config.max_grad_norm)
        optimizer.step()
        scheduler.step()
        optimizer.zero_grad(set_to_none=True)
        bar.update(1)
        done = step + 1
        if main and (done % config.logging_steps == 0 or done == total_steps):
            rec = {
                "step": done,
                "epoch": round(m / per_epoch, 4),
                "loss": float(np.mean(log_losses)),
                "lr": scheduler.get_last_lr()[0],
                "pairs_per_s": pairs / max(time.time() - t0, 1e-9),
                **stats,
            }
            with (out / "metrics.jsonl").open("a") as fh:
                fh.write(json.dumps(rec) + "\n")
            bar.set_postfix(loss=f"{rec['loss']:.4f}")
            log_losses = []
        if main and (done % config.save_steps == 0 or done == total_steps):
            _save_checkpoint(out, done, accelerator.unwrap_model(model), optimizer, scheduler, config)
        accelerator.wait_for_everyone()
    bar.close()
    seconds = time.time() - t0

    if main:
        unwrapped = accelerator.unwrap_model(model)
        md = out / "model"
        md.mkdir(exist_ok=True)
        torch.save(trainable_state(unwrapped), md / "trainable.pt")
        peft_model = getattr(unwrapped, "backbone", unwrapped)
        if hasattr(peft_model, "peft_config"):
            peft_model.save_pretrained(str(md / "adapter"))
        tok.save_pretrained(str(md))
        summary = {
            "objective": config.objective,
            "rows": len(rows),
            "rows_sha256": fingerprint,
            "steps": total_steps,
            "resumed_from": start,
            "pairs": pairs,
            "seconds": seconds,
            "pairs_per_s": pairs / max(seconds, 1e-9),
            # the one-off pass over the frozen layers (cache_frozen_prefix, freeze_backbone), not in pairs_per_s
            "prefix_sequences": n_prefix,
            "prefix_seconds": prefix_s,
            "prefix_pairs_per_s": n_prefix / 2 / prefix_s if prefix_s else None,
            "peak_rss_mb": peak_rss_mb(),
            "device": str(accelerator.device),
        }
        (out / "summary.json").write_text(json.dumps(summary, indent=2))
    accelerator.wait_for_everyone()
    return out
