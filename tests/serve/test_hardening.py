"""Hostile input to the server: every malformed request gets a 4xx in OpenAI's shape on a connection
that stays usable, bodies are limited while they are read, browsers get the security headers, and
startup fails early in one line."""

from __future__ import annotations

import http.client
import json
import shutil
from urllib.parse import urlparse

import pytest
from fastapi.testclient import TestClient

from bondhu.serve.app import create_app

USER = [{"role": "user", "content": "আজ মনটা খুব খারাপ।"}]
CRISIS = "ajke rate ghumer oshudh gula sob kheye felbo"
JSON = {"Content-Type": "application/json"}


def _config(loaded, **serve):
    cfg = loaded.config.model_copy(deep=True)
    cfg.serve = cfg.serve.model_copy(update=serve)
    return cfg


@pytest.fixture(scope="module")
def small_app(loaded):
    return create_app(loaded, _config(loaded, max_input_chars=100))


@pytest.fixture(scope="module")
def live(small_app, serving):
    with serving(small_app) as base:
        yield urlparse(base)


def _exchange(conn: http.client.HTTPConnection, body: bytes, headers: dict | None = None) -> tuple[int, dict]:
    conn.request("POST", "/v1/chat/completions", body, {**JSON, **(headers or {})})
    response = conn.getresponse()
    raw = response.read()
    return response.status, json.loads(raw) if raw.startswith(b"{") else {"raw": raw.decode()}


def _nested(depth: int) -> bytes:
    return ('{"messages": [{"role": "user", "content": "হ্যালো"}], "x": ' + "[" * depth + "]" * depth + "}").encode()


HOSTILE = [
    ("seed -1 streamed", json.dumps({"messages": USER, "seed": -1, "stream": True, "max_tokens": 2}).encode(), 200),
    ("seed -1", json.dumps({"messages": USER, "seed": -1, "max_tokens": 2}).encode(), 200),
    ("seed 2**70", json.dumps({"messages": USER, "seed": 2**70}).encode(), 400),
    ("seed 2**70 streamed", json.dumps({"messages": USER, "seed": 2**70, "stream": True}).encode(), 400),
    ("a lone surrogate", b'{"messages": [{"role": "user", "content": "\\ud800 hi"}]}', 400),
    ("a surrogate in a field name", b'{"messages": [{"role": "user", "content": "hi"}], "\\udfff": 1}', 400),
    ("JSON 1,000 levels deep", _nested(1000), 400),
    ("JSON 30,000 levels deep", _nested(30_000), 400),
    ("stream 'yes'", json.dumps({"messages": USER, "stream": "yes"}).encode(), 400),
    ("stream 1", json.dumps({"messages": USER, "stream": 1}).encode(), 400),
    ("max_tokens '10'", json.dumps({"messages": USER, "max_tokens": "10"}).encode(), 400),
    ("max_tokens true", json.dumps({"messages": USER, "max_tokens": True}).encode(), 400),
    ("temperature '1'", json.dumps({"messages": USER, "temperature": "1"}).encode(), 400),
    ("n true", json.dumps({"messages": USER, "n": True}).encode(), 400),
]


@pytest.mark.parametrize("body,status", [pytest.param(b, s, id=n) for n, b, s in HOSTILE])
def test_hostile_bodies_get_their_status_and_the_connection_stays_open(live, body, status):
    conn = http.client.HTTPConnection(live.hostname, live.port, timeout=60)
    try:
        got, answer = _exchange(conn, body)
        assert got == status, answer
        if status != 200:
            assert answer["error"]["type"] == "invalid_request_error" and answer["error"]["message"]
        # The next request on the same keep-alive connection is answered, not reset.
        again, answer = _exchange(conn, json.dumps({"messages": USER, "max_tokens": 2}).encode())
        assert again == 200 and answer["choices"][0]["message"]["content"] is not None
    finally:
        conn.close()


