"""Errors in OpenAI's shape: {"error": {message, type, param, code}}."""

from __future__ import annotations

from fastapi.responses import JSONResponse

RETRY_AFTER_S = 2  # what a 503 asks a client to wait, unless an upstream engine says otherwise


class APIError(Exception):
    """An error the server answers with ``status`` and OpenAI's error body."""

    def __init__(
        self,
        status: int,
        message: str,
        param: str | None = None,
        code: str | None = None,
        kind: str = "invalid_request_error",
        headers: dict | None = None,
    ):
        super().__init__(message)
        self.status, self.headers = status, headers
        self.body = {"error": {"message": message, "type": kind, "param": param, "code": code}}

    def response(self) -> JSONResponse:
        return JSONResponse(self.body, status_code=self.status, headers=self.headers)


def busy(code: str, message: str, retry_after_s: int | str = RETRY_AFTER_S) -> APIError:
    """A 503 that asks the client to come back (``Retry-After``): the server or its engine is full."""
    return APIError(503, message, None, code, "server_error", {"Retry-After": str(retry_after_s)})


def from_pydantic(errors: list[dict]) -> APIError:
    """The first of pydantic's validation errors, with its location written as OpenAI's ``param``."""
    first, param = errors[0], ""
    for part in (p for p in first.get("loc", ()) if p != "body"):
        param += f"[{part}]" if isinstance(part, int) else (f".{part}" if param else str(part))
    return APIError(400, f"{param}: {first['msg']}" if param else first["msg"], param or None)
