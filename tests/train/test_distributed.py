"""Two CPU processes (gloo) give the optimization of one process with the same global batch."""

import csv
import json
import os
import subprocess
import sys

import pytest
import torch
from safetensors.torch import load_file

from bondhu.train.distributed import launch_command
from helpers import MINI, ROOT

pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="gloo multi-process test runs on Linux CI")


def train(args, tiny_overrides, name, processes, *extra, resume=False):
    overrides = [
        *tiny_overrides,
        f"data.train={MINI}",
        "data.validation=null",
        "training.strategy=lora",
        "training.lr_scheduler=constant",
        "training.warmup_ratio=0",
        "training.logging_steps=1",
        "training.save_steps=2",
        f"output.name={name}",
        *extra,
    ]
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src"), "OMP_NUM_THREADS": "1"}
    env.pop("BONDHU_LAUNCHED", None)
    cmd = [sys.executable, "-m", "bondhu.cli", "train", "tiny-cpu", *overrides]
    if processes > 1:
        cmd.append(f"--num-processes={processes}")
    if resume:
        cmd.append("--resume")
    done = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    return done


def losses(run):
    with open(run / "loss.csv", encoding="utf-8") as f:
        return [float(r["loss"]) for r in csv.DictReader(f) if r["loss"]]


def test_two_processes_match_one_with_the_same_global_batch(tiny_overrides, tmp_path):
    # A global batch of 6 covers the 6 conversations exactly: DDP pads an uneven last batch by
    # repeating samples (accelerate's even_batches), which one process would not do.
    runs = tmp_path / "runs"
    train(None, tiny_overrides, "one", 1, "training.per_device_batch_size=6", "training.max_steps=4")
    two = train(None, tiny_overrides, "two", 2, "training.per_device_batch_size=3", "training.max_steps=4")
    assert two.stdout.count("4 steps, loss") == 1 and "after 1 warm-up steps" in two.stdout  # rank 0 only
    a, b = losses(runs / "one"), losses(runs / "two")
    assert len(a) == len(b) == 4
    assert a == pytest.approx(b, rel=1e-4)
    wa = load_file(str(runs / "one" / "adapter" / "adapter_model.safetensors"))
    wb = load_file(str(runs / "two" / "adapter" / "adapter_model.safetensors"))
    for key in wa:
        # The all-reduce sums gradients in another order, and Adam divides by each gradient's size,
        # so a weight whose gradient is near zero can move by a few 1e-5 (the lr is 5e-3 per step).
        torch.testing.assert_close(wa[key], wb[key], rtol=1e-4, atol=5e-5)
    # only rank 0 wrote: one run directory, one summary, and it knows it ran on two processes
    summary = json.loads((runs / "two" / "summary.json").read_text())
    assert summary["num_processes"] == 2 and summary["steps"] == 4
    assert sorted(p.name for p in runs.iterdir()) == ["one", "two"]


def test_resume_on_two_processes(tiny_overrides, tmp_path):
    runs = tmp_path / "runs"
    common = ["training.per_device_batch_size=3", "training.save_total_limit=5"]
    train(None, tiny_overrides, "full", 2, *common, "training.max_steps=6")
    train(None, tiny_overrides, "part", 2, *common, "training.max_steps=4")
    train(None, tiny_overrides, "part", 2, *common, "training.max_steps=6", resume=True)
    assert losses(runs / "part") == pytest.approx(losses(runs / "full"), rel=1e-4)


def test_launch_commands():
    gpu = launch_command(None, ["lora.r=8"], True, 4, cpu=False)
    assert gpu[1:4] == ["-m", "accelerate.commands.launch", "--multi_gpu"] and "--resume" in gpu
    assert gpu[gpu.index("--num_processes") + 1] == "4" and "training.num_processes=4" in gpu
    cpu = launch_command(None, [], False, 2, cpu=True)
    assert cpu[1:3] == ["-m", "torch.distributed.run"] and cpu[-1] == "training.num_processes=2"


def test_fsdp_leaves_placement_to_accelerate(monkeypatch):
    import transformers.integrations.fsdp as fsdp

    from bondhu.train import strategies

    assert strategies._device_map() == {"": "cpu"}
    monkeypatch.setattr(fsdp, "is_fsdp_enabled", lambda: True)
    assert strategies._device_map() is None


def test_fsdp_preset_and_accelerate_config_load():
    from accelerate.commands.config.config_args import load_config_from_file

    from bondhu.config import load_config

    acc = load_config_from_file(str(ROOT / "configs" / "accelerate" / "fsdp-qlora.yaml"))
    assert acc.distributed_type == "FSDP" and acc.fsdp_config["fsdp_use_orig_params"] is False
    cfg = load_config(ROOT / "configs" / "llama31-70b-fsdp.yaml")
    assert cfg.training.strategy == "qlora" and cfg.training.gradient_checkpointing is True


def test_back_to_back_runs_into_one_directory(tiny_overrides, tmp_path):
    # Rank 0 deleting the old run while rank 1 still looked at it failed every second run.
    runs = tmp_path / "runs"
    for _ in range(2):
        done = train(
            None,
            tiny_overrides,
            "again",
            2,
            "training.per_device_batch_size=3",
            "training.max_steps=2",
            "output.overwrite=true",
        )
        assert "Traceback" not in done.stderr
        assert json.loads((runs / "again" / "summary.json").read_text())["steps"] == 2


def test_a_failed_process_is_reported_in_lines_of_its_own_not_a_launcher_traceback(tiny_overrides, tmp_path):
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src"), "OMP_NUM_THREADS": "1"}
    env.pop("BONDHU_LAUNCHED", None)
    cmd = [
        sys.executable,
        "-m",
        "bondhu.cli",
        "train",
        "tiny-cpu",
        *tiny_overrides,
        "--num-processes=2",
        f"data.train={tmp_path / 'absent.jsonl'}",
        "data.validation=null",
    ]
    done = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode != 0
    assert "Traceback" not in done.stderr and "ChildFailedError" not in done.stderr, done.stderr[-3000:]
    errors = [line for line in done.stderr.splitlines() if line.startswith("error:")]
    assert errors and all("absent.jsonl" in e or "training failed on rank" in e for e in errors), done.stderr


def test_the_launchers_report_becomes_the_failed_rank_and_other_tracebacks_pass():
    import io

    from bondhu.train.distributed import filter_launcher_errors

    launcher = (
        "error: FileNotFoundError: 'summary.json'\n"
        "E1201 22:58:04.202000 9641 .venv/lib/torch/distributed/elastic/multiprocessing/api.py:1002] failed\n"
        'Traceback (most recent call last):\n  File "run.py", line 1, in <module>\n'
        "torch.distributed.elastic.multiprocessing.errors.ChildFailedError: \n"
        "=====\nbondhu.cli FAILED\n-----\nRoot Cause (first observed failure):\n[0]:\n"
        "  rank      : 1 (local_rank: 1)\n  exitcode  : 1 (pid: 9646)\n=====\n"
    )
    out = io.StringIO()
    assert filter_launcher_errors(io.StringIO(launcher), out) == "rank 1 (exit code 1)"
    assert out.getvalue() == "error: FileNotFoundError: 'summary.json'\n"
    own = 'Traceback (most recent call last):\n  File "x.py", line 1\nValueError: boom\nafter\n'
    out = io.StringIO()
    assert filter_launcher_errors(io.StringIO(own), out) is None and out.getvalue() == own
