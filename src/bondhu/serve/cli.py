"""`bondhu serve RUN`: the OpenAI-compatible API and the web chat page."""

from __future__ import annotations

import errno
import socket
from pathlib import Path
from typing import Optional

import typer
from rich.console import Console

from bondhu.errors import BondhuError

console = Console()
err_console = Console(stderr=True)

LOOPBACK = {"127.0.0.1", "localhost", "::1"}


def serve(
    run: Path = typer.Argument(..., help="Run directory (runs/<name>), or a merged export"),
    host: Optional[str] = typer.Option(None, "--host", help="Address to listen on (default: the run's serve.host)"),
    port: Optional[int] = typer.Option(None, "--port", min=1, max=65535, help="Port (default: the run's serve.port)"),
    api_key: Optional[str] = typer.Option(
        None,
        "--api-key",
        envvar="BONDHU_API_KEY",
        show_envvar=True,
        help="Require 'Authorization: Bearer KEY' (default: serve.api_key)",
    ),
    backend: str = typer.Option("auto", "--backend", help="auto, hf, unsloth or fast"),
):
    """Serve a run over HTTP: /v1/chat/completions (OpenAI-compatible) and a Bengali chat page at /."""
    try:
        import uvicorn

        from bondhu.serve.app import create_app
    except ModuleNotFoundError as err:
        raise BondhuError(f"bondhu serve needs {err.name}: pip install 'bondhu[serve]'") from None
    from pydantic import ValidationError

    from bondhu.config import ServeConfig
    from bondhu.inference.model import load_for_inference
    from bondhu.run import RunDir

    path = Path(run)
    planned = RunDir(path).config().serve if RunDir(path).config_file.is_file() else ServeConfig()
    given = {k: v for k, v in {"host": host, "port": port, "api_key": api_key}.items() if v is not None}
    try:
        s = ServeConfig.model_validate({**planned.model_dump(), **given})
    except ValidationError as err:
        first = err.errors()[0]
        raise BondhuError(f"serve.{'.'.join(map(str, first['loc']))}: {first['msg']}") from None
    check_port(s.host, s.port)  # before the model loads, which can take minutes
    loaded = load_for_inference(run, backend=backend)
    cfg = loaded.config.model_copy(deep=True)
    cfg.serve = s
    if s.host not in LOOPBACK and not s.api_key:
        err_console.print(
            f"[yellow]warning:[/] listening on {s.host} without an API key: anyone who can reach "
            "this port can use the model. Set --api-key or BONDHU_API_KEY.",
            highlight=False,
        )
    shown = f"[{s.host}]" if ":" in s.host else s.host
    console.print(
        f"বন্ধু · chat page http://{shown}:{s.port}/ · API http://{shown}:{s.port}/v1 "
        f"(model {s.model_id!r}, {loaded.backend}, queue {s.queue_size})",
        highlight=False,
    )
    uvicorn.run(create_app(loaded, cfg), host=s.host, port=s.port, log_level="info")


def check_port(host: str, port: int) -> None:
    """Fail now, in one line, if ``host:port`` cannot be listened on (in use, or not this machine's address)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn sets it
        try:
            sock.bind((host, port))
        except OSError as err:
            why = "is already in use" if err.errno == errno.EADDRINUSE else f"cannot be listened on ({err.strerror})"
            raise BondhuError(f"{host}:{port} {why}; choose another with --port or --host") from None
