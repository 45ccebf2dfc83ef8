"""LLAMAFineTuner on the tiny model: the real qlora path on CPU, accumulation, resume, logging."""

import csv
import json
import os
import subprocess
import sys
import textwrap

import pytest
import torch
from safetensors.torch import load_file

from bondhu.config import load_config
from bondhu.train.finetuner import LLAMAFineTuner
from helpers import MINI, ROOT


@pytest.fixture(scope="module")
def varied_data(tmp_path_factory):
    """16 conversations of clearly different lengths, built from the mini fixture."""
    base = [json.loads(line) for line in MINI.read_text("utf-8").splitlines()]
    out = tmp_path_factory.mktemp("data") / "varied.jsonl"
    rows = []
    for i in range(16):
        rec = dict(base[i % len(base)])
        reps = 1 + i % 3
        rec["id"] = f"v{i}"
        rec["messages"] = [{**m, "content": f"{m['content']} ({i})"} for m in rec["messages"] * reps]
        rows.append(json.dumps(rec, ensure_ascii=False))
    out.write_text("\n".join(rows) + "\n", "utf-8")
    return out


def make_cfg(tiny_overrides, data, *extra):
    return load_config(
        ROOT / "configs" / "tiny-cpu.yaml",
        [
            *tiny_overrides,
            f"data.train={data}",
            "data.validation=null",
            "training.logging_steps=1",
            "training.warmup_ratio=0",
            *extra,
        ],
    )


def adapter(run_dir):
    return load_file(str(run_dir / "adapter" / "adapter_model.safetensors"))


def loss_rows(run_dir):
    with open(run_dir / "loss.csv", encoding="utf-8") as f:
        return [r for r in csv.DictReader(f) if r["loss"]]


def test_qlora_on_cpu_writes_a_complete_run_directory(tiny_overrides, varied_data):
    cfg = make_cfg(
        tiny_overrides,
        varied_data,
        "training.strategy=qlora",
        f"data.validation={MINI}",
        "training.epochs=3",
        "training.per_device_batch_size=4",
        "output.name=q",
    )
    tuner = LLAMAFineTuner(cfg, progress=False)
    summary = tuner.train()
    run = cfg.run_dir
    # the real bitsandbytes NF4 path
    import bitsandbytes as bnb

    assert any(isinstance(m, bnb.nn.Linear4bit) for m in tuner.trainer.model.modules())
    qc = tuner.trainer.model.config.quantization_config
    assert qc.bnb_4bit_quant_type == "nf4" and qc.bnb_4bit_use_double_quant is True
    for name in (
        "adapter/adapter_model.safetensors",
        "adapter/adapter_config.json",
        "adapter/tokenizer.json",
        "config.yaml",
        "loss.csv",
        "loss.png",
        "summary.json",
    ):
        assert (run / name).is_file(), name
    saved = json.loads((run / "summary.json").read_text())
    assert saved == summary
    assert summary["strategy"] == "qlora" and summary["padding_free_on"] is True
    assert summary["steps"] == 12 and summary["tokens_seen"] > 0 and summary["tokens_per_second"] > 0
    # 12 steps: the first 2 (warm-up) are left out of the steady throughput
    assert summary["warmup_steps_excluded"] == 2 and summary["tokens_per_second_after_warmup"] > 0
    assert summary["precision"] == "fp32" and summary["peak_rss_gib"] > 0
    rows = list(csv.DictReader(open(run / "loss.csv", encoding="utf-8")))
    assert sum(1 for r in rows if r["eval_loss"]) == 3  # one validation point per epoch
    assert summary["last_loss"] < summary["first_loss"]
    resolved = load_config(run / "config.yaml")
    assert resolved.training.strategy == "qlora"


