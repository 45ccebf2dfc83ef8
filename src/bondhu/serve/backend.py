"""What writes a reply once the server has checked the request: the run's own model
(``LocalBackend``) or an OpenAI-compatible engine behind the gateway (``upstream.UpstreamBackend``).

The server holds one backend, chosen by ``serve.upstream`` in the config, and does everything
else itself whichever it is: validation, the API key, admission, stop sequences, the safety flag,
the check-in and the response's shape.
"""

from __future__ import annotations

import threading
from typing import AsyncIterator, Protocol

from fastapi import Request
from starlette.concurrency import run_in_threadpool

from bondhu.chat.session import Reply, respond
from bondhu.config import BondhuConfig, GenerationSettings
from bondhu.inference.model import LoadedModel
from bondhu.safety import SafetyLayer
from bondhu.serve.stream import Slots, pump, read


class Backend(Protocol):
    """The generation step behind the server."""

    def health(self) -> dict:
        """What ``/health`` says about the backend."""
        ...

    async def reply(self, messages: list[dict], settings: GenerationSettings, cancel: threading.Event) -> Reply:
        """The conversation checked as a whole: a crisis answered with the fixed text, anything else
        a reply that ``start`` begins. Nothing has been generated yet when this returns."""
        ...

    async def start(self, request: Request, reply: Reply, cancel: threading.Event, slots: Slots) -> AsyncIterator[str]:
        """Begin a non-crisis reply in an admitted slot and return its pieces as they come. From this
        call on the backend owns the slot, and releases it once it is free again, however the reply ends."""
        ...

    async def aclose(self) -> None:
        """Let go of what the backend holds open."""
        ...


class LocalBackend:
    """The run's own model through ``chat.session.respond``, one reply at a time (``LoadedModel.lock``)."""

    def __init__(self, loaded: LoadedModel, config: BondhuConfig, safety: SafetyLayer):
        self.loaded, self.config, self.safety = loaded, config, safety

    def health(self) -> dict:
        """Which backend loaded the model, and whether an adapter is on it."""
        return {"backend": self.loaded.backend, "adapter": self.loaded.has_adapter}

    async def reply(self, messages: list[dict], settings: GenerationSettings, cancel: threading.Event) -> Reply:
        """``respond``'s turn, on a worker thread."""
        # Blocking (it tokenizes): the safety check, the trimmed prompt and the reply's pieces.
        cfg = self.config
        return await run_in_threadpool(
            respond,
            self.loaded,
            messages,
            settings,
            self.safety,
            cfg.chat.context_tokens,
            cancel,
            cfg.serve.queue_timeout_s,
        )

    async def start(self, request: Request, reply: Reply, cancel: threading.Event, slots: Slots) -> AsyncIterator[str]:
        """The reply generated on a thread of its own; the slot is released once the model is free."""
        try:
            return read(request, pump(reply.pieces, slots.release), cancel, slots)
        except BaseException:
            slots.release()
            raise

    async def aclose(self) -> None:
        """Nothing to close: the model stays loaded for the process's life."""
        return None
