"""`bondhu serve --upstream` from the command line, and the gateway's config checked at load."""

from __future__ import annotations

import pytest

from bondhu.config import DEFAULT_SYSTEM_PROMPT, load_config
from bondhu.errors import ConfigError
from engine_stub import dead_url


# ------------------------------------------------------------------------------------------ config
@pytest.mark.parametrize(
    "overrides,field",
    [
        (["serve.upstream.url=ftp://engine/v1"], "serve.upstream.url"),
        (["serve.upstream.url=http://user:pass@engine/v1"], "serve.upstream.url"),
        (["serve.upstream.url=http://engine:99999"], "serve.upstream.url"),
        (["serve.upstream.url=http://engine", "serve.upstream.timeout_s=0"], "serve.upstream.timeout_s"),
        (["serve.upstream.url=http://engine", "serve.upstream.api_key_env=sk-123"], "serve.upstream.api_key_env"),
        (["serve.upstream.url=http://engine", "serve.upstream.max_concurrency=64"], "max_concurrency"),
        (["serve.upstream.url=http://engine", "serve.upstream.modle=x"], "serve.upstream.modle: unknown field"),
        (["serve.upstream.model=bondhu"], "serve.upstream.url: Field required"),
    ],
)
def test_bad_upstream_config_is_refused_at_load(overrides, field):
    with pytest.raises(ConfigError, match=field.replace(".", r"\.")):
        load_config(None, overrides)


def test_the_url_is_normalized_to_the_engine_s_base():
    for given in ("http://engine:8000", "http://engine:8000/", "http://engine:8000/v1/"):
        assert load_config(None, [f"serve.upstream.url={given}"]).serve.upstream.url == "http://engine:8000/v1"
    assert load_config(None, ["serve.upstream.url=http://ollama:11434/v1"]).serve.upstream.url.endswith(":11434/v1")


# --------------------------------------------------------------------------------------------- CLI
@pytest.fixture()
def captured_uvicorn(monkeypatch):
    import uvicorn

    import bondhu.inference.model as inference

    def no_model(*args, **kwargs):
        raise AssertionError("a gateway loads no model")

    seen = {}
    monkeypatch.setattr(uvicorn, "run", lambda app, **kw: seen.update(app=app, **kw))
    monkeypatch.setattr(inference, "load_for_inference", no_model)
    return seen


def test_serve_cli_as_a_gateway(run_cli, engine, captured_uvicorn, monkeypatch):
    from bondhu.serve.upstream import UpstreamBackend

    monkeypatch.setenv("BONDHU_TEST_ENGINE_KEY", "engine-s3cret")
    bare = engine.url.removesuffix("/v1")  # a bare host:port gets /v1
    result = run_cli("serve", "--upstream", bare, "--port", "8766", "--upstream-api-key-env", "BONDHU_TEST_ENGINE_KEY")
    assert result.code == 0, result.err
    app = captured_uvicorn["app"]
    assert isinstance(app.state.backend, UpstreamBackend) and app.state.loaded is None
    up = app.state.config.serve.upstream
    assert (up.url, up.model, up.api_key_env) == (engine.url, "bondhu", "BONDHU_TEST_ENGINE_KEY")
    assert f"upstream {engine.url}" in result.out and "warning" not in result.err
    assert "engine-s3cret" not in result.out + result.err
    assert app.state.config.data.system_prompt == DEFAULT_SYSTEM_PROMPT  # no run: the defaults


def test_serve_cli_gateway_reads_the_run_s_config_but_loads_no_model(run_cli, serve_run, engine, captured_uvicorn):
    result = run_cli("serve", serve_run, "--upstream", engine.url, "--upstream-model", "other")
    assert result.code == 0, result.err
    assert captured_uvicorn["app"].state.config.generation.max_new_tokens == 8  # the run's own settings
    assert "serves bondhu, not 'other'" in result.err  # a warning: the engine's list is checked at start


@pytest.mark.parametrize(
    "args,message",
    [
        (["--upstream", "ftp://engine/v1"], "serve.upstream.url: must be an http:// or https:// URL"),
        (
            ["--upstream", "http://127.0.0.1:8080", "--upstream-api-key-env", "NO_SUCH_KEY_VAR"],
            "NO_SUCH_KEY_VAR is not set",
        ),
        (["--upstream", "http://127.0.0.1:8080", "--backend", "fast"], "--backend chooses the local model"),
        (["--upstream-model", "bondhu"], "serve.upstream.url: Field required"),
        ([], "nothing to serve"),
    ],
)
def test_serve_cli_gateway_errors_are_one_line(run_cli, captured_uvicorn, monkeypatch, args, message):
    monkeypatch.delenv("NO_SUCH_KEY_VAR", raising=False)
    result = run_cli("serve", *args)
    assert result.code != 0 and message in result.err and "Traceback" not in result.err, result.err


def test_serve_cli_warns_when_the_engine_is_not_up_yet(run_cli, captured_uvicorn):
    result = run_cli("serve", "--upstream", dead_url())
    assert result.code == 0 and "does not answer yet" in result.err
