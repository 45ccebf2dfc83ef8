"""An OpenAI-compatible HTTP server for a loaded Bondhu model, plus the web chat page at ``/``.

Every chat request goes through ``bondhu.chat.session.respond``: the crisis check runs first, and a
crisis is answered with the fixed message and helplines without the model, so it is never queued and
never refused for load. One model generates one reply at a time (``LoadedModel.lock``); at most
``serve.queue_size`` requests wait or run, the rest get 503 with ``Retry-After``. A client that goes
away stops its generation at the next token. Message text is never logged.
"""

from __future__ import annotations

import asyncio
import hmac
import json
import logging
import threading
import time
import uuid
from contextlib import aclosing, suppress
from pathlib import Path
from typing import Any, AsyncIterator, Callable, Iterator

import anyio
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse, StreamingResponse
from fastapi.staticfiles import StaticFiles
from pydantic import BaseModel, ConfigDict, ValidationError
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException

from bondhu.chat.model import LoadedModel
from bondhu.chat.session import Reply, Withdrawn, respond
from bondhu.safety import SafetyLayer
from bondhu.config import BondhuConfig, GenerationSettings

log = logging.getLogger(__name__)

STATIC = Path(__file__).with_name("static")
RETRY_AFTER_S = 2
POLL_S = 0.2  # how often a request waiting for the model checks that its client is still there
PAGE_HEADERS = {"Content-Security-Policy": "default-src 'self'; img-src 'self' data:; object-src 'none'; "
                                           "base-uri 'none'; frame-ancestors 'none'",
                "Referrer-Policy": "no-referrer", "X-Content-Type-Options": "nosniff"}
_END = object()


class APIError(Exception):
    """An error answered in OpenAI's shape: {"error": {message, type, param, code}}."""

    def __init__(self, status: int, message: str, param: str | None = None, code: str | None = None,
                 kind: str = "invalid_request_error", headers: dict | None = None):
        super().__init__(message)
        self.status, self.headers = status, headers
        self.body = {"error": {"message": message, "type": kind, "param": param, "code": code}}

    def response(self) -> JSONResponse:
        return JSONResponse(self.body, status_code=self.status, headers=self.headers)


class ChatRequest(BaseModel):
    """The OpenAI chat-completions parameters Bondhu reads; other fields are accepted and ignored."""

    model_config = ConfigDict(extra="allow")  # model, user, logprobs, tools...: accepted, not used
    messages: list[Any]
    stream: bool = False
    stream_options: dict | None = None
    temperature: float | None = None
    top_p: float | None = None
    max_tokens: int | None = None
    max_completion_tokens: int | None = None
    seed: int | None = None
    frequency_penalty: float | None = None  # range-checked, then ignored
    presence_penalty: float | None = None  # range-checked, then ignored
    n: int | None = None
    stop: str | list[str] | None = None


def _from_pydantic(errors) -> APIError:
    first, param = errors[0], ""
    for part in (p for p in first.get("loc", ()) if p != "body"):
        param += f"[{part}]" if isinstance(part, int) else (f".{part}" if param else str(part))
    return APIError(400, f"{param}: {first['msg']}" if param else first["msg"], param or None)


def _messages(req: ChatRequest, max_messages: int, max_chars: int) -> list[dict]:
    """Check the messages; fold system/developer messages into one leading system message."""
    if not req.messages:
        raise APIError(400, "messages must contain at least one message.", "messages")
    if len(req.messages) > max_messages:
        raise APIError(400, f"Too many messages: {len(req.messages)} (at most {max_messages}).", "messages",
                       "too_many_messages")
    out = []
    for i, m in enumerate(req.messages):
        if not isinstance(m, dict):
            raise APIError(400, f"messages[{i}] must be an object with role and content.", f"messages[{i}]")
        if m.get("role") not in ("system", "developer", "user", "assistant"):
            raise APIError(400, f"messages[{i}].role: unknown role {m.get('role')!r}; use system, user or "
                                "assistant.", f"messages[{i}].role")
        if not isinstance(m.get("content"), str):
            raise APIError(400, f"messages[{i}].content must be a string.", f"messages[{i}].content")
        out.append({"role": "system" if m["role"] == "developer" else m["role"], "content": m["content"]})
    if (chars := sum(len(m["content"]) for m in out)) > max_chars:
        raise APIError(400, f"The messages are too long: {chars} characters (at most {max_chars}).",
                       "messages", "context_length_exceeded")
    if out[-1]["role"] != "user":
        raise APIError(400, "The last message must come from the user.", f"messages[{len(out) - 1}].role")
    system = [m["content"] for m in out if m["role"] == "system"]
    rest = [m for m in out if m["role"] != "system"]
    return ([{"role": "system", "content": "\n\n".join(system)}] if system else []) + rest


