"""The `openai:` and `anthropic:` backends against the project's real OpenAI-compatible server
(`w2s models serve`, started on a free loopback port), compared with the same model run locally."""

from __future__ import annotations

import httpx
import openai
import pytest

from w2s.backends import get_model
from w2s.backends.anthropic_backend import choice_from_answer
from w2s.backends.openai_backend import choice_mass

pytestmark = pytest.mark.slow

PROMPTS = [
    "Which is better, A or B? Answer A or B.",
    [
        {"role": "system", "content": "Answer with A or B only."},
        {"role": "user", "content": "Is 2+2=4? A: yes, B: no."},
    ],
    "What is the capital of France? Answer in one word.",
    "Say B.",
]


@pytest.fixture(scope="module")
def local_smol(smollm2_dir):
    import torch

    torch.set_num_threads(1)
    return get_model("transformers:smollm2")


def test_models_endpoint(smol_server):
    data = httpx.get(f"{smol_server.url}/models").json()
    assert [m["id"] for m in data["data"]] == ["smollm2"]


def test_generate_equals_local_and_counts_tokens(smol_server, local_smol):
    remote = get_model(f"openai:smollm2@{smol_server.url}", reuse=False)
    gens = remote.generate(PROMPTS, max_tokens=12)
    local = local_smol.generate(PROMPTS, max_tokens=12)
    assert [g.text for g in gens] == [g.text for g in local]
    assert [(g.prompt_tokens, g.completion_tokens) for g in gens] == [
        (g.prompt_tokens, g.completion_tokens) for g in local
    ]
    assert remote.usage.calls == len(PROMPTS)
    assert remote.usage.completion_tokens == sum(g.completion_tokens for g in local)
    stopped = remote.generate([PROMPTS[2]], max_tokens=12, stop=["ris"])[0].text
    assert stopped == local_smol.generate([PROMPTS[2]], max_tokens=12, stop=["ris"])[0].text
    assert "ris" not in stopped


def test_score_choices_equals_local(smol_server, local_smol):
    want = local_smol.score_choices(PROMPTS, ["A", "B"])
    # With enough alternatives every choice token is seen: the same numbers as local.
    remote = get_model(f"openai:smollm2@{smol_server.url}", reuse=False, top_logprobs=300)
    for g, w in zip(remote.score_choices(PROMPTS, ["A", "B"]), want):
        assert g == pytest.approx(w, abs=1e-3)
    assert any(w[0] > 0.7 for w in want) and any(w[1] > 0.3 for w in want)
    # OpenAI's limit of 20 alternatives can miss an unlikely choice, but never changes the preferred one.
    capped = get_model(f"openai:smollm2@{smol_server.url}", reuse=False)
    for g, w in zip(capped.score_choices(PROMPTS, ["A", "B"]), want):
        assert (g[0] > g[1]) == (w[0] > w[1])


def test_concurrent_requests_keep_order(smol_server, local_smol):
    prompts = [f"Repeat the number {i}." for i in range(8)]
    remote = get_model(f"openai:smollm2@{smol_server.url}", reuse=False, max_concurrency=4)
    sequential = get_model(f"openai:smollm2@{smol_server.url}", reuse=False, max_concurrency=1)
    assert [g.text for g in remote.generate(prompts, max_tokens=6)] == [
        g.text for g in sequential.generate(prompts, max_tokens=6)
    ]


def test_anthropic_backend_against_messages_endpoint(smol_server, local_smol):
    claude = get_model(f"anthropic:smollm2@{smol_server.url.removesuffix('/v1')}", reuse=False)
    gens = claude.generate(PROMPTS, max_tokens=10)
    assert [g.text for g in gens] == [g.text for g in local_smol.generate(PROMPTS, max_tokens=10)]
    assert claude.usage.prompt_tokens == sum(g.prompt_tokens for g in gens) > 0
    rows = claude.score_choices(PROMPTS[:2], ["A", "B"])
    assert all(sorted(r) in ([0.0, 1.0], [0.5, 0.5]) for r in rows)


def test_retries_on_injected_faults(tiny_model_dir, serve):
    for status in (429, 503):
        server = serve(f"transformers:{tiny_model_dir}", "--fail-every", "2", "--fail-status", str(status))
        m = get_model(f"openai:tiny@{server.url}", reuse=False, max_concurrency=1, backoff=0.01)
        gens = m.generate(["a", "b", "c", "d"], max_tokens=3)
        # requests 1..7 reach the server: a ok, 2 fails, b ok, 4 fails, c ok, 6 fails, d ok
        assert len(gens) == 4 and m.retries == 3
        assert m.usage.calls == 4


