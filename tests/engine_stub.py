"""A scripted OpenAI-compatible engine for the gateway tests. It streams the deltas it is given as
server-sent events, fails in the ways a real engine can (a status, a dropped connection, silence),
and records every request it gets, so a test can see what the gateway sent, and that a crisis sent
nothing."""

from __future__ import annotations

import asyncio
import json
import socket
import threading
from dataclasses import dataclass, field

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, StreamingResponse


@dataclass
class Script:
    """How the engine answers the next requests."""

    deltas: list[str] = field(default_factory=lambda: ["ঠিক ", "আছে, ", "আমি ", "শুনছি।"])
    status: int = 200
    headers: dict = field(default_factory=dict)  # sent with a status other than 200
    message: str = "stub failure"  # the error body's message with a status other than 200
    hold_s: float = 0.0  # silence before the response starts
    gap_s: float = 0.0  # between deltas
    gate: threading.Event | None = None  # each request waits for it before answering
    after_first: threading.Event | None = None  # waited for after the first delta
    drop_after: int | None = None  # deltas sent before the connection breaks
    hang_after: int | None = None  # deltas sent before the engine goes silent
    finish_reason: str = "stop"
    usage: bool = True  # a usage chunk when asked (llama-cpp-python's server never sends one)
    error_event_after: int | None = None  # deltas sent before an error event, as vLLM reports a failure


class StubEngine:
    """The engine: the script it follows, the requests it got since the script was set, and how many
    of those it is answering now (a request still running from an earlier script counts there)."""

    def __init__(self):
        self._lock = threading.Lock()
        self.reset()

    def reset(self, **script) -> None:
        with self._lock:
            self.script, self.requests, self.active, self.peak, self.cut_short = Script(**script), [], 0, 0, 0

    def _enter(self, script: Script) -> None:
        with self._lock:
            if script is self.script:
                self.active += 1
                self.peak = max(self.peak, self.active)

    def _leave(self, script: Script, finished: bool) -> None:
        with self._lock:
            if script is self.script:
                self.active -= 1
                self.cut_short += not finished

    def app(self) -> FastAPI:
        """The engine's HTTP face: /v1/chat/completions (streamed or not) and /v1/models."""
        app = FastAPI()

        @app.get("/v1/models")
        async def models():
            return {"object": "list", "data": [{"id": "bondhu", "object": "model", "owned_by": "stub"}]}

        @app.post("/v1/chat/completions")
        async def chat(request: Request):
            body = await request.json()
            script = self.script
            self.requests.append({"headers": dict(request.headers), "body": body})
            self._enter(script)
            try:
                await _wait(script)
            except BaseException:
                self._leave(script, False)
                raise
            if script.status != 200:
                self._leave(script, True)
                error = {"error": {"message": script.message, "type": "stub", "code": script.status}}
                return JSONResponse(error, status_code=script.status, headers=script.headers)
            if not body.get("stream"):
                self._leave(script, True)
                return _whole(script, body)
            return StreamingResponse(self._events(script, body), media_type="text/event-stream")

        return app

    async def _events(self, script: Script, body: dict):
        finished = False
        try:
            yield _event(body, {"role": "assistant", "content": ""})
            for i, text in enumerate(script.deltas):
                if i == script.drop_after:
                    raise ConnectionError("the stub engine drops the connection")
                if i == script.hang_after:
                    await asyncio.sleep(60)
                if i == script.error_event_after:
                    yield f"data: {json.dumps({'error': {'message': 'stub failure', 'code': 500}})}\n\n"
                    return
                yield _event(body, {"content": text})
                if i == 0 and script.after_first is not None:
                    await asyncio.to_thread(script.after_first.wait, 30)
                await asyncio.sleep(script.gap_s)
            yield _event(body, {}, script.finish_reason)
            if script.usage and (body.get("stream_options") or {}).get("include_usage"):
                counts = {"prompt_tokens": 11, "completion_tokens": len(script.deltas)}
                usage = {**counts, "total_tokens": 11 + len(script.deltas)}
                yield f"data: {json.dumps({'id': 'chatcmpl-stub', 'choices': [], 'usage': usage})}\n\n"
            yield "data: [DONE]\n\n"
            finished = True
        finally:
            self._leave(script, finished)


async def _wait(script: Script) -> None:
    if script.gate is not None:
        await asyncio.to_thread(script.gate.wait, 30)
    await asyncio.sleep(script.hold_s)


def _event(body: dict, delta: dict, finish: str | None = None) -> str:
    chunk = {
        "id": "chatcmpl-stub",
        "object": "chat.completion.chunk",
        "created": 0,
        "model": body.get("model"),
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
    }
    return f"data: {json.dumps(chunk, ensure_ascii=False)}\n\n"


def _whole(script: Script, body: dict) -> JSONResponse:
    message = {"role": "assistant", "content": "".join(script.deltas)}
    return JSONResponse(
        {
            "id": "chatcmpl-stub",
            "object": "chat.completion",
            "model": body.get("model"),
            "choices": [{"index": 0, "message": message, "finish_reason": script.finish_reason}],
            "usage": {"prompt_tokens": 11, "completion_tokens": len(script.deltas), "total_tokens": 15},
        }
    )


def dead_url() -> str:
    """An engine URL where nothing listens: a port that was free a moment ago."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{sock.getsockname()[1]}/v1"
