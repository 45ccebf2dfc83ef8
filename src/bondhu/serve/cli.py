"""`bondhu serve RUN`: the OpenAI-compatible API and the web chat page."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from bondhu.cli import app, console, err_console
from bondhu.errors import BondhuError

LOOPBACK = {"127.0.0.1", "localhost", "::1"}


@app.command()
def serve(
    run: Path = typer.Argument(..., help="Run directory (runs/<name>), or a merged export"),
    host: Optional[str] = typer.Option(None, "--host", help="Address to listen on (default: the run's serve.host)"),
    port: Optional[int] = typer.Option(None, "--port", min=1, max=65535, help="Port (default: the run's serve.port)"),
    api_key: Optional[str] = typer.Option(None, "--api-key", envvar="BONDHU_API_KEY", show_envvar=True,
                                          help="Require 'Authorization: Bearer KEY' (default: serve.api_key)"),
    backend: str = typer.Option("auto", "--backend", help="auto, hf, unsloth or fast"),
):
    """Serve a run over HTTP: /v1/chat/completions (OpenAI-compatible) and a Bengali chat page at /."""
    try:
        import uvicorn

        from bondhu.serve.app import create_app
    except ModuleNotFoundError as err:
        raise BondhuError(f"bondhu serve needs {err.name}: pip install 'bondhu[serve]'") from None
    from bondhu.chat.model import load_for_inference

    loaded = load_for_inference(run, backend=backend)
    cfg = loaded.config.model_copy(deep=True)
    given = {"host": host, "port": port, "api_key": api_key}
    cfg.serve = cfg.serve.model_copy(update={k: v for k, v in given.items() if v is not None})
    s = cfg.serve
    if s.host not in LOOPBACK and not s.api_key:
        err_console.print(f"[yellow]warning:[/] listening on {s.host} without an API key: anyone who can reach "
                          "this port can use the model. Set --api-key or BONDHU_API_KEY.", highlight=False)
    shown = f"[{s.host}]" if ":" in s.host else s.host
    console.print(f"বন্ধু · chat page http://{shown}:{s.port}/ · API http://{shown}:{s.port}/v1 "
                  f"(model {s.model_id!r}, {loaded.backend}, queue {s.queue_size})", highlight=False)
    uvicorn.run(create_app(loaded, cfg), host=s.host, port=s.port, log_level="info")