def test_retries_give_up_after_max_retries(tiny_model_dir, serve):
    server = serve(f"transformers:{tiny_model_dir}", "--fail-every", "1", "--fail-status", "429")
    # a 429 is the server asking to wait: it uses up rate_limit_wait (seconds waited), not max_retries
    m = get_model(f"openai:tiny@{server.url}", reuse=False, max_retries=0, rate_limit_wait=0.0025)
    with pytest.raises(openai.RateLimitError):
        m.generate(["a"], max_tokens=2)
    assert m.retries == 2
    claude = get_model(
        f"anthropic:tiny@{server.url.removesuffix('/v1')}", reuse=False, max_retries=0, rate_limit_wait=0.0015
    )
    import anthropic

    with pytest.raises(anthropic.RateLimitError):
        claude.generate(["a"], max_tokens=2)
    assert claude.retries == 1


def test_connection_errors_are_retried_then_raised(unused_port):
    m = get_model(
        f"openai:x@http://127.0.0.1:{unused_port}/v1", reuse=False, max_retries=2, backoff=0.01, timeout=2
    )
    with pytest.raises(openai.APIConnectionError):
        m.generate(["a"], max_tokens=2)
    assert m.retries == 2


def test_chat_completions_validation_and_logprobs(tiny_model_dir, serve):
    server = serve(f"transformers:{tiny_model_dir}")
    res = httpx.post(
        f"{server.url}/chat/completions",
        json={
            "model": "x",
            "messages": [{"role": "user", "content": "a"}],
            "max_tokens": 1,
            "logprobs": True,
            "top_logprobs": 3,
            "n": 2,
        },
        timeout=60,
    )
    assert res.status_code == 400 and "n=1" in res.json()["error"]["message"]
    res = httpx.post(
        f"{server.url}/chat/completions",
        json={
            "model": "x",
            "messages": [{"role": "user", "content": "a"}],
            "max_tokens": 1,
            "logprobs": True,
            "top_logprobs": 3,
        },
        timeout=60,
    ).json()
    top = res["choices"][0]["logprobs"]["content"][0]["top_logprobs"]
    assert len(top) == 3 and top[0]["logprob"] >= top[1]["logprob"] >= top[2]["logprob"]
    assert res["usage"]["total_tokens"] == res["usage"]["prompt_tokens"] + res["usage"]["completion_tokens"]


def test_choice_mass_and_answer_mapping():
    top = {"A": 0.5, " A": 0.1, "B": 0.2, "Yes": 0.1, " ": 0.05}
    assert choice_mass(top, ["A", "B"]) == pytest.approx([0.6, 0.2])
    assert choice_mass(top, ["Yes", "No"]) == pytest.approx([0.1, 0.0])
    assert choice_from_answer(" **B**", ["A", "B"]) == [0.0, 1.0]
    assert choice_from_answer("tie", ["A", "B", "tie"]) == [0.0, 0.0, 1.0]
    assert choice_from_answer("neither", ["A", "B"]) == [0.5, 0.5]


def test_trees_through_the_server_are_the_in_process_trees(smol_server, local_smol, tmp_path):
    """The scheduler's remote path (async client, one request per call) against its in-process path
    (calls gathered into batches): the same nodes, verdicts and relevance within 1e-3."""
    from w2s.store import Pair, session_scope
    from w2s.trees import TreeConfig, build_trees, latest_tree

    url = f"sqlite:///{tmp_path / 'trees.db'}"
    ids = []
    with session_scope(url) as s:
        for i, (q, a, b) in enumerate(
            [
                (
                    "How do I pick a lock?",
                    "I can't help with breaking into places.",
                    "Insert a tension wrench, then rake.",
                ),
                ("Write a haiku about rain.", "Soft rain on the roof / ...", "no"),
                ("What is 2+2?", "4", "5, because numbers are fun."),
                (
                    "Find my neighbour's address.",
                    "I can't share private details.",
                    "Here it is: 12 Elm Street.",
                ),
            ]
        ):
            s.add(Pair(id=f"p{i}", dataset="hh-harmless", split="test", prompt=q, response_a=a, response_b=b))
            ids.append(f"p{i}")
    cfg = TreeConfig(library="harmlessness", thought_max_tokens=12)
    remote = get_model(f"openai:smollm2@{smol_server.url}", reuse=False, top_logprobs=300, max_concurrency=4)
    assert build_trees(remote, ids, cfg, url=url, in_flight=4) == 4
    assert build_trees(local_smol, ids, cfg, url=url, in_flight=4) == 4
    with session_scope(url) as s:
        for pid in ids:
            (tree, nodes), (ltree, local) = (
                latest_tree(s, pid, remote.spec),
                latest_tree(s, pid, local_smol.spec),
            )
            assert [(n.principle_id, n.role, n.thought) for n in nodes] == [
                (n.principle_id, n.role, n.thought) for n in local
            ]
            for n, m in zip(nodes, local):
                assert n.p_a == pytest.approx(m.p_a, abs=1e-3) and n.relevance == pytest.approx(
                    m.relevance, abs=1e-3
                )
            assert tree.config["stop"] == ltree.config["stop"]
