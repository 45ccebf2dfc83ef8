"""An OpenAI-compatible HTTP server for a loaded Bondhu model, or a safety gateway in front of
an OpenAI-compatible engine (``serve.upstream``), plus the web chat page at ``/``.

Every chat request is checked as a conversation first (``bondhu.chat.session``): a crisis is answered
with the fixed message and helplines without any model, so it is never queued and never refused for
load. At most ``serve.queue_size`` requests wait or run, the rest get 503 with ``Retry-After``, and
one that waits longer than ``serve.queue_timeout_s`` gets 503 too. A client that goes away stops its
generation. Message text is never logged.

The modules beside this one: ``request`` reads and checks a request, ``backend`` and ``upstream``
write the reply (the run's model, or the engine), ``stream`` moves a reply's pieces to the client,
and ``guard`` adds the security headers and answers what nothing else caught.
"""

from __future__ import annotations

import asyncio
import hmac
import json
import logging
import threading
import time
import uuid
from contextlib import aclosing, asynccontextmanager
from pathlib import Path
from typing import AsyncIterator

from fastapi import APIRouter, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import FileResponse
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException as StarletteHTTPException

from bondhu.chat.session import Reply, Withdrawn
from bondhu.config import BondhuConfig
from bondhu.errors import ConfigError
from bondhu.inference.model import LoadedModel, QueueTimeout
from bondhu.safety import SafetyLayer
from bondhu.serve import request as checks
from bondhu.serve.backend import Backend, LocalBackend
from bondhu.serve.errors import APIError, busy, from_pydantic
from bondhu.serve.guard import Guard
from bondhu.serve.stream import END, EventStream, Slots, StopText, read
from bondhu.serve.upstream import UpstreamBackend

log = logging.getLogger(__name__)

STATIC = Path(__file__).with_name("static")


def safety_meta(reply: Reply, safety: SafetyLayer) -> dict:
    """The machine-readable flag every response carries: level, category, and the helplines
    whenever the level is crisis or concern or the session is elevated after a crisis."""
    a = reply.assessment
    meta = {
        "crisis": reply.crisis,
        "level": a.level,
        "category": a.category,
        "elevated": a.elevated,
        "from_context": a.from_context,
        "standing": a.standing,
    }
    if a.needs_helplines:
        meta["helplines"] = safety.helpline_list
    return meta


router = APIRouter()


def _http_error(request: Request, err: StarletteHTTPException):
    kind = "invalid_request_error" if err.status_code < 500 else "server_error"
    return APIError(
        err.status_code,
        f"{err.detail}: {request.method} {request.url.path}",
        None,
        None,
        kind,
        getattr(err, "headers", None),
    ).response()


def authorize(request: Request) -> None:
    """401 unless the request carries the configured API key (when there is one)."""
    key = request.app.state.config.serve.api_key
    if not key:
        return
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not hmac.compare_digest(token.strip().encode(), key.encode()):
        raise APIError(
            401,
            "Invalid or missing API key: send the header 'Authorization: Bearer <key>'.",
            None,
            "invalid_api_key",
            headers={"WWW-Authenticate": "Bearer"},
        )


@router.post("/v1/chat/completions")
async def chat_completions(request: Request):
    authorize(request)
    state = request.app.state
    cfg, safety = state.config, state.safety
    serve = cfg.serve
    checks.require_json(request)
    req = checks.parse(await checks.read_json(request, checks.body_limit(cfg)))
    messages = checks.messages(req, serve.max_messages, serve.max_input_chars)
    settings, stops = checks.settings(req, cfg)
    cancel = threading.Event()
    reply = await state.backend.reply(messages, settings, cancel)
    pieces = await _pieces(request, reply, state.backend, cancel)
    base = {
        "id": f"chatcmpl-{uuid.uuid4().hex}",
        "created": int(time.time()),
        "model": serve.model_id,
        "system_fingerprint": None,
    }
    text = StopText([] if reply.crisis else stops)  # the crisis message is never cut short
    if req.stream:
        return EventStream(_events(reply, pieces, text, base, safety, req, settings.max_new_tokens), cancel)
    return await _complete(reply, pieces, text, base, safety, settings.max_new_tokens)