def test_token_weighted_accumulation_matches_one_big_batch(tiny_overrides, varied_data):
    """Batch 8 x accumulation 1 and batch 2 x accumulation 4 take the same optimizer step."""
    common = [
        "training.strategy=lora",
        "training.max_steps=1",
        "training.optimizer=sgd",
        "training.learning_rate=1.0",
        "training.lr_scheduler=constant",
        "training.max_grad_norm=0",
    ]
    runs = {}
    for name, bs, ga in (("big", 8, 1), ("accum", 2, 4)):
        cfg = make_cfg(
            tiny_overrides,
            varied_data,
            *common,
            f"training.per_device_batch_size={bs}",
            f"training.gradient_accumulation_steps={ga}",
            f"output.name={name}",
        )
        summary = LLAMAFineTuner(cfg, progress=False).train()
        runs[name] = (summary, adapter(cfg.run_dir))
    (s1, w1), (s2, w2) = runs["big"], runs["accum"]
    assert s1["first_loss"] == pytest.approx(s2["first_loss"], rel=1e-5)
    # with SGD at lr 1 the weight change is the gradient itself
    moved = 0
    for key in w1:
        torch.testing.assert_close(w1[key], w2[key], rtol=1e-5, atol=1e-6)
        moved += int("lora_B" in key and w1[key].abs().sum() > 0)
    assert moved > 0  # the step really changed the adapters


def test_padding_free_batch_gives_the_same_loss_as_separate_rows(tiny_model_dir, tokenizer):
    from transformers import AutoModelForCausalLM

    from bondhu.data.processor import DatasetProcessor

    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir, attn_implementation="sdpa").eval()
    convs = [json.loads(line)["messages"] for line in MINI.read_text("utf-8").splitlines()[:3]]
    rows = DatasetProcessor(tokenizer).encode_many(convs)
    nll, count = 0.0, 0
    with torch.no_grad():
        for r in rows:
            n = sum(1 for x in r["labels"][1:] if x != -100)
            nll += model(input_ids=torch.tensor([r["input_ids"]]), labels=torch.tensor([r["labels"]])).loss.item() * n
            count += n
        ids = torch.tensor([sum((r["input_ids"] for r in rows), [])])
        labels = torch.tensor([sum(([-100] + r["labels"][1:] for r in rows), [])])
        # use_cache=False as in training: transformers only derives the per-row mask without a cache
        flat = model(
            input_ids=ids,
            labels=labels,
            use_cache=False,
            position_ids=torch.tensor([sum((list(range(r["length"])) for r in rows), [])]),
        ).loss.item()
        # control: without the position resets the rows attend to each other, and the loss moves a lot
        leaky = model(input_ids=ids, labels=labels, use_cache=False).loss.item()
    assert flat == pytest.approx(nll / count, rel=1e-5)
    assert abs(leaky - nll / count) > 20 * abs(flat - nll / count)


KILL_SCRIPT = textwrap.dedent("""
    import os, signal, sys
    from transformers import TrainerCallback
    from bondhu.config import load_config
    from bondhu.train.finetuner import LLAMAFineTuner

    class KillAfterSave(TrainerCallback):
        def on_save(self, args, state, control, **kw):
            if state.global_step == 4:
                os.kill(os.getpid(), signal.SIGKILL)

    cfg = load_config(sys.argv[1], sys.argv[2:])
    LLAMAFineTuner(cfg, callbacks=[KillAfterSave()], progress=False).train()
""")


