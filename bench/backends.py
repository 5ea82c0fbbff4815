"""Backend throughput on this machine: SmolLM2-135M-Instruct generation tokens/s and
score_choices pairs/s, transformers batched vs unbatched (the baseline, same run) and llama.cpp
when installed.

    nice -n 10 python bench/backends.py [--pairs 32] [--gen-prompts 8] [--max-tokens 32] [--threads 2]

Prompts are A/B judgements built from the HH-RLHF harmless dev split when it is present.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import time
from pathlib import Path

import torch

from w2s.backends import get_model
from w2s.machine import machine

HH = Path(__file__).resolve().parents[1].parent / "shared/data/hh-harmless-single-turn/test_dev.jsonl"


def judgement_prompts(n: int) -> list[str]:
    pairs = []
    if HH.exists():
        for line in HH.read_text().splitlines():
            row = json.loads(line)
            prompt, _, a = row["chosen"].rpartition("\n\nAssistant:")
            b = row["rejected"].rpartition("\n\nAssistant:")[2]
            pairs.append((prompt.replace("\n\nHuman:", "").strip()[:400], a.strip()[:300], b.strip()[:300]))
            if len(pairs) == n:
                break
    while len(pairs) < n:
        i = len(pairs)
        pairs.append(
            (f"How do I bake bread, take {i}?", "Mix flour, water, yeast; knead; bake.", "Just buy it.")
        )
    return [
        f"Question: {q}\n\nResponse A: {a}\n\nResponse B: {b}\n\nWhich response is more harmless? "
        "Answer A or B."
        for q, a, b in pairs
    ]


def timed(fn):
    start = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - start


def bench(label: str, model, prompts: list[str], gen_prompts: list[str], max_tokens: int, rows: list) -> list:
    model.score_choices(prompts[:2], ["A", "B"])  # warm-up
    scores, s_sec = timed(lambda: model.score_choices(prompts, ["A", "B"]))
    gens, g_sec = timed(lambda: model.generate(gen_prompts, max_tokens=max_tokens))
    tokens = sum(g.completion_tokens for g in gens)
    rows.append((label, len(prompts) / s_sec, s_sec, tokens / g_sec, tokens, g_sec))
    print(
        f"{label:32s} score_choices {len(prompts) / s_sec:7.2f} pairs/s ({s_sec:6.1f} s)   "
        f"generate {tokens / g_sec:7.2f} tokens/s ({tokens} tokens, {g_sec:6.1f} s)",
        flush=True,
    )
    return scores


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--pairs", type=int, default=32)
    ap.add_argument("--gen-prompts", type=int, default=8)
    ap.add_argument("--max-tokens", type=int, default=32)
    ap.add_argument("--batch-size", type=int, default=16)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    prompts = judgement_prompts(args.pairs)
    gen_prompts = prompts[: args.gen_prompts]
    print(machine())
    print(
        f"{args.pairs} pairs for score_choices, {args.gen_prompts} prompts x {args.max_tokens} new tokens (greedy)\n"
    )

    rows: list = []
    tf = get_model("transformers:smollm2", reuse=False, batch_size=args.batch_size)
    batched = bench(
        f"transformers batched (bs={args.batch_size})", tf, prompts, gen_prompts, args.max_tokens, rows
    )
    tf.config.batch_size = 1
    single = bench("transformers unbatched (bs=1)", tf, prompts, gen_prompts, args.max_tokens, rows)
    diff = max(abs(x - y) for a, b in zip(batched, single) for x, y in zip(a, b))
    print(f"  max |batched - unbatched| probability: {diff:.2e}")
    if importlib.util.find_spec("llama_cpp"):
        ll = get_model("llamacpp:smollm2", reuse=False, threads=args.threads)
        scores = bench("llama.cpp (Q4_1 GGUF)", ll, prompts, gen_prompts, args.max_tokens, rows)
        agree = sum((a[0] > a[1]) == (b[0] > b[1]) for a, b in zip(scores, batched)) / len(scores)
        diff = max(abs(x - y) for a, b in zip(scores, batched) for x, y in zip(a, b))
        print(
            f"  llama.cpp vs transformers: same preferred choice on {agree:.0%} of pairs, max |diff| {diff:.3f}"
        )
    else:
        print("llama.cpp: not installed (pip install 'w2s[llamacpp]')")
    base = rows[1]
    print("\nspeed-up over transformers unbatched:")
    for label, sps, _, tps, _, _ in rows:
        print(f"  {label:32s} score x{sps / base[1]:.2f}   generate x{tps / base[3]:.2f}")
    print(machine())


if __name__ == "__main__":
    main()
