"""`llamacpp:GGUF_PATH_OR_ALIAS` — a GGUF model through llama-cpp-python (extra `llamacpp`).

The chat template is the GGUF's own (rendered the same way transformers renders it).

Prompts run one after another through one context, and a prompt reuses the KV cache of the prefix it
shares with the prompt before it (the pair text is the prefix of every relevance, thought and verdict
prompt of a tree, so most of a tree's prompt tokens are evaluated once). Reuse must not change the
numbers: llama.cpp's kernels round differently for a few-token batch than for a long one (reusing an
unaligned prefix moves some quantised models' logits visibly: docs/results/seam_hh.md), so tokens are
always evaluated in chunks of `prefix_chunk` aligned at absolute positions 0, c, 2c, ..., and only whole
cached chunks are kept. A chunk's computation is then the same whether the prompt is evaluated afresh or
after another prompt, and so are its scores.

A tree alternates between the two presentation orders (thought A-first, thought B-first, then the
verdicts that extend each thought), so one cached prompt is not enough: each switch would evaluate the
pair again. The model keeps the last few contexts as snapshots of the KV cache (`snapshots`, a copy
of sequence 0's cells: ~28 KB a token for the 1.5B model, milliseconds) and continues a prompt from
whichever context shares the most whole chunks with it. A restored chunk holds the same bytes the
live one held, so scores do not change.

`Llama.scores` holds logits only when the model is created with `logits_all=True` (which costs a
vocabulary-sized row per prompt token); `score_choices` reads the last position's logits straight
from the context instead.
"""

from __future__ import annotations

import ctypes
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from w2s.backends.base import BackendUnavailable, Generation, Prompt, Usage, normalise, split_prefill
from w2s.options import typed_options


@dataclass(eq=False)  # compared by identity
class Snapshot:
    """A context the model can continue from: its tokens and sequence 0's KV cells."""

    tokens: np.ndarray
    state: ctypes.Array
    size: int


@dataclass
class LlamaCppConfig:
    n_ctx: int = 4096  # context length in tokens (prompt + answer)
    threads: int | None = None  # CPU threads; None: llama.cpp's default (half the cores)
    prefix_chunk: int = 64  # tokens per llama_decode call, aligned at absolute positions; 0: no prefix reuse
    snapshots: int = 3  # contexts kept besides the live one (a tree's two presentation orders, ...); 0: none
    seed: int = 0


def _import_llama():
    try:
        import llama_cpp
        from llama_cpp.llama_chat_format import Jinja2ChatFormatter
    except ImportError as e:
        raise BackendUnavailable("llamacpp", "pip install 'w2s[llamacpp]'", cause=str(e)) from e
    return llama_cpp, Jinja2ChatFormatter


