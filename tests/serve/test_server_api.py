"""The OpenAI-compatible API in-process (TestClient): replies, crisis, every error, API key, CLI."""

from __future__ import annotations

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

import bondhu.serve.backend as backend
from bondhu.chat.session import Reply
from bondhu.inference.model import Usage, prompt_ids
from bondhu.safety import SafetyLayer, crisis_follow_up, crisis_reply, load_helplines
from bondhu.serve.app import create_app

USER = [{"role": "user", "content": "আজ মনটা খুব খারাপ।"}]
CRISIS = "ajke rate ghumer oshudh gula sob kheye felbo"
GREEDY = {"model": "bondhu", "messages": USER, "temperature": 0, "max_tokens": 6}
ERROR_KEYS = {"message", "type", "param", "code"}
JSON = {"content-type": "application/json"}


@pytest.fixture(scope="module")
def app(loaded):
    return create_app(loaded)


@pytest.fixture(scope="module")
def client(app):
    with TestClient(app) as c:
        yield c


def _config(loaded, **serve):
    cfg = loaded.config.model_copy(deep=True)
    cfg.serve = cfg.serve.model_copy(update=serve)
    return cfg


def _error(response, status: int, param=None) -> dict:
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"error"} and set(body["error"]) == ERROR_KEYS, body
    assert isinstance(body["error"]["message"], str) and body["error"]["message"]
    assert body["error"]["param"] == param, body
    return body["error"]


# ------------------------------------------------------------------------------------- replies
def test_health_models_and_the_page(client):
    health = client.get("/health").json()
    assert health["status"] == "ok" and health["model"] == "bondhu" and health["active"] == 0
    assert client.get("/v1/models").json()["data"][0]["id"] == "bondhu"
    page = client.get("/")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert "default-src 'self'" in page.headers["content-security-policy"]
    for needle in (
        'lang="bn"',
        'id="message"',
        'id="send"',
        'id="reset"',
        'id="messages"',
        'aria-live="polite"',
        '<label for="message"',
        "নতুন কথোপকথন",
        "এআই",
        "কাউন্সেলর",
    ):
        assert needle in page.text, needle
    for asset in ("app.js", "style.css"):
        body = client.get(f"/static/{asset}")
        assert body.status_code == 200 and "http://" not in body.text and "https://" not in body.text
    assert "Noto Sans Bengali" in client.get("/static/style.css").text
    assert "http://" not in page.text and "https://" not in page.text  # no CDN, nothing external


def test_non_stream_reply(client, app, loaded):
    body = client.post("/v1/chat/completions", json=GREEDY).json()
    assert body["object"] == "chat.completion" and body["id"].startswith("chatcmpl-") and body["model"] == "bondhu"
    choice = body["choices"][0]
    assert choice["message"]["role"] == "assistant" and choice["message"]["content"].strip()
    assert (
        choice["finish_reason"] in ("stop", "length")
        and body["bondhu"]["crisis"] is False
        and body["bondhu"]["level"] == "none"
    )
    usage = body["usage"]
    system = {"role": "system", "content": loaded.config.data.system_prompt}
    assert usage["prompt_tokens"] == len(prompt_ids(loaded, [system, *USER]))
    assert 0 < usage["completion_tokens"] <= 6
    assert usage["total_tokens"] == usage["prompt_tokens"] + usage["completion_tokens"]
    assert app.state.slots.active == 0


