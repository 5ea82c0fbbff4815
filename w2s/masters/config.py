"""How a master is trained (`MasterConfig`), and the names its features and weight sharings go by."""

from __future__ import annotations

from dataclasses import dataclass

FEATURES = ("verdict", "exit", "both_orders", "relevance")
"""Per principle: v, v·exit, v·both_orders, v·relevance (see w2s.masters.features)."""

PRINCIPLE_WEIGHTS = ("per-principle", "shared", "shrunk", "none")
"""The ways a features master shares its weights across principles (`auto` chooses one of them)."""


@dataclass
class MasterConfig:
    """How a master is trained; stored with it (run directory, store) and hashed into its run id."""

    kind: str = "features"
    """'features': the logistic model over tree features and the weak margin; 'rm': the weak reward
    model reading the pair with the tree's notes as text; 'cot-v1', 'cot-v2', 'cot-v3': that reward
    model reading the pair with that CoT baseline's reasoning by `strong` (no tree). See w2s.masters.kinds."""
    weak: str = "transformers:smollm2"
    """The weak model whose frozen features give the margin m (a Hugging Face folder or alias)."""
    pooling: str = "mean"
    """How the weak model's hidden states are pooled into h(prompt, response)."""
    max_length: int = 384
    """Tokens of prompt+response the weak model reads (the prompt is cut from the left)."""
    folds: int = 5
    """Cross-fitting folds for the out-of-fold margin the master learns from."""
    seed: int = 0
    strong: str = ""
    """Trees (or, for a cot-* kind, reasoning) by this strong model."""
    tree_config: str = ""
    """... of this config hash."""
    library: str = ""
    """The principle library of those trees (fixes the feature order)."""
    principle_weights: str = "auto"
    """`features`: 'per-principle', four weights per principle; 'shared', four weights whatever the
    principle (every node's evidence pooled); 'shrunk', the shared four plus per-principle offsets that
    the L2 penalty pulls toward 0, i.e. each principle's weights toward the shared ones; 'none', no tree
    weights (the master is its twin: the ablation, and `auto`'s fallback); 'auto', the one of these with
    the lowest cross-validated log-loss on the training pairs."""
    reasoning_max_tokens: int = 0
    """cot-*: the token budget of the reasoning read (as `w2s annotate -a cot-v1 --reasoning-max-tokens`)."""


def check_principle_weights(principle_weights: str) -> None:
    if principle_weights not in (*PRINCIPLE_WEIGHTS, "auto"):
        raise ValueError(
            f"unknown principle_weights {principle_weights!r}: {', '.join(PRINCIPLE_WEIGHTS)} or auto"
        )
