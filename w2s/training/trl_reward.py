"""TRL's `RewardTrainer` honouring the two columns of a w2s export that TRL itself ignores:

- `weight`: the reliability weight of the label; each example's loss is multiplied by it;
- `soft_label`: P(chosen is better); the loss is the soft Bradley–Terry cross-entropy
  −s·log σ(r_c − r_r) − (1−s)·log σ(r_r − r_c) instead of −log σ(r_c − r_r).

The loss is w2s's own (`w2s.training.losses.bradley_terry_loss`, mean over the batch of w·ℓ), so TRL and
`w2s train --objective rm` train the same objective. Use it where you would use `trl.RewardTrainer`:

    from w2s.training.trl_reward import WeightedRewardTrainer
    trainer = WeightedRewardTrainer(model=model, args=RewardConfig(...), train_dataset=export,
                                    processing_class=tokenizer)

Plain `trl.RewardTrainer` trains on such a file too, but drops `weight` and `soft_label` (every pair then
counts fully, as a hard label). Only the reward trainer is covered; TRL's DPO trainers drop them as well.
"""

from __future__ import annotations

import torch
from trl import RewardTrainer
from trl.trainer.reward_trainer import DataCollatorForPreference

from w2s.training.losses import bradley_terry_loss

W2S_COLUMNS = ("weight", "soft_label")


class WeightedPreferenceCollator(DataCollatorForPreference):
    """TRL's preference collator, passing `weight` and `soft_label` on as float tensors when present."""

    def torch_call(self, examples: list[dict]) -> dict:
        batch = super().torch_call(examples)
        for column in W2S_COLUMNS:
            if column in examples[0]:
                batch[column] = torch.tensor([float(e[column]) for e in examples])
        return batch


class WeightedRewardTrainer(RewardTrainer):
    def __init__(self, *args, data_collator=None, processing_class=None, **kwargs) -> None:
        if data_collator is None and processing_class is not None:
            data_collator = WeightedPreferenceCollator(pad_token_id=processing_class.pad_token_id)
        super().__init__(*args, data_collator=data_collator, processing_class=processing_class, **kwargs)

    def _set_signature_columns_if_needed(self) -> None:
        # the columns the dataloader keeps (TRL keeps only the tokenised pair and `margin`)
        if self._signature_columns is None:
            self._signature_columns = ["chosen_ids", "rejected_ids", "margin", *W2S_COLUMNS]

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        weight, soft = inputs.pop("weight", None), inputs.pop("soft_label", None)
        if weight is None and soft is None:
            return super().compute_loss(model, inputs, return_outputs, num_items_in_batch)
        inputs["use_cache"] = False
        outputs = model(**{k: v for k, v in inputs.items() if k != "margin"})
        r_chosen, r_rejected = torch.chunk(outputs.logits.squeeze(-1), chunks=2)
        target = torch.ones_like(r_chosen) if soft is None else soft.to(r_chosen)
        loss = bradley_terry_loss(r_chosen, r_rejected, target, weight)
        return (loss, outputs) if return_outputs else loss
