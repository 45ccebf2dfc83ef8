"""GPU benchmark: training and inference on a model with LLaMA 3.1-8B's exact shape.

One command on the lent H100 (weights are random: speed and memory do not depend on them):

    python benchmarks/gpu.py --sections all          # or "train", "infer", "scaling", or a comma list, see GROUPS
    python benchmarks/gpu.py --render a.json b.json  # rebuild the tables from saved results

Each section runs in its own process (Unsloth patches transformers globally) on one GPU.
With several GPUs visible, the single-GPU sections run in parallel lanes, one GPU per lane
(each number is still measured on one card, alone on it, and each lane has its own share of the
host's CPU cores, so sections never contend for a core: see docs/benchmarks.md); the multi-GPU
sections run last, on all cards. Results go to benchmarks/results/gpu-<stamp>.json and the
tables into docs/benchmarks.md between the ``gpu`` markers; with $OUT set, both are copied there.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import queue
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

from gpu_report import render, write_docs

ROOT = Path(__file__).resolve().parents[1]
# Most needed first (a budget cut drops the tail); "build" always runs first, alone.
SINGLE_GPU = [
    "train_unsloth",
    "bare_unsloth_none",
    "seed_recipe",
    "bare_unsloth",
    "t4_longest",
    "matmul_peak",
    "train_qlora",
    "infer_fast",
    "infer_unsloth",
    "infer_hf",
]
MULTI_GPU = ["ddp_qlora", "ddp_unsloth"]
# Diagnostics, run only when named. c0 and the out-of-memory fallback were measured in
# gpu-20261202-0038 and are left out of "all" so that it fits one 10-minute call.
DIAGNOSTICS = [
    "train_unsloth_ckpt",
    "fallback_unsloth",
    "train_qlora_half",
    "train_unsloth_double",
    "profile_unsloth",
    "profile_bare",
    "profile_fast",
    "fast_variants_bf16",
    "fast_variants_int8",
    "fast_variants_int8_fused",
    "fast_variants_int8_untuned",
]
INFERENCE = ["infer_fast", "infer_unsloth", "infer_hf"]
# "all" does not fit one 10-minute call on one H200 (about 11 minutes: docs/benchmarks.md);
# "train" and "infer" each do, and their results render into one set of tables (--render).
GROUPS = {
    "all": ["build", *SINGLE_GPU],
    "train": ["build", *(s for s in SINGLE_GPU if s not in INFERENCE)],
    "infer": ["build", *INFERENCE],
    "scaling": ["build", *MULTI_GPU],
}


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
        cmd = (
            [
                sys.executable,
                str(ROOT / "benchmarks" / "gpu_workers.py"),
                name,
                "--model",
                args.model,
                "--runs",
                args.runs,
                "--steps",
                str(args.steps),
                "--new-tokens",
                str(args.new_tokens),
                "--skip",
                str(args.skip),
            ]
            + (["--tiny"] if args.tiny else [])
            + (["--go", str(self.go)] if prefetch else [])
        )
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
    CPU; the rows bound by the host (the seed recipe's many small steps, Unsloth's and HF's
    decoding) read about half as fast next to another section (docs/benchmarks.md). A lane of 16 CPUs is
    what the one-GPU host of the same kind has."""
    if lanes <= 1 or not hasattr(os, "sched_getaffinity"):
        return [None] * max(lanes, 1)
    cores: dict[str, list[int]] = {}
    for cpu in sorted(os.sched_getaffinity(0)):
        siblings = Path(f"/sys/devices/system/cpu/cpu{cpu}/topology/thread_siblings_list")
        cores.setdefault(siblings.read_text().strip() if siblings.exists() else str(cpu), []).append(cpu)
    groups, per = list(cores.values()), len(cores) // lanes
    if per == 0:
        return [None] * lanes
    return [{cpu for group in groups[i * per : (i + 1) * per] for cpu in group} for i in range(lanes)]


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


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--sections", default="all")
    p.add_argument("--model", default="/tmp/llama31-8b-random")
    p.add_argument("--runs", default="/tmp/bench-runs")
    p.add_argument("--steps", type=int, default=10, help="training steps per training section")
    p.add_argument("--new-tokens", type=int, default=256, help="new tokens per decode (the issue's 256)")
    p.add_argument("--skip", type=int, default=3, help="warm-up steps left out of training timings")
    p.add_argument("--timeout", type=int, default=240, help="seconds per section")
    p.add_argument(
        "--budget",
        type=int,
        default=570,
        help="a hard deadline in seconds: a section still running then is stopped (so a device call "
        "keeps its results), and none starts in its last 30 s",
    )
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
            merged.update(
                {
                    k: {**v, "measured_in": Path(f).stem}
                    for k, v in data["results"].items()
                    if k not in merged or ("error" in merged[k] and "error" not in v)
                }
            )
            env = env or data["environment"]
            commands.append(data["command"])
        main_run = json.loads(Path(args.render[0]).read_text())  # the first file is the run the timing line is about
        print(
            write_docs(
                render(
                    merged,
                    env,
                    " ; ".join(commands),
                    main_run.get("wall_seconds"),
                    main_run.get("lanes", 1),
                    Path(args.render[0]).stem,
                )
            )
        )
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
            Path(args.out, "partial.json").write_text(
                json.dumps({"environment": {}, "command": "partial", "results": results}, indent=2)
            )

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
    data = {
        "environment": environment(),
        "command": command,
        "wall_seconds": wall,
        "lanes": len(lanes) or 1,
        "results": results,
    }
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
