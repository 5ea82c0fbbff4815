"""Masters that read text with the weak model (a reward-model head), not tree features: the `rm` master
reads the pair with the tree's notes, a `cot-v1`/`cot-v2`/`cot-v3` master the pair with that CoT
baseline's stored reasoning. Kept apart because they have not beaten the features master
(docs/results/seam_domains.md); w2s.masters.kinds registers them."""

from w2s.masters.experimental.text import TextMaster, notes_prompt, reasoning_prompt, text_x

__all__ = ["TextMaster", "notes_prompt", "reasoning_prompt", "text_x"]
