"""`transformers:REST` — a local causal LM through Hugging Face transformers (CPU or GPU).

REST is an alias fetched by `w2s models fetch` (`smollm2`, `qwen2.5-coder-1.5b`), a local model
folder, a `.gguf` file (dequantised on load by transformers' GGUF support), or a Hub id (used as
is; it works offline only when already in the Hugging Face cache).

Both calls batch with left padding, so the last position of every row is the prompt's last token.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import torch

from w2s.backends.base import Generation, Prompt, Usage, normalise, split_prefill
from w2s.options import typed_options


@dataclass
class TransformersConfig:
    batch_size: int = 16  # prompts per forward pass; larger batches are faster until padding dominates
    dtype: str = "float32"  # "bfloat16" halves memory; float32 is exact and fastest on most CPUs
    threads: int | None = None  # torch.set_num_threads when given
    device: str = "cpu"


def _load_path(rest: str) -> tuple[str, dict]:
    """(from_pretrained location, extra kwargs) for the part of the spec after 'transformers:'."""
    from w2s.backends.fetch import SOURCES, resolve_model_path

    path = resolve_model_path(rest, prefer="hf") if rest in SOURCES else Path(rest).expanduser()
    if path.is_file() and path.suffix == ".gguf":
        return str(path.parent), {"gguf_file": path.name}
    if path.exists():
        return str(path), {}
    return rest, {}  # a Hub id


class TransformersModel:
    def __init__(self, rest: str, config: TransformersConfig | None = None, **overrides):
        from transformers import AutoModelForCausalLM, AutoTokenizer

        self.config = typed_options(
            TransformersConfig, overrides, "backend 'transformers'", base=config or TransformersConfig()
        )
        if self.config.threads:
            torch.set_num_threads(self.config.threads)
        self.spec = f"transformers:{rest}"
        self.usage = Usage()
        location, extra = _load_path(rest)
        self.tokenizer = AutoTokenizer.from_pretrained(location, **extra)
        self.tokenizer.padding_side = "left"
        if self.tokenizer.pad_token is None:
            self.tokenizer.pad_token = self.tokenizer.eos_token
        self.model = AutoModelForCausalLM.from_pretrained(
            location, dtype=getattr(torch, self.config.dtype), **extra
        )
        self.model.to(self.config.device).eval()
        self._choice_ids: dict[str, list[int]] = {}

    # ------------------------------------------------------------ prompts

    def render(self, prompt: Prompt) -> str:
        """The prompt as text in the model's chat format, ending where the assistant's answer starts."""
        messages, prefill = split_prefill(prompt)
        if self.tokenizer.chat_template:
            return (
                self.tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
                + prefill
            )
        # A base model without a chat template: the messages' text, one per line.
        return "\n".join(m["content"] for m in messages) + "\n" + prefill

    def _encode(self, prompts: Sequence[Prompt]) -> list[list[int]]:
        return [self.tokenizer.encode(self.render(p), add_special_tokens=False) for p in prompts]

    def _batch(self, rows: list[list[int]]) -> dict[str, torch.Tensor]:
        """Left-pad token rows into input_ids, attention_mask and matching position_ids."""
        width = max(len(r) for r in rows)
        pad = self.tokenizer.pad_token_id
        ids = torch.tensor([[pad] * (width - len(r)) + r for r in rows])
        mask = torch.tensor([[0] * (width - len(r)) + [1] * len(r) for r in rows])
        positions = (mask.cumsum(-1) - 1).clamp(min=0)
        dev = self.config.device
        return {"input_ids": ids.to(dev), "attention_mask": mask.to(dev), "position_ids": positions.to(dev)}

    def _chunks(self, rows: list[list[int]]):
        """Indices in chunks of `batch_size`, grouped by length so that little padding is computed."""
        order = sorted(range(len(rows)), key=lambda i: len(rows[i]))
        size = max(1, self.config.batch_size)
        for start in range(0, len(order), size):
            yield order[start : start + size]

    # ------------------------------------------------------------ score_choices

    def choice_token_ids(self, choice: str) -> list[int]:
        """First token of the choice, with and without a leading space (both count as that answer)."""
        if choice not in self._choice_ids:
            ids = []
            for variant in (choice, " " + choice):
                toks = self.tokenizer.encode(variant, add_special_tokens=False)
                if toks and toks[0] not in ids:
                    ids.append(toks[0])
            self._choice_ids[choice] = ids
        return self._choice_ids[choice]

    @torch.inference_mode()
    def next_token_probs(self, prompts: Sequence[Prompt]) -> torch.Tensor:
        """Softmax over the vocabulary at the assistant's first answer position, one row per prompt."""
        rows = self._encode(prompts)
        out: list[torch.Tensor | None] = [None] * len(rows)
        self.usage.begin(len(rows))
        for idx in self._chunks(rows):
            start = time.perf_counter()
            # logits_to_keep=1: the LM head (vocabulary x hidden) runs on the last position only
            logits = (
                self.model(**self._batch([rows[i] for i in idx]), logits_to_keep=1).logits[:, -1, :].float()
            )
            for i, p in zip(idx, torch.softmax(logits, dim=-1).cpu()):
                out[i] = p
            seconds = (time.perf_counter() - start) / len(idx)
            for i in idx:
                self.usage.add(prompt_tokens=len(rows[i]), seconds=seconds, index=i)
        return torch.stack(out)  # type: ignore[arg-type]

    def score_choices(self, prompts: Sequence[Prompt], choices: Sequence[str]) -> list[list[float]]:
        if not prompts:
            return []
        probs = self.next_token_probs(prompts)
        ids = [self.choice_token_ids(c) for c in choices]
        mass = torch.stack([probs[:, i].sum(-1) for i in ids], dim=-1)
        return [normalise(row) for row in mass.tolist()]

    # ------------------------------------------------------------ generate

    @torch.inference_mode()
    def generate(
        self,
        prompts: Sequence[Prompt],
        max_tokens: int = 128,
        temperature: float = 0.0,
        stop: Sequence[str] | None = None,
    ) -> list[Generation]:
        rows = self._encode(prompts)
        results: list[Generation | None] = [None] * len(rows)
        self.usage.begin(len(rows))
        eos = self._eos_ids()
        for idx in self._chunks(rows):
            batch = self._batch([rows[i] for i in idx])
            batch.pop("position_ids")  # generate derives positions from the mask itself
            sampling = (
                {"do_sample": True, "temperature": temperature} if temperature > 0 else {"do_sample": False}
            )
            start = time.perf_counter()
            out = self.model.generate(
                **batch,
                max_new_tokens=max_tokens,
                pad_token_id=self.tokenizer.pad_token_id,
                eos_token_id=sorted(eos),
                stop_strings=list(stop) if stop else None,
                tokenizer=self.tokenizer if stop else None,
                top_p=None,
                top_k=None,
                **sampling,
            )
            seconds = (time.perf_counter() - start) / len(idx)
            new = out[:, batch["input_ids"].shape[1] :].tolist()
            for i, tokens in zip(idx, new):
                n = next((k + 1 for k, t in enumerate(tokens) if t in eos), len(tokens))
                text = self.tokenizer.decode(tokens[:n], skip_special_tokens=True)
                for s in stop or ():
                    text = text.split(s, 1)[0]
                results[i] = Generation(
                    text=text, prompt_tokens=len(rows[i]), completion_tokens=n, seconds=seconds
                )
                self.usage.add(prompt_tokens=len(rows[i]), completion_tokens=n, seconds=seconds, index=i)
        return results  # type: ignore[return-value]

    def _eos_ids(self) -> set[int]:
        ids = self.model.generation_config.eos_token_id
        ids = set(ids if isinstance(ids, list) else [ids] if ids is not None else [])
        if self.tokenizer.eos_token_id is not None:
            ids.add(self.tokenizer.eos_token_id)
        return ids
