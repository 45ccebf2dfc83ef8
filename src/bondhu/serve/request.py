"""A chat-completions request read and checked: the body within its size limit, JSON within its
depth, text that is valid Unicode, parameters of the types OpenAI's API gives them.

Every way a client can get a request wrong ends here as an ``APIError`` with a 4xx status.
"""

from __future__ import annotations

import json
import secrets
from typing import Annotated, Any

from fastapi import Request
from pydantic import BaseModel, ConfigDict, Field, Strict, ValidationError

from bondhu.config import BondhuConfig, GenerationSettings
from bondhu.serve.errors import APIError, from_pydantic

MAX_DEPTH = 32  # OpenAI's own request bodies nest a few levels; far deeper is not a chat request
_INT64 = 2**63
StrictInt = Annotated[int, Strict()]
StrictFloat = Annotated[float, Strict()]  # ints are still floats, as in JSON; strings and booleans are not


class ChatRequest(BaseModel):
    """The OpenAI chat-completions parameters Bondhu reads, typed as strictly as OpenAI types them.
    Other fields are accepted and ignored."""

    model_config = ConfigDict(extra="allow")  # model, user, logprobs, tools...: accepted, not used
    messages: list[Any]
    stream: Annotated[bool, Strict()] = False
    stream_options: dict | None = None
    temperature: StrictFloat | None = None
    top_p: StrictFloat | None = None
    max_tokens: StrictInt | None = None
    max_completion_tokens: StrictInt | None = None
    seed: Annotated[int, Strict(), Field(ge=-_INT64, lt=_INT64)] | None = None
    frequency_penalty: StrictFloat | None = None  # range-checked, then ignored
    presence_penalty: StrictFloat | None = None  # range-checked, then ignored
    n: StrictInt | None = None
    stop: str | list[str] | None = None


def body_limit(cfg: BondhuConfig) -> int:
    """Bytes a request body may have: the character limit at up to 6 bytes a character (JSON's
    escapes), plus room for the other fields."""
    return 6 * cfg.serve.max_input_chars + 65536


def require_json(request: Request) -> None:
    """A POST must say ``Content-Type: application/json``. Browsers send ``text/plain`` across sites
    without asking the server first (no CORS preflight), so this stops any web page a user visits
    from queueing generations here."""
    kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if kind != "application/json":
        raise APIError(
            415,
            f"Send the request body as JSON with 'Content-Type: application/json' (got {kind or 'none'!r}).",
            None,
            "unsupported_media_type",
        )


async def read_json(request: Request, limit: int) -> dict:
    """The body as a JSON object; 413 as soon as more than ``limit`` bytes arrive, whether the client
    sent a Content-Length or a chunked body."""
    too_large = APIError(413, f"The request body is too large (at most {limit} bytes).", None, "request_too_large")
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise too_large
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            raise too_large
    try:
        data = json.loads(body)
    except RecursionError:
        raise APIError(
            400, f"The request body is nested too deeply (at most {MAX_DEPTH} levels).", None, "invalid_json"
        ) from None
    except ValueError:  # not JSON, or not UTF-8
        data = None
    if not isinstance(data, dict):
        raise APIError(400, "The request body must be a valid JSON object.", None, "invalid_json")
    _check_values(data, "", 0)
    return data


def _check_values(value: Any, where: str, depth: int) -> None:
    """Every string valid Unicode (JSON's \\ud800 escapes can make lone surrogates) and nesting bounded."""
    if depth > MAX_DEPTH:
        raise APIError(
            400, f"The request body is nested too deeply (at most {MAX_DEPTH} levels).", where or None, "invalid_json"
        )
    if isinstance(value, str):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError as err:
            raise APIError(
                400,
                f"{where or 'body'}: the text is not valid Unicode (a lone surrogate at character {err.start}).",
                where or None,
                "invalid_text",
            ) from None
    elif isinstance(value, dict):
        for key, item in value.items():
            _check_values(key, where, depth + 1)
            _check_values(item, f"{where}.{key}" if where else str(key), depth + 1)
    elif isinstance(value, list):
        for i, item in enumerate(value):
            _check_values(item, f"{where}[{i}]", depth + 1)