async def _pieces(request: Request, reply: Reply, backend: Backend, cancel: threading.Event) -> AsyncIterator[str]:
    """The reply's pieces as the client will read them; a model reply needs a free slot (else 503)."""
    slots = request.app.state.slots
    if reply.crisis:  # answered without the model: never queued, never refused for load
        queue = asyncio.Queue()
        for item in ("".join(reply.pieces), END):
            queue.put_nowait(item)
        return read(request, queue, cancel, slots)
    if not slots.acquire():
        raise busy("server_busy", "Bondhu is busy with other conversations; please retry shortly.")
    return await backend.start(request, reply, cancel, slots)  # the backend releases the slot


@router.get("/v1/models")
async def models(request: Request):
    authorize(request)
    state = request.app.state
    return {
        "object": "list",
        "data": [
            {"id": state.config.serve.model_id, "object": "model", "created": state.created, "owned_by": "bondhu"}
        ],
    }


@router.get("/health")
async def health(request: Request):
    state = request.app.state
    return {
        "status": "ok",
        "model": state.config.serve.model_id,
        **state.backend.health(),
        "active": state.slots.active,
        "queue_size": state.slots.limit,
    }


@router.get("/", include_in_schema=False)
async def index():
    return FileResponse(STATIC / "index.html")


@asynccontextmanager
async def _lifespan(app: FastAPI):
    yield
    await app.state.backend.aclose()


def create_app(
    loaded: LoadedModel | None, config: BondhuConfig | None = None, safety: SafetyLayer | None = None
) -> FastAPI:
    """/v1/chat/completions, /v1/models, /health, the chat page at /; errors (pydantic's too) in OpenAI's shape.
    With ``serve.upstream`` set, an engine writes the replies and ``loaded`` may be None (a gateway).
    The handlers read what they serve from ``app.state``: the backend, the config, the safety layer, the slots."""
    cfg = config or (loaded.config if loaded is not None else None)
    if cfg is None:
        raise ConfigError("nothing to serve: give a loaded model, or a config with serve.upstream")
    app = FastAPI(title="Bondhu", docs_url=None, redoc_url=None, lifespan=_lifespan)  # docs pages would load CDNs
    app.state.loaded, app.state.config, app.state.created = loaded, cfg, int(time.time())
    app.state.safety = safety or SafetyLayer.from_config(cfg.chat, cfg.safety)
    app.state.safety.reply_check()  # reads the output lexicon now (0.1 s), not during the first reply
    app.state.backend = _backend(loaded, cfg, app.state.safety)
    app.state.slots = Slots(cfg.serve.queue_size)
    app.add_middleware(Guard)
    if cfg.serve.cors_origins:  # added last, so it runs first: preflights never reach the routes
        app.add_middleware(
            CORSMiddleware,
            allow_origins=cfg.serve.cors_origins,
            allow_methods=["GET", "POST"],
            allow_headers=["Authorization", "Content-Type"],
        )
    app.add_exception_handler(APIError, lambda request, err: err.response())
    app.add_exception_handler(RequestValidationError, lambda request, err: from_pydantic(err.errors()).response())
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.include_router(router)
    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    return app


def _backend(loaded: LoadedModel | None, cfg: BondhuConfig, safety: SafetyLayer) -> Backend:
    """The engine named in ``serve.upstream``, else the loaded model."""
    if cfg.serve.upstream is not None:
        return UpstreamBackend(cfg, safety)
    if loaded is None:
        raise ConfigError("nothing to serve: no model was loaded and serve.upstream is not set")
    return LocalBackend(loaded, cfg, safety)