def test_stream_reply_matches_the_non_stream_one(client, sse):
    alone = client.post("/v1/chat/completions", json=GREEDY).json()
    response = client.post("/v1/chat/completions", json={**GREEDY, "stream": True})
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/event-stream")
    events = sse(response.text)
    assert events[-1] == "[DONE]"
    chunks = events[:-1]
    assert {c["object"] for c in chunks} == {"chat.completion.chunk"} and len({c["id"] for c in chunks}) == 1
    assert chunks[0]["choices"][0]["delta"] == {"role": "assistant", "content": ""}
    assert chunks[0]["bondhu"]["crisis"] is False and chunks[0]["bondhu"]["level"] == "none"
    assert chunks[-1]["choices"][0]["delta"] == {}
    assert chunks[-1]["choices"][0]["finish_reason"] == alone["choices"][0]["finish_reason"]
    assert all(c["choices"][0]["finish_reason"] is None for c in chunks[:-1])
    text = "".join(c["choices"][0]["delta"].get("content", "") for c in chunks)
    assert text.strip() == alone["choices"][0]["message"]["content"]
    assert "usage" not in chunks[0]


def test_stream_usage_on_request(client, sse):
    events = sse(
        client.post(
            "/v1/chat/completions", json={**GREEDY, "stream": True, "stream_options": {"include_usage": True}}
        ).text
    )
    last = events[-2]
    assert last["choices"] == [] and last["usage"]["total_tokens"] > 0
    assert all(e["usage"] is None for e in events[:-2])


def test_crisis_is_answered_without_the_model(client, loaded, monkeypatch, sse):
    calls = []
    monkeypatch.setattr(loaded.model, "generate", lambda *a, **k: calls.append(1))
    expected = crisis_reply(load_helplines(), loaded.config.chat.helpline_regions)
    helplines = load_helplines()["regions"]
    tels = [ln["tel"] for code in ("BD", "IN") for ln in helplines[code]["lines"]]
    # Stop sequences and a tiny max_tokens never cut the crisis message short.
    body = client.post(
        "/v1/chat/completions", json={"messages": [{"role": "user", "content": CRISIS}], "max_tokens": 1, "stop": ["।"]}
    ).json()
    assert body["choices"][0]["message"]["content"] == expected
    assert body["choices"][0]["finish_reason"] == "stop"
    assert body["bondhu"]["crisis"] is True and [h["tel"] for h in body["bondhu"]["helplines"]] == tels
    assert {"name", "number", "tel", "hours", "region"} <= set(body["bondhu"]["helplines"][0])
    events = sse(
        client.post(
            "/v1/chat/completions",
            json={
                "messages": [*USER, {"role": "assistant", "content": "হুম"}, {"role": "user", "content": CRISIS}],
                "stream": True,
            },
        ).text
    )
    assert events[0]["bondhu"]["crisis"] is True and events[0]["bondhu"]["helplines"]
    assert "".join(e["choices"][0]["delta"].get("content", "") for e in events[:-1]) == expected
    assert events[-2]["choices"][0]["finish_reason"] == "stop" and events[-1] == "[DONE]"
    assert "09612119911" in expected and not calls


