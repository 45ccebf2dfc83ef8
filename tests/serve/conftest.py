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
