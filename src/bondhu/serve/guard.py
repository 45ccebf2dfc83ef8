"""What every response passes through: security headers, and a last guard that answers any
unexpected failure itself, so a client never sees a dropped connection."""

from __future__ import annotations

import logging

from starlette.datastructures import MutableHeaders

from bondhu.serve.errors import APIError

log = logging.getLogger(__name__)

# The page's policy covers the API's answers too: nothing from elsewhere, never framed, never sniffed.
SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; img-src 'self' data:; object-src 'none'; base-uri 'none'; "
    "frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
}


class Guard:
    """ASGI middleware: the security headers on every response, and a 500 in OpenAI's shape for
    anything no handler caught."""

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        started = False

        async def send_secured(message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
                headers = MutableHeaders(scope=message)
                for key, value in SECURITY_HEADERS.items():
                    headers.setdefault(key, value)
            await send(message)

        try:
            await self.app(scope, receive, send_secured)
        except Exception as err:  # not re-raised: uvicorn would then drop the keep-alive connection
            log.error("%s %s failed: %s", scope["method"], scope["path"], type(err).__name__)
            if not started:
                failed = APIError(500, "The server failed to answer; please retry.", kind="server_error")
                await failed.response()(scope, receive, send_secured)
