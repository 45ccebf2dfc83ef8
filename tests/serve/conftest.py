"""Server tests share one tiny trained run (trained once, in seconds) and a live-server helper."""

from __future__ import annotations

import json
import socket
import threading
import time
from contextlib import contextmanager

import pytest


@pytest.fixture(scope="session")
def serve_run(train_tiny_run):
    return train_tiny_run("serve", "generation.max_new_tokens=8")


@pytest.fixture(scope="session")
def loaded(serve_run):
    from bondhu.inference.model import load_for_inference

    return load_for_inference(serve_run)


@contextmanager
def _serving(app):
    """Run ``app`` with uvicorn on 127.0.0.1 (a free port) in a background thread; yield its base URL."""
    import uvicorn

    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="off"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(10)
        sock.close()


@pytest.fixture(scope="session")
def serving():
    return _serving


def wait_until(predicate, timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.02)
    return predicate()


@pytest.fixture(scope="session")
def until():
    return wait_until


def parse_sse(text: str) -> list:
    """The ``data:`` payloads of an SSE body: parsed JSON objects, and the final "[DONE]"."""
    out = []
    for block in text.split("\n\n"):
        if block.strip():
            assert block.startswith("data: "), block
            data = block[len("data: ") :]
            out.append(data if data == "[DONE]" else json.loads(data))
    return out


@pytest.fixture(scope="session")
def sse():
    return parse_sse


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _tiny_gguf(model_dir, path):
    """The session's tiny model written as f16 GGUF by the project's exporter."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from bondhu.config import DEFAULT_SYSTEM_PROMPT
    from bondhu.export.gguf import GGUFMeta, write_f16_gguf

    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    model = AutoModelForCausalLM.from_pretrained(model_dir)
    write_f16_gguf(model, tokenizer, path, GGUFMeta("bondhu", DEFAULT_SYSTEM_PROMPT, tokenizer.chat_template))
    return path


@pytest.fixture(scope="session")
def llama_engine(tmp_path_factory, tiny_model_dir):
    """llama-cpp-python's OpenAI server on 127.0.0.1 serving the tiny model as f16 GGUF, started
    once per session; its /v1 URL."""
    import importlib
    import subprocess
    import sys

    import httpx

    try:
        importlib.import_module("bondhu.export.gguf").write_f16_gguf  # noqa: B018
    except (ImportError, AttributeError):
        pytest.skip("GGUF exporter not merged yet")
    try:
        importlib.import_module("llama_cpp.server.app")
    except ModuleNotFoundError as err:
        pytest.skip(f"llama-cpp-python's server needs {err.name}: pip install 'llama-cpp-python[server]'")
    gguf = _tiny_gguf(tiny_model_dir, tmp_path_factory.mktemp("gguf") / "tiny-f16.gguf")
    port = _free_port()
    command = [sys.executable, "-m", "llama_cpp.server", "--model", str(gguf), "--model_alias", "bondhu"]
    command += ["--host", "127.0.0.1", "--port", str(port), "--n_ctx", "4096", "--n_threads", "1", "--verbose", "false"]
    log = tmp_path_factory.mktemp("llama-log") / "server.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}/v1"
    try:
        deadline = time.monotonic() + 60
        while True:
            assert proc.poll() is None, f"llama-cpp-python's server exited: {log.read_text()[-2000:]}"
            assert time.monotonic() < deadline, f"llama-cpp-python's server did not start: {log.read_text()[-2000:]}"
            try:
                if httpx.get(f"{url}/models", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.2)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)


@pytest.fixture(scope="module")
def engine(serving):
    """A scripted OpenAI-compatible engine (tests/engine_stub.py) on a free port, for the gateway."""
    from engine_stub import StubEngine

    stub = StubEngine()
    with serving(stub.app()) as base:
        stub.url = f"{base}/v1"
        yield stub