# ------------------------------------------------------------------------------------- errors
BAD_BODIES = [
    ("not an object", b"[1, 2]", None),
    ("no messages", {}, "messages"),
    ("messages not a list", {"messages": "হ্যালো"}, "messages"),
    ("empty messages", {"messages": []}, "messages"),
    ("message not an object", {"messages": ["হ্যালো"]}, "messages[0]"),
    ("unknown role", {"messages": [{"role": "robot", "content": "হ্যালো"}]}, "messages[0].role"),
    ("tool role", {"messages": [{"role": "tool", "content": "{}"}]}, "messages[0].role"),
    ("no role", {"messages": [{"content": "হ্যালো"}]}, "messages[0].role"),
    ("content a number", {"messages": [{"role": "user", "content": 5}]}, "messages[0].content"),
    (
        "content a list of parts",
        {"messages": [{"role": "user", "content": [{"type": "text", "text": "হ্যালো"}]}]},
        "messages[0].content",
    ),
    ("content null", {"messages": [{"role": "user", "content": None}]}, "messages[0].content"),
    ("no content", {"messages": [*USER, {"role": "assistant"}]}, "messages[1].content"),
    (
        "last message not from the user",
        {"messages": [*USER, {"role": "assistant", "content": "হুম"}]},
        "messages[1].role",
    ),
    ("max_tokens over the limit", {"messages": USER, "max_tokens": 1025}, "max_tokens"),
    ("max_tokens zero", {"messages": USER, "max_tokens": 0}, "max_tokens"),
    ("max_tokens negative", {"messages": USER, "max_tokens": -5}, "max_tokens"),
    ("max_tokens not a number", {"messages": USER, "max_tokens": "many"}, "max_tokens"),
    (
        "max_completion_tokens over the limit",
        {"messages": USER, "max_completion_tokens": 5000},
        "max_completion_tokens",
    ),
    ("temperature below 0", {"messages": USER, "temperature": -0.1}, "temperature"),
    ("temperature above 2", {"messages": USER, "temperature": 2.5}, "temperature"),
    ("top_p zero", {"messages": USER, "top_p": 0}, "top_p"),
    ("top_p above 1", {"messages": USER, "top_p": 1.5}, "top_p"),
    ("n = 2", {"messages": USER, "n": 2}, "n"),
    ("n = 0", {"messages": USER, "n": 0}, "n"),
    ("stream not a boolean", {"messages": USER, "stream": "maybe"}, "stream"),
    ("five stop sequences", {"messages": USER, "stop": ["a", "b", "c", "d", "e"]}, "stop"),
    ("frequency_penalty out of range", {"messages": USER, "frequency_penalty": 3}, "frequency_penalty"),
    ("too many messages", {"messages": [{"role": "user", "content": "হ্যাঁ"}] * 65}, "messages"),
    ("too many characters", {"messages": [{"role": "user", "content": "অ" * 16001}]}, "messages"),
]


@pytest.mark.parametrize("body,param", [pytest.param(b, p, id=name) for name, b, p in BAD_BODIES])
def test_invalid_requests_get_openai_errors(client, app, body, param):
    sent = dict(content=body, headers=JSON) if isinstance(body, bytes) else dict(json=body)
    error = _error(client.post("/v1/chat/completions", **sent), 400, param)
    assert error["type"] == "invalid_request_error"
    assert app.state.slots.active == 0


def test_malformed_json(client):
    for raw in (b'{"messages": [', b"", b"\xff\xfe", b"nan"):
        assert _error(client.post("/v1/chat/completions", content=raw, headers=JSON), 400)["code"] == "invalid_json"


def test_limits_come_from_the_serve_config(loaded):
    cfg = _config(loaded, max_tokens_limit=5, max_messages=2, max_input_chars=10)
    with TestClient(create_app(loaded, cfg)) as client:
        url = "/v1/chat/completions"
        _error(
            client.post(url, json={"messages": [{"role": "user", "content": "হ্যাঁ"}], "max_tokens": 6}), 400, "max_tokens"
        )
        assert (
            client.post(url, json={"messages": [{"role": "user", "content": "হ্যাঁ"}], "max_tokens": 5}).status_code == 200
        )
        _error(client.post(url, json={"messages": [{"role": "user", "content": "হ্যাঁ"}] * 3}), 400, "messages")
        too_long = _error(client.post(url, json={"messages": [{"role": "user", "content": "অ" * 11}]}), 400, "messages")
        assert too_long["code"] == "context_length_exceeded"


def test_validation_and_http_errors_use_the_openai_shape(loaded):
    app = create_app(loaded)

    @app.get("/typed")
    async def typed(count: int):
        return {"count": count}

    with TestClient(app) as client:
        assert _error(client.get("/typed?count=many"), 400, "query.count")["type"] == "invalid_request_error"
        _error(client.get("/no/such/path"), 404)
        _error(client.get("/v1/chat/completions"), 405)
        _error(client.get("/static/missing.js"), 404)


