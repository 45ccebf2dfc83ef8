"""What the safety gateway costs: the same streamed requests sent to llama-cpp-python's OpenAI
server directly and through `bondhu serve --upstream`, side by side in one run, on this machine's
CPU with a random-weight model exported to GGUF (f16): the tiny-cpu preset's, or a small Llama
shape whose tokens cost what a fast CPU model's do (see SHAPES).

Both servers run as their own processes, as deployed. Each request goes to both, in alternating
order; the direct request is the one the gateway itself sends the engine (the same system prompt,
messages and settings, built by the gateway's own code), so both paths generate the same greedy
tokens. Reported: time to the first token, wall time per request, tokens/s end to end, and the
gateway's overhead per request and per token.

    python benchmarks/gateway.py [--shape tiny|small] [--gguf FILE] [--reps 5] [--max-tokens 128]
                                 [--threads 1] [--out FILE]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

import httpx
from sse_client import stream

from common import ROOT

PROMPTS = 8  # first user turns of the bundled test conversations (crisis turns never reach an engine)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# "tiny": the tiny-cpu preset's model, decoding hundreds of tokens/s: the gateway's cost per token
# at its most visible, a stress case no deployment has. "small": a 12-layer, 768-wide Llama (about
# 0.1B parameters), still several times faster on one thread than any model served for real chat
# on a CPU (an 8B at q4_k_m), so its overhead is an upper bound for those.
SHAPES = {
    "tiny": {},
    "small": {
        "hidden_size": 768,
        "intermediate_size": 2048,
        "num_hidden_layers": 12,
        "num_attention_heads": 12,
        "num_key_value_heads": 4,
    },
}


def build_gguf(out_dir: Path, shape: str = "tiny") -> Path:
    """A random-weight Llama of ``shape`` (replies run to max_tokens) with the tiny-cpu preset's
    tokenizer, as f16 GGUF."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from bondhu.config import DEFAULT_SYSTEM_PROMPT, load_config
    from bondhu.export.gguf import GGUFMeta, write_f16_gguf
    from bondhu.train.tiny import ensure_tiny

    spec = load_config(ROOT / "configs" / "tiny-cpu.yaml").model.tiny
    spec = spec.model_copy(
        update={
            "pretrain_epochs": 0,
            "tokenizer_corpus": [str(ROOT / p) for p in spec.tokenizer_corpus],
            **SHAPES[shape],
        }
    )
    model_dir, path = ensure_tiny(out_dir / shape, spec), out_dir / f"{shape}-f16.gguf"
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    model = AutoModelForCausalLM.from_pretrained(model_dir)
    write_f16_gguf(model, tokenizer, path, GGUFMeta("bondhu", DEFAULT_SYSTEM_PROMPT, tokenizer.chat_template))
    return path


