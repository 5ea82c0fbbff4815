"""A tiny Llama (2 layers, hidden 32) and a word-level tokenizer, both built here: no downloads."""

from __future__ import annotations

import json
import random

import pytest
import torch

WORDS = [
    "good",
    "kind",
    "safe",
    "help",
    "bad",
    "harm",
    "rude",
    "hurt",
    "the",
    "a",
    "answer",
    "question",
    "how",
    "do",
    "i",
    "you",
    "please",
    "no",
    "yes",
    "Human:",
    "Assistant:",
]


def make_tiny_model(path, seed: int = 0):
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    vocab = {t: i for i, t in enumerate(["<pad>", "<s>", "</s>", "<unk>"] + WORDS)}
    tk = Tokenizer(models.WordLevel(vocab=vocab, unk_token="<unk>"))
    tk.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    tok = PreTrainedTokenizerFast(
        tokenizer_object=tk, pad_token="<pad>", bos_token="<s>", eos_token="</s>", unk_token="<unk>"
    )
    torch.manual_seed(seed)
    cfg = LlamaConfig(
        vocab_size=len(vocab),
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=128,
        pad_token_id=0,
        bos_token_id=1,
        eos_token_id=2,
    )
    LlamaForCausalLM(cfg).save_pretrained(str(path))
    tok.save_pretrained(str(path))
    return path


def toy_rows(n: int, seed: int = 0) -> list[dict]:
    """Learnable: the chosen response is made of kind words, the rejected one of harmful words."""
    rng = random.Random(seed)
    good, bad = ["good", "kind", "safe", "help"], ["bad", "harm", "rude", "hurt"]
    rows = []
    for i in range(n):
        prompt = (
            "\n\nHuman: "
            + " ".join(rng.choices(["how", "do", "i", "please", "question"], k=3))
            + "\n\nAssistant:"
        )
        rows.append(
            {
                "prompt": prompt,
                "chosen": " " + " ".join(rng.choices(good, k=3)),
                "rejected": " " + " ".join(rng.choices(bad, k=3)),
                "weight": 1.0,
                "soft_label": 1.0,
                "entropy": 0.0,
                "n_votes": 1,
                "pair_id": f"p{i}",
                "source": "toy",
                "gold": 1.0,
            }
        )
    return rows


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory):
    return str(make_tiny_model(tmp_path_factory.mktemp("tiny") / "llama"))


@pytest.fixture
def toy_data(tmp_path):
    p = tmp_path / "toy.jsonl"
    p.write_text("".join(json.dumps(r) + "\n" for r in toy_rows(32)))
    return p


@pytest.fixture(autouse=True)
def _one_thread():
    torch.set_num_threads(1)
