"""The transformers backend against an independent, unbatched computation with the same weights."""

from __future__ import annotations

import pytest
import torch

from w2s.backends import get_model
from w2s.backends.transformers_backend import TransformersModel

PROMPTS = [
    "Which is better, A or B?",
    [
        {"role": "system", "content": "Answer with A or B only."},
        {
            "role": "user",
            "content": "The quick brown fox jumps over the lazy dog. Which answer is better, A or B?",
        },
    ],
    "Count: 1, 2, 3",
    "A",
    "Answer with A or B only. Which answer is better? A is better. B is better. The quick brown fox.",
]


def reference_probs(m: TransformersModel, prompt, choices):
    """One prompt, no padding, no batching: softmax at the last position, choice first tokens
    with and without a leading space summed, renormalised."""
    ids = m.tokenizer.encode(m.render(prompt), add_special_tokens=False)
    with torch.no_grad():
        p = torch.softmax(m.model(torch.tensor([ids])).logits[0, -1].double(), -1)
    mass = []
    for c in choices:
        first = {m.tokenizer.encode(v, add_special_tokens=False)[0] for v in (c, " " + c)}
        mass.append(float(sum(p[i] for i in first)))
    return [x / sum(mass) for x in mass]


@pytest.fixture(scope="module")
def tiny(tiny_model_dir):
    return TransformersModel(str(tiny_model_dir), batch_size=16)


def test_score_choices_matches_unbatched_reference(tiny):
    got = tiny.score_choices(PROMPTS, ["A", "B"])
    for prompt, row in zip(PROMPTS, got):
        assert row == pytest.approx(reference_probs(tiny, prompt, ["A", "B"]), abs=1e-4)
        assert sum(row) == pytest.approx(1.0)
    # a tiny random model is not indifferent between the choices
    assert max(abs(r[0] - 0.5) for r in got) > 0.01


@pytest.mark.parametrize("batch_size", [1, 2, 3, 16])
def test_score_choices_independent_of_batch_size(tiny, batch_size):
    tiny.config.batch_size = 16
    batched = tiny.score_choices(PROMPTS, ["A", "B", "1"])
    tiny.config.batch_size = batch_size
    try:
        other = tiny.score_choices(PROMPTS, ["A", "B", "1"])
    finally:
        tiny.config.batch_size = 16
    for a, b in zip(batched, other):
        assert a == pytest.approx(b, abs=1e-4)


def test_choice_counts_both_space_variants(tiny):
    ids = tiny.choice_token_ids("B")
    assert len(ids) == 2  # "B" and " B" are different tokens in this tokenizer
    assert tiny.tokenizer.decode(ids[1]) == " B"


def greedy_reference(m: TransformersModel, prompt, n):
    ids = m.tokenizer.encode(m.render(prompt), add_special_tokens=False)
    out = []
    with torch.no_grad():
        for _ in range(n):
            nxt = int(m.model(torch.tensor([ids + out])).logits[0, -1].argmax())
            out.append(nxt)
            if nxt == m.tokenizer.eos_token_id:
                break
    return out


def test_generate_greedy_matches_manual_loop_and_batching(tiny):
    before = tiny.usage.completion_tokens
    gens = tiny.generate(PROMPTS, max_tokens=6)
    for prompt, g in zip(PROMPTS, gens):
        ref = greedy_reference(tiny, prompt, 6)
        assert g.text == tiny.tokenizer.decode(ref, skip_special_tokens=True)
        assert g.completion_tokens == len(ref)
        assert g.prompt_tokens == len(tiny.tokenizer.encode(tiny.render(prompt), add_special_tokens=False))
    assert tiny.usage.completion_tokens - before == sum(g.completion_tokens for g in gens)
    tiny.config.batch_size = 1
    try:
        assert [g.text for g in tiny.generate(PROMPTS, max_tokens=6)] == [g.text for g in gens]
    finally:
        tiny.config.batch_size = 16


def test_generate_honours_stop(tiny):
    full = tiny.generate(PROMPTS[:1], max_tokens=12)[0].text
    assert len(full) > 2
    stop = full[len(full) // 2 : len(full) // 2 + 1]
    cut = tiny.generate(PROMPTS[:1], max_tokens=12, stop=[stop])[0].text
    assert cut == full.split(stop, 1)[0]


def test_sampling_with_temperature_runs(tiny):
    torch.manual_seed(0)
    gens = tiny.generate(PROMPTS[:2], max_tokens=5, temperature=1.0)
    assert all(0 < g.completion_tokens <= 5 for g in gens)


def test_spec_and_aliases(tiny_model_dir, tmp_path, monkeypatch):
    m = get_model(f"transformers:{tiny_model_dir}", reuse=False)
    assert m.spec == f"transformers:{tiny_model_dir}"
    monkeypatch.setenv("W2S_CACHE", str(tmp_path))
    with pytest.raises(FileNotFoundError, match="w2s models fetch qwen2.5-coder-1.5b"):
        get_model("transformers:qwen2.5-coder-1.5b", reuse=False)


@pytest.mark.slow
def test_smollm2_batched_equals_unbatched(smollm2_dir):
    torch.set_num_threads(1)
    m = get_model("transformers:smollm2", reuse=False)
    batched = m.score_choices(PROMPTS, ["A", "B"])
    m.config.batch_size = 1
    single = m.score_choices(PROMPTS, ["A", "B"])
    for a, b in zip(batched[:2], single):
        assert a == pytest.approx(b, abs=1e-4)
    for prompt, a in zip(PROMPTS[:2], batched):
        assert a == pytest.approx(reference_probs(m, prompt, ["A", "B"]), abs=1e-4)
    gen = m.generate(["What is the capital of France? Answer in one word."], max_tokens=8)[0]
    assert "paris" in gen.text.lower()


def test_trailing_assistant_message_is_a_prefill(tiny):
    """The answer starts with a trailing assistant message: the model continues it (no end of turn)."""
    question = [{"role": "user", "content": "Which is better, A or B?"}]
    prefilled = [
        *question,
        {"role": "assistant", "content": "Reply A is clearer. So the better reply is Reply"},
    ]
    text = tiny.render(prefilled)
    assert text == tiny.render(question) + "Reply A is clearer. So the better reply is Reply"
    assert not text.endswith("<|im_end|>\n")
    got = tiny.score_choices([prefilled], ["A", "B"])[0]
    assert got == pytest.approx(reference_probs(tiny, prefilled, ["A", "B"]), abs=1e-4)
