"""Aligned weak masters: small models trained on gold (the ground-truth split) that decide a pair's
label, with its FF-tree (the master) or from the pair alone (its no-tree twin, "aligned weak alone").

The `features` master (DESIGN.md §4.3) is a logistic model over what the tree says plus the aligned
weak model's own margin on the pair:

    P(A better) = σ( a·m + Σ_p [ w_p·v_p + x_p·v_p·exit_p + b_p·v_p·both_p + c_p·v_p·r_p ] )

    m       the weak margin: a Bradley–Terry head on the weak model's frozen features,
            m = wᵀ(h(prompt, A) − h(prompt, B)), trained on the same gold pairs (out-of-fold for the
            master's own fit, so the master does not learn to over-trust an over-fitted margin)
    v_p     p_a − ½ of the tree's node on principle p (0 when the tree has none)
    exit_p  1 when that node is the tree's exit node; both_p 1 when its verdict points the same way in
            both presentation orders; r_p its relevance

`principle_weights` sets how the weights are shared: one set per principle (above), one set for every
principle (w_p = w: a node's evidence counts the same whatever its principle), `shrunk`, w_p = w + δ_p
with the L2 penalty on δ_p pulling each principle toward the shared set, or `none` (no tree weights: the
master is its twin); `auto` (the default) picks one by cross-validation on the training pairs, so a
master whose trees do not lower the held-out log-loss on its own training pairs falls back to its twin
rather than add their noise. Per-principle weights need data on every principle, and deeper trees
spread their nodes over more principles (docs/seam_domains.md).

Every feature is odd under swapping A and B and there is no intercept, so the master is too
(P(A | A,B) = 1 − P(A | B,A)); the training rows are used in both orders. A weight may be negative:
the master can learn to *invert* a principle whose verdicts are reliably wrong, or to ignore one
(≈ 0). The twin is the same logistic model on m alone. Both are fitted with L2 strength chosen by
cross-validation (scikit-learn's LogisticRegressionCV), and stored as plain JSON weights.

The `rm` master is a weak reward model that reads the tree as text: the same frozen-feature
Bradley–Terry head, on h(prompt + the tree's notes, response) — each chain node's principle, thought
and verdict written under the conversation. Its twin is the head on the pair alone (the features
master's margin). A head-only reward model on frozen features is a logistic regression on the feature
differences (the head's bias cancels in r(A) − r(B)), so scikit-learn fits it here too.

A `cot-v1`/`cot-v2`/`cot-v3` master is the same reward model reading the pair with the strong model's
free reasoning (that CoT baseline's, as stored with its labels: w2s.reasoning) instead of the tree's
notes: tree against free reasoning, decided by the same kind of aligned master (issue 11).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from w2s.principles import Library
from w2s.reasoning import COT_METHODS
from w2s.store import Node, Pair, Tree

FEATURES = ("verdict", "exit", "both_orders", "relevance")
"""Per principle: v, v·exit, v·both_orders, v·relevance (see the module docstring)."""

TEXT_KINDS = ("rm", *COT_METHODS)
"""The master kinds that read text with the weak model (a reward model head), not tree features."""
KINDS = ("features", *TEXT_KINDS)


@dataclass
class MasterConfig:
    """How a master is trained; stored in its run directory and hashed into its run id."""

    kind: str = "features"
    """'features': the logistic model over tree features and the weak margin; 'rm': the weak reward
    model reading the pair with the tree's notes as text; 'cot-v1', 'cot-v2', 'cot-v3': that reward
    model reading the pair with that CoT baseline's reasoning by `strong` (no tree)."""
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


# ---------------------------------------------------------------------------------------------- pure math


def node_features(tree: Tree, nodes: Sequence[Node], library: Library) -> np.ndarray:
    """The tree's 4·K features (K principles of the library, FEATURES order per principle)."""
    index = {p.id: k for k, p in enumerate(library.principles)}
    x = np.zeros((len(library.principles), len(FEATURES)))
    orders = tree.config.get("orders") or []
    for node in nodes:
        k = index.get(node.principle_id)
        if k is None:
            continue
        v = node.p_a - 0.5
        first, second = orders[node.position] if node.position < len(orders) else (node.p_a, node.p_a)
        both = (first - 0.5) * (second - 0.5) > 0
        x[k] = (v, v * (node.role == "exit"), v * both, v * node.relevance)
    return x.reshape(-1)