def _settings(req: ChatRequest, cfg: BondhuConfig) -> tuple[GenerationSettings, list[str]]:
    """Map OpenAI parameters onto GenerationSettings (repetition_penalty stays the config's)."""
    limit, gen = cfg.serve.max_tokens_limit, cfg.generation
    for name, low, high in (("max_tokens", 1, limit), ("max_completion_tokens", 1, limit), ("temperature", 0, 2),
                            ("top_p", 0, 1), ("frequency_penalty", -2, 2), ("presence_penalty", -2, 2)):
        value, open_low = getattr(req, name), name == "top_p"
        if value is not None and not (low < value <= high if open_low else low <= value <= high):
            raise APIError(400, f"{name} must be {'above' if open_low else 'at least'} {low} and at most "
                                f"{high}, got {value}.", name)
    if req.n not in (None, 1):
        raise APIError(400, f"Only n=1 is supported, got {req.n}.", "n")
    stops = [req.stop] if isinstance(req.stop, str) else list(req.stop or [])
    if len(stops) > 4:
        raise APIError(400, "stop takes at most 4 sequences.", "stop")
    update: dict = {"max_new_tokens": req.max_completion_tokens or req.max_tokens or min(gen.max_new_tokens, limit)}
    if req.temperature is not None:
        update.update(temperature=req.temperature, do_sample=req.temperature > 0)
    update.update({k: getattr(req, k) for k in ("top_p", "seed") if getattr(req, k) is not None})
    return gen.model_copy(update=update), [s for s in stops if s]


class Slots:
    """Requests admitted (waiting or generating), at most ``limit``; ``cancelled`` counts replies cut short."""

    def __init__(self, limit: int):
        self.limit, self.active, self.cancelled, self._lock = limit, 0, 0, threading.Lock()

    def acquire(self) -> bool:
        with self._lock:
            admitted = self.active < self.limit
            self.active += admitted
            return admitted

    def release(self) -> None:
        with self._lock:
            self.active -= 1


def _pump(pieces: Iterator[str], on_done: Callable[[], None]) -> asyncio.Queue:
    """Iterate a reply's blocking pieces in a thread of its own, handing them to the event loop. ``on_done``
    runs once ``chat.model.stream`` has joined its generation thread: when the model really is free again."""
    loop, queue = asyncio.get_running_loop(), asyncio.Queue()

    def put(item: object) -> None:
        with suppress(RuntimeError):  # the event loop is gone: the server is shutting down
            loop.call_soon_threadsafe(queue.put_nowait, item)

    def work() -> None:
        try:
            for piece in pieces:
                put(piece)
        except BaseException as err:  # handed to the reader, which raises it
            put(err)
        finally:
            on_done()
            put(_END)

    threading.Thread(target=work, daemon=True, name="bondhu-reply").start()
    return queue


async def _read(request: Request, queue: asyncio.Queue, cancel: threading.Event, slots: Slots) -> AsyncIterator[str]:
    """The pieces as they come. A disconnect (checked between pieces, and every POLL_S while
    waiting for the model) ends it early; ``cancel`` then stops generation at its next token."""
    ended = False
    try:
        while True:
            try:
                item = await asyncio.wait_for(queue.get(), POLL_S)
            except asyncio.TimeoutError:
                if await request.is_disconnected():
                    return
                continue
            if ended := item is _END:
                return
            if isinstance(item, BaseException):
                raise item
            yield item
            if await request.is_disconnected():
                return
    finally:
        if not ended:
            cancel.set()
            slots.cancelled += 1