def test_an_unexpected_failure_is_a_500_on_a_connection_that_stays_open(loaded, serving, monkeypatch):
    import bondhu.serve.backend as backend

    def broken(*args, **kwargs):
        raise KeyError("a bug")

    app = create_app(loaded)
    monkeypatch.setattr(backend, "respond", broken)
    with serving(app) as base:
        conn = http.client.HTTPConnection(urlparse(base).hostname, urlparse(base).port, timeout=30)
        status, answer = _exchange(conn, json.dumps({"messages": USER}).encode())
        assert status == 500 and answer["error"]["type"] == "server_error" and "bug" not in answer["error"]["message"]
        conn.request("GET", "/health")
        assert conn.getresponse().status == 200
        conn.close()


def test_a_chunked_body_over_the_limit_is_refused_while_it_is_read(live, small_app):
    sent = {"bytes": 0}

    def chunks():  # 20 MB with no Content-Length; the limit for 100 characters is about 66 kB
        piece = b'{"messages": [' + b" " * (1 << 16)
        for _ in range(320):
            sent["bytes"] += len(piece)
            yield piece
            piece = b" " * (1 << 16)

    conn = http.client.HTTPConnection(live.hostname, live.port, timeout=60)
    try:
        conn.request("POST", "/v1/chat/completions", chunks(), JSON, encode_chunked=True)
        response = conn.getresponse()
        assert response.status == 413, response.read()
        assert json.loads(response.read())["error"]["code"] == "request_too_large"
    except (BrokenPipeError, ConnectionResetError):
        pass  # the server answered 413 and closed before the client finished sending: also a refusal
    finally:
        conn.close()
    declared = http.client.HTTPConnection(live.hostname, live.port, timeout=60)
    declared.request("POST", "/v1/chat/completions", b"{" + b" " * 70000 + b"}", JSON)
    assert declared.getresponse().status == 413
    declared.close()


def test_only_json_is_accepted_and_every_response_carries_the_security_headers(loaded):
    with TestClient(create_app(loaded)) as client:
        body = json.dumps({"messages": USER, "max_tokens": 2})
        for kind in ("text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x", None):
            response = client.post("/v1/chat/completions", content=body, headers={"Content-Type": kind} if kind else {})
            assert response.status_code == 415 and response.json()["error"]["code"] == "unsupported_media_type"
        ok = client.post(
            "/v1/chat/completions", content=body, headers={"Content-Type": "application/json; charset=utf-8"}
        )
        assert ok.status_code == 200
        for path in ("/", "/static/index.html", "/static/app.js", "/health", "/v1/models", "/no/such/path"):
            headers = client.get(path).headers
            assert "frame-ancestors 'none'" in headers["content-security-policy"], path
            assert headers["x-content-type-options"] == "nosniff" and headers["x-frame-options"] == "DENY", path
        assert "frame-ancestors" in ok.headers["content-security-policy"]
        # No CORS unless configured: a cross-site page gets no Access-Control-Allow-Origin.
        pre = client.options(
            "/v1/chat/completions", headers={"Origin": "https://evil.example", "Access-Control-Request-Method": "POST"}
        )
        assert "access-control-allow-origin" not in pre.headers


def test_cors_is_an_explicit_option(loaded):
    cfg = _config(loaded, cors_origins=["https://app.example"])
    with TestClient(create_app(loaded, cfg)) as client:
        ask = {"Access-Control-Request-Method": "POST", "Access-Control-Request-Headers": "content-type"}
        pre = client.options("/v1/chat/completions", headers={"Origin": "https://app.example", **ask})
        assert pre.status_code == 200 and pre.headers["access-control-allow-origin"] == "https://app.example"
        other = client.options("/v1/chat/completions", headers={"Origin": "https://evil.example", **ask})
        assert other.headers.get("access-control-allow-origin") != "https://evil.example"


def test_sampling_differs_per_request_unless_a_seed_is_given(loaded):
    with TestClient(create_app(loaded)) as client:

        def reply(**extra) -> str:
            body = {"messages": USER, "temperature": 1.5, "top_p": 1.0, "max_tokens": 8, **extra}
            return client.post("/v1/chat/completions", json=body).json()["choices"][0]["message"]["content"]

        assert reply(seed=7) == reply(seed=7)
        assert len({reply() for _ in range(4)}) > 1  # the run's config says seed 0; requests still vary


