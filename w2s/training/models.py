"""Model loading for training: a spec or path → tokenizer + model (reward model or causal LM),
optionally with LoRA adapters, plus the forward passes the losses need."""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from w2s.training.config import LoraSpec, TrainConfig


def resolve_model(spec: str) -> Path:
    """`transformers:smollm2`, `smollm2` or a folder → the Hugging Face folder to load."""
    name = spec.split(":", 1)[1] if spec.startswith("transformers:") else spec
    path = Path(name).expanduser()
    if path.exists():
        return path
    from w2s.backends.fetch import resolve_model_path

    return resolve_model_path(name, prefer="hf")


def load_tokenizer(path: Path):
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(str(path))
    if tok.pad_token_id is None:
        tok.pad_token = tok.eos_token
    return tok


def _num_layers(config) -> int | None:
    return getattr(config, "num_hidden_layers", None) or getattr(config, "n_layer", None)


def add_lora(model: nn.Module, spec: LoraSpec) -> nn.Module:
    """Wrap with PEFT LoRA adapters; everything else is frozen."""
    from peft import LoraConfig, get_peft_model

    kw = {}
    n = _num_layers(model.config)
    if spec.last_n_layers and n:
        kw = {
            "layers_to_transform": list(range(max(0, n - spec.last_n_layers), n)),
            "layers_pattern": "layers",
        }
    cfg = LoraConfig(
        r=spec.r, lora_alpha=spec.alpha, lora_dropout=spec.dropout, target_modules=spec.target_modules, **kw
    )
    return get_peft_model(model, cfg)


# Hidden states after the frozen bottom layers (or a frozen backbone's pooled features), per (model,
# layers, token ids): shared by every run in the process (ceiling, each student variant, test
# scoring) because those layers never change.
_PREFIX_CACHE: dict[tuple, torch.Tensor] = {}


def fill_sorted(
    key: tuple, seqs: list[list[int]], store, pad_id: int, batch_size: int, progress: bool, device
) -> int:
    """Run `store(keys, ids, mask, lengths)` over the sequences not cached under `key` yet, in
    batches of similar length (sorted, so there is little padding). Returns how many were computed."""
    from tqdm.auto import tqdm

    from w2s.training.data import pad_batch

    todo = {}
    for s in seqs:
        k = key + (tuple(s),)
        if k not in _PREFIX_CACHE:
            todo[k] = s
    order = sorted(todo, key=lambda k: len(todo[k]))
    for i in tqdm(range(0, len(order), batch_size), desc="frozen layers", disable=not progress):
        keys = order[i : i + batch_size]
        ids, mask = pad_batch([todo[k] for k in keys], pad_id)
        store(keys, ids.to(device), mask.to(device), [len(todo[k]) for k in keys])
    return len(order)


def row_keys(
    key: tuple, input_ids: torch.Tensor, attention_mask: torch.Tensor
) -> tuple[list[tuple], list[int]]:
    """Each right-padded row's cache key (its unpadded token ids under `key`) and its length."""
    lengths = attention_mask.sum(-1).tolist()
    return [key + (tuple(ids[:n].tolist()),) for ids, n in zip(input_ids, lengths)], lengths