PRINCIPLE_WEIGHTS = ("per-principle", "shared", "shrunk", "none")
"""The ways a features master shares its weights across principles (`auto` chooses one of them)."""


def design(x: np.ndarray, principle_weights: str, k: int) -> np.ndarray:
    """The logistic model's inputs from rows of `node_features` (K principles × FEATURES each)."""
    if principle_weights not in PRINCIPLE_WEIGHTS:
        raise ValueError(f"unknown principle_weights {principle_weights!r}: {', '.join(PRINCIPLE_WEIGHTS)}")
    if principle_weights == "per-principle":
        return x
    if principle_weights == "none":
        return np.zeros((len(x), 0))
    pooled = x.reshape(len(x), k, len(FEATURES)).sum(1)
    return pooled if principle_weights == "shared" else np.column_stack([pooled, x])


def principle_weight_rows(weights: np.ndarray, principle_weights: str, k: int) -> np.ndarray:
    """Each principle's effective FEATURES weights (K × 4) from the fitted `design` weights."""
    f = len(FEATURES)
    if principle_weights == "none":
        return np.zeros((k, f))
    if principle_weights == "shared":
        return np.tile(weights, (k, 1))
    if principle_weights == "shrunk":
        return weights[:f] + weights[f:].reshape(k, f)
    return weights.reshape(k, f)