def _usage(reply: Reply, text: StopText, max_new_tokens: int) -> tuple[dict, str]:
    """OpenAI's usage block (true token counts: the model's own, 0 and 0 for a crisis reply), and the finish reason."""
    prompt, done = reply.usage.prompt_tokens, reply.usage.completion_tokens
    said = reply.usage.finish_reason  # an upstream engine's own; the local model's is counted
    length = said == "length" if said else done >= max_new_tokens
    why = "length" if not reply.crisis and not text.stopped and length else "stop"
    log.info("completion: crisis=%s tokens=%d+%d %s", reply.crisis, prompt, done, why)
    return {"prompt_tokens": prompt, "completion_tokens": done, "total_tokens": prompt + done}, why


async def _complete(
    reply: Reply, pieces: AsyncIterator[str], text: StopText, base: dict, safety: SafetyLayer, max_new_tokens: int
) -> dict:
    """The whole reply as one chat.completion object."""
    meta = safety_meta(reply, safety)
    try:
        async with aclosing(pieces):
            async for piece in pieces:
                if isinstance(piece, Withdrawn):
                    text, meta["withdrawn"] = StopText([]), piece.reason
                text.feed(piece)
                if text.stopped:
                    break
    except QueueTimeout as err:
        raise busy("queue_timeout", f"Bondhu is busy: {err}.") from None
    text.flush()
    if reply.check_in:
        text.feed("\n\n" + reply.check_in)
        text.flush()
    stats, reason = _usage(reply, text, max_new_tokens)
    message = {"role": "assistant", "content": text.raw[: text.sent].strip(), "refusal": None}
    return {
        **base,
        "object": "chat.completion",
        "bondhu": meta,
        "usage": stats,
        "choices": [{"index": 0, "message": message, "logprobs": None, "finish_reason": reason}],
    }


async def _events(
    reply: Reply,
    pieces: AsyncIterator[str],
    text: StopText,
    base: dict,
    safety: SafetyLayer,
    req: checks.ChatRequest,
    max_new_tokens: int,
) -> AsyncIterator[str]:
    """The reply as server-sent chat.completion.chunk events, ending in ``data: [DONE]``."""
    include_usage = bool((req.stream_options or {}).get("include_usage"))

    def chunk(delta: dict, reason: str | None = None, **extra) -> str:
        body = {
            **base,
            "object": "chat.completion.chunk",
            **extra,
            "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": reason}],
        }
        if include_usage:
            body.setdefault("usage", None)
        return f"data: {json.dumps(body, ensure_ascii=False)}\n\n"

    async with aclosing(pieces):
        yield chunk({"role": "assistant", "content": ""}, bondhu=safety_meta(reply, safety))
        try:
            async for piece in pieces:
                if isinstance(piece, Withdrawn):  # replaces what was sent: the page redraws
                    yield chunk({"content": str(piece)}, bondhu={"withdrawn": piece.reason})
                    break
                if out := text.feed(piece):
                    yield chunk({"content": out})
                if text.stopped:
                    break
            if out := text.flush():
                yield chunk({"content": out})
            if reply.check_in:
                yield chunk({"content": "\n\n" + reply.check_in}, bondhu={"check_in": True})
        except Exception as err:  # the 200 is already sent: the error goes out as an event, as OpenAI's does
            if isinstance(err, APIError):  # an upstream engine's failure, already in words a client can use
                failed = err
            elif isinstance(err, QueueTimeout):
                failed = busy("queue_timeout", f"Bondhu is busy: {err}.")
            else:
                failed = APIError(500, "Generation failed; please retry.", kind="server_error")
            log.error("generation failed: %s", failed.body["error"]["code"] or type(err).__name__)
            yield f"data: {json.dumps(failed.body)}\n\n"
            return
    stats, reason = _usage(reply, text, max_new_tokens)
    yield chunk({}, reason)
    if include_usage:
        final = {**base, "object": "chat.completion.chunk", "choices": [], "usage": stats}
        yield f"data: {json.dumps(final)}\n\n"
    yield "data: [DONE]\n\n"
