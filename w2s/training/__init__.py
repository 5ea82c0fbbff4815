"""Strong-student training (reward model, DPO, SimPO, SFT) on exported label sets."""

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
from w2s.training.trainer import train

__all__ = ["CONFIGS", "DPOConfig", "LoraSpec", "RewardConfig", "SFTConfig", "SimPOConfig", "TrainConfig",
           "make_config", "train"]
