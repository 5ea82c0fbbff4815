"""`anthropic:MODEL` (or `anthropic:MODEL@BASE_URL`) — the Anthropic Messages API.

The API offers no log-probabilities, so `score_choices` asks the model to answer with one of the
choices and puts all the probability on the choice it names (uniform when it names none).
Concurrency, timeouts and retries follow the `openai:` backend.

The anthropic client (2.x) no longer takes `temperature`; for a compatible server named by
`@BASE_URL` it is sent in the request body, for the official API the model's own sampling applies.
"""

from __future__ import annotations

from collections.abc import Sequence

from w2s.backends.base import BackendUnavailable, Generation, Prompt, PromptUsage, as_messages
from w2s.backends.openai_backend import RemoteConfig, RemoteModel, estimate_tokens


def choice_from_answer(answer: str, choices: Sequence[str]) -> list[float]:
    """One-hot on the choice the answer starts with (longest match first), uniform if none."""
    text = answer.strip().strip("*\"'`(").strip()
    for k in sorted(range(len(choices)), key=lambda k: -len(choices[k])):
        if text.lower().startswith(choices[k].strip().lower()):
            return [1.0 if j == k else 0.0 for j in range(len(choices))]
    return [1.0 / len(choices)] * len(choices)


class AnthropicModel(RemoteModel):
    backend = "anthropic"
    key_env = "ANTHROPIC_API_KEY"

    def __init__(self, rest: str, config: RemoteConfig | None = None, **overrides):
        try:
            import anthropic
        except ImportError as e:
            raise BackendUnavailable("anthropic", "pip install anthropic", cause=str(e)) from e
        super().__init__(rest, config, **overrides)
        self.send_temperature = self.base_url is not None
        self.status_error = anthropic.APIStatusError
        self.connection_errors = (anthropic.APIConnectionError, anthropic.APITimeoutError)

    def new_client(self):
        import anthropic

        return anthropic.AsyncAnthropic(
            base_url=self.base_url, api_key=self.api_key, timeout=self.config.timeout, max_retries=0
        )

    async def agenerate_one(
        self,
        prompt: Prompt,
        max_tokens: int = 128,
        temperature: float = 0.0,
        stop: Sequence[str] | None = None,
    ) -> tuple[Generation, PromptUsage]:
        messages = as_messages(prompt)
        system = "\n\n".join(m["content"] for m in messages if m["role"] == "system")
        kwargs = {"system": system} if system else {}
        if stop:
            kwargs["stop_sequences"] = list(stop)
        if self.send_temperature:
            kwargs["extra_body"] = {"temperature": temperature}
        estimate = estimate_tokens(prompt, max_tokens)

        async def request(client):
            return await client.messages.create(
                model=self.model,
                messages=[m for m in messages if m["role"] != "system"],
                max_tokens=max_tokens,
                **kwargs,
            )

        res, seconds = await self._send(request, estimate)
        text = "".join(block.text for block in res.content if getattr(block, "type", "") == "text")
        u = self._record(res.usage.input_tokens, res.usage.output_tokens, seconds, estimate)
        return Generation(text, u.prompt_tokens, u.completion_tokens, seconds), u

    async def ascore_one(self, prompt: Prompt, choices: Sequence[str]) -> tuple[list[float], PromptUsage]:
        messages = as_messages(prompt)
        instruction = f"\n\nAnswer with exactly one of: {', '.join(choices)}."
        messages[-1] = {**messages[-1], "content": messages[-1]["content"] + instruction}
        gen, u = await self.agenerate_one(messages, max_tokens=8, temperature=0.0)
        return choice_from_answer(gen.text, choices), u
