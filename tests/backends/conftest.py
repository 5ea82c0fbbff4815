"""Fixtures for the backend tests: a tiny Llama built here, the fetched SmolLM2, and a real
OpenAI-compatible server started on a free loopback port."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

CHAT_TEMPLATE = (
    "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)
CORPUS = [
    "Which answer is better, A or B? A is better. B is better.",
    "The quick brown fox jumps over the lazy dog.",
    "Answer with A or B only. Count: 1, 2, 3, 4, 5, 6, 7, 8, 9, 10.",
]


def build_tiny_model(path: Path) -> Path:
    """A 2-layer Llama with hidden size 32 and a byte-level BPE tokenizer trained here."""
    import torch
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    specials = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=400, special_tokens=specials, initial_alphabet=pre_tokenizers.ByteLevel.alphabet()
    )
    tok.train_from_iterator(CORPUS * 5, trainer)
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok,
        unk_token="<|endoftext|>",
        bos_token="<|im_start|>",
        eos_token="<|im_end|>",
        pad_token="<|im_end|>",
    )
    fast.chat_template = CHAT_TEMPLATE
    torch.manual_seed(0)
    cfg = LlamaConfig(
        vocab_size=len(fast),
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=512,
        bos_token_id=fast.bos_token_id,
        eos_token_id=fast.eos_token_id,
        pad_token_id=fast.pad_token_id,
    )
    model = LlamaForCausalLM(cfg)
    with torch.no_grad():  # larger weights than the default init, so the distributions are not flat
        for p in model.parameters():
            p.mul_(8.0)
    model.save_pretrained(path)
    fast.save_pretrained(path)
    return path


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory) -> Path:
    return build_tiny_model(tmp_path_factory.mktemp("tiny-llama"))


@pytest.fixture(scope="session")
def smollm2_dir() -> Path:
    from w2s.backends.fetch import resolve_model_path

    try:
        return resolve_model_path("smollm2")
    except FileNotFoundError as e:
        pytest.skip(f"SmolLM2 is not fetched ({e})")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """`w2s models serve ...` in a subprocess, on a free loopback port."""

    def __init__(self, spec: str, *extra: str):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/v1"
        cmd = [
            sys.executable,
            "-c",
            "from w2s.cli import main; main()",
            "models",
            "serve",
            spec,
            "--port",
            str(self.port),
            "--threads",
            "1",
            *extra,
        ]
        self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        deadline = time.time() + 120
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited: {self.proc.stdout.read()}")
            try:
                if httpx.get(f"{self.url}/models", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                time.sleep(0.2)
        self.close()
        raise RuntimeError("server did not start within 120 s")

    def close(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


@pytest.fixture(scope="module")
def smol_server(smollm2_dir):
    """SmolLM2 served under the name 'smollm2', shared by a test module."""
    server = Server("transformers:smollm2", "--name", "smollm2")
    yield server
    server.close()


@pytest.fixture
def unused_port() -> int:
    return free_port()


@pytest.fixture
def serve():
    servers: list[Server] = []

    def start(spec: str, *extra: str) -> Server:
        servers.append(Server(spec, *extra))
        return servers[-1]

    yield start
    for s in servers:
        s.close()