def parse(data: dict) -> ChatRequest:
    try:
        return ChatRequest.model_validate(data)
    except ValidationError as err:
        raise from_pydantic(err.errors()) from None


def messages(req: ChatRequest, max_messages: int, max_chars: int) -> list[dict]:
    """Check the messages; fold system/developer messages into one leading system message."""
    if not req.messages:
        raise APIError(400, "messages must contain at least one message.", "messages")
    if len(req.messages) > max_messages:
        raise APIError(
            400, f"Too many messages: {len(req.messages)} (at most {max_messages}).", "messages", "too_many_messages"
        )
    out = []
    for i, m in enumerate(req.messages):
        if not isinstance(m, dict):
            raise APIError(400, f"messages[{i}] must be an object with role and content.", f"messages[{i}]")
        if m.get("role") not in ("system", "developer", "user", "assistant"):
            raise APIError(
                400,
                f"messages[{i}].role: unknown role {m.get('role')!r}; use system, user or assistant.",
                f"messages[{i}].role",
            )
        if not isinstance(m.get("content"), str):
            raise APIError(400, f"messages[{i}].content must be a string.", f"messages[{i}].content")
        out.append({"role": "system" if m["role"] == "developer" else m["role"], "content": m["content"]})
    if (chars := sum(len(m["content"]) for m in out)) > max_chars:
        raise APIError(
            400,
            f"The messages are too long: {chars} characters (at most {max_chars}).",
            "messages",
            "context_length_exceeded",
        )
    if out[-1]["role"] != "user":
        raise APIError(400, "The last message must come from the user.", f"messages[{len(out) - 1}].role")
    system = [m["content"] for m in out if m["role"] == "system"]
    rest = [m for m in out if m["role"] != "system"]
    return ([{"role": "system", "content": "\n\n".join(system)}] if system else []) + rest


def settings(req: ChatRequest, cfg: BondhuConfig) -> tuple[GenerationSettings, list[str]]:
    """Map OpenAI parameters onto GenerationSettings (repetition_penalty stays the config's).

    Each request gets a seed of its own unless it sends one, so asking again draws a new reply;
    a request's seed may be any 64-bit integer, as in OpenAI's API, and is reduced to the 32 bits
    the random generators take."""
    limit, gen = cfg.serve.max_tokens_limit, cfg.generation
    for name, low, high in (
        ("max_tokens", 1, limit),
        ("max_completion_tokens", 1, limit),
        ("temperature", 0, 2),
        ("top_p", 0, 1),
        ("frequency_penalty", -2, 2),
        ("presence_penalty", -2, 2),
    ):
        value, open_low = getattr(req, name), name == "top_p"
        if value is not None and not (low < value <= high if open_low else low <= value <= high):
            raise APIError(
                400,
                f"{name} must be {'above' if open_low else 'at least'} {low} and at most {high}, got {value}.",
                name,
            )
    if req.n not in (None, 1):
        raise APIError(400, f"Only n=1 is supported, got {req.n}.", "n")
    stops = [req.stop] if isinstance(req.stop, str) else list(req.stop or [])
    if len(stops) > 4:
        raise APIError(400, "stop takes at most 4 sequences.", "stop")
    update: dict = {
        "max_new_tokens": req.max_completion_tokens or req.max_tokens or min(gen.max_new_tokens, limit),
        "seed": secrets.randbits(32) if req.seed is None else req.seed % 2**32,
    }
    if req.temperature is not None:
        update.update(temperature=req.temperature, do_sample=req.temperature > 0)
    if req.top_p is not None:
        update["top_p"] = req.top_p
    return gen.model_copy(update=update), [s for s in stops if s]
