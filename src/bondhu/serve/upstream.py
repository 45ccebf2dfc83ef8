"""The gateway's generation step: an OpenAI-compatible engine (vLLM, llama.cpp's llama-server,
Ollama, llama-cpp-python's server) writes the reply, and everything around it stays Bondhu's.

The conversation is checked first, exactly as for the local model (``chat.session.check_turn``):
a crisis is answered here and never sent. Otherwise the engine is asked for a stream (whether or
not the client asked for one, so that a stop sequence or a withdrawn reply can cut it short), and
each delta goes through the local path's number filter and output check as it arrives. At most
``serve.upstream.max_concurrency`` replies are in flight at the engine; the server's slots bound
the requests waiting for a place.

Engine failures become errors that name the engine: unreachable 502, a 5xx 502, nothing for
``timeout_s`` 504, overloaded (429 or 503) 503 with ``Retry-After``; once a stream has begun, the
same errors end it as an error event. The engine's key, read from the environment variable that
``api_key_env`` names, goes to the engine alone and is never logged or echoed.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import threading
from contextlib import aclosing, asynccontextmanager
from typing import AsyncIterator

import httpx
from fastapi import Request
from starlette.concurrency import run_in_threadpool

from bondhu.chat.session import OutputCheck, Reply, Withdrawn, check_turn
from bondhu.config import BondhuConfig, GenerationSettings, UpstreamConfig
from bondhu.errors import ConfigError
from bondhu.inference.model import Usage
from bondhu.safety import SafetyLayer
from bondhu.serve.errors import RETRY_AFTER_S, APIError, busy
from bondhu.serve.stream import END, Slots, read

log = logging.getLogger(__name__)

OPENED = object()  # the engine has accepted the request: the server may answer 200 now
DETAIL_CHARS = 300  # of an engine's own reason for rejecting a request, passed on to the client


def upstream_key(up: UpstreamConfig) -> str | None:
    """The engine's key, from the environment variable ``api_key_env`` names (None when it names none)."""
    if up.api_key_env is None:
        return None
    key = os.environ.get(up.api_key_env, "").strip()
    if not key:
        raise ConfigError(
            f"serve.upstream.api_key_env: the environment variable {up.api_key_env} is not set "
            "(it should hold the upstream engine's API key)"
        )
    if not (key.isascii() and key.isprintable() and " " not in key):
        raise ConfigError(
            f"{up.api_key_env}: the upstream API key must be printable ASCII without spaces (an HTTP header carries it)"
        )
    return key


def request_body(up: UpstreamConfig, messages: list[dict], settings: GenerationSettings) -> dict:
    """What the engine is asked: the checked conversation and the request's settings in OpenAI's names, streamed."""
    body = {
        "model": up.model,
        "messages": messages,
        "stream": True,
        "stream_options": {"include_usage": True},  # true token counts (llama-cpp-python ignores it)
        "max_tokens": settings.max_new_tokens,
        "temperature": settings.temperature if settings.samples else 0.0,
        "top_p": settings.top_p,
        "repetition_penalty": settings.repetition_penalty,  # vLLM's name; llama.cpp reads repeat_penalty
    }
    if settings.top_k:  # 0 means no cut, which is also what an engine does without top_k
        body["top_k"] = settings.top_k
    if settings.seed is not None:
        body["seed"] = settings.seed
    return body


