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
import subprocess
import sys
from pathlib import Path


def launch_command(config: Path | None, overrides: list[str], resume: bool, num_processes: int,
                   cpu: bool | None = None) -> list[str]:
    """The accelerate command that runs ``bondhu train`` on ``num_processes`` processes."""
    import torch

    if cpu is None:
        cpu = not torch.cuda.is_available()
    if cpu:
        # accelerate's own launcher runs several CPU processes only through MPI; torchrun starts the
        # same gloo process group that the Trainer's accelerate backend then joins.
        cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", str(num_processes)]
    else:
        cmd = [sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes",
               str(num_processes), "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no"]
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
    """Run the launch command and return its exit code."""
    env = {**os.environ, "BONDHU_LAUNCHED": "1", "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "1")}
    return subprocess.call(launch_command(config, overrides, resume, num_processes), env=env)


def is_main_process() -> bool:
    from accelerate import PartialState

    return PartialState().is_main_process


def wait_for_everyone() -> None:
    from accelerate import PartialState

    PartialState().wait_for_everyone()


def allow_cpu_rank_locations() -> None:
    """Let torch.load restore tensors tagged ``cpu:N``.

    Under multi-process CPU training the Trainer's device is ``cpu:<rank>``, so checkpoints carry
    that tag, which torch.load does not map back to the CPU; resuming then fails without this.
    """
    import torch

    def restore(obj, location):
        return obj if location.startswith("cpu:") else None

    torch.serialization.register_package(7, lambda obj: None, restore)
