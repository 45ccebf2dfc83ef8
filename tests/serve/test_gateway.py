"""`bondhu serve --upstream`: the safety gateway in front of an OpenAI-compatible engine.

Most tests drive a scripted stub engine (tests/engine_stub.py), which can fail in every way a real
one can and records what it was sent; the last ones drive a real engine, llama-cpp-python's server
with the tiny model exported to GGUF."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager

import httpx
import pytest

from bondhu.config import DEFAULT_SYSTEM_PROMPT, BondhuConfig, load_config
from bondhu.errors import ConfigError
from bondhu.safety import PLACEHOLDER, SAFETY_NOTE, SafetyLayer, crisis_reply, load_helplines
from bondhu.serve.app import create_app
from engine_stub import dead_url

USER = [{"role": "user", "content": "আজ মনটা খুব খারাপ।"}]
CRISIS = "ajke rate ghumer oshudh gula sob kheye felbo"
CONCERN = "ami sobar jonno ekta bojha"
STUB_TEXT = "ঠিক আছে, আমি শুনছি।"


@pytest.fixture(autouse=True)
def fresh_script(engine):
    engine.reset()


@pytest.fixture(scope="module")
def safety():
    cfg = BondhuConfig()
    return SafetyLayer.from_config(cfg.chat, cfg.safety)


def gateway_config(url: str, *overrides: str) -> BondhuConfig:
    return load_config(None, [f"serve.upstream.url={url}", "serve.upstream.timeout_s=5", *overrides])


@pytest.fixture(scope="module")
def open_gateway(serving, safety):
    """Serve a gateway in front of ``url`` with config ``overrides``; yields its base URL and app."""

    @contextmanager
    def start(url: str, *overrides: str):
        app = create_app(None, gateway_config(url, *overrides), safety)
        with serving(app) as base:
            yield base, app

    return start


@pytest.fixture(scope="module")
def gateway(engine, open_gateway):
    with open_gateway(engine.url) as (base, _):
        yield base


def post(base: str, body: dict, **kw) -> httpx.Response:
    return httpx.post(f"{base}/v1/chat/completions", json=body, timeout=30, **kw)


def stream(base: str, body: dict, sse) -> tuple[int, list]:
    with httpx.stream("POST", f"{base}/v1/chat/completions", json={**body, "stream": True}, timeout=30) as r:
        return r.status_code, sse(r.read().decode()) if r.status_code == 200 else r.json()


def text_of(events: list) -> str:
    return "".join(e["choices"][0]["delta"].get("content", "") for e in events if "choices" in e and e["choices"])


# ----------------------------------------------------------------------- replies through the engine
def test_health_models_and_the_page(gateway):
    health = httpx.get(f"{gateway}/health").json()
    assert health["status"] == "ok" and health["backend"] == "upstream" and health["upstream_model"] == "bondhu"
    assert httpx.get(f"{gateway}/v1/models").json()["data"][0]["id"] == "bondhu"
    page = httpx.get(f"{gateway}/")
    assert (
        page.status_code == 200
        and 'lang="bn"' in page.text
        and "default-src 'self'" in page.headers["content-security-policy"]
    )
    assert httpx.get(f"{gateway}/static/app.js").status_code == 200


def test_a_reply_and_a_stream_come_from_the_engine(gateway, engine, sse):
    body = post(gateway, {"model": "gpt-4o", "messages": USER, "temperature": 0, "max_tokens": 7, "seed": 3}).json()
    assert body["object"] == "chat.completion" and body["model"] == "bondhu"
    assert body["choices"][0]["message"]["content"] == STUB_TEXT and body["choices"][0]["finish_reason"] == "stop"
    assert body["bondhu"]["level"] == "none" and body["bondhu"]["crisis"] is False
    assert body["usage"] == {"prompt_tokens": 11, "completion_tokens": 4, "total_tokens": 15}
    sent = engine.requests[-1]["body"]
    assert sent["model"] == "bondhu" and sent["stream"] is True and sent["max_tokens"] == 7 and sent["seed"] == 3
    assert sent["temperature"] == 0 and sent["messages"] == [
        {"role": "system", "content": DEFAULT_SYSTEM_PROMPT},
        *USER,
    ]
    assert "authorization" not in engine.requests[-1]["headers"]

    status, events = stream(gateway, {"messages": USER, "stream_options": {"include_usage": True}}, sse)
    assert status == 200 and events[-1] == "[DONE]"
    assert (
        events[0]["choices"][0]["delta"] == {"role": "assistant", "content": ""}
        and events[0]["bondhu"]["level"] == "none"
    )
    assert text_of(events) == STUB_TEXT and events[-3]["choices"][0]["finish_reason"] == "stop"
    assert events[-2]["usage"]["completion_tokens"] == 4
    assert len(engine.requests) == 2


def test_an_engine_without_token_counts_and_one_that_hits_the_length(gateway, engine):
    engine.reset(usage=False, finish_reason="length")  # as llama-cpp-python's server streams
    body = post(gateway, {"messages": USER, "max_tokens": 4}).json()
    assert body["usage"]["completion_tokens"] == 4 and body["choices"][0]["finish_reason"] == "length"


def test_deltas_pass_through_as_they_arrive(gateway, engine):
    go_on = threading.Event()
    engine.reset(after_first=go_on)  # the engine sends one delta, then waits for this test
    with httpx.stream(
        "POST", f"{gateway}/v1/chat/completions", json={"messages": USER, "stream": True}, timeout=10
    ) as r:
        lines = r.iter_lines()
        first = next(line for line in lines if '"content": "ঠিক' in line)  # before the engine sends more
        assert engine.active == 1
        go_on.set()
        rest = list(lines)
    assert first and rest[-2] == "data: [DONE]"


def test_a_stop_sequence_ends_the_engine_s_stream(gateway, engine, until):
    engine.reset(deltas=["ঠিক ", "আছে, ", "আমি ", "শুনছি।"] * 10, gap_s=0.05)
    body = post(gateway, {"messages": USER, "stop": "আমি"}).json()
    assert body["choices"][0]["message"]["content"] == "ঠিক আছে," and body["choices"][0]["finish_reason"] == "stop"
    assert until(lambda: engine.active == 0) and engine.cut_short == 1


# ------------------------------------------------------------------------------------------ safety
def test_a_crisis_never_reaches_the_engine(gateway, engine, sse):
    expected = crisis_reply(load_helplines(), ["BD", "IN"])
    body = post(gateway, {"messages": [{"role": "user", "content": CRISIS}], "max_tokens": 1, "stop": ["।"]}).json()
    assert body["choices"][0]["message"]["content"] == expected and body["usage"]["total_tokens"] == 0
    assert body["bondhu"]["crisis"] is True and body["bondhu"]["level"] == "crisis" and body["bondhu"]["helplines"]
    turns = [
        {"role": "user", "content": "সব চেষ্টা করে দেখেছি, কিছুতেই কিছু হয় না"},
        {"role": "assistant", "content": "শুনছি।"},
        {"role": "user", "content": "তাই ঠিক করেছি চলে যাব"},
    ]
    status, events = stream(gateway, {"messages": turns}, sse)
    assert status == 200 and events[0]["bondhu"]["crisis"] is True
    assert text_of(events) == expected and events[-1] == "[DONE]"
    assert engine.requests == []


def test_a_concern_gets_the_engine_s_reply_then_the_check_in(gateway, engine, safety, sse):
    check_in = safety.check_in_for(safety.check(CONCERN))
    body = post(gateway, {"messages": [{"role": "user", "content": CONCERN}]}).json()
    assert body["bondhu"]["level"] == "concern" and body["bondhu"]["helplines"]
    assert body["choices"][0]["message"]["content"] == f"{STUB_TEXT}\n\n{check_in}"
    assert len(engine.requests) == 1 and SAFETY_NOTE in engine.requests[0]["body"]["messages"][0]["content"]
    status, events = stream(gateway, {"messages": [{"role": "user", "content": CONCERN}]}, sse)
    assert any((e.get("bondhu") or {}).get("check_in") for e in events[:-1]) and check_in in text_of(events)
    assert len(engine.requests) == 2
    after = [
        {"role": "user", "content": "ami ajke rate nijeke sesh kore debo"},  # a crisis, no means named
        {"role": "assistant", "content": "…"},
        {"role": "user", "content": "ধন্যবাদ, একটু ভালো লাগছে"},
    ]
    flag = post(gateway, {"messages": after}).json()["bondhu"]  # judged as a conversation: just after a crisis
    assert flag["crisis"] is False and flag["elevated"] is True and flag["helplines"]
    assert len(engine.requests) == 3 and SAFETY_NOTE in engine.requests[2]["body"]["messages"][0]["content"]


@pytest.mark.parametrize(
    "deltas",
    [
        ["আমাকে ০১", "৭১২", "-৩৪৫", "৬৭৮ নম্বরে", " ফোন করো, অথবা ০৯৬১", "২১১৯৯১১ নম্বরে।"],
        ["call me on 0", "1712", "-34", "5", "678 or 0961", "2119911", "."],
    ],
    ids=["bengali digits", "ascii digits"],
)
def test_a_phone_number_split_across_deltas_is_masked(gateway, engine, safety, sse, deltas):
    engine.reset(deltas=deltas)
    expected = safety.clean_output("".join(deltas))
    assert PLACEHOLDER in expected
    status, events = stream(gateway, {"messages": USER}, sse)
    pieces = [e["choices"][0]["delta"].get("content", "") for e in events[:-1]]
    assert "".join(pieces) == expected and not any(d in p for p in pieces for d in ("৭১২", "1712", "৩৪৫", "34"))
    assert post(gateway, {"messages": USER}).json()["choices"][0]["message"]["content"] == expected


def test_an_unsafe_reply_is_withdrawn_and_the_engine_let_go(gateway, engine, safety, sse, until):
    engine.reset(deltas=["ঘুমের ", "ওষুধ ", "৩০টা ", "একসাথে ", "খাও"] + ["।"] * 40, gap_s=0.05)
    status, events = stream(gateway, {"messages": USER}, sse)
    gone = [e for e in events if isinstance(e, dict) and (e.get("bondhu") or {}).get("withdrawn")]
    assert gone and gone[0]["choices"][0]["delta"]["content"] == safety.replacement
    assert until(lambda: engine.active == 0) and engine.cut_short == 1


# -------------------------------------------------------------------------------- engine failures
def test_an_engine_that_is_down_is_a_502_naming_it(open_gateway, sse):
    url = dead_url()
    with open_gateway(url) as (base, _):
        for answer in (post(base, {"messages": USER}), post(base, {"messages": USER, "stream": True})):
            assert answer.status_code == 502, answer.text
            error = answer.json()["error"]
            assert (
                error["code"] == "upstream_unreachable" and url in error["message"] and error["type"] == "server_error"
            )
        crisis = post(base, {"messages": [{"role": "user", "content": CRISIS}]})  # needs no engine
        assert crisis.status_code == 200 and crisis.json()["bondhu"]["crisis"] is True
        assert httpx.get(f"{base}/health").json()["active"] == 0


def test_a_slow_engine_is_a_504_within_the_timeout(open_gateway, engine, sse):
    engine.reset(hold_s=6)
    with open_gateway(engine.url, "serve.upstream.timeout_s=0.5") as (base, app):
        for streamed in (False, True):
            started = time.monotonic()
            answer = post(base, {"messages": USER, "stream": streamed})
            assert answer.status_code == 504 and answer.json()["error"]["code"] == "upstream_timeout"
            assert time.monotonic() - started < 3
        engine.reset(hang_after=2)  # silent mid-reply: the stream ends with an error event, not a hang
        started = time.monotonic()
        status, events = stream(base, {"messages": USER}, sse)
        assert status == 200 and text_of(events) == "ঠিক আছে, " and events[-1]["error"]["code"] == "upstream_timeout"
        assert "[DONE]" not in events and time.monotonic() - started < 3
        assert app.state.slots.active == 0


@pytest.mark.parametrize(
    "status,headers,want,code,retry",
    [
        (500, {}, 502, "upstream_error", None),
        (502, {}, 502, "upstream_error", None),
        (503, {}, 503, "upstream_busy", "2"),
        (429, {"Retry-After": "7"}, 503, "upstream_busy", "7"),
        (401, {}, 502, "upstream_auth", None),
        (404, {}, 502, "upstream_error", None),
        (400, {}, 400, "upstream_rejected", None),
    ],
)
def test_engine_statuses_map_to_clear_errors(gateway, engine, status, headers, want, code, retry):
    engine.reset(status=status, headers=headers, message="maximum context length is 4096 tokens")
    for streamed in (False, True):
        answer = post(gateway, {"messages": USER, "stream": streamed})
        assert answer.status_code == want and answer.json()["error"]["code"] == code
        assert answer.headers.get("retry-after") == retry
    assert ("4096 tokens" in answer.json()["error"]["message"]) == (status == 400)  # only a rejection's reason


@pytest.mark.parametrize("failure", [{"drop_after": 2}, {"error_event_after": 2}], ids=["dropped", "error event"])
def test_an_engine_failing_mid_reply_ends_the_stream_with_an_error_event(gateway, engine, sse, failure):
    engine.reset(**failure)
    status, events = stream(gateway, {"messages": USER}, sse)
    assert status == 200 and text_of(events) == "ঠিক আছে, " and "[DONE]" not in events
    assert events[-1]["error"]["code"] == "upstream_error" and events[-1]["error"]["type"] == "server_error"
    answer = post(gateway, {"messages": USER})
    assert answer.status_code == 502 and engine.url in answer.json()["error"]["message"]
    assert httpx.get(f"{gateway}/health").json()["active"] == 0


# ---------------------------------------------------------------------------- concurrency and keys
def test_requests_beyond_the_queue_get_503_and_a_crisis_is_still_answered(open_gateway, engine, until):
    gate = threading.Event()
    engine.reset(gate=gate)
    limit = "serve.queue_size=2", "serve.upstream.max_concurrency=2"
    with open_gateway(engine.url, *limit) as (base, app), ThreadPoolExecutor(2) as pool:
        try:
            held = [pool.submit(post, base, {"messages": USER}) for _ in range(2)]
            assert until(lambda: engine.active == 2)
            busy = post(base, {"messages": USER})
            assert busy.status_code == 503 and busy.json()["error"]["code"] == "server_busy"
            assert busy.headers["retry-after"] == "2"
            assert post(base, {"messages": [{"role": "user", "content": CRISIS}]}).json()["bondhu"]["crisis"]
        finally:
            gate.set()
        assert [f.result().status_code for f in held] == [200, 200]
        assert len(engine.requests) == 2 and until(lambda: app.state.slots.active == 0)


def test_requests_beyond_the_engine_s_share_wait_their_turn(open_gateway, engine, until):
    gate = threading.Event()
    engine.reset(gate=gate)
    with open_gateway(engine.url, "serve.queue_size=3", "serve.upstream.max_concurrency=2") as (base, app):
        with ThreadPoolExecutor(3) as pool:
            try:
                sent = [pool.submit(post, base, {"messages": USER}) for _ in range(3)]
                assert until(lambda: app.state.slots.active == 3 and engine.active == 2)
                time.sleep(0.3)
                assert len(engine.requests) == 2  # the third waits at the gateway, not at the engine
                assert httpx.get(f"{base}/health").json()["upstream_in_flight"] == 2
            finally:
                gate.set()
            assert [f.result().status_code for f in sent] == [200, 200, 200]
    assert engine.peak == 2 and len(engine.requests) == 3


def test_the_engine_s_key_goes_to_the_engine_and_the_gateway_s_key_guards_the_gateway(
    open_gateway, engine, monkeypatch
):
    monkeypatch.setenv("BONDHU_TEST_ENGINE_KEY", "engine-s3cret")
    keys = "serve.api_key=gateway-key", "serve.upstream.api_key_env=BONDHU_TEST_ENGINE_KEY"
    with open_gateway(engine.url, *keys) as (base, _):
        for headers in ({}, {"Authorization": "Bearer engine-s3cret"}):
            assert post(base, {"messages": USER}, headers=headers).status_code == 401
        assert engine.requests == []
        ok = post(base, {"messages": USER}, headers={"Authorization": "Bearer gateway-key"})
        assert ok.status_code == 200 and ok.json()["choices"][0]["message"]["content"] == STUB_TEXT
        assert engine.requests[0]["headers"]["authorization"] == "Bearer engine-s3cret"
        engine.reset(status=401)
        refused = post(base, {"messages": USER}, headers={"Authorization": "Bearer gateway-key"})
        assert refused.json()["error"]["code"] == "upstream_auth"
        health = httpx.get(f"{base}/health")
        for answer in (ok, refused, health):
            assert "engine-s3cret" not in answer.text and "engine-s3cret" not in str(answer.headers)
    monkeypatch.delenv("BONDHU_TEST_ENGINE_KEY")
    with pytest.raises(ConfigError, match="BONDHU_TEST_ENGINE_KEY is not set"):
        create_app(None, gateway_config(engine.url, *keys))


def test_a_client_gone_mid_stream_lets_the_engine_go(gateway, engine, until):
    engine.reset(deltas=["ঠিক "] * 200, gap_s=0.02)
    with httpx.stream("POST", f"{gateway}/v1/chat/completions", json={"messages": USER, "stream": True}) as r:
        next(line for line in r.iter_lines() if '"content": "ঠিক' in line)
    assert until(lambda: engine.active == 0) and engine.cut_short == 1
    assert until(lambda: httpx.get(f"{gateway}/health").json()["active"] == 0)


# ------------------------------------------------------------------- a real engine: llama-cpp-python
GREEDY = {"messages": USER, "temperature": 0, "max_tokens": 12, "seed": 0}


@pytest.fixture(scope="module")
def real_gateway(llama_engine, open_gateway):
    with open_gateway(llama_engine, "serve.upstream.timeout_s=60") as (base, _):
        yield base


def test_a_real_engine_s_reply_and_stream_through_the_gateway(real_gateway, sse):
    body = post(real_gateway, GREEDY).json()
    choice = body["choices"][0]
    assert choice["message"]["content"].strip() and choice["finish_reason"] in ("stop", "length")
    assert body["bondhu"]["level"] == "none" and body["bondhu"]["crisis"] is False
    assert 0 < body["usage"]["completion_tokens"] <= 12
    status, events = stream(real_gateway, GREEDY, sse)
    assert status == 200 and events[-1] == "[DONE]" and events[0]["bondhu"]["level"] == "none"
    assert events[-2]["choices"][0]["finish_reason"] == choice["finish_reason"]
    assert text_of(events).strip() == choice["message"]["content"]  # greedy: one reply, whole or streamed
    assert sum(bool(e["choices"][0]["delta"].get("content")) for e in events[1:-2]) > 1  # piece by piece


def test_the_gateway_passes_on_what_the_engine_writes(real_gateway, llama_engine, safety):
    from bondhu.chat.session import check_turn
    from bondhu.serve import request as checks
    from bondhu.serve.upstream import request_body

    cfg = gateway_config(llama_engine)
    settings, _ = checks.settings(checks.parse(GREEDY), cfg)
    direct = {**request_body(cfg.serve.upstream, check_turn(USER, cfg.data.system_prompt, safety).messages, settings)}
    direct["stream"] = False
    engine = httpx.post(f"{llama_engine}/chat/completions", json=direct, timeout=60).json()
    written = safety.clean_output(engine["choices"][0]["message"]["content"]).strip()
    assert post(real_gateway, GREEDY).json()["choices"][0]["message"]["content"] == written


def test_a_concern_through_a_real_engine_ends_with_the_check_in(real_gateway, safety):
    check_in = safety.check_in_for(safety.check(CONCERN))
    body = post(real_gateway, {**GREEDY, "messages": [{"role": "user", "content": CONCERN}]}).json()
    text = body["choices"][0]["message"]["content"]
    assert body["bondhu"]["level"] == "concern" and text.endswith(check_in) and len(text) > len(check_in)


def test_the_openai_client_through_the_gateway_to_a_real_engine(real_gateway):
    import openai

    client = openai.OpenAI(base_url=f"{real_gateway}/v1", api_key="not-needed", max_retries=0)
    chunks = list(client.chat.completions.create(model="bondhu", stream=True, **GREEDY))
    assert chunks[0].choices[0].delta.role == "assistant" and chunks[0].model_extra["bondhu"]["level"] == "none"
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices).strip()
    crisis = client.chat.completions.create(model="bondhu", messages=[{"role": "user", "content": CRISIS}])
    assert crisis.model_extra["bondhu"]["crisis"] is True and "09612119911" in crisis.choices[0].message.content