def mirrored(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The rows in both A/B orders: features are odd under the swap, so (x, y) -> (−x, 1 − y)."""
    return np.vstack([x, -x]), np.concatenate([y, 1 - y])


def fit_logistic(x: np.ndarray, y: np.ndarray, seed: int) -> np.ndarray:
    """Weights of an L2 logistic model without intercept, strength by 5-fold CV on log-loss."""
    from sklearn.linear_model import LogisticRegressionCV

    xs, ys = mirrored(x, y)
    model = LogisticRegressionCV(Cs=10, cv=5, fit_intercept=False, scoring="neg_log_loss", max_iter=2000,
                                 random_state=seed, l1_ratios=(0.0,), use_legacy_attributes=False)
    model.fit(xs, ys)
    return model.coef_[0]


def cv_log_loss(x: np.ndarray, y: np.ndarray, folds: int, seed: int) -> float:
    """Mean held-out log-loss of `fit_logistic` over stratified folds (how `auto` compares sharings)."""
    from sklearn.metrics import log_loss
    from sklearn.model_selection import StratifiedKFold

    losses = [log_loss(y[held], sigmoid(x[held] @ fit_logistic(x[fit_idx], y[fit_idx], seed)), labels=[0, 1])
              for fit_idx, held in StratifiedKFold(folds, shuffle=True, random_state=seed).split(x, y)]
    return float(np.mean(losses))


def sigmoid(z: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-np.clip(z, -50, 50)))


def trust_table(weights: np.ndarray, library: Library, principle_weights: str = "per-principle") -> list[dict]:
    """Per principle: its four (effective) weights and `trust`, their sum — the weight of a relevant exit
    verdict that survived both orders (positive: believed, negative: inverted, ≈ 0: ignored)."""
    w = principle_weight_rows(weights, principle_weights, len(library.principles))
    return [{"principle": p.id, "name": p.name, **dict(zip(FEATURES, map(float, row))), "trust": float(row.sum())}
            for p, row in zip(library.principles, w)]


# ---------------------------------------------------------------------------------------------- weak margin


class WeakFeatures:
    """h(prompt, response): the weak model's pooled hidden state, from `w2s.training`'s frozen reward
    model (its cache computes each text once per process)."""

    def __init__(self, cfg: MasterConfig):
        import torch

        from w2s.training.config import RewardConfig
        from w2s.training.models import build_model

        self.cfg = cfg
        rm = RewardConfig(model=cfg.weak, freeze_backbone=True, pooling=cfg.pooling, max_length=cfg.max_length,
                          seed=cfg.seed)
        self.tok, self.model = build_model(rm)
        self.model.eval()
        self.torch = torch

    def __call__(self, pairs: Sequence[Pair], prompts: Sequence[str] | None = None) -> np.ndarray:
        """h(prompt, A) − h(prompt, B), one row per pair (`prompts` replace the pairs' own)."""
        from w2s.training.data import encode_pair_side, pad_batch

        prompts = prompts if prompts is not None else [p.prompt for p in pairs]
        seqs = [encode_pair_side(self.tok, q, r, self.cfg.max_length)[0]
                for p, q in zip(pairs, prompts) for r in (p.response_a, p.response_b)]
        pad = self.tok.pad_token_id
        self.model.fill(seqs, pad, batch_size=8)
        feats = []
        with self.torch.no_grad():
            for i in range(0, len(seqs), 64):
                ids, mask = pad_batch(seqs[i : i + 64], pad)
                feats.append(self.model.cached_pooled(ids, mask).float().numpy())
        h = np.concatenate(feats)
        return h[0::2] - h[1::2]


def standardise(d: np.ndarray) -> np.ndarray:
    """Scale feature differences to unit RMS per dimension (no centring: the differences stay odd)."""
    return np.sqrt((d**2).mean(0)) + 1e-8


# ---------------------------------------------------------------------------------------------- the master


@dataclass
class Master:
    """A trained master and its twin, as stored in a run directory."""

    config: MasterConfig
    run_id: str
    margin_weights: list[float]
    """The BT head on (standardised) feature differences: m = w·(d / scale)."""
    margin_scale: list[float]
    twin_weight: float
    """The twin: P(A) = σ(twin_weight · m)."""
    tree_weights: list[float]
    """The master: `features`: [a, then the weights of `design(principle_weights)`]; `rm`: the BT head on the
    (standardised) feature differences of the pair read with the tree's notes."""
    tree_scale: list[float] = field(default_factory=list)
    """`rm`: the scale of those differences."""
    metrics: dict = field(default_factory=dict)
    principle_weights: str = "per-principle"
    """`features`: the weight sharing fitted (the config's, or the one `auto` chose)."""

    def margin(self, diffs: np.ndarray) -> np.ndarray:
        return (diffs / np.asarray(self.margin_scale)) @ np.asarray(self.margin_weights)

    def p_a_alone(self, diffs: np.ndarray) -> np.ndarray:
        return sigmoid(self.twin_weight * self.margin(diffs))

    def p_a(self, diffs: np.ndarray, tree_x: np.ndarray) -> np.ndarray:
        """P(A better) from the pair's feature differences and `tree_input`'s rows."""
        if self.config.kind in TEXT_KINDS:
            return sigmoid((tree_x / np.asarray(self.tree_scale)) @ np.asarray(self.tree_weights))
        k = len(tree_x[0]) // len(FEATURES) if len(tree_x) else 0
        x = np.column_stack([self.margin(diffs), design(tree_x, self.principle_weights, k)])
        return sigmoid(x @ np.asarray(self.tree_weights))

    def save(self, out: Path) -> None:
        out.mkdir(parents=True, exist_ok=True)
        (out / "config.json").write_text(json.dumps(asdict(self.config), indent=2))
        (out / "master.json").write_text(json.dumps({k: v for k, v in asdict(self).items() if k != "config"}, indent=2))

    @classmethod
    def load(cls, run_dir: str | Path) -> Master:
        run_dir = Path(run_dir)
        if not (run_dir / "master.json").is_file():
            raise FileNotFoundError(f"{run_dir} is not a master run directory (no master.json): "
                                    f"train one with `w2s master train`")
        # runs from before weights could be shared across principles had one set per principle
        config = MasterConfig(**{"principle_weights": "per-principle", **json.loads((run_dir / "config.json").read_text())})
        return cls(config=config, **json.loads((run_dir / "master.json").read_text()))


def notes_prompt(pair: Pair, nodes: Sequence[Node]) -> str:
    """The conversation followed by the tree's chain nodes as a reviewer's notes (what `rm` reads)."""
    chain = [n for n in nodes if n.role != "pruned_by_search"] or list(nodes)
    notes = "\n".join(f"- {n.principle_name}: {n.thought} (verdict: Reply {'A' if n.p_a >= 0.5 else 'B'}, "
                      f"{max(n.p_a, n.p_b):.2f})" for n in chain)
    return f"{pair.prompt}\n\nA reviewer's notes on Reply A and Reply B:\n{notes}"


def tree_input(kind: str, features, pairs: Sequence[Pair], trees: Sequence[Tree], nodes: Sequence[Sequence[Node]],
               library: Library) -> np.ndarray:
    """What a master of this kind reads of the trees: node features, or the pair with the notes."""
    if kind == "rm":
        return features(pairs, prompts=[notes_prompt(p, ns) for p, ns in zip(pairs, nodes)])
    if kind != "features":
        raise ValueError(f"unknown tree master kind {kind!r}: features or rm")
    return np.stack([node_features(t, ns, library) for t, ns in zip(trees, nodes)])


def reasoning_prompt(pair: Pair, reasoning: str) -> str:
    """The conversation followed by the strong model's free reasoning (what a cot-* master reads)."""
    return f"{pair.prompt}\n\nA reviewer's reasoning about Reply A and Reply B:\n{reasoning}"


def reasoning_input(features, pairs: Sequence[Pair], reasoning: Sequence[str]) -> np.ndarray:
    """What a cot-* master reads: the pair with the reasoning, as the weak model's feature differences."""
    return features(pairs, prompts=[reasoning_prompt(p, r) for p, r in zip(pairs, reasoning, strict=True)])


def data_hash(pairs: Sequence[Pair], trees: Sequence[Tree], reasoning: Sequence[str] | None = None) -> str:
    """12 hex digits over the training pairs (ids, gold) and their trees' ids by content, or the
    reasoning texts a cot-* master read."""
    if reasoning is None:
        rows = [[p.id, p.gold, t.strong_model, t.config_hash] for p, t in zip(pairs, trees, strict=True)]
    else:
        rows = [[p.id, p.gold, r] for p, r in zip(pairs, reasoning, strict=True)]
    return hashlib.sha256(json.dumps(rows).encode()).hexdigest()[:12]


def run_id(cfg: MasterConfig, data: str) -> str:
    config = asdict(cfg)
    if cfg.kind not in COT_METHODS:
        del config["reasoning_max_tokens"]  # a tree master's id is what it was before cot-* masters
    if cfg.kind == "features" and cfg.principle_weights == "auto":
        # what `auto` chooses from: a run from before `none` was a candidate must not pass for one after
        config["auto_candidates"] = list(PRINCIPLE_WEIGHTS)
    return hashlib.sha256(json.dumps({"config": config, "data": data}, sort_keys=True).encode()).hexdigest()[:12]


@dataclass
class MarginFit:
    """The part of a master that reads the pair alone: the weak margin's head and the twin. It depends on
    the training pairs, the weak model and `folds`/`seed` only, so masters of other tree configs or weight
    sharings on the same pairs can share one (bench/master_cv.py does)."""

    scale: np.ndarray
    weights: np.ndarray
    oof: np.ndarray
    """Out-of-fold margins on the training pairs: what the master learns its margin weight from."""
    twin: float


def gold_labels(pairs: Sequence[Pair], cfg: MasterConfig) -> np.ndarray:
    """1 where gold is A, 0 where B; an error unless both occur and there are pairs for every fold."""
    y = np.array([1.0 if p.gold == "a" else 0.0 for p in pairs])
    if len(set(y)) < 2 or len(pairs) < 2 * cfg.folds:
        raise ValueError(f"a master needs at least {2 * cfg.folds} gold pairs with both A and B better; got {len(pairs)}")
    return y


def fit_margin(pairs: Sequence[Pair], features: WeakFeatures, cfg: MasterConfig) -> MarginFit:
    """The margin head on the pairs' feature differences, its out-of-fold margins, and the twin on them."""
    from sklearn.model_selection import StratifiedKFold

    y = gold_labels(pairs, cfg)
    diffs = features(pairs)
    scale = standardise(diffs)
    z = diffs / scale
    # out-of-fold margins: what the master sees at test time is a margin on pairs the head never saw
    oof = np.zeros(len(pairs))
    for fit_idx, held in StratifiedKFold(cfg.folds, shuffle=True, random_state=cfg.seed).split(z, y):
        w = fit_logistic(z[fit_idx], y[fit_idx], cfg.seed)
        oof[held] = z[held] @ w
    twin = fit_logistic(oof[:, None], y, cfg.seed)
    return MarginFit(scale=scale, weights=fit_logistic(z, y, cfg.seed), oof=oof, twin=float(twin[0]))


def train(pairs: Sequence[Pair], trees: Sequence[Tree], nodes: Sequence[Sequence[Node]], library: Library,
          cfg: MasterConfig, features: WeakFeatures | None = None, margin: MarginFit | None = None,
          reasoning: Sequence[str] | None = None) -> Master:
    """Fit the margin head, the twin and the master on gold pairs with their trees, or for a cot-*
    kind with their `reasoning` (then `trees` and `nodes` are not read). `margin`: a `fit_margin` of
    these same pairs and config, reused instead of fitted again."""
    if cfg.kind not in KINDS:
        raise ValueError(f"unknown master kind {cfg.kind!r}: {', '.join(KINDS)}")
    if (cfg.kind in COT_METHODS) != (reasoning is not None):
        raise ValueError(f"a {cfg.kind} master {'reads' if cfg.kind in COT_METHODS else 'does not read'} reasoning")
    if cfg.principle_weights not in (*PRINCIPLE_WEIGHTS, "auto"):
        raise ValueError(f"unknown principle_weights {cfg.principle_weights!r}: "
                         f"{', '.join(PRINCIPLE_WEIGHTS)} or auto")
    y = gold_labels(pairs, cfg)  # before the weak model loads
    features = features or WeakFeatures(cfg)
    if margin is None:
        margin = fit_margin(pairs, features, cfg)
    elif len(margin.oof) != len(pairs):
        raise ValueError(f"the margin fit is of {len(margin.oof)} pairs, not these {len(pairs)}")
    oof = margin.oof
    if reasoning is not None:
        tree_x = reasoning_input(features, pairs, reasoning)
    else:
        tree_x = tree_input(cfg.kind, features, pairs, trees, nodes, library)
    if cfg.kind in TEXT_KINDS:
        tree_scale, sharing, cv_loss = standardise(tree_x), "", {}
        master_x = tree_x / tree_scale
    else:
        tree_scale = np.array([])
        candidates = PRINCIPLE_WEIGHTS if cfg.principle_weights == "auto" else (cfg.principle_weights,)
        inputs = {pw: np.column_stack([oof, design(tree_x, pw, len(library.principles))]) for pw in candidates}
        cv_loss = {pw: cv_log_loss(x, y, cfg.folds, cfg.seed) for pw, x in inputs.items()} if len(inputs) > 1 else {}
        sharing = min(cv_loss, key=cv_loss.get) if cv_loss else cfg.principle_weights
        master_x = inputs[sharing]
    master = fit_logistic(master_x, y, cfg.seed)
    data = data_hash(pairs, trees, reasoning)
    m = Master(config=cfg, run_id=run_id(cfg, data), margin_weights=margin.weights.tolist(),
               margin_scale=margin.scale.tolist(), twin_weight=margin.twin, tree_weights=master.tolist(),
               tree_scale=tree_scale.tolist(), principle_weights=sharing)
    oof_twin = sigmoid(margin.twin * oof)
    oof_master = sigmoid(master_x @ master)
    m.metrics = {
        "train_pairs": len(pairs),
        "data_hash": data,
        "pair_ids_hash": hashlib.sha256("\n".join(p.id for p in pairs).encode()).hexdigest()[:12],
        # in-sample on the training pairs (the margin out-of-fold); test accuracy comes from `w2s annotate`
        "train_accuracy_twin": float(((oof_twin > 0.5) == (y == 1)).mean()),
        "train_accuracy_master": float(((oof_master > 0.5) == (y == 1)).mean()),
        "margin_weight": float(master[0]) if cfg.kind == "features" else None,
        "trust": trust_table(master[1:], library, sharing) if cfg.kind == "features" else [],
        "principle_weights_cv_log_loss": cv_loss,
    }
    return m