def cpu_seconds(pid: int) -> float:
    """User and system CPU time a process has used so far (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def start(command: list[str], ready: str, env: dict | None = None) -> subprocess.Popen:
    """A server process, once ``ready`` (a URL) answers 200."""
    proc = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{command[2]} exited: {proc.stderr.read().decode()[-2000:]}")
        try:
            if httpx.get(ready, timeout=1).status_code == 200:
                return proc
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    proc.kill()
    raise RuntimeError(f"{ready} did not answer in 120 s")


def prompts() -> list[list[dict]]:
    """User turns the crisis check lets through to the engine."""
    from bondhu.safety import SafetyLayer

    safety, out = SafetyLayer(), []
    for line in (ROOT / "data" / "bondhu-empathy" / "test.jsonl").read_text("utf-8").splitlines():
        first = next(m for m in json.loads(line)["messages"] if m["role"] == "user")
        if safety.check(first["content"]).level == "none":
            out.append([{"role": "user", "content": first["content"]}])
        if len(out) == PROMPTS:
            return out
    return out


def engine_body(messages: list[dict], body: dict) -> dict:
    """What the gateway sends the engine for a client's ``body``: built by the gateway's own code."""
    from bondhu.chat.session import check_turn
    from bondhu.config import BondhuConfig
    from bondhu.safety import SafetyLayer
    from bondhu.serve import request as checks
    from bondhu.serve.upstream import request_body

    cfg = BondhuConfig.model_validate({"serve": {"upstream": {"url": "http://engine/v1"}}})
    settings, _ = checks.settings(checks.parse({**body, "messages": messages}), cfg)
    turn = check_turn(messages, cfg.data.system_prompt, SafetyLayer())
    return request_body(cfg.serve.upstream, turn.messages, settings)


def timed(url: str, body: dict) -> dict:
    """One streamed request: seconds to the first content and to the end, and the tokens (the
    engine's usage where it reports it, else its content deltas), read by ``sse_client.stream``:
    an httpx client cost more CPU a token than the gateway, on the same two cores."""
    got = asyncio.run(stream(url, body, count_deltas=True))
    if got["outcome"] != "ok":
        raise RuntimeError(f"{url}: {got}")
    return got


def summary(runs: list[dict]) -> dict:
    tokens, seconds = sum(r["tokens"] for r in runs), sum(r["seconds"] for r in runs)
    decode = [(r["seconds"] - r["first_s"]) / max(1, r["tokens"] - 1) for r in runs]
    return {
        "requests": len(runs),
        "tokens": tokens,
        "tokens_per_s": tokens / seconds,
        "request_ms_median": 1000 * statistics.median(r["seconds"] for r in runs),
        "first_token_ms_median": 1000 * statistics.median(r["first_s"] for r in runs),
        "ms_per_token_after_first_median": 1000 * statistics.median(decode),
    }


def compare(engine: str, gateway: str, reps: int, max_tokens: int, gateway_pid: int) -> dict:
    """Every prompt, ``reps`` times, to both; the order alternates so neither always goes first."""
    client = {"temperature": 0, "max_tokens": max_tokens, "seed": 0, "stream": True}
    cases = [(m, engine_body(m, client)) for m in prompts()]
    client["stream_options"] = {"include_usage": True}  # the gateway's count: the engine's deltas
    for messages, body in cases[:2]:  # warm-up: both servers' first requests pay for loading
        timed(engine, body), timed(gateway, {**client, "messages": messages})
    direct, through, mismatched, cpu = [], [], 0, cpu_seconds(gateway_pid)
    for rep in range(reps):
        for i, (messages, body) in enumerate(cases):
            pair = [("direct", engine, body), ("gateway", gateway, {**client, "messages": messages})]
            got = {name: timed(url, b) for name, url, b in (pair if (rep + i) % 2 == 0 else pair[::-1])}
            direct.append(got["direct"])
            through.append(got["gateway"])
            mismatched += got["direct"]["tokens"] != got["gateway"]["tokens"]
    cpu = cpu_seconds(gateway_pid) - cpu  # the gateway idles while the direct requests run
    d, g = summary(direct), summary(through)
    return {
        "gateway_cpu_ms_per_token": 1000 * cpu / g["tokens"],
        "direct": d,
        "gateway": g,
        "tokens_per_s_ratio": g["tokens_per_s"] / d["tokens_per_s"],
        "overhead_tokens_per_s_pct": 100 * (1 - g["tokens_per_s"] / d["tokens_per_s"]),
        "overhead_ms_per_request_median": g["request_ms_median"] - d["request_ms_median"],
        "overhead_ms_first_token_median": g["first_token_ms_median"] - d["first_token_ms_median"],
        "overhead_ms_per_token_median": g["ms_per_token_after_first_median"] - d["ms_per_token_after_first_median"],
        "pairs_with_different_token_counts": mismatched,
    }


def safety_cost() -> dict:
    """The two checks every streamed piece passes, on their own: the number filter and the output
    check over the bundled replies, cut into 3-character pieces (a Bengali token is about 0.8)."""
    from bondhu.chat.session import OutputCheck
    from bondhu.safety import SafetyLayer

    safety, replies = SafetyLayer(), []
    for line in (ROOT / "data" / "bondhu-empathy" / "test.jsonl").read_text("utf-8").splitlines():
        replies += [m["content"] for m in json.loads(line)["messages"] if m["role"] == "assistant"]
    pieces, started = 0, time.perf_counter()
    for reply in replies:
        numbers, check = safety.number_stream(), OutputCheck(safety)
        for i in range(0, len(reply), 3):
            if out := numbers.feed(reply[i : i + 3]):
                check.feed(out)
            pieces += 1
        numbers.flush()
    return {"replies": len(replies), "pieces": pieces, "ms_per_piece": 1000 * (time.perf_counter() - started) / pieces}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--gguf", type=Path, help="an f16 GGUF to serve (default: export a model of --shape)")
    parser.add_argument("--shape", choices=sorted(SHAPES), default="tiny", help="the model exported without --gguf")
    parser.add_argument("--reps", type=int, default=5)
    parser.add_argument("--max-tokens", type=int, default=128)
    parser.add_argument("--threads", type=int, default=1, help="llama.cpp threads (the rest: gateway, client)")
    parser.add_argument("--out", type=Path, help="default: benchmarks/results/gateway-DATE[-SHAPE].json")
    args = parser.parse_args()
    stem = f"gateway-{date.today():%Y%m%d}" + ("" if args.gguf or args.shape == "tiny" else f"-{args.shape}")
    args.out = args.out or ROOT / "benchmarks" / "results" / f"{stem}.json"
    import llama_cpp

    with tempfile.TemporaryDirectory() as tmp:
        gguf = args.gguf or build_gguf(Path(tmp), args.shape)
        eport, gport = free_port(), free_port()
        engine_url, gateway_url = f"http://127.0.0.1:{eport}/v1", f"http://127.0.0.1:{gport}/v1"
        engine_cmd = [sys.executable, "-m", "llama_cpp.server", "--model", str(gguf), "--model_alias", "bondhu"]
        engine_cmd += ["--host", "127.0.0.1", "--port", str(eport), "--n_ctx", "2048"]
        engine_cmd += ["--n_threads", str(args.threads), "--n_threads_batch", str(args.threads), "--verbose", "false"]
        env = {**os.environ, "PYTHONPATH": str(ROOT / "src"), "HF_HUB_OFFLINE": "1"}
        gateway_cmd = [sys.executable, "-m", "bondhu", "serve", "--upstream", engine_url, "--port", str(gport)]
        engine = start(engine_cmd, f"{engine_url}/models")
        try:
            gateway = start(gateway_cmd, f"http://127.0.0.1:{gport}/health", env)
            try:
                figures = compare(engine_url, gateway_url, args.reps, args.max_tokens, gateway.pid)
            finally:
                gateway.terminate()
                gateway.wait(10)
        finally:
            engine.terminate()
            engine.wait(10)
        size_mib = gguf.stat().st_size / 2**20
    out = {
        "machine": f"{platform.node()} · {platform.processor() or platform.machine()} · {os.cpu_count()} CPUs",
        "date": f"{date.today():%Y-%m-%d}",
        "python": platform.python_version(),
        "llama_cpp_python": llama_cpp.__version__,
        "httpx": httpx.__version__,
        "model": f"{args.gguf or f'the {args.shape} shape, random weights'} (f16 GGUF, {size_mib:.1f} MiB)",
        "shape": None if args.gguf else {"name": args.shape, **SHAPES[args.shape]},
        "llama_threads": args.threads,
        "max_tokens": args.max_tokens,
        "reps": args.reps,
        "prompts": PROMPTS,
        **figures,
        "safety_checks_alone": safety_cost(),
    }
    print(json.dumps(out, indent=2))
    args.out.write_text(json.dumps(out, indent=2) + "\n", "utf-8")


if __name__ == "__main__":
    main()