def test_api_key(loaded):
    with TestClient(create_app(loaded, _config(loaded, api_key="s3cret"))) as client:
        url = "/v1/chat/completions"
        for headers in (
            {},
            {"Authorization": "Bearer wrong"},
            {"Authorization": "Basic s3cret"},
            {"Authorization": "s3cret"},
        ):
            error = _error(client.post(url, json=GREEDY, headers=headers), 401)
            assert error["code"] == "invalid_api_key"
        response = client.post(url, content=b"{broken", headers={"Authorization": "Bearer nope", **JSON})
        assert response.status_code == 401 and response.headers["www-authenticate"] == "Bearer"
        _error(client.get("/v1/models"), 401)
        good = {"Authorization": "Bearer s3cret"}
        assert client.get("/v1/models", headers=good).status_code == 200
        assert client.post(url, json=GREEDY, headers=good).json()["choices"][0]["message"]["content"]
        assert client.get("/health").status_code == 200 and client.get("/").status_code == 200


# --------------------------------------------------------------------- parameters, stop, failures
class FakeRespond:
    """Stands in for chat.session.respond: records what it was given, streams fixed pieces."""

    def __init__(self, pieces):
        self.pieces, self.calls = pieces, []

    def __call__(self, loaded, messages, settings, safety, context_tokens, stop=None, wait_s=None):
        self.calls.append(
            {
                "messages": messages,
                "settings": settings,
                "context_tokens": context_tokens,
                "stop": stop,
                "wait_s": wait_s,
            }
        )
        pieces = self.pieces() if callable(self.pieces) else iter(self.pieces)
        return Reply(SafetyLayer().check("ভালো আছি"), pieces, False, Usage(3))


def test_openai_params_map_onto_generation_settings(loaded, monkeypatch):
    fake = FakeRespond(["ঠিক আছে"])
    monkeypatch.setattr(backend, "respond", fake)
    cfg = loaded.config.model_copy(deep=True)
    cfg.generation = cfg.generation.model_copy(update={"repetition_penalty": 1.3, "do_sample": False})
    with TestClient(create_app(loaded, cfg)) as client:
        url = "/v1/chat/completions"
        body = client.post(
            url,
            json={
                "model": "gpt-4o",
                "messages": USER,
                "temperature": 0.3,
                "top_p": 0.8,
                "max_tokens": 7,
                "seed": 42,
                "frequency_penalty": 0.5,
                "presence_penalty": -1,
                "n": 1,
                "user": "u-1",
                "logprobs": False,
            },
        ).json()
        assert body["choices"][0]["message"]["content"] == "ঠিক আছে" and body["model"] == "bondhu"
        s = fake.calls[-1]["settings"]
        assert (s.temperature, s.top_p, s.max_new_tokens, s.seed, s.do_sample, s.repetition_penalty) == (
            0.3,
            0.8,
            7,
            42,
            True,
            1.3,
        )
        assert fake.calls[-1]["context_tokens"] == cfg.chat.context_tokens
        client.post(url, json={"messages": USER, "temperature": 0, "max_completion_tokens": 3, "max_tokens": 9})
        s = fake.calls[-1]["settings"]
        assert (s.do_sample, s.max_new_tokens) == (False, 3)
        client.post(url, json={"messages": USER})
        s = fake.calls[-1]["settings"]
        # No parameters: the run's own settings, but a seed of the request's own, so asking again samples anew.
        assert s.model_copy(update={"seed": cfg.generation.seed}) == cfg.generation
        client.post(url, json={"messages": USER})
        assert fake.calls[-1]["settings"].seed != s.seed
        assert fake.calls[-1]["wait_s"] == cfg.serve.queue_timeout_s
        client.post(
            url,
            json={
                "messages": [
                    {"role": "developer", "content": "ক"},
                    *USER,
                    {"role": "assistant", "content": "খ"},
                    {"role": "system", "content": "গ"},
                    {"role": "user", "content": "ঘ"},
                ]
            },
        )
        assert fake.calls[-1]["messages"] == [
            {"role": "system", "content": "ক\n\nগ"},
            *USER,
            {"role": "assistant", "content": "খ"},
            {"role": "user", "content": "ঘ"},
        ]