def test_sigkill_then_resume_equals_an_uninterrupted_run(tiny_overrides, varied_data, tmp_path):
    common = [
        "training.strategy=qlora",
        "training.max_steps=8",
        "training.save_steps=4",
        "training.per_device_batch_size=2",
        "training.save_total_limit=3",
    ]
    full_cfg = make_cfg(tiny_overrides, varied_data, *common, "output.name=full")
    LLAMAFineTuner(full_cfg, progress=False).train()

    overrides = [
        *tiny_overrides,
        f"data.train={varied_data}",
        "data.validation=null",
        "training.logging_steps=1",
        "training.warmup_ratio=0",
        *common,
        "output.name=killed",
    ]
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    proc = subprocess.run(
        [sys.executable, "-c", KILL_SCRIPT, str(ROOT / "configs" / "tiny-cpu.yaml"), *overrides],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == -9, proc.stderr[-2000:]
    killed_cfg = load_config(ROOT / "configs" / "tiny-cpu.yaml", overrides)
    assert (killed_cfg.run_dir / "checkpoints" / "checkpoint-4").is_dir()
    assert not (killed_cfg.run_dir / "summary.json").exists()

    summary = LLAMAFineTuner(killed_cfg, progress=False).train(resume=True)
    assert summary["resumed"] and summary["steps"] == 8
    full, resumed = loss_rows(full_cfg.run_dir), loss_rows(killed_cfg.run_dir)
    assert [r["step"] for r in full] == [r["step"] for r in resumed] == [str(i) for i in range(1, 9)]
    for a, b in zip(full, resumed):
        assert float(a["loss"]) == pytest.approx(float(b["loss"]), rel=1e-5)
    wa, wb = adapter(full_cfg.run_dir), adapter(killed_cfg.run_dir)
    for key in wa:
        torch.testing.assert_close(wa[key], wb[key], rtol=1e-5, atol=1e-6)


def test_wandb_offline_and_tensorboard_files(tiny_overrides, varied_data, monkeypatch):
    monkeypatch.delenv("WANDB_API_KEY", raising=False)
    monkeypatch.setenv("WANDB_PROJECT", "someone-elses")
    monkeypatch.delenv("WANDB_DIR", raising=False)
    cfg = make_cfg(
        tiny_overrides,
        varied_data,
        "training.strategy=lora",
        "training.max_steps=2",
        "logging.wandb=true",
        "logging.tensorboard=true",
        "output.name=logged",
    )
    LLAMAFineTuner(cfg, progress=False).train()
    offline = list((cfg.run_dir / "wandb").glob("offline-run-*"))
    assert offline and any(offline[0].glob("*.wandb"))
    assert list((cfg.run_dir / "tensorboard").rglob("events.out.tfevents.*"))
    # the run's logging settings do not outlive it
    assert os.environ["WANDB_PROJECT"] == "someone-elses" and "WANDB_DIR" not in os.environ
    assert "TENSORBOARD_LOGGING_DIR" not in os.environ


def test_logging_off_writes_nothing_outside_the_run_directory(tiny_overrides, varied_data, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    cfg = make_cfg(tiny_overrides, varied_data, "training.strategy=lora", "training.max_steps=1", "output.name=quiet")
    LLAMAFineTuner(cfg, progress=False).train()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["runs"]
    assert not (cfg.run_dir / "wandb").exists() and not (cfg.run_dir / "tensorboard").exists()


INTERRUPT_SCRIPT = textwrap.dedent("""
    import os, signal, sys
    from transformers import TrainerCallback
    from bondhu import cli

    class CtrlCAtStep2(TrainerCallback):
        def on_step_begin(self, args, state, control, **kw):
            if state.global_step == 2:
                os.kill(os.getpid(), signal.SIGINT)  # what Ctrl-C sends

    import bondhu.train.finetuner as ft
    original = ft.LLAMAFineTuner.__init__
    def init(self, cfg, callbacks=None, progress=True):
        original(self, cfg, callbacks=[CtrlCAtStep2()], progress=False)
    ft.LLAMAFineTuner.__init__ = init
    sys.argv = ["bondhu", "train", *sys.argv[1:]]
    cli.main()
""")


def test_ctrl_c_saves_a_checkpoint_and_says_how_to_resume(tiny_overrides, varied_data):
    overrides = [
        *tiny_overrides,
        f"data.train={varied_data}",
        "data.validation=null",
        "training.strategy=lora",
        "training.max_steps=50",
        "training.save_steps=100",
        "output.name=ctrlc",
    ]
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    proc = subprocess.run(
        [sys.executable, "-c", INTERRUPT_SCRIPT, "tiny-cpu", *overrides],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 130, proc.stderr[-2000:]
    assert "--resume" in proc.stdout and "Traceback" not in proc.stderr
    cfg = load_config(ROOT / "configs" / "tiny-cpu.yaml", overrides)
    assert (cfg.run_dir / "checkpoints" / "checkpoint-3").is_dir()
    summary = json.loads((cfg.run_dir / "summary.json").read_text())
    assert summary["interrupted"] is True and summary["steps"] == 3


def test_gpu_out_of_memory_is_one_line_with_advice(tiny_overrides, varied_data, run_cli, monkeypatch):
    import transformers

    def boom(self, *a, **k):
        raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")

    monkeypatch.setattr(transformers.Trainer, "train", boom)
    result = run_cli(
        "train",
        "tiny-cpu",
        *tiny_overrides,
        f"data.train={varied_data}",
        "data.validation=null",
        "training.strategy=lora",
        "output.name=oom",
    )
    errors = [line for line in result.err.splitlines() if "error:" in line]
    assert result.code == 1 and len(errors) == 1 and "Traceback" not in result.err
    assert "out of GPU memory" in errors[0] and "per_device_batch_size" in errors[0]