class FrozenPrefix:
    """Split a Llama-style decoder (`.layers`, `.norm`, accepts `inputs_embeds`) into its frozen
    bottom layers, whose outputs are computed once per sequence and cached, and its top `n_top`
    layers, which carry the LoRA adapters and run every step. With adapters on the last few layers
    only, this gives the same outputs as the full forward at a fraction of the cost.
    Views share the original modules; nothing is copied."""

    def __init__(self, base: nn.Module, n_top: int, key: str):
        import copy

        n = len(base.layers)
        if not 0 < n_top < n:
            raise ValueError(f"cannot cache below the top {n_top} of {n} layers")
        self.prefix, self.top = copy.copy(base), copy.copy(base)
        for view, layers, norm in (
            (self.prefix, base.layers[: n - n_top], nn.Identity()),
            (self.top, base.layers[n - n_top :], base.norm),
        ):
            view._modules = dict(base._modules)
            view._modules["layers"] = nn.ModuleList(layers)
            view._modules["norm"] = norm
        self.key = (key, n - n_top)

    def hidden(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        keys, lengths = row_keys(self.key, input_ids, attention_mask)
        missing = [i for i, k in enumerate(keys) if k not in _PREFIX_CACHE]
        if missing:
            self._store(
                [keys[i] for i in missing],
                input_ids[missing],
                attention_mask[missing],
                [lengths[i] for i in missing],
            )
        out = torch.zeros(input_ids.shape + (_PREFIX_CACHE[keys[0]].size(-1),), device=input_ids.device)
        for i, k in enumerate(keys):
            out[i, : lengths[i]] = _PREFIX_CACHE[k].to(out.device)
        return out

    def fill(self, seqs: list[list[int]], pad_id: int, batch_size: int = 16, progress: bool = False) -> int:
        """Compute and cache the prefix states of the sequences not cached yet. Returns how many
        sequences were computed."""
        return fill_sorted(
            self.key, seqs, self._store, pad_id, batch_size, progress, next(self.prefix.parameters()).device
        )

    def _store(
        self, keys: list, input_ids: torch.Tensor, attention_mask: torch.Tensor, lengths: list[int]
    ) -> None:
        """Run the frozen layers on a right-padded batch and cache each row's states under its key."""
        with torch.no_grad():
            h = self.prefix(
                input_ids=input_ids, attention_mask=attention_mask, use_cache=False
            ).last_hidden_state
        for j, (k, n) in enumerate(zip(keys, lengths)):
            _PREFIX_CACHE[k] = h[j, :n].detach().cpu().clone()  # a copy, not a view of the padded batch

    def __call__(self, input_ids, attention_mask):
        h = self.hidden(input_ids, attention_mask)
        return self.top(inputs_embeds=h, attention_mask=attention_mask, use_cache=False)


class RewardModel(nn.Module):
    """A backbone (any `AutoModel`) and a linear head r(x) = wᵀh + b on the pooled hidden state:
    the last non-pad token (decoders) or the mean over tokens (sentence encoders)."""

    def __init__(self, backbone: nn.Module, hidden_size: int, pooling: str = "last"):
        super().__init__()
        if pooling not in ("last", "mean"):
            raise ValueError(f"pooling must be 'last' or 'mean', not {pooling!r}")
        self.backbone = backbone
        self.head = nn.Linear(hidden_size, 1)
        nn.init.normal_(self.head.weight, std=1.0 / (hidden_size + 1) ** 0.5)
        nn.init.zeros_(self.head.bias)
        self.pooling = pooling
        self.frozen_prefix: FrozenPrefix | None = None
        self.pooled_key: tuple | None = None  # set for a frozen backbone: its pooled features are cached

    @property
    def caches_frozen(self) -> bool:
        """Whether a one-off pass (`fill`) can precompute part of every forward."""
        return self.frozen_prefix is not None or self.pooled_key is not None

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        pooled = (
            self.cached_pooled(input_ids, attention_mask)
            if self.pooled_key
            else self.pooled(input_ids, attention_mask)
        )
        return self.head(pooled.to(self.head.weight.dtype)).squeeze(-1)

    def pooled(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        body = self.frozen_prefix or (
            lambda input_ids, attention_mask: self.backbone(
                input_ids=input_ids, attention_mask=attention_mask
            )
        )
        h = body(input_ids, attention_mask).last_hidden_state
        if self.pooling == "last":  # right padding: the last real token is at sum(mask) − 1
            last = attention_mask.sum(-1) - 1
            return h[torch.arange(h.size(0), device=h.device), last]
        m = attention_mask.unsqueeze(-1).to(h.dtype)
        return (h * m).sum(1) / m.sum(1).clamp(min=1)

    def cached_pooled(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        """A frozen backbone's pooled features, computed once per sequence (in eval mode: a linear
        probe reads the encoder without dropout) and then read from `_PREFIX_CACHE`."""
        keys, lengths = row_keys(self.pooled_key, input_ids, attention_mask)
        missing = [i for i, k in enumerate(keys) if k not in _PREFIX_CACHE]
        if missing:
            self._store_pooled(
                [keys[i] for i in missing],
                input_ids[missing],
                attention_mask[missing],
                [lengths[i] for i in missing],
            )
        return torch.stack([_PREFIX_CACHE[k] for k in keys]).to(input_ids.device)

    def _store_pooled(
        self, keys: list, input_ids: torch.Tensor, attention_mask: torch.Tensor, lengths: list[int]
    ) -> None:
        """Run the frozen backbone on a right-padded batch (eval mode) and cache each row's features."""
        mode = self.backbone.training
        self.backbone.eval()
        with torch.no_grad():
            feats = self.pooled(input_ids, attention_mask)
        self.backbone.train(mode)
        for k, f in zip(keys, feats):
            _PREFIX_CACHE[k] = f.detach().cpu().clone()

    def fill(self, seqs: list[list[int]], pad_id: int, batch_size: int = 16, progress: bool = False) -> int:
        """The one-off pass over the frozen parts: the prefix layers, or the whole frozen backbone."""
        if self.frozen_prefix is not None:
            return self.frozen_prefix.fill(seqs, pad_id, batch_size, progress)
        if self.pooled_key is None:
            return 0
        return fill_sorted(
            self.pooled_key, seqs, self._store_pooled, pad_id, batch_size, progress, self.head.weight.device
        )


def build_model(config: TrainConfig):
    """(tokenizer, model) for the config's objective: a `RewardModel` for `rm`, a causal LM otherwise.
    The model is deterministic given the config and seed, so a checkpoint restores onto it."""
    from transformers import AutoModel, AutoModelForCausalLM

    path = resolve_model(config.model)
    tok = load_tokenizer(path)
    torch.manual_seed(config.seed)
    if config.objective == "rm":
        backbone = AutoModel.from_pretrained(str(path))
        if config.lora is not None:
            backbone = add_lora(backbone, config.lora)
        model = RewardModel(backbone, backbone.config.hidden_size, getattr(config, "pooling", "last"))
        if getattr(config, "freeze_backbone", False):
            if config.lora is not None:
                raise ValueError("freeze_backbone trains the head only; drop the LoRA spec")
            backbone.requires_grad_(False)
            model.pooled_key = ("pooled", str(path), model.pooling)
        if getattr(config, "cache_frozen_prefix", False):
            if config.lora is None or not config.lora.last_n_layers:
                raise ValueError("cache_frozen_prefix needs LoRA on the last n layers (lora.last_n_layers)")
            base = backbone.get_base_model()
            model.frozen_prefix = FrozenPrefix(base, config.lora.last_n_layers, str(path))
    else:
        model = AutoModelForCausalLM.from_pretrained(str(path))
        if config.lora is not None:
            model = add_lora(model, config.lora)
    return tok, model


def trainable_state(model: nn.Module) -> dict[str, torch.Tensor]:
    """The parameters that training changes (LoRA adapters and heads, or everything)."""
    names = {n for n, p in model.named_parameters() if p.requires_grad}
    return {k: v.detach().cpu().clone() for k, v in model.state_dict().items() if k in names}


def sequence_logps(
    model: nn.Module, input_ids, attention_mask, response_start
) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-token log π(y_t | x, y_<t) over the response tokens, and the response mask.
    Returns (token_logps [B, T−1], mask [B, T−1])."""
    logits = model(input_ids=input_ids, attention_mask=attention_mask).logits[:, :-1].float()
    targets = input_ids[:, 1:]
    logps = torch.log_softmax(logits, -1).gather(-1, targets.unsqueeze(-1)).squeeze(-1)
    pos = torch.arange(1, input_ids.size(1), device=input_ids.device).unsqueeze(0)
    mask = (pos >= response_start.unsqueeze(1)) & attention_mask[:, 1:].bool()
    return logps * mask, mask
