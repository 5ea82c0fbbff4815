"""`vllm:MODEL` — in-process vLLM offline batch inference (extra `vllm`, needs a GPU).

vLLM pins its own torch and transformers, so it is never a default dependency and is imported only
when a `vllm:` spec is used. MODEL is a fetched alias, a local folder/GGUF or a Hub id.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence

from w2s.backends.base import BackendUnavailable, Generation, Prompt, Usage, as_messages, normalise


def _import_vllm():
    try:
        import vllm
    except ImportError as e:
        raise BackendUnavailable("vllm", "pip install 'w2s[vllm]' (GPU only)", cause=str(e)) from e
    return vllm


class VLLMModel:
    def __init__(self, rest: str, top_logprobs: int = 20, **engine_kwargs):
        vllm = _import_vllm()
        from w2s.backends.fetch import SOURCES, resolve_model_path

        self._vllm = vllm
        model = str(resolve_model_path(rest)) if rest in SOURCES else rest
        self.spec = f"vllm:{rest}"
        self.usage = Usage()
        self.top_logprobs = top_logprobs
        self.llm = vllm.LLM(model=model, **engine_kwargs)
        self.tokenizer = self.llm.get_tokenizer()

    def _chat(self, prompts: Sequence[Prompt], params):
        start = time.perf_counter()
        outs = self.llm.chat([as_messages(p) for p in prompts], params, use_tqdm=False)
        return outs, (time.perf_counter() - start) / max(1, len(prompts))

    def generate(
        self,
        prompts: Sequence[Prompt],
        max_tokens: int = 128,
        temperature: float = 0.0,
        stop: Sequence[str] | None = None,
    ) -> list[Generation]:
        params = self._vllm.SamplingParams(
            max_tokens=max_tokens, temperature=temperature, stop=list(stop or [])
        )
        outs, seconds = self._chat(prompts, params)
        gens = []
        self.usage.begin(len(outs))
        for i, o in enumerate(outs):
            g = Generation(o.outputs[0].text, len(o.prompt_token_ids), len(o.outputs[0].token_ids), seconds)
            self.usage.add(g.prompt_tokens, g.completion_tokens, seconds, index=i)
            gens.append(g)
        return gens

    def score_choices(self, prompts: Sequence[Prompt], choices: Sequence[str]) -> list[list[float]]:
        ids = []
        for c in choices:
            first = {
                t[0] for t in (self.tokenizer.encode(v, add_special_tokens=False) for v in (c, " " + c)) if t
            }
            ids.append(first)
        params = self._vllm.SamplingParams(max_tokens=1, temperature=0.0, logprobs=self.top_logprobs)
        outs, seconds = self._chat(prompts, params)
        rows = []
        self.usage.begin(len(outs))
        for i, o in enumerate(outs):
            top = o.outputs[0].logprobs[0]  # {token_id: Logprob} at the first answer position
            rows.append(normalise([sum(math.exp(top[i].logprob) for i in s if i in top) for s in ids]))
            self.usage.add(len(o.prompt_token_ids), 0, seconds, index=i)
        return rows
