"""Concurrency: N streamed requests at once (32 by default), each a different user turn from the
bundled test split, sent to three setups one after the other in one run, on this machine's CPU,
with a random-weight Llama of one of benchmarks/gateway.py's SHAPES (replies run to max_tokens):

a. llama.cpp's own `llama-server --parallel N` directly: N slots, continuous batching, the f16 GGUF;
b. `bondhu serve --upstream` in front of that same llama-server, with `serve.queue_size` and
   `serve.upstream.max_concurrency` set to N (a `--config` file), so all N go to the engine at once;
c. the in-process server, `bondhu serve RUN`, which generates one request at a time under its
   model lock. RUN is a LoRA run over the same random-weight base, trained here for one step
   (`bondhu train configs/tiny-cpu.yaml` with the overrides in `train_run`): the same shape's
   work per token, loaded as the tiny-cpu preset does: transformers, the adapter attached (the
   `hf` path of `--backend auto`; /health says "lora"), `generate` streamed one request at a time.

llama-cpp-python's server has no --parallel: llama-server must be built from llama.cpp (its
source ships in the llama-cpp-python sdist; docs/benchmarks.md gives the commands). The prompt
cache is off (--no-cache-prompt), so (b) does not reuse the prompts (a) already sent. Both
engines get --threads (torch through OMP_NUM_THREADS). Reported per setup: all streams' tokens
over the wall time, time to the first token (median, p95), request time (median), and requests
that succeeded, were refused (503, or a busy event in the stream) or failed, and each process's
CPU time per token (the client's included: it is this process, a light asyncio one; see stream).

    python benchmarks/gateway_concurrency.py --llama-server PATH [--streams 32] [--max-tokens 64]
                                             [--shape tiny|small] [--threads 1] [--rounds 3]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from datetime import date
from importlib.metadata import version
from pathlib import Path

from gateway import SHAPES, build_gguf, cpu_seconds, engine_body, free_port, start
from sse_client import stream

from common import ROOT

LIBRARIES = ("httpx", "uvicorn", "torch", "transformers", "peft")


def prompts(n: int) -> list[list[dict]]:
    """``n`` different first user turns that the crisis check lets through to the engine."""
    from bondhu.safety import SafetyLayer

    safety, out = SafetyLayer(), []
    for line in (ROOT / "data" / "bondhu-empathy" / "test.jsonl").read_text("utf-8").splitlines():
        first = next(m for m in json.loads(line)["messages"] if m["role"] == "user")
        if safety.check(first["content"]).level == "none" and first["content"] not in {m[0]["content"] for m in out}:
            out.append([{"role": "user", "content": first["content"]}])
    if len(out) < n:
        raise SystemExit(f"the test split has {len(out)} different non-crisis user turns, fewer than --streams {n}")
    return out[:n]


def burst(url: str, bodies: list[dict]) -> tuple[list[dict], float]:
    """All ``bodies`` at once on one event loop; the wall time from the start to the last end."""

    async def all_at_once() -> tuple[list[dict], float]:
        started = time.perf_counter()
        got = await asyncio.gather(*(asyncio.wait_for(stream(url, b), 900) for b in bodies), return_exceptions=True)
        got = [{"outcome": "failed", "error": repr(g)} if isinstance(g, BaseException) else g for g in got]
        return got, time.perf_counter() - started

    return asyncio.run(all_at_once())


def p95(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[max(0, math.ceil(0.95 * len(ordered)) - 1)]  # nearest rank


def measure(url: str, bodies: list[dict], rounds: int, pids: dict[str, int]) -> dict:
    """One warm-up request, then ``rounds`` bursts of all ``bodies``; the processes' CPU time over the bursts."""
    burst(url, bodies[:1])  # warm-up
    pids = {**pids, "client": os.getpid()}  # this process: the N streams' event loop
    cpu = {name: cpu_seconds(pid) for name, pid in pids.items()}
    runs, walls = [], []
    for _ in range(rounds):
        got, wall = burst(url, bodies)
        runs += got
        walls.append(wall)
    ok = [r for r in runs if r["outcome"] == "ok"]
    tokens = sum(r["tokens"] for r in ok)
    out = {
        "requests": len(runs),
        "succeeded": len(ok),
        "refused": sum(r["outcome"] == "refused" for r in runs),
        "failed": sum(r["outcome"] == "failed" for r in runs),
        "failures": sorted({str(r.get("error") or r.get("status")) for r in runs if r["outcome"] != "ok"}),
        "tokens": tokens,
        "tokens_per_request_min_max": [min(r["tokens"] for r in ok), max(r["tokens"] for r in ok)] if ok else None,
        "prompt_tokens_median": statistics.median(r["prompt"] for r in ok) if ok and ok[0]["prompt"] else None,
        "wall_s_per_round": [round(w, 3) for w in walls],
        "tokens_per_s": tokens / sum(walls),
    }
    if ok:
        out["first_token_ms_median"] = 1000 * statistics.median(r["first_s"] for r in ok)
        out["first_token_ms_p95"] = 1000 * p95([r["first_s"] for r in ok])
        out["request_ms_median"] = 1000 * statistics.median(r["seconds"] for r in ok)
    for name, pid in pids.items():
        out[f"{name}_cpu_ms_per_token"] = 1000 * (cpu_seconds(pid) - cpu[name]) / max(1, tokens)
    return out