class UpstreamBackend:
    """Replies written by the engine at ``serve.upstream.url``, checked as the local model's are."""

    def __init__(self, config: BondhuConfig, safety: SafetyLayer):
        self.up, self.safety = config.serve.upstream, safety
        self.system_prompt, self.wait_s = config.data.system_prompt, config.serve.queue_timeout_s
        key = upstream_key(self.up)  # read once, at start: a missing key fails there, not on a request
        self._headers = {"Authorization": f"Bearer {key}"} if key else {}
        self._loop = self._client = self._gate = None
        self.in_flight = 0

    def health(self) -> dict:
        """The engine's model name and the replies at it now; the engine itself is not asked."""
        return {"backend": "upstream", "upstream_model": self.up.model, "upstream_in_flight": self.in_flight}

    async def reply(self, messages: list[dict], settings: GenerationSettings, cancel: threading.Event) -> Reply:
        """The conversation checked; a crisis answered here, anything else a reply for the engine to write."""
        # The classifier blocks: off the event loop, as the local path runs it.
        turn = await run_in_threadpool(check_turn, messages, self.system_prompt, self.safety)
        if turn.crisis_text is not None:  # never sent to the engine
            return Reply(turn.assessment, iter([turn.crisis_text]), True, Usage())
        usage = Usage()
        pieces = self._pieces(request_body(self.up, turn.messages, settings), usage)
        return Reply(turn.assessment, pieces, False, usage, turn.check_in)

    async def start(self, request: Request, reply: Reply, cancel: threading.Event, slots: Slots) -> AsyncIterator[str]:
        """Ask the engine, and return the reply's pieces once it has accepted (its refusal raises here)."""
        queue: asyncio.Queue = asyncio.Queue()
        task = asyncio.create_task(_drain(reply.pieces, queue))
        task.add_done_callback(lambda _: slots.release())  # however it ends, even cancelled before it ran
        pieces = _cancelling(read(request, queue, cancel, slots), task)
        await anext(pieces, None)  # OPENED, an error raised, or None: the client left while it waited
        return pieces

    async def aclose(self) -> None:
        """Close the connections to the engine."""
        if self._client is not None:
            await self._client.aclose()
            self._client = None

    def probe(self) -> str | None:
        """Why the engine may not serve the gateway's requests yet (it does not answer, refuses the key,
        lists no model of that name), or None. For a warning at start: the engine may come up later."""
        up = self.up
        try:
            r = httpx.get(f"{up.url}/models", headers=self._headers, timeout=up.connect_timeout_s + 5)
        except httpx.HTTPError as err:
            return f"the upstream engine at {up.url} does not answer yet ({type(err).__name__}); until it does, 502"
        if r.status_code in (401, 403):
            return f"the upstream engine at {up.url} refuses the key (HTTP {r.status_code}); check api_key_env"
        try:
            ids = [str(m["id"]) for m in r.json()["data"]]
        except (ValueError, KeyError, TypeError):
            return None  # no model list: the chat endpoint is what counts
        if ids and not any(i == up.model or i.split(":")[0] == up.model for i in ids):  # Ollama adds ":latest"
            return f"the upstream engine serves {', '.join(ids)}, not {up.model!r}: set --upstream-model"
        return None

    def _bound(self) -> tuple[httpx.AsyncClient, asyncio.Semaphore]:
        """The HTTP client and the concurrency gate of the running event loop. Made on first use,
        not at construction: both belong to one loop, and a test may run an app in several in turn."""
        loop = asyncio.get_running_loop()
        if self._loop is not loop:
            up = self.up
            self._loop, self._gate = loop, asyncio.Semaphore(up.max_concurrency)
            self._client = httpx.AsyncClient(
                base_url=up.url,
                timeout=httpx.Timeout(up.timeout_s, connect=up.connect_timeout_s),
                limits=httpx.Limits(max_connections=up.max_concurrency, max_keepalive_connections=up.max_concurrency),
            )
        return self._client, self._gate

    @asynccontextmanager
    async def _turn(self):
        """One of ``max_concurrency`` places at the engine, waited for up to ``serve.queue_timeout_s``."""
        gate = self._bound()[1]
        try:
            await asyncio.wait_for(gate.acquire(), self.wait_s)
        except asyncio.TimeoutError:
            raise busy(
                "queue_timeout", f"Bondhu is busy: the upstream engine stayed full for {self.wait_s:g} s; please retry."
            ) from None
        self.in_flight += 1
        try:
            yield
        finally:
            self.in_flight -= 1
            gate.release()

    async def _pieces(self, body: dict, usage: Usage) -> AsyncIterator[str]:
        """``OPENED`` once the engine has accepted, then its reply, filtered and checked delta by delta."""
        up = self.up
        async with self._turn():
            try:
                client = self._bound()[0]
                async with client.stream("POST", "chat/completions", json=body, headers=self._headers) as response:
                    if response.status_code != 200:
                        raise await self._refused(response)
                    yield OPENED
                    async with aclosing(checked(deltas(response, usage, up.url), self.safety)) as pieces:
                        async for piece in pieces:
                            yield piece
            except httpx.ConnectTimeout:
                raise self._failed(
                    504, "upstream_timeout", f"could not be connected to in {up.connect_timeout_s:g} s"
                ) from None
            except httpx.TimeoutException:
                raise self._failed(504, "upstream_timeout", f"sent nothing for {up.timeout_s:g} s") from None
            except httpx.ConnectError as err:
                raise self._failed(
                    502, "upstream_unreachable", f"could not be reached ({str(err) or 'connection failed'})"
                ) from None
            except httpx.TransportError as err:
                raise self._failed(502, "upstream_error", f"dropped the connection ({type(err).__name__})") from None

    def _failed(self, status: int, code: str, what: str) -> APIError:
        log.warning("upstream engine: %s (%d)", code, status)
        return APIError(
            status, f"The upstream engine at {self.up.url} {what}; please retry shortly.", None, code, "server_error"
        )

    async def _refused(self, response: httpx.Response) -> APIError:
        """The engine's refusal (any status but 200) as the client's error."""
        status, where = response.status_code, self.up.url
        log.warning("upstream engine: HTTP %d", status)
        if status in (429, 503):
            after = response.headers.get("retry-after", "")
            return busy(
                "upstream_busy",
                f"The upstream engine at {where} is overloaded (HTTP {status}); please retry shortly.",
                after if after.isdigit() else RETRY_AFTER_S,
            )
        if status in (401, 403):
            why = "refused the gateway's credentials; check serve.upstream.api_key_env"
        elif status == 404:
            why = (
                f"has no chat endpoint or no model {self.up.model!r}; check serve.upstream.url and serve.upstream.model"
            )
        elif 400 <= status < 500:  # most often a conversation too long for the engine's context
            detail = await _detail(response)
            return APIError(
                400, f"The upstream engine rejected the request (HTTP {status}): {detail}", None, "upstream_rejected"
            )
        else:
            why = "failed; please retry shortly"
        code = "upstream_auth" if status in (401, 403) else "upstream_error"
        return APIError(502, f"The upstream engine at {where} {why} (HTTP {status}).", None, code, "server_error")


