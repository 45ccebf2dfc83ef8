"""Data-parallel training through 🤗 Accelerate: `bondhu train CONFIG --num-processes N`.

Bondhu re-launches itself with ``accelerate launch``; the HF Trainer inside then runs DDP
(NCCL on GPUs, gloo on CPU). Each process holds a full copy of the (4-bit) model and a
slice of every global batch. The optimization equals one process with the same global
batch: per_device_batch_size × num_processes × gradient_accumulation_steps conversations,
with the loss weighted by the number of assistant tokens summed over all processes
(``average_tokens_across_devices``). Only rank 0 writes the run directory.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Iterable, TextIO


def launch_command(
    config: Path | None, overrides: list[str], resume: bool, num_processes: int, cpu: bool | None = None
) -> list[str]:
    """The accelerate command that runs ``bondhu train`` on ``num_processes`` processes."""
    import torch

    if cpu is None:
        cpu = not torch.cuda.is_available()
    if cpu:
        # accelerate's own launcher runs several CPU processes only through MPI; torchrun starts the
        # same gloo process group that the Trainer's accelerate backend then joins.
        cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", str(num_processes)]
    else:
        cmd = [
            sys.executable,
            "-m",
            "accelerate.commands.launch",
            "--multi_gpu",
            "--num_processes",
            str(num_processes),
            "--num_machines",
            "1",
            "--mixed_precision",
            "no",
            "--dynamo_backend",
            "no",
        ]
    cmd += ["-m", "bondhu.cli", "train"]
    if config is not None:
        cmd.append(str(config))
    cmd += [o for o in overrides if not o.startswith("training.num_processes=")]
    cmd.append(f"training.num_processes={num_processes}")
    if resume:
        cmd.append("--resume")
    return cmd


def in_launched_process() -> bool:
    """True inside a process that a launcher (accelerate, torchrun) started: never launch again."""
    return any(k in os.environ for k in ("LOCAL_RANK", "RANK", "WORLD_SIZE", "BONDHU_LAUNCHED"))


def launch(config: Path | None, overrides: list[str], resume: bool, num_processes: int) -> int:
    """Run the launch command and return its exit code. The processes' own output passes through;
    the launcher's report of a failed process (a ChildFailedError traceback, which repeats what the
    process already said in its one error line) becomes one line."""
    env = {**os.environ, "BONDHU_LAUNCHED": "1", "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "1")}
    proc = subprocess.Popen(
        launch_command(config, overrides, resume, num_processes),
        env=env,
        stderr=subprocess.PIPE,
        text=True,
        errors="replace",
        bufsize=1,
    )
    failed = filter_launcher_errors(proc.stderr, sys.stderr)
    code = proc.wait()
    if code and failed:
        sys.stderr.write(f"error: training failed on {failed}; its error is above\n")
    return code


_LAUNCHER_LOG = re.compile(r"^[EWI]\d{4} [\d:.]+ \d+ .*torch/distributed/elastic/")
_ROOT_CAUSE = re.compile(r"rank\s*:\s*(\d+).*?exitcode\s*:\s*(-?\d+)", re.S)


def filter_launcher_errors(lines: Iterable[str], out: TextIO) -> str | None:
    """Copy ``lines`` to ``out`` except the elastic launcher's own log lines and ChildFailedError
    traceback; return "rank R (exit code C)" for the failure it reported, if any."""
    traceback: list[str] = []
    launcher: list[str] | None = None  # from the ChildFailedError line to the end: the launcher's report
    for line in lines:
        if launcher is not None:
            launcher.append(line)
        elif _LAUNCHER_LOG.match(line):
            continue
        elif traceback or line.startswith("Traceback (most recent call last):"):
            traceback.append(line)
            if not line.startswith((" ", "Traceback")):  # the exception's own line ends a traceback
                if "ChildFailedError" in line:
                    launcher = [line]
                else:
                    out.writelines(traceback)
                traceback = []
        else:
            out.write(line)
    out.writelines(traceback)
    out.flush()
    if launcher is None:
        return None
    report = "".join(launcher)
    cause = _ROOT_CAUSE.search(report[report.find("Root Cause") :])
    return f"rank {cause.group(1)} (exit code {cause.group(2)})" if cause else "a training process"


def _state():
    """Accelerate's process state, joined to the launcher's process group. Without a backend named,
    accelerate on the CPU treats every torchrun process as a lone main process until the Trainer
    sets up gloo, so every rank would act as rank 0."""
    import torch
    from accelerate import PartialState

    if torch.cuda.is_available() or int(os.environ.get("WORLD_SIZE", "1")) < 2:
        return PartialState()
    return PartialState(backend="gloo")


def is_main_process() -> bool:
    return _state().is_main_process


def wait_for_everyone() -> None:
    """A barrier across the launched processes (nothing in a single process)."""
    import torch.distributed as dist

    _state()
    if dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1:
        dist.barrier()


def allow_cpu_rank_locations() -> None:
    """Let torch.load restore tensors tagged ``cpu:N``.

    Under multi-process CPU training the Trainer's device is ``cpu:<rank>``, so checkpoints carry
    that tag, which torch.load does not map back to the CPU; resuming then fails without this.
    """
    import torch

    def restore(obj, location):
        return obj if location.startswith("cpu:") else None

    torch.serialization.register_package(7, lambda obj: None, restore)
