"""`bondhu serve RUN` and `bondhu serve --upstream URL`: the OpenAI-compatible API and the web chat page,
over the run's own model or in front of an engine."""

from __future__ import annotations

import errno
import socket
from pathlib import Path
from typing import Optional

import typer
from pydantic import ValidationError
from rich.console import Console

from bondhu.config import BondhuConfig, ServeConfig, load_config
from bondhu.errors import BondhuError
from bondhu.run import RunDir

console = Console()
err_console = Console(stderr=True)

LOOPBACK = {"127.0.0.1", "localhost", "::1"}


def serve(
    run: Optional[Path] = typer.Argument(
        None, help="Run directory (runs/<name>) or a merged export; with --upstream only its config is read"
    ),
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
    upstream: Optional[str] = typer.Option(
        None, "--upstream", help="Be a safety gateway in front of this OpenAI-compatible engine (http://HOST:PORT/v1)"
    ),
    upstream_model: Optional[str] = typer.Option(
        None, "--upstream-model", help="The engine's name for the model (default: serve.upstream.model, 'bondhu')"
    ),
    upstream_api_key_env: Optional[str] = typer.Option(
        None, "--upstream-api-key-env", help="Environment variable that holds the engine's API key"
    ),
    config: Optional[Path] = typer.Option(
        None, "--config", "-c", help="A config file for a gateway without a run (its serve, data, chat, safety)"
    ),
):
    """Serve a run over HTTP: /v1/chat/completions (OpenAI-compatible) and a Bengali chat page at /.
    With --upstream, an engine (vLLM, llama-server, Ollama) writes the replies and Bondhu keeps the rest."""
    try:
        import uvicorn

        from bondhu.serve.app import create_app
    except ModuleNotFoundError as err:
        raise BondhuError(f"bondhu serve needs {err.name}: pip install 'bondhu[serve]'") from None

    cfg = _base_config(run, config)
    given = {k: v for k, v in {"host": host, "port": port, "api_key": api_key}.items() if v is not None}
    wanted = {"url": upstream, "model": upstream_model, "api_key_env": upstream_api_key_env}
    if any(v is not None for v in wanted.values()) or cfg.serve.upstream is not None:
        given["upstream"] = {
            **(cfg.serve.upstream.model_dump() if cfg.serve.upstream else {}),
            **{k: v for k, v in wanted.items() if v is not None},
        }
    s = _serve_config(cfg.serve, given)
    if s.upstream is None and config is not None:
        raise BondhuError("--config is for a gateway: give --upstream URL or serve.upstream.url in the file")
    check_port(s.host, s.port)  # before the model loads, which can take minutes
    if s.upstream is not None:
        app = _gateway(create_app, cfg, s, backend)
    elif run is None:
        raise BondhuError("nothing to serve: give a run directory, or --upstream URL to front an engine")
    else:
        app = _local(create_app, run, s, backend)
    what = f"upstream {s.upstream.url}" if s.upstream else app.state.loaded.backend
    if s.host not in LOOPBACK and not s.api_key:
        err_console.print(
            f"[yellow]warning:[/] listening on {s.host} without an API key: anyone who can reach "
            "this port can use the model. Set --api-key or BONDHU_API_KEY.",
            highlight=False,
        )
    shown = f"[{s.host}]" if ":" in s.host else s.host
    console.print(
        f"বন্ধু · chat page http://{shown}:{s.port}/ · API http://{shown}:{s.port}/v1 "
        f"(model {s.model_id!r}, {what}, queue {s.queue_size})",
        highlight=False,
    )
    uvicorn.run(app, host=s.host, port=s.port, log_level="info")


def _base_config(run: Path | None, config: Path | None) -> BondhuConfig:
    """The config the server starts from: ``--config``, else the run's, else the defaults (a merged
    export has no run config)."""
    if config is not None and run is not None:
        raise BondhuError("give RUN or --config, not both: a run brings its own config")
    if config is not None:
        return load_config(config)
    if run is not None and RunDir(run).config_file.is_file():
        return RunDir(run).config()
    return BondhuConfig()


def _serve_config(planned: ServeConfig, given: dict) -> ServeConfig:
    """The run's serve section with the command line's values, checked as the config file is."""
    try:
        return ServeConfig.model_validate({**planned.model_dump(), **given})
    except ValidationError as err:
        first = err.errors()[0]
        where = ".".join(["serve", *map(str, first["loc"])])
        msg = "unknown field" if first["type"] == "extra_forbidden" else first["msg"].removeprefix("Value error, ")
        raise BondhuError(f"{where}: {msg}") from None


def _local(create_app, run: Path, s: ServeConfig, backend: str):
    """The app over the run's own model, loaded now."""
    from bondhu.inference.model import load_for_inference

    loaded = load_for_inference(run, backend=backend)
    cfg = loaded.config.model_copy(deep=True)
    cfg.serve = s
    return create_app(loaded, cfg)


def _gateway(create_app, cfg: BondhuConfig, s: ServeConfig, backend: str):
    """The app in front of the engine (no model is loaded), after a look at whether it answers."""
    if backend != "auto":
        raise BondhuError("--backend chooses the local model; a gateway's engine is named by --upstream")
    cfg = cfg.model_copy(deep=True)
    cfg.serve = s
    app = create_app(None, cfg)  # reads the engine's key: a missing one fails here, in one line
    if warning := app.state.backend.probe():
        err_console.print(f"[yellow]warning:[/] {warning}", highlight=False)
    return app


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