def test_stop_sequences_cut_the_reply_and_stop_generation(loaded, monkeypatch, sse):
    fake = FakeRespond(["ঠিক আছে, ", "আমি শুন", "ছি। তুমি", " বলো"])
    monkeypatch.setattr(backend, "respond", fake)
    app = create_app(loaded)
    with TestClient(app) as client:
        url = "/v1/chat/completions"
        body = client.post(url, json={"messages": USER, "stop": "শুনছি"}).json()
        assert body["choices"][0]["message"]["content"] == "ঠিক আছে, আমি"
        assert body["choices"][0]["finish_reason"] == "stop" and fake.calls[-1]["stop"].is_set()
        events = sse(client.post(url, json={"messages": USER, "stop": ["xyz", "শুনছি"], "stream": True}).text)
        pieces = [e["choices"][0]["delta"].get("content", "") for e in events[:-1]]
        assert "".join(pieces) == "ঠিক আছে, আমি " and not any("শুন" in p for p in pieces)
        assert events[-2]["choices"][0]["finish_reason"] == "stop"
        body = client.post(url, json={"messages": USER, "stop": ["নেই"]}).json()
        assert body["choices"][0]["message"]["content"] == "ঠিক আছে, আমি শুনছি। তুমি বলো"
        assert app.state.slots.cancelled == 2 and app.state.slots.active == 0


def test_generation_failure(loaded, monkeypatch, sse):
    def broken():
        yield "ঠিক"
        raise RuntimeError("out of memory")

    monkeypatch.setattr(backend, "respond", FakeRespond(broken))
    app = create_app(loaded)
    with TestClient(app, raise_server_exceptions=False) as client:
        error = _error(client.post("/v1/chat/completions", json={"messages": USER}), 500)
        assert error["type"] == "server_error" and "memory" not in error["message"]
        events = sse(client.post("/v1/chat/completions", json={"messages": USER, "stream": True}).text)
        assert events[-1]["error"]["type"] == "server_error" and "[DONE]" not in events
        assert app.state.slots.active == 0


# ------------------------------------------------------------------------------------- the CLI
@pytest.fixture()
def captured_uvicorn(monkeypatch):
    import uvicorn

    seen = {}
    monkeypatch.setattr(uvicorn, "run", lambda app, **kw: seen.update(app=app, **kw))
    return seen


def test_serve_cli_defaults_come_from_the_run(run_cli, serve_run, captured_uvicorn, monkeypatch):
    monkeypatch.delenv("BONDHU_API_KEY", raising=False)
    result = run_cli("serve", serve_run, "--port", "8765")
    assert result.code == 0, result.err
    assert isinstance(captured_uvicorn["app"], FastAPI)
    assert (captured_uvicorn["host"], captured_uvicorn["port"]) == ("127.0.0.1", 8765)
    assert captured_uvicorn["app"].state.config.serve.api_key is None
    assert "http://127.0.0.1:8765/" in result.out and "warning" not in result.err


def test_serve_cli_api_key_and_host(run_cli, serve_run, captured_uvicorn, monkeypatch):
    monkeypatch.setenv("BONDHU_API_KEY", "from-env")
    assert run_cli("serve", serve_run).code == 0
    assert captured_uvicorn["app"].state.config.serve.api_key == "from-env"
    assert captured_uvicorn["port"] == 8000
    monkeypatch.delenv("BONDHU_API_KEY")
    result = run_cli("serve", serve_run, "--host", "0.0.0.0", "--api-key", "k")
    assert result.code == 0 and captured_uvicorn["host"] == "0.0.0.0" and "warning" not in result.err
    assert captured_uvicorn["app"].state.config.serve.api_key == "k"
    result = run_cli("serve", serve_run, "--host", "0.0.0.0")
    assert result.code == 0 and "without an API key" in result.err