class _Text:
    """The reply so far; ``feed`` returns what may be sent now, holding back what could be the start
    of a stop sequence and cutting the reply where one appears."""

    def __init__(self, stops: list[str]):
        self.stops, self.raw, self.sent, self.stopped = stops, "", 0, False

    def feed(self, piece: str) -> str:
        self.raw = (self.raw + piece) if self.sent else (self.raw + piece).lstrip()
        if hits := [i for s in self.stops if (i := self.raw.find(s)) >= 0]:
            self.stopped, end = True, min(hits)
        else:
            end = len(self.raw) - max((k for s in self.stops for k in range(1, len(s))
                                       if self.raw.endswith(s[:k])), default=0)
        out, self.sent = self.raw[self.sent:end], max(self.sent, end)
        return out

    def flush(self) -> str:
        out = "" if self.stopped else self.raw[self.sent:]
        self.sent += len(out)
        return out


class _EventStream(StreamingResponse):
    """Server-sent events that cancel their generation however the response ends."""

    def __init__(self, body: AsyncIterator[str], cancel: threading.Event):
        super().__init__(body, media_type="text/event-stream",
                         headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})
        self.cancel = cancel

    async def __call__(self, scope, receive, send) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            self.cancel.set()
            with anyio.CancelScope(shield=True), suppress(RuntimeError):
                await self.body_iterator.aclose()  # runs the readers' finally blocks now


def safety_meta(reply: Reply, safety: SafetyLayer) -> dict:
    """The machine-readable flag every response carries: level, category, and the helplines
    whenever the level is crisis or concern or the session is elevated after a crisis."""
    a = reply.assessment
    meta = {"crisis": reply.crisis, "level": a.level, "category": a.category, "elevated": a.elevated,
            "from_context": a.from_context}
    if a.needs_helplines:
        meta["helplines"] = safety.helpline_list
    return meta