async def deltas(response: httpx.Response, usage: Usage, where: str) -> AsyncIterator[str]:
    """The text of an engine's ``chat.completion.chunk`` events as they arrive. Its token counts and
    finish reason go into ``usage``; an engine that reports no counts has its deltas counted instead
    (one delta is one token for vLLM and llama.cpp, fewer than the tokens where a character spans several)."""
    finished, counted, reported = False, 0, False
    async for line in response.aiter_lines():
        if not line.startswith("data:"):
            continue  # blank lines between events, ": keep-alive" comments, event names
        data = line[len("data:") :].strip()
        if data == "[DONE]":
            return
        chunk = _chunk(data, where)
        try:
            for choice in chunk.get("choices") or ():
                if text := (choice.get("delta") or {}).get("content"):
                    counted += 1
                    yield str(text)
                if choice.get("finish_reason"):
                    usage.finish_reason, finished = str(choice["finish_reason"]), True
            if isinstance(counts := chunk.get("usage"), dict):
                usage.prompt_tokens, reported = int(counts.get("prompt_tokens") or 0), True
                usage.completion_tokens = int(counts.get("completion_tokens") or 0)
            elif not reported:
                usage.completion_tokens = counted
        except (AttributeError, TypeError, ValueError):
            raise _unreadable(where) from None
    if not finished:
        raise APIError(
            502,
            f"The upstream engine at {where} ended the stream before the reply was finished; please retry.",
            None,
            "upstream_error",
            "server_error",
        )


def _chunk(data: str, where: str) -> dict:
    try:
        chunk = json.loads(data)
    except ValueError:
        chunk = None
    if not isinstance(chunk, dict):
        raise _unreadable(where)
    if "error" in chunk:  # vLLM reports a failure mid-stream this way
        log.warning("upstream engine: an error event mid-stream")
        raise APIError(
            502,
            f"The upstream engine at {where} failed mid-reply; please retry.",
            None,
            "upstream_error",
            "server_error",
        )
    return chunk


def _unreadable(where: str) -> APIError:
    return APIError(
        502,
        f"The upstream engine at {where} sent an event that is not a chat completion chunk.",
        None,
        "upstream_error",
        "server_error",
    )


async def _detail(response: httpx.Response) -> str:
    """The engine's own reason, from the first few KiB of its error body, in one short line."""
    raw = b""
    async for part in response.aiter_bytes():
        raw += part
        if len(raw) > 4096:
            break
    try:
        body = json.loads(raw)
    except ValueError:
        body = raw.decode("utf-8", "replace")
    if isinstance(body, dict):
        body = body.get("error", body.get("detail", body))
        body = body.get("message", body) if isinstance(body, dict) else body
    return " ".join(str(body).split())[:DETAIL_CHARS] or "no reason given"


async def checked(pieces: AsyncIterator[str], safety: SafetyLayer) -> AsyncIterator[str]:
    """The local path's output pipeline over asynchronous pieces: unlisted phone numbers masked
    (never half of one sent, however the digits are split), then the reply withdrawn at its first
    unsafe stretch, after which the engine is no longer read."""
    numbers, check = safety.number_stream(), OutputCheck(safety)
    async with aclosing(pieces):
        async for piece in pieces:
            if out := numbers.feed(piece):
                out = check.feed(out)
                yield out
                if isinstance(out, Withdrawn):
                    return
    if out := numbers.flush():
        yield check.feed(out)


async def _drain(pieces: AsyncIterator, queue: asyncio.Queue) -> None:
    """Hand a reply's pieces to the server's reader (``stream.read``), as ``stream.pump`` does for a model thread."""
    try:
        async with aclosing(pieces):
            async for piece in pieces:
                queue.put_nowait(piece)
    except Exception as err:  # raised again by the reader, in the request's own task
        queue.put_nowait(err)
    finally:
        queue.put_nowait(END)


async def _cancelling(items: AsyncIterator, task: asyncio.Task) -> AsyncIterator:
    """``items``, with the task that fills them cancelled as soon as the reader stops (the client left,
    a stop sequence, an error): the engine's connection closes, and the engine stops generating."""
    try:
        async with aclosing(items):
            async for item in items:
                yield item
    finally:
        task.cancel()