def test_usage_counts_the_models_tokens(loaded, sse):
    with TestClient(create_app(loaded)) as client:
        body = client.post("/v1/chat/completions", json={"messages": USER, "temperature": 0, "max_tokens": 5}).json()
        usage = body["usage"]
        assert 1 <= usage["completion_tokens"] <= 5 and usage["prompt_tokens"] > 0
        assert body["choices"][0]["finish_reason"] == ("length" if usage["completion_tokens"] == 5 else "stop")
        crisis = client.post(
            "/v1/chat/completions", json={"messages": [{"role": "user", "content": CRISIS}], "max_tokens": 16}
        ).json()
        assert crisis["bondhu"]["crisis"] and len(crisis["choices"][0]["message"]["content"]) > 100
        # The crisis reply is Bondhu's fixed text: the model read and wrote nothing.
        assert crisis["usage"] == {"prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0}
        events = sse(
            client.post(
                "/v1/chat/completions",
                json={
                    "messages": USER,
                    "temperature": 0,
                    "max_tokens": 5,
                    "stream": True,
                    "stream_options": {"include_usage": True},
                },
            ).text
        )
        assert events[-2]["usage"] == usage


def test_a_request_that_waits_too_long_for_the_model_gets_503(loaded, sse):
    app = create_app(loaded, _config(loaded, queue_timeout_s=0.3))
    loaded.lock.acquire()  # another reply holds the model
    try:
        with TestClient(app) as client:
            response = client.post("/v1/chat/completions", json={"messages": USER, "max_tokens": 2})
            assert response.status_code == 503 and response.json()["error"]["code"] == "queue_timeout"
            assert response.headers["retry-after"]
            events = sse(client.post("/v1/chat/completions", json={"messages": USER, "stream": True}).text)
            assert events[-1]["error"]["code"] == "queue_timeout"
            crisis = client.post("/v1/chat/completions", json={"messages": [{"role": "user", "content": CRISIS}]})
            assert crisis.status_code == 200 and crisis.json()["bondhu"]["crisis"]  # never waits for the model
    finally:
        loaded.lock.release()
    assert app.state.slots.active == 0


# ------------------------------------------------------------------------------------ startup
@pytest.fixture()
def no_uvicorn(monkeypatch):
    import uvicorn

    monkeypatch.setattr(uvicorn, "run", lambda app, **kw: None)


def _one_line(result) -> str:
    assert result.code != 0 and "Traceback" not in result.err, result.err
    lines = [line for line in result.err.splitlines() if line.strip()]
    assert len(lines) == 1, result.err
    return lines[0]


def test_a_missing_or_corrupt_adapter_is_named(run_cli, serve_run, tmp_path, no_uvicorn):
    run = tmp_path / "run"
    shutil.copytree(serve_run, run)
    weights = run / "adapter" / "adapter_model.safetensors"
    weights.write_bytes(b"not a safetensors file")
    line = _one_line(run_cli("serve", run, "--port", "8766"))
    assert str(weights) in line and "could not be loaded" in line
    weights.unlink()
    line = _one_line(run_cli("serve", run, "--port", "8766"))
    assert str(weights) in line and "missing" in line and "Repo id" not in line


def test_a_port_in_use_is_reported_before_the_model_loads(run_cli, serve_run, monkeypatch, no_uvicorn):
    import socket

    import bondhu.inference.model as model

    monkeypatch.setattr(model, "load_for_inference", lambda *a, **k: pytest.fail("the model was loaded"))
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        line = _one_line(run_cli("serve", serve_run, "--port", str(port)))
    assert f"127.0.0.1:{port} is already in use" in line


@pytest.mark.parametrize("key", ["ключ", "pass word", "tab\tkey", ""])
def test_a_key_no_client_could_send_is_refused_at_startup(run_cli, serve_run, monkeypatch, no_uvicorn, key):
    import bondhu.inference.model as model

    monkeypatch.setattr(model, "load_for_inference", lambda *a, **k: pytest.fail("the model was loaded"))
    line = _one_line(run_cli("serve", serve_run, "--api-key", key, "--port", "8767"))
    assert "serve.api_key" in line and "ASCII" in line
