"""GPU benchmark: training and inference on a model with LLaMA 3.1-8B's exact shape.

One command on the lent H100 (weights are random: speed and memory do not depend on them):

    python benchmarks/gpu.py --sections all          # or "scaling", or a comma list, see GROUPS
    python benchmarks/gpu.py --render a.json b.json  # rebuild the tables from saved results

Each section runs in its own process (Unsloth patches transformers globally) on one GPU.
With several GPUs visible, the single-GPU sections run in parallel lanes, one GPU per lane
(each number is still measured on one card, alone on it, and each lane has its own share of the
host's CPU cores, so sections never contend for a core: see docs/benchmarks.md); the multi-GPU
sections run last, on all cards. Results go to benchmarks/results/gpu-<stamp>.json and the tables into
docs/benchmarks.md between the ``gpu`` markers; with $OUT set, both are copied there too.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import queue
import re
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# Most needed first (a budget cut drops the tail); "build" always runs first, alone.
SINGLE_GPU = ["train_unsloth", "bare_unsloth", "seed_recipe", "train_qlora", "matmul_peak", "infer_fast",
              "infer_unsloth", "infer_hf", "t4_longest", "infer_fast_int8"]
MULTI_GPU = ["ddp_qlora", "ddp_unsloth"]
# Diagnostics, run only when named.
DIAGNOSTICS = ["profile_unsloth", "profile_fast"]
GROUPS = {"all": ["build", *SINGLE_GPU], "scaling": ["build", *MULTI_GPU]}
FLOPS_PER_TOKEN = 6 * 8.03e9
FAST_WEIGHTS = {"bf16": "bf16 weights", "int8": "int8 weights (torchao weight-only, one scale per channel)"}
BEGIN, END = "<!-- gpu:begin -->", "<!-- gpu:end -->"


class Section:
    """One section in its own process, pinned to ``gpus`` (CUDA_VISIBLE_DEVICES).

    Started with ``go`` set, the process does its imports (tens of seconds for Unsloth) and
    waits: a lane starts the next section while the current one measures, and releases it when
    the card is free, so the imports cost no GPU time and never overlap a measurement's GPU work.
    """

    def __init__(self, name: str, args, gpus: str | None, prefetch: bool = False, cpus: set[int] | None = None):
        self.name, self.gpus = name, gpus
        logs = Path(args.logs)
        logs.mkdir(parents=True, exist_ok=True)
        self.go = logs / f"{name}.go"
        self.go.unlink(missing_ok=True)
        self.stdout, self.stderr = logs / f"{name}.log", logs / f"{name}.err"
        cmd = [sys.executable, str(ROOT / "benchmarks" / "gpu_workers.py"), name, "--model", args.model,
               "--runs", args.runs, "--steps", str(args.steps), "--new-tokens", str(args.new_tokens),
               "--skip", str(args.skip)] + (["--tiny"] if args.tiny else []) + (["--go", str(self.go)] if prefetch else [])
        env = dict(os.environ, **({"CUDA_VISIBLE_DEVICES": gpus} if gpus is not None else {}))
        if cpus:
            env["OMP_NUM_THREADS"] = str(len(cpus))  # torch's thread pool sized to the lane's cores
        pin = (lambda: os.sched_setaffinity(0, cpus)) if cpus else None
        with open(self.stdout, "w") as out, open(self.stderr, "w") as err:
            self.proc = subprocess.Popen(cmd, stdout=out, stderr=err, text=True, env=env, preexec_fn=pin)
        self.t0 = time.perf_counter()

    def release(self) -> None:
        print(f"== {self.name} on GPU {self.gpus if self.gpus is not None else 'all'}", flush=True)
        self.go.touch()
        self.t0 = time.perf_counter()

    def cancel(self, why: str) -> dict:
        self.proc.kill()
        self.proc.wait()
        return {"section": self.name, "error": why}

    def finish(self, timeout: float) -> dict:
        try:
            self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            return {**self.cancel(f"timed out after {timeout:.0f} s"), "card": self.gpus}
        stdout, stderr = self.stdout.read_text(errors="replace"), self.stderr.read_text(errors="replace")
        lines = [ln for ln in stdout.splitlines() if ln.startswith("RESULT ")]
        if self.proc.returncode != 0 or not lines:
            tail = (stderr or stdout).strip().splitlines()[-3:]
            return {"section": self.name, "error": " | ".join(tail)[-600:], "card": self.gpus}
        out = json.loads(lines[-1][7:])
        out.update(wall_seconds=round(time.perf_counter() - self.t0, 1), card=self.gpus)
        print(json.dumps(out), flush=True)
        return out


def run_section(name: str, args, gpus: str | None = None) -> dict:
    section = Section(name, args, gpus)
    print(f"== {name} on GPU {gpus if gpus is not None else 'all'}", flush=True)
    return section.finish(args.timeout)


def visible_gpus() -> list[str]:
    """The physical ids of the visible cards, as CUDA_VISIBLE_DEVICES would name them."""
    env = os.environ.get("CUDA_VISIBLE_DEVICES")
    if env is not None:
        return [g for g in env.split(",") if g.strip()]
    try:
        import torch

        return [str(i) for i in range(torch.cuda.device_count())]
    except ImportError:
        return []


def cpu_shares(lanes: int) -> list[set[int] | None]:
    """This process's CPUs split evenly among ``lanes``, hyperthread siblings kept together.

    Why: on the 2-GPU host two sections share 32 CPUs, and each torch process starts a thread per
    CPU; the CPU-bound rows (the seed recipe's many small steps) read up to a third slower next to
    another section. A lane of 16 CPUs is what the one-GPU host of the same kind has."""
    if lanes <= 1 or not hasattr(os, "sched_getaffinity"):
        return [None] * max(lanes, 1)
    cores: dict[str, list[int]] = {}
    for cpu in sorted(os.sched_getaffinity(0)):
        siblings = Path(f"/sys/devices/system/cpu/cpu{cpu}/topology/thread_siblings_list")
        cores.setdefault(siblings.read_text().strip() if siblings.exists() else str(cpu), []).append(cpu)
    groups, per = list(cores.values()), len(cores) // lanes
    if per == 0:
        return [None] * lanes
    return [{cpu for group in groups[i * per:(i + 1) * per] for cpu in group} for i in range(lanes)]


def run_lanes(names: list[str], args, gpus: list[str], deadline: float, save, first=None) -> None:
    """Single-GPU sections from one queue, one lane (thread) per card, each lane one section ahead
    (importing); none is released past the deadline. ``first`` (the model build) runs on the first
    lane while every lane's first section imports."""
    work: queue.Queue = queue.Queue()
    for name in names:
        work.put(name)
    lock = threading.Lock()
    built = threading.Event()

    def launch(gpu):
        try:
            return Section(work.get_nowait(), args, gpu, prefetch=True, cpus=shares[lanes.index(gpu)])
        except queue.Empty:
            return None

    def lane(gpu):
        upcoming = launch(gpu)
        if gpu == lanes[0]:
            if first is not None:
                first()
            built.set()
        built.wait()
        while upcoming is not None:
            current, left = upcoming, deadline - time.perf_counter()
            if left < 30:
                res = current.cancel("not started: the time budget was spent")
                upcoming = launch(gpu)
            else:
                current.release()
                upcoming = launch(gpu)
                res = current.finish(min(args.timeout, left))
            with lock:
                save({current.name: res})

    lanes = gpus or [None]
    shares = cpu_shares(len(lanes))
    if shares[0]:
        print("== CPU cores per lane: " + "; ".join(f"GPU {g}: {sorted(c)}" for g, c in zip(lanes, shares)), flush=True)
    threads = [threading.Thread(target=lane, args=(g,)) for g in lanes]
    for t in threads:
        t.start()
    for t in threads:
        t.join()


def environment() -> dict:
    env = {"date": dt.date.today().isoformat(), "python": platform.python_version()}
    try:
        import torch

        env["gpu"] = torch.cuda.get_device_name() if torch.cuda.is_available() else "none"
        env["torch"] = torch.__version__
    except ImportError:
        pass
    for pkg in ("transformers", "peft", "trl", "bitsandbytes", "unsloth", "accelerate"):
        try:
            env[pkg] = __import__(pkg).__version__ if pkg != "unsloth" else _unsloth_version()
        except Exception:
            env[pkg] = "absent"
    return env


def _unsloth_version() -> str:
    from importlib.metadata import version

    return version("unsloth")


def _fmt(value, spec="{:,.0f}") -> str:
    return "–" if value is None else spec.format(value)


def render(results: dict[str, dict], env: dict, command: str, wall: float | None = None, lanes: int = 1,
           main: str | None = None) -> str:
    """The markdown tables, with each target marked met or not. ``main``: the stem of the run that
    ``wall`` is about (when ``results`` merge several), the others are named where they are used."""
    r = results.get

    def elsewhere(res: dict) -> str:
        where = res.get("measured_in")
        return f" (in {where})" if where and where != main else ""

    peak = (r("matmul_peak") or {}).get("tflops")
    rows = [("a", "seed recipe: Unsloth + SFTTrainer + DataCollatorForSeq2Seq + train_on_responses_only, batch 2 × accum 4, max 2048", "seed_recipe"),
            ("b", "`bondhu train`, strategy `qlora` (padding-free, batch 8)", "train_qlora"),
            ("c", "`bondhu train`, strategy `unsloth` (padding-free, batch 8)", "train_unsloth"),
            ("d", "bare Unsloth loop, fixed 2048-token rows, batch 2, Unsloth's offloaded checkpointing (ceiling)", "bare_unsloth")]
    lines = [BEGIN, f"### GPU run of {env.get('date')}", "",
             f"Machine: {env.get('gpu')} (lent H100), Python {env.get('python')}, torch {env.get('torch')}, "
             f"transformers {env.get('transformers')}, peft {env.get('peft')}, trl {env.get('trl')}, "
             f"bitsandbytes {env.get('bitsandbytes')}, unsloth {env.get('unsloth')}. Model: random weights with "
             "Llama-3.1-8B's shape; data: the bundled training split under the real Llama 3.1 tokenizer.", "",
             f"Command: `{command}`", "",
             *([f"The run of the first command took {wall / 60:.1f} minutes with {lanes} parallel "
                f"lane{'s' * (lanes > 1)} (one GPU each); each section's wall seconds: "
                + ", ".join(f"{k} {v['wall_seconds']:.0f}" for k, v in results.items()
                if "wall_seconds" in v and not elsewhere(v))
                + ".", ""] if wall else []),
             "#### Training (LoRA r=16 on all linear layers, 8 conversations per optimizer step)", "",
             "| run | what | useful tokens/s | peak GPU memory (GiB) | MFU | padding-free | measured in |",
             "|---|---|---|---|---|---|---|"]
    tps = {}
    for key, what, section in rows:
        res = r(section) or {}
        tps[key] = res.get("tokens_per_second")
        mfu = f"{100 * tps[key] * FLOPS_PER_TOKEN / (peak * 1e12):.1f}%" if tps[key] and peak else "–"
        err = f" (failed: {res['error'][:160]})" if "error" in res else ""
        lines.append(f"| {key} | {what}{err} | {_fmt(tps[key])} | {_fmt(res.get('peak_gpu_gib'), '{:.1f}')} | {mfu} | "
                     f"{res.get('padding_free_on', 'no' if key in 'ad' else '–')} | {res.get('measured_in', 'this run')} |")
    where = (r("matmul_peak") or {}).get("measured_in", "the same run")
    lines += ["", f"bf16 matmul peak: {_fmt(peak, '{:.0f}')} TFLOP/s, measured in {where}; "
              "MFU = tokens/s × 6 × 8.03e9 / peak.", ""]

    def target(name, ok, detail):
        return f"| {name} | {detail} | {'met' if ok else 'not met' if ok is False else 'not measured'} |"

    def ratio(x, y):
        return x / y if x and y else None

    c_a, c_b, c_d = ratio(tps["c"], tps["a"]), ratio(tps["c"], tps["b"]), ratio(tps["c"], tps["d"])
    mem_c = (r("train_unsloth") or {}).get("peak_gpu_gib")
    t4 = r("t4_longest") or {}
    lines += ["| target | measured | status |", "|---|---|---|",
              target("c ≥ 2 × a", None if c_a is None else c_a >= 2, _fmt(c_a, "{:.2f}×")),
              target("c ≥ 4 × b", None if c_b is None else c_b >= 4, _fmt(c_b, "{:.2f}×")),
              target("c ≥ 0.9 × d", None if c_d is None else c_d >= 0.9, _fmt(c_d, "{:.2f}×")),
              target("peak memory of c ≤ 8 GiB", None if mem_c is None else mem_c <= 8, _fmt(mem_c, "{:.1f} GiB")),
              target("T4 emulation (15 GiB, fp16): longest conversation ≥ 32,768 tokens",
                     None if "longest_tokens" not in t4 else t4["longest_tokens"] >= 32768,
                     _fmt(t4.get("longest_tokens"), "{:,} tokens") + elsewhere(t4)), ""]
    hf, us = r("infer_hf") or {}, r("infer_unsloth") or {}
    fast_paths = [("bf16", r("infer_fast") or {})] + ([("int8", r("infer_fast_int8"))] if r("infer_fast_int8") else [])
    rate = lambda res: (res.get("batch1") or {}).get("tokens_per_second")  # noqa: E731
    lines += ["#### Inference, batch-1 decode (128-token prompt)", "",
              "| path | tokens/s | new tokens | time to first token, 1,024-token prompt (ms) | peak GPU memory (GiB) "
              "| measured in |", "|---|---|---|---|---|---|"]
    paths = [("HF generate, bitsandbytes 4-bit + unmerged LoRA (`--backend hf`)", hf),
             ("Unsloth `for_inference` (`--backend unsloth`)", us)]
    paths += [(f"Bondhu fast path, {FAST_WEIGHTS[kind]}: merged, static cache, CUDA-graph step, own decode loop "
               f"(`--backend fast`, `chat.fast_quantization={'none' if kind == 'bf16' else kind}`)", res)
              for kind, res in fast_paths]
    for name, res in paths:
        err = f" (failed: {res['error'][:160]})" if "error" in res else ""
        lines.append(f"| {name}{err} | {_fmt(rate(res), '{:.1f}')} | {(res.get('batch1') or {}).get('new_tokens', '–')} | "
                     f"{_fmt(res.get('ttft_1024_ms'), '{:.0f}')} | {_fmt(res.get('peak_gpu_gib'), '{:.1f}')} | "
                     f"{res.get('measured_in', 'this run')} |")
    lines += ["", "| target | measured | status |", "|---|---|---|"]
    for kind, fast in fast_paths:
        f_u = ratio(rate(fast), rate(us))
        lines += [
            target(f"fast path ({kind}) ≥ 100 tokens/s", None if rate(fast) is None else rate(fast) >= 100,
                   _fmt(rate(fast), "{:.1f}")),
            target(f"fast path ({kind}) ≥ 6 × Unsloth for_inference", None if f_u is None else f_u >= 6,
                   _fmt(f_u, "{:.1f}×")),
            target(f"fast-path ({kind}) logits vs reference: relative L2 < 2e-2",
                   None if "logits_rel_l2" not in fast else fast["logits_rel_l2"] < 2e-2,
                   _fmt(fast.get("logits_rel_l2"), "{:.2e}") + (
                       f" (against an fp32 reference: bf16 reference {fast['reference_bf16_vs_fp32']:.2e}, "
                       f"fast path {fast['fast_vs_fp32']:.2e})" if "fast_vs_fp32" in fast else "") + (
                       f"; merging alone (eager merged vs reference) {fast['merged_eager_vs_reference']:.2e}, "
                       f"the compiled static-cache step alone (fast vs eager merged) {fast['fast_vs_merged_eager']:.2e}"
                       if "fast_vs_merged_eager" in fast else ""))]
    lines += [target("evaluation: batch 16 ≥ 8 × batch 1 generated tokens/s (`--backend hf`)",
                     None if "speedup_16_vs_1" not in hf else hf["speedup_16_vs_1"] >= 8,
                     _fmt(hf.get("speedup_16_vs_1"), "{:.1f}×") + elsewhere(hf)), ""]
    if hf.get("batch16"):
        lines.append(f"Generation throughput (evaluation path, `--backend hf`): batch 1 {rate(hf)} tokens/s, "
                     f"batch 16 {hf['batch16']['tokens_per_second']} tokens/s.")
    if t4.get("tried"):
        lines.append("T4 emulation steps: " + ", ".join(
            f"{x['tokens']:,} {'ok (' + str(x.get('peak_gib')) + ' GiB)' if x['ok'] else 'out of memory'}" for x in t4["tried"]))
    lines += scaling_rows(results)
    lines += ["", END]
    return "\n".join(lines)


def scaling_rows(results: dict[str, dict]) -> list[str]:
    """Multi-GPU table: `bondhu train --num-processes N` against one process, same per-GPU config."""
    done = [results[k] for k in ("ddp_qlora", "ddp_unsloth") if k in results]
    if not done:
        return []
    lines = ["", "#### Multi-GPU data parallel (`bondhu train --num-processes N`, 8 conversations per GPU per step)", "",
             "| strategy | processes | useful tokens/s (after warm-up) | peak GPU memory, rank 0 (GiB) | scaling efficiency | target ≥ 90% |",
             "|---|---|---|---|---|---|"]
    for res in done:
        if "error" in res:
            lines.append(f"| {res['section'].removeprefix('ddp_')} | – | failed: {res['error'][:160]} | – | – | not measured |")
            continue
        eff = res.get("efficiency")
        for run in res["runs"]:
            many = run["processes"] > 1
            lines.append(f"| {run.get('strategy', res['section'].removeprefix('ddp_'))} | {run['processes']} | "
                         f"{_fmt(run.get('tokens_per_second')) if 'error' not in run else 'failed: ' + run['error'][:120]} | "
                         f"{_fmt(run.get('peak_gpu_gib_rank0'), '{:.1f}')} | {_fmt(eff, '{:.0%}') if many else '–'} | "
                         f"{('met' if eff >= 0.9 else 'not met') if many and eff is not None else '–'} |")
    return lines


def write_docs(block: str) -> Path:
    doc = ROOT / "docs" / "benchmarks.md"
    text = doc.read_text("utf-8") if doc.exists() else "# Benchmarks\n"
    if BEGIN in text:
        text = re.sub(re.escape(BEGIN) + ".*?" + re.escape(END), lambda _: block, text, flags=re.S)
    else:
        text = text.rstrip() + "\n\n## GPU: training and inference on the 8B shape\n\n" + block + "\n"
    doc.write_text(text, "utf-8")
    return doc


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--sections", default="all")
    p.add_argument("--model", default="/tmp/llama31-8b-random")
    p.add_argument("--runs", default="/tmp/bench-runs")
    p.add_argument("--steps", type=int, default=12)
    p.add_argument("--new-tokens", type=int, default=256, help="new tokens per decode (the issue's 256)")
    p.add_argument("--skip", type=int, default=5, help="warm-up steps left out of training timings")
    p.add_argument("--timeout", type=int, default=420, help="seconds per section")
    p.add_argument("--budget", type=int, default=570,
                   help="a hard deadline in seconds: a section still running then is stopped (so a device call "
                   "keeps its results), and none starts in its last 30 s")
    p.add_argument("--lanes", type=int, default=0, help="parallel single-GPU lanes (default: one per visible GPU)")
    p.add_argument("--logs", default="/tmp/bench-logs", help="each section's stdout and stderr")
    p.add_argument("--tiny", action="store_true", help="CPU dry run of the sections that run without a GPU")
    p.add_argument("--render", nargs="*", help="result JSON files to merge and render, without running")
    args = p.parse_args()
    args.out = os.environ.get("OUT")
    if args.render:
        merged, env, commands = {}, {}, []
        for f in args.render:
            data = json.loads(Path(f).read_text())
            # The first file is the main run: a later file only fills in what it lacks or failed at.
            merged.update({k: {**v, "measured_in": Path(f).stem} for k, v in data["results"].items()
                           if k not in merged or ("error" in merged[k] and "error" not in v)})
            env = env or data["environment"]
            commands.append(data["command"])
        main_run = json.loads(Path(args.render[0]).read_text())  # the first file is the run the timing line is about
        print(write_docs(render(merged, env, " ; ".join(commands), main_run.get("wall_seconds"), main_run.get("lanes", 1),
                                Path(args.render[0]).stem)))
        return
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    names = GROUPS.get(args.sections) or args.sections.split(",")
    unknown = set(names) - set(GROUPS["all"]) - set(MULTI_GPU) - set(DIAGNOSTICS)
    if unknown:
        p.error(f"unknown sections: {', '.join(sorted(unknown))}")
    start = time.perf_counter()
    deadline = start + args.budget
    results: dict[str, dict] = {}

    def save(done: dict) -> None:  # a call cut short still brings back what finished
        results.update(done)
        if args.out:
            Path(args.out, "partial.json").write_text(json.dumps({"environment": {}, "command": "partial",
                                                                   "results": results}, indent=2))

    gpus = visible_gpus()
    lanes = gpus[: args.lanes] if args.lanes else gpus
    def build() -> None:
        save({"build": run_section("build", args, lanes[0] if lanes else None)})

    single = [n for n in names if n not in MULTI_GPU and n != "build"]
    run_lanes(single, args, lanes, deadline, save, first=build if "build" in names else None)
    for name in (n for n in names if n in MULTI_GPU):
        save({name: run_section(name, args) if len(gpus) > 1 else {"section": name, "error": "needs 2 or more GPUs"}})
    wall = round(time.perf_counter() - start, 1)
    stamp = dt.datetime.now().strftime("%Y%m%d-%H%M")
    command = "python benchmarks/gpu.py " + " ".join(sys.argv[1:])
    data = {"environment": environment(), "command": command, "wall_seconds": wall, "lanes": len(lanes) or 1,
            "results": results}
    # A --tiny dry run measures nothing worth keeping: it writes beside its logs, not into the repo.
    saved = (Path(args.logs) if args.tiny else ROOT / "benchmarks" / "results") / f"gpu-{stamp}.json"
    saved.parent.mkdir(parents=True, exist_ok=True)
    saved.write_text(json.dumps(data, indent=2))
    tables = render(results, data["environment"], command, wall, data["lanes"])
    doc = Path(args.logs, "benchmarks.md") if args.tiny else write_docs(tables)
    if args.tiny:
        doc.write_text(tables)
    if args.out:
        shutil.copy(saved, Path(args.out) / saved.name)
        shutil.copy(doc, Path(args.out) / "benchmarks.md")
        shutil.make_archive(str(Path(args.out) / "logs"), "gztar", args.logs)
    print(f"wrote {saved} and {doc}")


if __name__ == "__main__":
    main()
