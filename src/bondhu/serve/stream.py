"""Moving a reply's pieces from the generating thread to the client: admission slots, the thread
hand-off, disconnect checks, stop sequences and the event stream that cancels generation however it ends."""

from __future__ import annotations

import asyncio
import threading
import time
from contextlib import suppress
from typing import AsyncIterator, Callable, Iterator

import anyio
from fastapi import Request
from fastapi.responses import StreamingResponse

POLL_S = 0.2  # how often a request waiting for the model checks that its client is still there
END = object()
_WAITED = object()  # nothing came within POLL_S


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


def pump(pieces: Iterator[str], on_done: Callable[[], None]) -> asyncio.Queue:
    """Iterate a reply's blocking pieces in a thread of its own, handing them to the event loop. ``on_done``
    runs once ``inference.model.stream`` has joined its generation thread: when the model really is free again."""
    loop, queue = asyncio.get_running_loop(), asyncio.Queue()

    def put(item: object) -> None:
        with suppress(RuntimeError):  # the event loop is gone: the server is shutting down
            loop.call_soon_threadsafe(queue.put_nowait, item)

    def work() -> None:
        failure = None
        try:
            for piece in pieces:
                put(piece)
        except BaseException as err:  # handed to the reader, which raises it
            failure = err
        finally:
            # The slot is free before the reader hears the end, error or not: a client that sends
            # its next request on seeing the error finds the place it left.
            on_done()
            if failure is not None:
                put(failure)
            put(END)

    threading.Thread(target=work, daemon=True, name="bondhu-reply").start()
    return queue


async def read(request: Request, queue: asyncio.Queue, cancel: threading.Event, slots: Slots) -> AsyncIterator[str]:
    """The pieces as they come. A disconnect (checked at most every POLL_S, between pieces or while
    waiting for the model) ends it early; ``cancel`` then stops generation at its next token."""
    ended, checked = False, time.monotonic()
    try:
        while True:
            try:
                # A piece already waiting is taken at once: wait_for costs a task per call, and a
                # fast engine's pieces mostly arrive faster than the client reads them.
                item = queue.get_nowait() if queue.qsize() else await asyncio.wait_for(queue.get(), POLL_S)
            except asyncio.TimeoutError:
                item = _WAITED
            if item is not _WAITED:
                if ended := item is END:
                    return
                if isinstance(item, BaseException):
                    raise item
                yield item
            # Asking is a round trip through the server's receive channel: once per POLL_S, not
            # once per token, so a disconnect still stops generation within POLL_S of a piece.
            if time.monotonic() - checked >= POLL_S:
                if await request.is_disconnected():
                    return
                checked = time.monotonic()
    finally:
        if not ended:
            cancel.set()
            slots.cancelled += 1


class StopText:
    """The reply so far; ``feed`` returns what may be sent now, holding back what could be the start
    of a stop sequence and cutting the reply where one appears."""

    def __init__(self, stops: list[str]):
        self.stops, self.raw, self.sent, self.stopped = stops, "", 0, False

    def feed(self, piece: str) -> str:
        self.raw = (self.raw + piece) if self.sent else (self.raw + piece).lstrip()
        if hits := [i for s in self.stops if (i := self.raw.find(s)) >= 0]:
            self.stopped, end = True, min(hits)
        else:
            end = len(self.raw) - max(
                (k for s in self.stops for k in range(1, len(s)) if self.raw.endswith(s[:k])), default=0
            )
        out, self.sent = self.raw[self.sent : end], max(self.sent, end)
        return out

    def flush(self) -> str:
        out = "" if self.stopped else self.raw[self.sent :]
        self.sent += len(out)
        return out


class EventStream(StreamingResponse):
    """Server-sent events that cancel their generation however the response ends."""

    def __init__(self, body: AsyncIterator[str], cancel: threading.Event):
        super().__init__(
            body, media_type="text/event-stream", headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
        )
        self.cancel = cancel

    async def __call__(self, scope, receive, send) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            self.cancel.set()
            with anyio.CancelScope(shield=True), suppress(RuntimeError):
                await self.body_iterator.aclose()  # runs the readers' finally blocks now
