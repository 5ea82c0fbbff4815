"""Does llama.cpp on this CPU decode several sequences per `llama_batch` faster than one at a time?

    python bench/trees_scale.py --llamacpp-batch [--model qwen2.5-coder-1.5b --threads 2 --seqs 1,2,4,8]

Each of S sequences gets its own prompt (a tree's thought prompt is ~300 tokens), then T greedy tokens
are decoded: one `llama_decode` per step carrying one token of every sequence (seq ids 0..S-1), against S
sequences decoded one after the other. Prints generated tokens/s for both; the in-process llama.cpp
backend would gather a tree step's thoughts into one such batch only if the batched figure is higher.
Run it with free cores (both when measuring 2 threads): it is a CPU-throughput measurement.
"""

from __future__ import annotations

import argparse
import ctypes
import time

import numpy as np


def main() -> None:
    import sys

    import llama_cpp as L

    from w2s.backends.fetch import resolve_model_path

    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default="qwen2.5-coder-1.5b")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--seqs", default="1,2,4,8")
    ap.add_argument("--tokens", type=int, default=32, help="tokens decoded per sequence")
    ap.add_argument("--prompt-tokens", type=int, default=300)
    a, _ = ap.parse_known_args([x for x in sys.argv[1:] if x != "--llamacpp-batch"])
    seqs = [int(s) for s in a.seqs.split(",")]
    most = max(seqs)
    L.llama_backend_init()
    model = L.llama_model_load_from_file(
        str(resolve_model_path(a.model, prefer="gguf")).encode(), L.llama_model_default_params()
    )
    vocab = L.llama_model_get_vocab(model)
    n_vocab = L.llama_vocab_n_tokens(vocab)
    params = L.llama_context_default_params()
    params.n_ctx = most * (a.prompt_tokens + a.tokens + 8)
    params.n_batch = params.n_ubatch = 512
    params.n_seq_max = most
    params.n_threads = params.n_threads_batch = a.threads
    ctx = L.llama_init_from_model(model, params)
    mem = L.llama_get_memory(ctx)
    batch = L.llama_batch_init(512, 0, most)

    def tokens(text: str) -> list[int]:
        buf = (L.llama_token * 4096)()
        n = L.llama_tokenize(vocab, text.encode(), len(text.encode()), buf, 4096, True, False)
        return list(buf[:n])

    def decode(items: list[tuple[int, int, int, bool]]) -> None:
        """items: (token, position, sequence, wants logits), at most 512."""
        batch.n_tokens = len(items)
        for i, (tok, pos, seq, out) in enumerate(items):
            batch.token[i], batch.pos[i], batch.n_seq_id[i], batch.logits[i] = tok, pos, 1, out
            batch.seq_id[i][0] = seq
        if L.llama_decode(ctx, batch) != 0:
            raise RuntimeError("llama_decode failed")

    def argmax(i: int) -> int:
        row = np.ctypeslib.as_array(
            ctypes.cast(L.llama_get_logits_ith(ctx, i), ctypes.POINTER(ctypes.c_float)), shape=(n_vocab,)
        )
        return int(row.argmax())

    base = "Compare the two replies to the task under the principle 'handles edge cases'. " * 40
    prompts = [tokens(f"{base} Variant {s}.")[: a.prompt_tokens] for s in range(most)]

    def run(group: list[int]) -> float:
        """Prefill then decode the sequences of `group` together; seconds spent decoding."""
        L.llama_memory_clear(mem, True)
        for s in group:  # prefill each prompt in chunks of 512, logits at its last token
            p = prompts[s]
            for c in range(0, len(p), 512):
                chunk = p[c : c + 512]
                decode([(t, c + j, s, c + j == len(p) - 1) for j, t in enumerate(chunk)])
            prompts_last[s] = argmax(len(p) - 1 - (len(p) - 1) // 512 * 512)
        start = time.perf_counter()
        nxt = {s: prompts_last[s] for s in group}
        for step in range(a.tokens):
            decode([(nxt[s], len(prompts[s]) + step, s, True) for s in group])
            nxt = {s: argmax(i) for i, s in enumerate(group)}
        return time.perf_counter() - start

    prompts_last: dict[int, int] = {}
    print(
        f"llama.cpp {a.model}, {a.threads} threads, {a.prompt_tokens} prompt tokens, {a.tokens} tokens decoded "
        f"per sequence"
    )
    print("| sequences | one batch: tokens/s | one at a time: tokens/s | batched / sequential |")
    print("|---|---|---|---|")
    for n in seqs:
        together = n * a.tokens / run(list(range(n)))
        alone = n * a.tokens / sum(run([s]) for s in range(n))
        print(f"| {n} | {together:.1f} | {alone:.1f} | {together / alone:.2f} |", flush=True)
    L.llama_batch_free(batch)
    L.llama_free(ctx)
    L.llama_model_free(model)