def drain(proc: subprocess.Popen) -> subprocess.Popen:
    """Read a started server's stderr away, so its log cannot fill the pipe and stall it."""
    threading.Thread(target=lambda: [None for _ in proc.stderr], daemon=True).start()
    return proc


def stop(proc: subprocess.Popen) -> None:
    proc.terminate()
    proc.wait(30)


def train_run(tmp: Path, base: Path, shape: str, streams: int, env: dict) -> Path:
    """A LoRA run over ``base`` (the GGUF's own random-weight model): one step on 8 conversations, enough
    for a run directory with config and adapter; its queue admits all the streams."""
    overrides = [f"model.name_or_path={base}", "model.tiny=null", f"output.runs_dir={tmp / 'runs'}"]
    overrides += [f"output.name=concurrency-{shape}", "training.strategy=lora", "training.max_steps=1"]
    overrides += ["data.train_subset=8", "data.validation=null", f"serve.queue_size={streams}"]
    cmd = [sys.executable, "-m", "bondhu", "train", str(ROOT / "configs" / "tiny-cpu.yaml"), *overrides]
    subprocess.run(cmd, check=True, env=env, cwd=ROOT, stdout=subprocess.DEVNULL)  # data paths are ROOT's
    return tmp / "runs" / f"concurrency-{shape}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--llama-server", type=Path, help="llama.cpp's llama-server binary (required)")
    parser.add_argument("--streams", type=int, default=32, help="requests at once, and llama-server's --parallel")
    parser.add_argument("--max-tokens", type=int, default=64)
    parser.add_argument("--shape", choices=sorted(SHAPES), default="tiny")
    parser.add_argument("--threads", type=int, default=1, help="engine threads (the rest: gateway, client)")
    parser.add_argument("--ctx-per-slot", type=int, default=1024, help="llama-server's -c is this times --streams")
    parser.add_argument("--rounds", type=int, default=3, help="bursts of --streams requests per setup")
    parser.add_argument("--out", type=Path, help="default: benchmarks/results/gateway-concurrency-DATE[-SHAPE].json")
    args = parser.parse_args()
    if args.llama_server is None or not os.access(args.llama_server, os.X_OK):
        parser.error(
            "--llama-server PATH is required: llama.cpp's llama-server binary"
            + (f" ({args.llama_server} is not an executable)" if args.llama_server else "")
            + ". llama-cpp-python's own server has no --parallel; build llama-server from the "
            "llama.cpp source in the llama-cpp-python sdist (docs/benchmarks.md, 'Concurrency: 32 streams')."
        )
    stem = f"gateway-concurrency-{date.today():%Y%m%d}" + ("" if args.shape == "tiny" else f"-{args.shape}")
    args.out = args.out or ROOT / "benchmarks" / "results" / f"{stem}.json"
    done = subprocess.run([str(args.llama_server), "--version"], capture_output=True, text=True, timeout=60)
    build = (done.stdout + done.stderr).strip()
    n, threads = args.streams, str(args.threads)
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src"), "HF_HUB_OFFLINE": "1"}
    client = {"temperature": 0, "max_tokens": args.max_tokens, "seed": 0, "stream": True}
    turns = prompts(n)
    direct_bodies = [engine_body(m, client) for m in turns]  # what the gateway itself sends the engine
    client_bodies = [{**client, "stream_options": {"include_usage": True}, "messages": m} for m in turns]
    results = {}
    with tempfile.TemporaryDirectory(dir="/tmp") as tmp:
        tmp = Path(tmp)
        gguf = build_gguf(tmp, args.shape)
        eport, gport, lport = free_port(), free_port(), free_port()
        engine_url, gateway_url = f"http://127.0.0.1:{eport}/v1", f"http://127.0.0.1:{gport}/v1"
        engine_cmd = [str(args.llama_server), "--model", str(gguf), "--alias", "bondhu", "--host", "127.0.0.1"]
        engine_cmd += ["--port", str(eport), "--parallel", str(n), "--ctx-size", str(n * args.ctx_per_slot)]
        engine_cmd += ["--threads", threads, "--threads-batch", threads, "--no-cache-prompt", "--no-webui"]
        config = tmp / "gateway.yaml"
        config.write_text(
            json.dumps({"serve": {"queue_size": n, "upstream": {"url": engine_url, "max_concurrency": n}}}), "utf-8"
        )  # JSON is YAML
        gateway_cmd = [sys.executable, "-m", "bondhu", "serve", "--config", str(config), "--port", str(gport)]
        engine = drain(start(engine_cmd, f"http://127.0.0.1:{eport}/health"))
        try:
            print("a. llama-server directly", file=sys.stderr)
            results["llama_server_direct"] = measure(engine_url, direct_bodies, args.rounds, {"engine": engine.pid})
            gateway = drain(start(gateway_cmd, f"http://127.0.0.1:{gport}/health", env))
            try:
                print("b. through bondhu serve --upstream", file=sys.stderr)
                pids = {"engine": engine.pid, "gateway": gateway.pid}
                results["gateway_to_llama_server"] = measure(gateway_url, client_bodies, args.rounds, pids)
            finally:
                stop(gateway)
        finally:
            stop(engine)
        print("c. the in-process server (training its run)", file=sys.stderr)
        run = train_run(tmp, tmp / args.shape, args.shape, n, env)
        local_cmd = [sys.executable, "-m", "bondhu", "serve", str(run), "--port", str(lport)]
        local_env = {**env, "OMP_NUM_THREADS": threads, "MKL_NUM_THREADS": threads}
        local = drain(start(local_cmd, f"http://127.0.0.1:{lport}/health", local_env))
        try:
            local_url = f"http://127.0.0.1:{lport}/v1"
            results["in_process_server"] = measure(local_url, client_bodies, args.rounds, {"server": local.pid})
        finally:
            stop(local)
        size_mib = gguf.stat().st_size / 2**20
    out = {
        "machine": f"{platform.node()} · {platform.processor() or platform.machine()} · {os.cpu_count()} CPUs",
        "date": f"{date.today():%Y-%m-%d}",
        "versions": {"python": platform.python_version(), **{m: version(m) for m in LIBRARIES}},
        "llama_server_version": build,
        "model": f"the {args.shape} shape, random weights (f16 GGUF, {size_mib:.1f} MiB)",
        "shape": {"name": args.shape, **SHAPES[args.shape]},
        "settings": {
            "streams": n,
            "rounds": args.rounds,
            "max_tokens": args.max_tokens,
            "engine_threads": args.threads,
            "llama_server_args": [a if a != str(gguf) else "MODEL.gguf" for a in engine_cmd[1:]],
            "gateway_config": {"serve": {"queue_size": n, "upstream": {"max_concurrency": n}}},
            "in_process_run": "bondhu train configs/tiny-cpu.yaml over the same base, LoRA, 1 step; "
            f"serve.queue_size={n}; OMP_NUM_THREADS={args.threads}",
        },
        **results,
    }
    print(json.dumps(out, indent=2))
    args.out.write_text(json.dumps(out, indent=2) + "\n", "utf-8")


if __name__ == "__main__":
    main()
