"""One dataclass config per objective, TRL style: every field has a default and says what it does."""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal


@dataclass
class LoraSpec:
    """LoRA through PEFT (Hu et al. 2021). `target_modules=None` uses PEFT's default per model type."""

    r: int = 8
    alpha: int = 16
    dropout: float = 0.05
    target_modules: list[str] | None = None
    # Only the last n transformer layers get adapters (None: all). Backprop then stops at the
    # first adapted layer, which is what makes a 135M student trainable on two CPU cores.
    last_n_layers: int | None = None


@dataclass
class TrainConfig:
    """Fields every objective shares."""

    model: str = ""  # model spec (`transformers:smollm2`), alias (`smollm2`) or a Hugging Face folder
    out: str = "run"  # run directory: config.json, metrics.jsonl, checkpoints/, model/
    objective: str = ""
    lora: LoraSpec | None = None  # None: full fine-tuning
    learning_rate: float = 1e-4
    weight_decay: float = 0.0
    warmup_ratio: float = 0.05  # linear LR warm-up share, then linear decay to 0
    epochs: float = 1.0
    max_steps: int | None = None  # overrides epochs when set
    batch_size: int = 4  # pairs per optimiser step per process (after accumulation)
    grad_accum: int = 1
    max_length: int = 256  # tokens per prompt+response (the prompt is cut from the left)
    max_grad_norm: float = 1.0
    seed: int = 0
    save_steps: int = 50  # checkpoint every n steps (and at the end)
    keep_checkpoints: int = 2
    logging_steps: int = 5
    use_weights: bool = True  # multiply each example's loss by its `weight` column
    # Uncertainty filtering (Guo & Yang 2024): keep rows whose entropy ≤ this percentile (None: all)
    filter_entropy_percentile: float | None = None
    # AuxConf (Burns et al. 2023); for the preference objectives (rm, dpo, simpo)
    aux_conf: bool = False
    aux_conf_max: float = 0.5
    aux_conf_warmup: float = 0.2  # share of training over which c ramps smoothly 0 → aux_conf_max
    # Explicit conflict (deception studies): + α·ℓ(z, wrong side) where the student already disagrees
    # with ground truth (needs a `gold` column: 1 when chosen is the gold-better response)
    conflict_alpha: float = 0.0
    # Implicit conflict: extra rows (e.g. ground-truth helpfulness pairs) mixed into the training data
    extra_data: list[str] = field(default_factory=list)
    torch_threads: int | None = None  # torch.set_num_threads on CPU (None: torch's default)
    progress: bool = True

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    def save(self, path: Path) -> None:
        path.write_text(json.dumps(self.to_dict(), indent=2))

    @staticmethod
    def load(path: Path) -> TrainConfig:
        d = json.loads(Path(path).read_text())
        cls = CONFIGS[d["objective"]]
        if d.get("lora") is not None:
            d["lora"] = LoraSpec(**d["lora"])
        return cls(**d)


@dataclass
class RewardConfig(TrainConfig):
    """Bradley–Terry reward model: a linear head on the last non-pad token's hidden state,
    soft-label BCE on r(chosen) − r(rejected)."""

    objective: str = "rm"
    pooling: str = "last"  # last | mean (mean suits sentence encoders like MiniLM)
    head_lr: float | None = None  # learning rate of the reward head (default: learning_rate)
    # Train the reward head only: a linear probe on the frozen backbone's pooled features (a
    # deliberately weaker supervisor than full fine-tuning of the same model)
    freeze_backbone: bool = False
    # Cache the hidden states of the frozen layers below the LoRA layers (needs lora.last_n_layers);
    # exact, and several times faster for students that adapt only their top layers
    cache_frozen_prefix: bool = False


@dataclass
class DPOConfig(TrainConfig):
    """DPO (Rafailov et al. 2023). The reference is the starting model (with LoRA: the base model with
    adapters disabled); reference log-probs are computed once before training, or read from the
    `ref_chosen_logp` / `ref_rejected_logp` columns when the data carries them."""

    objective: str = "dpo"
    beta: float = 0.1
    learning_rate: float = 5e-5


@dataclass
class SimPOConfig(TrainConfig):
    """SimPO (Meng et al. 2024): reference-free, length-normalised log-probs, target margin γ."""

    objective: str = "simpo"
    beta: float = 2.0
    gamma: float = 1.0
    learning_rate: float = 5e-5


@dataclass
class SFTConfig(TrainConfig):
    """Supervised fine-tuning on the chosen response (the label set's winner)."""

    objective: str = "sft"