class LlamaCppModel:
    def __init__(self, rest: str, config: LlamaCppConfig | None = None, **overrides):
        llama_cpp, Jinja2ChatFormatter = _import_llama()
        from w2s.backends.fetch import SOURCES, resolve_model_path

        self.config = typed_options(
            LlamaCppConfig, overrides, "backend 'llamacpp'", base=config or LlamaCppConfig()
        )
        path = resolve_model_path(rest, prefer="gguf") if rest in SOURCES else Path(rest).expanduser()
        if not path.is_file():
            raise FileNotFoundError(f"llamacpp: {path} is not a GGUF file")
        self.spec = f"llamacpp:{rest}"
        self.usage = Usage()
        self.llm = llama_cpp.Llama(
            model_path=str(path),
            n_ctx=self.config.n_ctx,
            n_batch=self.config.prefix_chunk or 512,
            n_threads=self.config.threads,
            seed=self.config.seed,
            logits_all=False,
            verbose=False,
        )
        meta = self.llm.metadata
        vocab = self.llm._model
        self.eos_token = vocab.token_get_text(self.llm.token_eos())
        bos = self.llm.token_bos()
        self.formatter = Jinja2ChatFormatter(
            template=meta.get(
                "tokenizer.chat_template", "{% for m in messages %}{{ m['content'] }}\n{% endfor %}"
            ),
            eos_token=self.eos_token,
            bos_token=vocab.token_get_text(bos) if bos >= 0 else "",
        )
        self._lock = threading.Lock()  # one llama context: one call at a time
        self._snapshots: list[Snapshot] = []  # least recently used first
        self._llama_cpp = llama_cpp  # the low-level state functions the snapshots use

    def render(self, prompt: Prompt) -> str:
        messages, prefill = split_prefill(prompt)
        return self.formatter(messages=messages).prompt + prefill

    def _tokens(self, prompt: Prompt) -> list[int]:
        # The template writes the special tokens itself, as in the transformers backend.
        return self.llm.tokenize(self.render(prompt).encode("utf-8"), add_bos=False, special=True)

    # ------------------------------------------------------------ score_choices

    def _first_ids(self, choice: str) -> list[int]:
        ids: list[int] = []
        for variant in (choice, " " + choice):
            toks = self.llm.tokenize(variant.encode("utf-8"), add_bos=False, special=False)
            if toks and toks[0] not in ids:
                ids.append(toks[0])
        return ids

    def _common_chunks(self, cached: np.ndarray, tokens: list[int]) -> int:
        """Tokens of the whole chunks `tokens` shares with a cached context (never its last token,
        whose logits are needed)."""
        n = min(len(cached), len(tokens) - 1)
        differs = np.flatnonzero(cached[:n] != np.asarray(tokens[:n]))
        common = int(differs[0]) if differs.size else n
        return common // self.config.prefix_chunk * self.config.prefix_chunk

    def _reuse_prefix(self, tokens: list[int]) -> int:
        """Keep the cached whole chunks that `tokens` starts with, from the live context or from the
        snapshot that shares more; the next `eval` drops the rest. Returns how many tokens are reused."""
        llm, chunk = self.llm, self.config.prefix_chunk
        if not chunk:
            llm.n_tokens = 0
            return 0
        live = llm.input_ids[: llm.n_tokens]
        keep = self._common_chunks(live, tokens) if llm.n_tokens else 0
        from_snapshot, best = max(
            ((self._common_chunks(snap.tokens, tokens), snap) for snap in self._snapshots),
            key=lambda shared: shared[0],
            default=(0, None),
        )
        if self.config.snapshots and llm.n_tokens // chunk * chunk > max(keep, from_snapshot):
            self._save(live)  # the live context is about to lose whole chunks that no snapshot holds
        if from_snapshot > keep:
            self._restore(best)
            keep = from_snapshot
        llm.n_tokens = keep
        return keep

    def _save(self, live: np.ndarray) -> None:
        ctx = self.llm._ctx.ctx
        buf = (ctypes.c_uint8 * self._llama_cpp.llama_state_seq_get_size(ctx, 0))()
        size = self._llama_cpp.llama_state_seq_get_data(ctx, buf, len(buf), 0)
        # a snapshot the live context extends holds nothing the new one lacks
        kept = [
            snap
            for snap in self._snapshots
            if not (len(snap.tokens) <= len(live) and np.array_equal(live[: len(snap.tokens)], snap.tokens))
        ]
        self._snapshots = (kept + [Snapshot(live.copy(), buf, size)])[-self.config.snapshots :]

    def _restore(self, snap: Snapshot) -> None:
        llm = self.llm
        llm._ctx.kv_cache_seq_rm(0, 0, -1)
        if self._llama_cpp.llama_state_seq_set_data(llm._ctx.ctx, snap.state, snap.size, 0) != snap.size:
            raise RuntimeError("llamacpp: restoring a KV-cache snapshot failed")
        llm.input_ids[: len(snap.tokens)] = snap.tokens
        llm.n_tokens = len(snap.tokens)
        # most recently used last (saving the live context may just have evicted it)
        self._snapshots = ([s for s in self._snapshots if s is not snap] + [snap])[-self.config.snapshots :]

    def next_token_logits(self, tokens: list[int]) -> tuple[np.ndarray, int]:
        """Logits after `tokens`, and how many of them came from the cache (reused in whole chunks)."""
        llm = self.llm
        reused = self._reuse_prefix(tokens)
        llm.eval(tokens[reused:])
        return np.ctypeslib.as_array(llm._ctx.get_logits_ith(-1), shape=(llm.n_vocab(),)).copy(), reused

    def score_choices(self, prompts: Sequence[Prompt], choices: Sequence[str]) -> list[list[float]]:
        ids = [self._first_ids(c) for c in choices]
        rows = [self._tokens(p) for p in prompts]
        out: list[list[float]] = [[] for _ in rows]
        with self._lock:
            self.usage.begin(len(rows))
            for i in sorted(range(len(rows)), key=lambda i: rows[i]):  # shared prefixes next to each other
                start = time.perf_counter()
                logits, reused = self.next_token_logits(rows[i])
                p = np.exp(logits.astype(np.float64) - logits.max())
                p /= p.sum()
                out[i] = normalise([float(p[k].sum()) for k in ids])
                self.usage.add(
                    prompt_tokens=len(rows[i]), seconds=time.perf_counter() - start, cached=reused, index=i
                )
        return out

    # ------------------------------------------------------------ generate

    def generate(
        self,
        prompts: Sequence[Prompt],
        max_tokens: int = 128,
        temperature: float = 0.0,
        stop: Sequence[str] | None = None,
    ) -> list[Generation]:
        out = []
        with self._lock:
            self.usage.begin(len(prompts))
            for i, prompt in enumerate(prompts):
                start = time.perf_counter()
                tokens = self._tokens(prompt)
                # create_completion reuses exactly the cached tokens left in place here: whole chunks
                reused = self._reuse_prefix(tokens)
                res = self.llm.create_completion(
                    prompt=tokens,
                    max_tokens=max_tokens,
                    temperature=temperature,
                    stop=[self.eos_token, *(stop or [])],
                    seed=self.config.seed,
                )
                seconds = time.perf_counter() - start
                usage = res["usage"]
                gen = Generation(
                    text=res["choices"][0]["text"],
                    prompt_tokens=usage["prompt_tokens"],
                    completion_tokens=usage["completion_tokens"],
                    seconds=seconds,
                )
                self.usage.add(gen.prompt_tokens, gen.completion_tokens, seconds, cached=reused, index=i)
                out.append(gen)
        return out
