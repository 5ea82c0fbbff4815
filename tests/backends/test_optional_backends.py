"""llama.cpp (when installed), and the install hints of missing optional backends."""

from __future__ import annotations

import builtins
import importlib.util

import pytest

from w2s.backends import BackendUnavailable, get_model

HAS_LLAMACPP = importlib.util.find_spec("llama_cpp") is not None
PROMPTS = [
    "Which is better, A or B? Answer A or B.",
    [
        {"role": "system", "content": "Answer with A or B only."},
        {"role": "user", "content": "Is 2+2=4? A: yes, B: no."},
    ],
    "Say B.",
    [
        {"role": "user", "content": "Pick one: A or B."},
        {"role": "assistant", "content": "I pick"},
    ],  # a prefill
]


def block_import(monkeypatch, name: str) -> None:
    real = builtins.__import__

    def fake(mod, *args, **kwargs):
        if mod == name or mod.startswith(name + "."):
            raise ImportError(f"No module named '{name}'")
        return real(mod, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", fake)


def test_missing_llamacpp_names_the_extra(monkeypatch):
    block_import(monkeypatch, "llama_cpp")
    with pytest.raises(BackendUnavailable) as err:
        get_model("llamacpp:smollm2", reuse=False)
    assert "pip install 'w2s[llamacpp]'" in str(err.value)


def test_missing_vllm_names_the_extra(monkeypatch):
    block_import(monkeypatch, "vllm")
    with pytest.raises(BackendUnavailable) as err:
        get_model("vllm:smollm2", reuse=False)
    assert "pip install 'w2s[vllm]'" in str(err.value)


def test_missing_openai_client_names_it(monkeypatch):
    block_import(monkeypatch, "openai")
    with pytest.raises(BackendUnavailable, match="pip install openai"):
        get_model("openai:gpt-4o-mini@http://127.0.0.1:9/v1", reuse=False)


@pytest.fixture(scope="module")
def llama(smollm2_dir):
    if not HAS_LLAMACPP:
        pytest.skip("llama-cpp-python is not installed (pip install 'w2s[llamacpp]')")
    from w2s.backends.fetch import resolve_model_path

    try:
        resolve_model_path("smollm2", prefer="gguf")
    except FileNotFoundError as e:
        pytest.skip(f"the SmolLM2 GGUF is not fetched ({e})")
    return get_model("llamacpp:smollm2", reuse=False, threads=1)


@pytest.mark.slow
def test_llamacpp_renders_like_transformers(llama):
    local = get_model("transformers:smollm2")
    for p in PROMPTS:
        assert llama.render(p) == local.render(p)


@pytest.mark.slow
def test_llamacpp_scores_agree_with_transformers(llama):
    """Same weights (the safetensors copy is the dequantised GGUF); llama.cpp multiplies in Q4/Q8,
    so the numbers agree closely but not exactly."""
    want = get_model("transformers:smollm2").score_choices(PROMPTS, ["A", "B"])
    got = llama.score_choices(PROMPTS, ["A", "B"])
    for g, w in zip(got, want):
        assert g == pytest.approx(w, abs=0.05)
        assert (g[0] > g[1]) == (w[0] > w[1])
    # a prompt's scores do not depend on the prompts before it: other orders and repeats agree exactly
    again = llama.score_choices(PROMPTS[::-1] + PROMPTS, ["A", "B"])
    for g, a in zip(got[::-1] + got, again):
        assert g == pytest.approx(a, abs=1e-6)


@pytest.mark.slow
def test_llamacpp_generate(llama):
    gens = llama.generate(["What is the capital of France? Answer in one word."], max_tokens=8)
    assert "paris" in gens[0].text.lower()
    assert 0 < gens[0].completion_tokens <= 8 and gens[0].prompt_tokens > 10
    stopped = llama.generate(["Count from 1 to 10 separated by commas."], max_tokens=30, stop=["5"])[0]
    assert "5" not in stopped.text and "4" in stopped.text
    assert llama.usage.completion_tokens >= gens[0].completion_tokens + stopped.completion_tokens


# Prompts that share a long prefix, as a tree's relevance, thought and verdict prompts share the pair text.
SHARED = "Conversation:\n" + " ".join(
    f"Line {i}: the assistant explains step {i} of a recipe." for i in range(20)
)
PREFIXED = [
    SHARED + f"\n\nQuestion {q}: is Reply {c} better? Answer A or B."
    for q, c in ((1, "A"), (2, "B"), (3, "A"))
]


@pytest.mark.slow
def test_llamacpp_prefix_reuse_changes_no_number(llama):
    """Reusing the cached pair prefix evaluates fewer tokens and gives bit-identical scores and text:
    tokens are evaluated in chunks aligned at absolute positions, whether cached or not."""
    fresh = []
    for p in PREFIXED:
        llama.llm.reset()
        fresh += llama.score_choices([p], ["A", "B"])
    cached0 = llama.usage.cached_prompt_tokens
    shared = llama.score_choices(PREFIXED, ["A", "B"])
    assert (
        llama.usage.cached_prompt_tokens - cached0 >= 2 * llama.config.prefix_chunk
    )  # the prefix was reused
    assert shared == fresh
    llama.llm.reset()
    alone = llama.generate([PREFIXED[0]], max_tokens=12)[0].text
    llama.score_choices([PREFIXED[1]], ["A", "B"])  # leaves the shared prefix in the cache
    cached0 = llama.usage.cached_prompt_tokens
    assert llama.generate([PREFIXED[0]], max_tokens=12)[0].text == alone
    assert llama.usage.cached_prompt_tokens > cached0


def tree_like_calls(model) -> list:
    """A tree's order of calls: thoughts in both presentation orders, then the verdicts extending them."""
    out = []
    for q in (1, 2):
        thought = [
            f"Reply {o} is shown first.\n{SHARED}\n\nPrinciple {q}: analyse both replies." for o in "AB"
        ]
        gens = model.generate(thought, max_tokens=8)
        out += [g.text for g in gens]
        out += model.score_choices(
            [t + g.text + "\nWhich is better?" for t, g in zip(thought, gens)], ["A", "B"]
        )
    return out


@pytest.mark.slow
def test_llamacpp_snapshots_skip_the_other_order_and_change_no_number(smollm2_dir):
    """Alternating between the two orders, the live context alone reuses nothing; snapshots of the
    last contexts do, with the same scores and text."""
    if not HAS_LLAMACPP:
        pytest.skip("llama-cpp-python is not installed (pip install 'w2s[llamacpp]')")
    results = {}
    for snapshots in (0, 3):
        model = get_model("llamacpp:smollm2", reuse=False, threads=1, snapshots=snapshots)
        results[snapshots] = (tree_like_calls(model), model.usage.cached_prompt_tokens)
    assert results[3][0] == results[0][0]
    assert results[0][1] == 0  # each prompt followed one in the other order
    assert (
        results[3][1] >= 6 * 64
    )  # each verdict continued its thought from a snapshot, each thought the last one


@pytest.mark.parametrize("spec", ["transformers:smollm2", "openai:gpt-x@http://127.0.0.1:9/v1"])
def test_a_misspelt_backend_option_is_an_error_naming_it(spec):
    # every backend's options are a dataclass: a typo used to be set as a stray attribute and ignored
    with pytest.raises(
        ValueError, match=r"backend '(transformers|openai)' has no option 'thread'; its options: "
    ):
        get_model(spec, reuse=False, thread=2)