CONFIGS: dict[str, type[TrainConfig]] = {
    "rm": RewardConfig,
    "dpo": DPOConfig,
    "simpo": SimPOConfig,
    "sft": SFTConfig,
}


def make_config(objective: str, **kw) -> TrainConfig:
    if objective not in CONFIGS:
        raise ValueError(f"unknown objective {objective!r}; choose one of {', '.join(CONFIGS)}")
    return CONFIGS[objective](**kw)


# The students on the weak supervisor's labels, by name: how each trains on them, given the experiment
WEAK_LABEL_STUDENTS = {
    "naive": lambda c: {"use_weights": False},
    "aux_conf": lambda c: {"use_weights": False, "aux_conf": True},
    "filtered": lambda c: {"use_weights": False, "filter_entropy_percentile": c.filter_percentile},
    "reweighted": lambda c: {"use_weights": True},
}


@dataclass
class ExperimentConfig:
    """The standard weak-to-strong protocol (`w2s experiment w2s`, `w2s.training.protocol`)."""

    weak: str = ""  # weak supervisor model spec
    strong: str = ""  # strong student / ceiling model spec
    data: str = ""  # folder with train_gt.jsonl, train_w2s.jsonl, test_dev.jsonl (read as they are)
    dataset: str | None = None  # or: the splits train_gt, train_w2s, test_dev of this dataset in the store
    db: str | None = None  # the store of dataset and the label sets (None: $W2S_DB)
    out: str = "w2s-experiment"  # experiment directory (rerun to resume)
    n_train_gt: int | None = None  # train_gt pairs (None: the whole split)
    n_train_w2s: int | None = None  # train_w2s pairs (None: the whole split)
    n_test: int | None = None  # test_dev pairs (None: the whole split)
    # The weak supervisor's share of train_gt (None: all of it): fewer ground-truth pairs make a genuinely
    # weaker supervisor from the same model family.
    n_weak_gt: int | None = None
    weak_lora: LoraSpec | None = None  # None: full fine-tuning of the weak model
    weak_frozen: bool = False  # train only the weak supervisor's reward head (a probe on its frozen encoder)
    strong_lora: LoraSpec | None = field(
        default_factory=LoraSpec
    )  # the student's LoRA (None: full fine-tuning)
    weak_pooling: Literal["last", "mean"] = (
        "last"  # the weak supervisor's pooling (mean for sentence encoders)
    )
    strong_pooling: Literal["last", "mean"] = "last"  # the student's pooling
    cache_frozen_prefix: bool = False  # run the student's frozen layers once per sequence (needs LoRA last n)
    weak_lr: float = 5e-5  # the weak supervisor's learning rate
    strong_lr: float = 1e-4  # the ceiling's and the students' learning rate
    head_lr: float | None = 1e-3  # learning rate of the reward heads
    weak_head_lr: float | None = None  # the weak supervisor's reward-head learning rate (None: head_lr)
    epochs: float = 1.0  # epochs of the ceiling and the students
    weak_epochs: float | None = None  # the weak supervisor's epochs (None: epochs)
    batch_size: int = 4  # pairs per optimiser step
    max_length: int = 256  # tokens per prompt+response
    variants: list[str] = field(default_factory=lambda: list(WEAK_LABEL_STUDENTS))  # students on weak labels
    seam_labels: str | None = None  # export rows with SEAM labels on train_w2s (adds a "seam" student)
    # Export rows with the aligned weak master's no-tree labels on the same pairs: an "aligned" student
    # beside the SEAM one, and their paired gap (what the tree adds to the labels).
    aligned_labels: str | None = None
    label_sets: dict[str, str] = field(default_factory=dict)  # student name -> a label set in the store
    gap_baseline: str = "aligned"  # every label-set student's paired gap is against this student (or model)
    intermediate: str | None = None  # bootstrap through this intermediate model (weak → it → strong)
    conflict: bool = False  # add an explicit-conflict student (conflict_alpha) and the deception score
    conflict_alpha: float = 0.5  # α of the explicit-conflict student's loss where it disagrees with the truth
    filter_percentile: float = (
        50.0  # the filtered student keeps rows up to this entropy percentile (Guo & Yang 2024)
    )
    reweight_T: float = 0.2  # temperature of the weak labels' reliability weight (Guo & Yang 2024)
    deception_T: float = 0.75  # the deception score's threshold T on the models' confidence
    seed: int = 0  # seed of subsampling and training
    torch_threads: int | None = None  # torch threads on CPU
    progress: bool = True  # progress bars while training