def test_serve_cli_errors(run_cli, tmp_path):
    missing = run_cli("serve", tmp_path / "nope")
    assert missing.code == 1 and "run directory not found" in missing.err and "Traceback" not in missing.err
    bad_port = run_cli("serve", tmp_path, "--port", "70000")
    assert bad_port.code != 0 and "65535" in bad_port.err and "Traceback" not in bad_port.err
    assert "serve" in run_cli("--help").out


# ------------------------------------------------------------------ tiers, context, withdrawn replies
CONCERN = "ami sobar jonno ekta bojha"


def test_a_concern_is_answered_by_the_model_then_checked_in_with_helplines(client, sse):
    body = client.post(
        "/v1/chat/completions", json={**GREEDY, "messages": [{"role": "user", "content": CONCERN}], "max_tokens": 8}
    ).json()
    flag, text = body["bondhu"], body["choices"][0]["message"]["content"]
    assert flag["level"] == "concern" and flag["crisis"] is False and flag["category"]
    assert flag["helplines"] and "নিজেকে আঘাত" in text and text.rstrip().endswith("।")
    events = sse(
        client.post(
            "/v1/chat/completions",
            json={**GREEDY, "stream": True, "max_tokens": 8, "messages": [{"role": "user", "content": CONCERN}]},
        ).text
    )
    assert events[0]["bondhu"]["level"] == "concern" and events[0]["bondhu"]["helplines"]
    assert any(isinstance(e, dict) and (e.get("bondhu") or {}).get("check_in") for e in events)


def test_the_server_reads_the_conversation_it_is_sent(client):
    turns = [
        {"role": "user", "content": "সব চেষ্টা করে দেখেছি, কিছুতেই কিছু হয় না"},
        {"role": "assistant", "content": "শুনছি।"},
        {"role": "user", "content": "তাই ঠিক করেছি চলে যাব"},
    ]
    body = client.post("/v1/chat/completions", json={**GREEDY, "messages": turns}).json()
    assert body["bondhu"]["crisis"] is True and body["bondhu"]["level"] == "crisis"
    # Just after a crisis, thanks does not take it back: the crisis stands, the model answers (no
    # second crisis reply) and the follow-up with the helplines comes after its reply.
    after = [
        {"role": "user", "content": "ami ajke rate nijeke sesh kore debo"},
        {"role": "assistant", "content": "…"},
        {"role": "user", "content": "ধন্যবাদ, একটু ভালো লাগছে"},
    ]
    body = client.post("/v1/chat/completions", json={**GREEDY, "messages": after}).json()
    flag = body["bondhu"]
    assert flag["crisis"] is False and flag["level"] == "crisis" and flag["standing"] is True
    assert flag["elevated"] is True and flag["helplines"]
    assert body["choices"][0]["message"]["content"].endswith(crisis_follow_up())


def test_an_unsafe_reply_is_withdrawn_in_both_modes(loaded, monkeypatch, sse):
    from bondhu.chat.session import Withdrawn

    def fake(loaded_, messages, settings, safety, context_tokens, stop=None, wait_s=None):
        gone = Withdrawn(safety.replacement)
        gone.reason = "method details"
        return Reply(safety.check("ভালো আছি"), iter(["ঘুমের ", gone]), False, Usage(3))

    monkeypatch.setattr(backend, "respond", fake)
    with TestClient(create_app(loaded)) as c:
        body = c.post("/v1/chat/completions", json=GREEDY).json()
        assert body["choices"][0]["message"]["content"] == SafetyLayer().replacement
        assert body["bondhu"]["withdrawn"] == "method details"
        events = sse(c.post("/v1/chat/completions", json={**GREEDY, "stream": True}).text)
        assert any(isinstance(e, dict) and (e.get("bondhu") or {}).get("withdrawn") == "method details" for e in events)
