"""Training losses as pure functions of tensors, written like the papers' formulas.

Every preference loss is a (soft-label) binary cross-entropy on a preference logit z, i.e.
  ℓ(z, y) = −y·log σ(z) − (1−y)·log σ(−z),
which is −log σ(z) for a hard label y = 1 (the papers' form) and lets soft labels, AuxConf
targets and conflict targets enter without special cases. Every loss takes a per-example
`weight` (reliability re-weighting, Guo & Yang 2024) and returns mean_i(w_i · ℓ_i): the paper
multiplies each example's loss by its weight, so a zero weight removes that example's gradient.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F


def weighted_mean(per_example: torch.Tensor, weight: torch.Tensor | None) -> torch.Tensor:
    """(1/N) Σ_i w_i ℓ_i (plain mean when weight is None)."""
    if weight is None:
        return per_example.mean()
    return (weight.to(per_example) * per_example).mean()


def preference_bce(z: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Per-example −y log σ(z) − (1−y) log σ(−z)."""
    return F.binary_cross_entropy_with_logits(z, target.to(z), reduction="none")


def bradley_terry_loss(r_chosen, r_rejected, target, weight=None):
    """Reward model (Bradley & Terry 1952; Ouyang et al. 2022): P(chosen ≻ rejected) = σ(r_c − r_r)."""
    return weighted_mean(preference_bce(r_chosen - r_rejected, target), weight)


def dpo_logits(pi_chosen, pi_rejected, ref_chosen, ref_rejected, beta: float = 0.1):
    """DPO (Rafailov et al. 2023): z = β[(log π(y_w|x) − log π_ref(y_w|x)) − (log π(y_l|x) − log π_ref(y_l|x))]."""
    return beta * ((pi_chosen - ref_chosen) - (pi_rejected - ref_rejected))


def dpo_loss(pi_chosen, pi_rejected, ref_chosen, ref_rejected, target, weight=None, beta: float = 0.1):
    """−log σ(z_DPO) for hard labels; soft labels give the conservative-DPO form."""
    return weighted_mean(
        preference_bce(dpo_logits(pi_chosen, pi_rejected, ref_chosen, ref_rejected, beta), target), weight
    )


def simpo_logits(avg_chosen, avg_rejected, beta: float = 2.0, gamma: float = 1.0):
    """SimPO (Meng et al. 2024): z = β/|y_w| log π(y_w|x) − β/|y_l| log π(y_l|x) − γ
    (`avg_*` are the length-normalised log-probs (1/|y|) log π(y|x))."""
    return beta * (avg_chosen - avg_rejected) - gamma


def simpo_loss(avg_chosen, avg_rejected, target, weight=None, beta: float = 2.0, gamma: float = 1.0):
    return weighted_mean(preference_bce(simpo_logits(avg_chosen, avg_rejected, beta, gamma), target), weight)


def sft_loss(token_logps: torch.Tensor, mask: torch.Tensor, weight=None):
    """SFT on chosen: per example, the mean negative log-likelihood of the response tokens."""
    mask = mask.to(token_logps)
    nll = -(token_logps * mask).sum(-1) / mask.sum(-1).clamp(min=1)
    return weighted_mean(nll, weight)


def aux_conf_coef(step: int, total_steps: int, c_max: float = 0.5, warmup_frac: float = 0.2) -> float:
    """AuxConf coefficient c(t): a smooth (half-cosine) ramp from 0 to c_max over the first
    `warmup_frac` of training, then constant (Burns et al. 2023 warm it up to 0.5)."""
    warm = max(1.0, warmup_frac * total_steps)
    x = min(step / warm, 1.0)
    return c_max * 0.5 * (1.0 - math.cos(math.pi * x))


def aux_conf_target(weak: torch.Tensor, z_strong: torch.Tensor, c: float) -> torch.Tensor:
    """Burns et al. 2023: target = (1−c)·weak + c·hardened strong, with the strong model's own
    prediction hardened (σ(z) > 0.5) and detached, so it is a label, not a path for gradients.
    Because ℓ(z, y) is linear in y this equals (1−c)·ℓ(z, weak) + c·ℓ(z, hardened)."""
    hardened = (z_strong.detach() > 0).to(weak.dtype)
    return (1.0 - c) * weak + c * hardened


def explicit_conflict_loss(z: torch.Tensor, gold: torch.Tensor, weight=None) -> torch.Tensor:
    """Explicit conflict (deception studies, Yang et al. 2024): reward the student for disagreeing
    with ground truth where it already does. `gold` is 1 when `chosen` is the gold-better response.
    On those pairs the loss pushes z further towards the wrong side: ℓ(z, 1 − gold); elsewhere 0."""
    already_wrong = ((z.detach() > 0).to(gold.dtype) != gold).to(z.dtype)
    per = preference_bce(z, 1.0 - gold) * already_wrong
    return weighted_mean(per, weight)
