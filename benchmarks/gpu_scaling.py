"""Multi-GPU scaling sections for benchmarks/gpu.py: `bondhu train --num-processes N` against 1.

Each run is the product's own command line (which re-launches itself through accelerate) on the
8B-shaped model with the same per-GPU config; throughput is read from the run's summary.json
(useful tokens/s summed over all processes, warm-up steps left out).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

from common import ROOT, bench_overrides, result


def _train(args, strategy: str, processes: int) -> dict:
    name = f"ddp-{strategy}-{processes}"
    cmd = [
        sys.executable,
        "-m",
        "bondhu.cli",
        "train",
        str(ROOT / "configs" / "llama31-8b.yaml"),
        *bench_overrides(args, strategy, name),
        f"--num-processes={processes}",
    ]
    env = {k: v for k, v in os.environ.items() if k not in ("BONDHU_LAUNCHED", "LOCAL_RANK", "RANK", "WORLD_SIZE")}
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT / "src"), env.get("PYTHONPATH", "")])
    t0 = time.perf_counter()
    done = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True)
    print(f"--- {name} (exit {done.returncode})\n{done.stdout[-3000:]}\n{done.stderr[-6000:]}", flush=True)
    summary_file = Path(args.runs, name, "summary.json")
    if done.returncode != 0 or not summary_file.exists():
        return {"processes": processes, "error": (done.stderr or done.stdout).strip().splitlines()[-1][-300:]}
    s = json.loads(summary_file.read_text())
    return {
        "processes": s["num_processes"],
        "strategy": s["strategy"],
        "strategy_reason": s["strategy_reason"],
        "tokens_per_second": s["tokens_per_second_after_warmup"],
        "tokens_per_second_all_steps": s["tokens_per_second"],
        "warmup_steps_excluded": s["warmup_steps_excluded"],
        "steps": s["steps"],
        "peak_gpu_gib_rank0": s.get("peak_gpu_allocated_gib"),
        "last_loss": s["last_loss"],
        "wall_seconds": round(time.perf_counter() - t0, 1),
    }


def scaling(args, strategy: str) -> None:
    import torch

    gpus = torch.cuda.device_count()
    if gpus < 2:
        return result(section=f"ddp_{strategy}", error=f"needs 2 or more GPUs, found {gpus}")
    # The multi-process run goes first: it pays the cold torch.compile cache (Unsloth compiles each
    # block), so any bias lowers the measured efficiency rather than raising it.
    many_run = _train(args, strategy, gpus)
    runs = [_train(args, strategy, 1), many_run]
    one, many = runs[0].get("tokens_per_second"), runs[1].get("tokens_per_second")
    result(
        section=f"ddp_{strategy}",
        gpus=gpus,
        runs=runs,
        efficiency=round(many / (gpus * one), 3) if one and many else None,
    )


SECTIONS = {"ddp_qlora": lambda args: scaling(args, "qlora"), "ddp_unsloth": lambda args: scaling(args, "unsloth")}
