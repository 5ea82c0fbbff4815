"""A small OpenAI-compatible HTTP server for any w2s model (`w2s models serve SPEC`).

Endpoints: `GET /v1/models`, `POST /v1/chat/completions` (`max_tokens`, `temperature`, `stop`,
`logprobs`, `top_logprobs`, `usage`) and an Anthropic-style `POST /v1/messages`. It lets one local
model serve several processes, and it is the real server the `openai:` and `anthropic:` backends
are tested against.

Log-probabilities are reported for the first completion token only (what `score_choices` needs),
and only for models that expose `next_token_probs` (the transformers backend).

Fault injection for tests: with `fail_every=N` every Nth completion/messages request is answered
with `fail_status` (429 or 5xx) and an error body, before any model work.
"""

from __future__ import annotations

import itertools
import threading
import time
import uuid
from dataclasses import dataclass
from typing import Any

from fastapi import FastAPI
from fastapi.responses import JSONResponse
from pydantic import BaseModel

MAX_TOP_LOGPROBS = 1000  # OpenAI allows 20; more lets clients see choices far down the distribution


@dataclass
class ServerConfig:
    spec: str  # the w2s model spec served, e.g. transformers:smollm2
    name: str = ""  # the model id clients see [default: the spec]
    fail_every: int = 0  # testing: answer every Nth completion request with fail_status (0: never)
    fail_status: int = 503


class ChatRequest(BaseModel):
    model: str = ""
    messages: list[dict[str, Any]]
    max_tokens: int | None = None
    max_completion_tokens: int | None = None
    temperature: float = 1.0
    stop: str | list[str] | None = None
    logprobs: bool = False
    top_logprobs: int | None = None
    n: int = 1


class MessagesRequest(BaseModel):
    model: str = ""
    messages: list[dict[str, Any]]
    system: str | list[dict[str, Any]] | None = None
    max_tokens: int = 256
    temperature: float = 1.0
    stop_sequences: list[str] | None = None


def _text(content: Any) -> str:
    """Message content as plain text: a string, or a list of {'type': 'text', 'text': ...} blocks."""
    if isinstance(content, str):
        return content
    return "".join(block.get("text", "") for block in content or [])


def create_app(cfg: ServerConfig, model=None) -> FastAPI:
    """The app serving `model` (default: `get_model(cfg.spec)`, loaded now, so that a server that
    answers `/v1/models` is ready to complete)."""
    app = FastAPI(title="w2s model server")
    name = cfg.name or cfg.spec
    if model is None:
        from w2s.backends import get_model

        model = get_model(cfg.spec)
    lock = threading.Lock()  # one model instance: requests take turns
    counter = itertools.count(1)

    def injected_fault() -> JSONResponse | None:
        if cfg.fail_every and next(counter) % cfg.fail_every == 0:
            kind = "rate_limit_error" if cfg.fail_status == 429 else "overloaded_error"
            body = {"error": {"message": f"injected fault (--fail-every {cfg.fail_every})", "type": kind}}
            return JSONResponse(body, status_code=cfg.fail_status, headers={"retry-after-ms": "1"})
        return None

    def error(status: int, message: str) -> JSONResponse:
        return JSONResponse(
            {"error": {"message": message, "type": "invalid_request_error"}}, status_code=status
        )

    @app.get("/v1/models")
    def list_models() -> dict:
        return {"object": "list", "data": [{"id": name, "object": "model", "created": 0, "owned_by": "w2s"}]}

    @app.post("/v1/chat/completions")
    def chat(req: ChatRequest):
        if fault := injected_fault():
            return fault
        if req.n != 1:
            return error(400, "only n=1 is supported")
        messages = [{"role": m["role"], "content": _text(m.get("content"))} for m in req.messages]
        max_tokens = req.max_completion_tokens or req.max_tokens or 256
        stop = [req.stop] if isinstance(req.stop, str) else req.stop
        with lock:
            m = model
            if req.logprobs and not hasattr(m, "next_token_probs"):
                return error(400, f"logprobs are not offered for {cfg.spec}")
            gen = m.generate([messages], max_tokens=max_tokens, temperature=req.temperature, stop=stop)[0]
            logprobs = (
                _first_token_logprobs(m, messages, gen.text, req.top_logprobs or 0) if req.logprobs else None
            )
        choice = {
            "index": 0,
            "message": {"role": "assistant", "content": gen.text},
            "finish_reason": "length" if gen.completion_tokens >= max_tokens else "stop",
            "logprobs": logprobs,
        }
        return {
            "id": f"chatcmpl-{uuid.uuid4().hex}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": name,
            "choices": [choice],
            "usage": {
                "prompt_tokens": gen.prompt_tokens,
                "completion_tokens": gen.completion_tokens,
                "total_tokens": gen.prompt_tokens + gen.completion_tokens,
            },
        }

    @app.post("/v1/messages")
    def messages_endpoint(req: MessagesRequest):
        if fault := injected_fault():
            return fault
        messages = [{"role": m["role"], "content": _text(m.get("content"))} for m in req.messages]
        if req.system:
            messages.insert(0, {"role": "system", "content": _text(req.system)})
        with lock:
            gen = model.generate(
                [messages], max_tokens=req.max_tokens, temperature=req.temperature, stop=req.stop_sequences
            )[0]
        return {
            "id": f"msg_{uuid.uuid4().hex}",
            "type": "message",
            "role": "assistant",
            "model": name,
            "content": [{"type": "text", "text": gen.text}],
            "stop_reason": "max_tokens" if gen.completion_tokens >= req.max_tokens else "end_turn",
            "stop_sequence": None,
            "usage": {"input_tokens": gen.prompt_tokens, "output_tokens": gen.completion_tokens},
        }

    return app


def _first_token_logprobs(model, messages, text: str, top: int) -> dict:
    """OpenAI's `logprobs` object for the first completion token: its log-prob and the `top` most
    likely alternatives at that position."""
    import torch

    logp = torch.log(model.next_token_probs([messages])[0].clamp_min(1e-45))
    tok = model.tokenizer
    first = tok.encode(text, add_special_tokens=False)[:1] or [tok.eos_token_id]

    def entry(i: int) -> dict:
        s = tok.decode([i])
        return {"token": s, "logprob": float(logp[i]), "bytes": list(s.encode("utf-8"))}

    ids = torch.topk(logp, k=max(0, min(top, MAX_TOP_LOGPROBS, logp.numel()))).indices
    return {"content": [{**entry(first[0]), "top_logprobs": [entry(i) for i in ids.tolist()]}]}
