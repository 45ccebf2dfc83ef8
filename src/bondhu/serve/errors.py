"""Errors in OpenAI's shape: {"error": {message, type, param, code}}."""

from __future__ import annotations

from fastapi.responses import JSONResponse


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


def from_pydantic(errors: list[dict]) -> APIError:
    """The first of pydantic's validation errors, with its location written as OpenAI's ``param``."""
    first, param = errors[0], ""
    for part in (p for p in first.get("loc", ()) if p != "body"):
        param += f"[{part}]" if isinstance(part, int) else (f".{part}" if param else str(part))
    return APIError(400, f"{param}: {first['msg']}" if param else first["msg"], param or None)
