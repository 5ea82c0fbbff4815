"""Strong-student training (reward model, DPO, SimPO, SFT) on exported label sets, and the students'
weak-to-strong metrics (`w2s.training.metrics`: accuracy, PGR, calibration, paired gaps)."""

from w2s.training.config import (
    CONFIGS,
    DPOConfig,
    LoraSpec,
    RewardConfig,
    SFTConfig,
    SimPOConfig,
    TrainConfig,
    make_config,
)


def __getattr__(name: str):
    # torch loads only when training starts: the CLI reads the configs' defaults without it
    if name == "train":
        from w2s.training.trainer import train

        return train
    raise AttributeError(f"module 'w2s.training' has no attribute {name!r}")


__all__ = [
    "CONFIGS",
    "DPOConfig",
    "LoraSpec",
    "RewardConfig",
    "SFTConfig",
    "SimPOConfig",
    "TrainConfig",
    "make_config",
    "train",
]