def create_app(loaded: LoadedModel, config: BondhuConfig | None = None, safety: SafetyLayer | None = None) -> FastAPI:
    """/v1/chat/completions, /v1/models, /health, the chat page at /; errors (pydantic's too) in OpenAI's shape."""
    cfg = config or loaded.config
    safety = safety or SafetyLayer.from_config(cfg.chat, cfg.safety)
    serve, slots, created = cfg.serve, Slots(cfg.serve.queue_size), int(time.time())
    app = FastAPI(title="Bondhu", docs_url=None, redoc_url=None)  # the docs pages would load CDN assets
    app.state.loaded, app.state.config, app.state.safety, app.state.slots = loaded, cfg, safety, slots

    app.add_exception_handler(APIError, lambda request, err: err.response())
    app.add_exception_handler(RequestValidationError, lambda request, err: _from_pydantic(err.errors()).response())

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, err: StarletteHTTPException):
        kind = "invalid_request_error" if err.status_code < 500 else "server_error"
        return APIError(err.status_code, f"{err.detail}: {request.method} {request.url.path}", None, None, kind,
                        getattr(err, "headers", None)).response()

    @app.exception_handler(Exception)
    async def _crash(request: Request, err: Exception):
        log.error("%s %s failed: %s", request.method, request.url.path, type(err).__name__)
        return APIError(500, "The server failed to answer; please retry.", kind="server_error").response()

    def authorize(request: Request) -> None:
        if not serve.api_key:
            return
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(token.strip().encode(), serve.api_key.encode()):
            raise APIError(401, "Invalid or missing API key: send the header 'Authorization: Bearer <key>'.",
                           None, "invalid_api_key", headers={"WWW-Authenticate": "Bearer"})

    async def parse(request: Request) -> ChatRequest:
        authorize(request)
        if int(request.headers.get("content-length") or 0) > 6 * serve.max_input_chars + 65536:
            raise APIError(413, "The request body is too large.", "messages", "context_length_exceeded")
        try:
            data = json.loads(await request.body())
        except ValueError:
            data = None
        if not isinstance(data, dict):
            raise APIError(400, "The request body must be a valid JSON object.", None, "invalid_json")
        try:
            return ChatRequest.model_validate(data)
        except ValidationError as err:
            raise _from_pydantic(err.errors()) from None

    @app.post("/v1/chat/completions")
    async def chat_completions(request: Request):
        req = await parse(request)
        messages = _messages(req, serve.max_messages, serve.max_input_chars)
        settings, stops = _settings(req, cfg)
        cancel = threading.Event()
        # Blocking (it tokenizes): the safety check, the trimmed prompt and the reply's pieces.
        reply = await run_in_threadpool(respond, loaded, messages, settings, safety, cfg.chat.context_tokens, cancel)
        prompt = reply.prompt_tokens
        if reply.crisis:  # answered without the model: never queued, never refused for load
            queue = asyncio.Queue()
            for item in ("".join(reply.pieces), _END):
                queue.put_nowait(item)
            pieces = _read(request, queue, cancel, slots)
        elif not slots.acquire():
            raise APIError(503, "Bondhu is busy with other conversations; please retry shortly.", None,
                           "server_busy", "server_error", {"Retry-After": str(RETRY_AFTER_S)})
        else:
            try:
                pieces = _read(request, _pump(reply.pieces, slots.release), cancel, slots)
            except BaseException:
                slots.release()
                raise
        meta = safety_meta(reply, safety)
        text = _Text([] if reply.crisis else stops)  # the crisis message is never cut short
        base = {"id": f"chatcmpl-{uuid.uuid4().hex}", "created": int(time.time()), "model": serve.model_id,
                "system_fingerprint": None}

        def usage() -> tuple[dict, str]:  # and the finish reason
            # Re-tokenized (chat.model.stream does not report its count), so at most max_new_tokens for the model.
            n = len(loaded.tokenizer(text.raw, add_special_tokens=False)["input_ids"]) if text.raw else 0
            done = n if reply.crisis else min(n, settings.max_new_tokens)
            why = "stop" if text.stopped or reply.crisis or done < settings.max_new_tokens else "length"
            log.info("completion: crisis=%s tokens=%d+%d %s", reply.crisis, prompt, done, why)
            return {"prompt_tokens": prompt, "completion_tokens": done, "total_tokens": prompt + done}, why

        if not req.stream:
            async with aclosing(pieces):
                async for piece in pieces:
                    if isinstance(piece, Withdrawn):
                        text, meta["withdrawn"] = _Text([]), piece.reason
                    text.feed(piece)
                    if text.stopped:
                        break
            text.flush()
            if reply.check_in:
                text.feed("\n\n" + reply.check_in)
                text.flush()
            stats, reason = usage()
            message = {"role": "assistant", "content": text.raw[:text.sent].strip(), "refusal": None}
            return {**base, "object": "chat.completion", "bondhu": meta, "usage": stats,
                    "choices": [{"index": 0, "message": message, "logprobs": None, "finish_reason": reason}]}

        include_usage = bool((req.stream_options or {}).get("include_usage"))

        def chunk(delta: dict, reason: str | None = None, **extra) -> str:
            body = {**base, "object": "chat.completion.chunk", **extra,
                    "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": reason}]}
            if include_usage:
                body.setdefault("usage", None)
            return f"data: {json.dumps(body, ensure_ascii=False)}\n\n"

        async def events() -> AsyncIterator[str]:
            async with aclosing(pieces):
                yield chunk({"role": "assistant", "content": ""}, bondhu=meta)
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
                except Exception as err:
                    log.error("generation failed: %s", type(err).__name__)
                    failed = APIError(500, "Generation failed; please retry.", kind="server_error")
                    yield f"data: {json.dumps(failed.body)}\n\n"
                    return
            stats, reason = usage()
            yield chunk({}, reason)
            if include_usage:
                final = {**base, "object": "chat.completion.chunk", "choices": [], "usage": stats}
                yield f"data: {json.dumps(final)}\n\n"
            yield "data: [DONE]\n\n"

        return _EventStream(events(), cancel)

    @app.get("/v1/models")
    async def models(request: Request):
        authorize(request)
        return {"object": "list", "data": [{"id": serve.model_id, "object": "model", "created": created,
                                            "owned_by": "bondhu"}]}

    @app.get("/health")
    async def health():
        return {"status": "ok", "model": serve.model_id, "backend": loaded.backend, "adapter": loaded.has_adapter,
                "active": slots.active, "queue_size": slots.limit}

    @app.get("/", include_in_schema=False)
    async def index():
        return FileResponse(STATIC / "index.html", headers=PAGE_HEADERS)

    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    return app
