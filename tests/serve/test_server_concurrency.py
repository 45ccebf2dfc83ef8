"""A live uvicorn server: the official openai client, 16 streams at once, a full queue, disconnects."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import httpx
import openai
import pytest

from bondhu.serve.app import create_app

USER = [{"role": "user", "content": "আজ মনটা খুব খারাপ।"}]
CRISIS = "ajke rate ghumer oshudh gula sob kheye felbo"


@pytest.fixture(scope="module")
def app(loaded):
    return create_app(loaded)


@pytest.fixture(scope="module")
def url(app, serving):
    with serving(app) as base:
        yield base


def _post(base: str, body: dict, **kw) -> httpx.Response:
    return httpx.post(f"{base}/v1/chat/completions", json=body, timeout=60, **kw)


def _stream(base: str, body: dict, sse) -> list:
    with httpx.stream("POST", f"{base}/v1/chat/completions", json={**body, "stream": True}, timeout=60) as r:
        assert r.status_code == 200, r.read()
        assert r.headers["content-type"].startswith("text/event-stream")
        return sse("".join(r.iter_text()))


def _text(events: list) -> str:
    return "".join(e["choices"][0]["delta"].get("content", "") for e in events if e != "[DONE]" and e["choices"])


@pytest.fixture()
def held(loaded):
    """Hold the model (as a long generation would) until the test lets go; always let go."""
    loaded.lock.acquire()
    state = {"held": True}

    def release():
        if state.pop("held", False):
            loaded.lock.release()

    yield release
    release()


@pytest.fixture()
def generations(loaded, monkeypatch):
    """Record how many tokens each model.generate call produced, and its last token."""
    real, seen = loaded.model.generate, []

    def spy(*args, **kwargs):
        out = real(*args, **kwargs)
        seen.append((out.shape[1] - kwargs["input_ids"].shape[1], int(out[0, -1])))
        return out

    monkeypatch.setattr(loaded.model, "generate", spy)
    return seen


def test_the_official_openai_client(url, loaded, serving):
    client = openai.OpenAI(base_url=f"{url}/v1", api_key="not-needed", max_retries=0)
    done = client.chat.completions.create(model="bondhu", messages=USER, temperature=0, max_tokens=8)
    assert done.object == "chat.completion" and done.model == "bondhu"
    assert done.choices[0].message.role == "assistant" and done.choices[0].message.content.strip()
    assert done.choices[0].finish_reason in ("stop", "length")
    assert done.usage.total_tokens == done.usage.prompt_tokens + done.usage.completion_tokens
    assert done.model_extra["bondhu"]["level"] == "none"

    chunks = list(
        client.chat.completions.create(
            model="bondhu",
            messages=USER,
            temperature=0,
            max_tokens=8,
            stream=True,
            stream_options={"include_usage": True},
        )
    )
    assert chunks[0].choices[0].delta.role == "assistant"
    assert (
        "".join(c.choices[0].delta.content or "" for c in chunks if c.choices).strip()
        == done.choices[0].message.content
    )
    assert chunks[-2].choices[0].finish_reason == done.choices[0].finish_reason
    assert chunks[-1].choices == [] and chunks[-1].usage.total_tokens == done.usage.total_tokens

    crisis = client.chat.completions.create(model="bondhu", messages=[{"role": "user", "content": CRISIS}])
    assert crisis.model_extra["bondhu"]["crisis"] is True and "09612119911" in crisis.choices[0].message.content
    assert [m.id for m in client.models.list()] == ["bondhu"]
    with pytest.raises(openai.BadRequestError) as bad:
        client.chat.completions.create(model="bondhu", messages=USER, temperature=3)
    assert bad.value.body["param"] == "temperature"

    cfg = loaded.config.model_copy(deep=True)
    cfg.serve = cfg.serve.model_copy(update={"api_key": "s3cret"})
    with serving(create_app(loaded, cfg)) as locked:
        with pytest.raises(openai.AuthenticationError):
            openai.OpenAI(base_url=f"{locked}/v1", api_key="wrong", max_retries=0).models.list()
        keyed = openai.OpenAI(base_url=f"{locked}/v1", api_key="s3cret", max_retries=0)
        assert keyed.chat.completions.create(model="bondhu", messages=USER, max_tokens=4).choices[0].message.content


def test_sixteen_streams_at_once_each_get_their_own_reply(url, app, held, sse, until):
    bodies = [
        {
            "model": "bondhu",
            "messages": [{"role": "user", "content": f"আজ মনটা খারাপ, কথা নম্বর {i}।"}],
            "max_tokens": 8,
            "temperature": 0.9,
            "seed": i,
        }
        for i in range(16)
    ]
    held()  # let the model go for the one-at-a-time replies
    alone = [_post(url, b).json()["choices"][0]["message"]["content"] for b in bodies]
    assert len(set(alone)) > 1  # the prompts and seeds really differ

    lock = app.state.loaded.lock
    lock.acquire()  # every stream is admitted and waiting before any generates
    try:
        with ThreadPoolExecutor(16) as pool:
            futures = [pool.submit(_stream, url, b, sse) for b in bodies]
            assert until(lambda: app.state.slots.active == 16), app.state.slots.active
            lock.release()
            lock = None
            results = [f.result(timeout=60) for f in futures]
    finally:
        if lock is not None:
            lock.release()
    ids = set()
    for events, expected in zip(results, alone):
        assert events[-1] == "[DONE]" and events[0]["choices"][0]["delta"]["role"] == "assistant"
        assert events[-2]["choices"][0]["finish_reason"] in ("stop", "length")
        assert len({e["id"] for e in events[:-1]}) == 1
        ids.add(events[0]["id"])
        assert _text(events).strip() == expected
    assert len(ids) == 16
    assert until(lambda: app.state.slots.active == 0)


def test_a_full_queue_answers_503_but_never_to_a_crisis(loaded, serving, held, sse, until):
    cfg = loaded.config.model_copy(deep=True)
    cfg.serve = cfg.serve.model_copy(update={"queue_size": 1})
    app = create_app(loaded, cfg)
    with serving(app) as base:
        first: dict = {}
        waiting = threading.Thread(target=lambda: first.update(events=_stream(base, {"messages": USER}, sse)))
        waiting.start()
        assert until(lambda: app.state.slots.active == 1)
        for stream in (False, True):
            busy = _post(base, {"messages": USER, "stream": stream})
            assert busy.status_code == 503 and busy.headers["retry-after"] == "2"
            assert busy.json()["error"]["type"] == "server_error" and busy.json()["error"]["code"] == "server_busy"
        crisis = _post(base, {"messages": [{"role": "user", "content": CRISIS}]})
        assert crisis.status_code == 200 and crisis.json()["bondhu"]["crisis"] is True
        assert app.state.slots.active == 1
        held()
        waiting.join(30)
        assert first["events"][-1] == "[DONE]" and _text(first["events"]).strip()
        assert until(lambda: app.state.slots.active == 0)
        assert _post(base, {"messages": USER}).status_code == 200


def test_a_client_gone_while_waiting_frees_its_slot(url, app, held, generations, until):
    slots, before = app.state.slots, app.state.slots.cancelled
    with httpx.Client(timeout=30) as client:
        body = {"messages": USER, "stream": True, "max_tokens": 1024, "temperature": 0}
        with client.stream("POST", f"{url}/v1/chat/completions", json=body) as response:
            first = next(response.iter_lines())  # the role chunk comes before the model is free
            assert '"role": "assistant"' in first
    # The connection is closed: the server notices while the request still waits for the model.
    assert until(lambda: slots.cancelled == before + 1)
    assert slots.active == 1
    held()
    assert until(lambda: slots.active == 0)
    # cancelled while queued: generation is skipped (or stopped at once), never run to 1024 tokens
    assert all(produced <= 2 for produced, _ in generations)
    assert _post(url, {"messages": USER}).status_code == 200 and slots.active == 0


def test_a_client_gone_mid_stream_stops_generation(url, app, loaded, held, generations, until):
    held()
    slots, before = app.state.slots, app.state.slots.cancelled
    body = {"messages": USER, "stream": True, "max_tokens": 1024, "temperature": 0}
    with httpx.Client(timeout=30) as client:
        with client.stream("POST", f"{url}/v1/chat/completions", json=body) as response:
            for line in response.iter_lines():
                if '"content": "' in line and '"role"' not in line:
                    break  # the reply is streaming: hang up
    assert until(lambda: slots.active == 0)
    assert slots.cancelled == before + 1
    produced, last = generations[-1]
    eos = {loaded.tokenizer.convert_tokens_to_ids(t) for t in ("<|eot_id|>", "<|eom_id|>", "<|end_of_text|>")}
    assert produced < 1024 and last not in eos  # cut short by the disconnect, not ended by the model
    ok = _post(url, {"messages": USER, "max_tokens": 4})
    assert ok.status_code == 200 and ok.json()["choices"][0]["message"]["content"]
