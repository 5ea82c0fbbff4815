"""Models chosen by a spec string, `BACKEND:REST`:

    transformers:PATH_OR_ID_OR_ALIAS   local model (aliases such as `smollm2` name a fetched model)
    llamacpp:GGUF_PATH_OR_ALIAS        llama-cpp-python (extra `llamacpp`)
    openai:MODEL@BASE_URL              any OpenAI-compatible server (`openai:gpt-4o-mini` uses the default URL)
    anthropic:MODEL                    the Anthropic API
    vllm:MODEL                         in-process vLLM (extra `vllm`, GPU)

Backends are imported only when a spec asks for them, so a missing heavy dependency costs nothing
until it is needed, and then fails with an install hint. Beside them: `w2s.backends.fetch` fetches the
project's local models into the model cache (`w2s.backends.paths`), and `w2s.backends.server` serves any
model over an OpenAI-compatible HTTP API (`w2s models serve`).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable

from w2s.backends.base import BackendUnavailable, Generation, Message, Model, Prompt, Usage

BACKENDS: dict[str, str] = {
    "transformers": "w2s.backends.transformers_backend:TransformersModel",
    "llamacpp": "w2s.backends.llamacpp_backend:LlamaCppModel",
    "openai": "w2s.backends.openai_backend:OpenAIModel",
    "anthropic": "w2s.backends.anthropic_backend:AnthropicModel",
    "vllm": "w2s.backends.vllm_backend:VLLMModel",
}

_cache: dict[str, Model] = {}


def register_backend(name: str, factory: str | Callable[[str], Model]) -> None:
    """Add a backend: `factory` is a callable taking the part of the spec after the colon,
    or a 'module:attribute' string naming one."""
    BACKENDS[name] = factory  # type: ignore[assignment]


def parse_spec(spec: str) -> tuple[str, str]:
    if ":" not in spec:
        raise ValueError(
            f"model spec {spec!r} has no backend: write BACKEND:MODEL, e.g. transformers:smollm2"
        )
    backend, rest = spec.split(":", 1)
    if backend not in BACKENDS:
        raise ValueError(f"unknown backend {backend!r} in {spec!r}; known: {', '.join(sorted(BACKENDS))}")
    if not rest:
        raise ValueError(f"model spec {spec!r} names no model after '{backend}:'")
    return backend, rest


def get_model(spec: str, *, reuse: bool = True, **kwargs) -> Model:
    """The model named by `spec`; loaded once per process unless `reuse=False`."""
    if reuse and spec in _cache and not kwargs:
        return _cache[spec]
    backend, rest = parse_spec(spec)
    factory = BACKENDS[backend]
    if isinstance(factory, str):
        module_name, attr = factory.split(":")
        factory = getattr(importlib.import_module(module_name), attr)
    model = factory(rest, **kwargs)
    model.spec = spec
    if reuse and not kwargs:
        _cache[spec] = model
    return model


__all__ = [
    "BACKENDS",
    "BackendUnavailable",
    "Generation",
    "Message",
    "Model",
    "Prompt",
    "Usage",
    "get_model",
    "parse_spec",
    "register_backend",
]
