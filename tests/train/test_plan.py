"""The memory-aware training plan: its arithmetic on the 8B shape, its choices, and the fallback."""

import csv
from dataclasses import replace

import pytest
import torch
from transformers import TrainerCallback

from bondhu.config import ALL_LINEAR, load_config
from bondhu.train.finetuner import LLAMAFineTuner
from bondhu.train.plan import GIB, Setup, Shape, estimate, fallbacks_after, lora_parameters, make_plans, weight_bytes
from helpers import MINI, ROOT

LLAMA31_8B = Shape(layers=32, hidden=4096, intermediate=14336, vocab=128256, kv_dim=1024)
UNSLOTH_BF16 = Setup(
    quantized=True,
    dtype_bytes=2,
    lora_r=16,
    lora_targets=tuple(ALL_LINEAR),
    optimizer="adamw_8bit",
    fused=True,
    chunked_loss=True,
    checkpointing="offload",
)
QLORA_FP16 = replace(UNSLOTH_BF16, fused=False, checkpointing="recompute")  # eager modules, PEFT's recompute
# Conversations of the bundled set's order of size under the Llama 3 tokenizer.
LENGTHS = [900 + 37 * (i % 29) for i in range(300)]


def test_the_8b_shapes_arithmetic():
    # r=16 on all seven projections of 32 layers: the count PEFT and Unsloth print for Llama 3 8B.
    assert lora_parameters(LLAMA31_8B, 16, tuple(ALL_LINEAR)) == 41_943_040
    # 6.98e9 NF4 weights at ~0.52 bytes, embeddings and LM head in 16 bits.
    assert weight_bytes(LLAMA31_8B, UNSLOTH_BF16) / GIB == pytest.approx(5.31, abs=0.02)
    unquantized = replace(UNSLOTH_BF16, quantized=False)
    assert weight_bytes(LLAMA31_8B, unquantized) / GIB == pytest.approx(8.03e9 * 2 / GIB, rel=0.01)
    # Without recompute every layer keeps 15 hidden-sized tensors per token: 3.75 MiB per token.
    per_token = estimate(LLAMA31_8B, UNSLOTH_BF16, "none", 1000).activations / 1000
    assert per_token == 32 * 15 * 4096 * 2
    # Eager modules with PEFT's fp32 adapter inputs keep 39.5.
    assert estimate(LLAMA31_8B, QLORA_FP16, "none", 1000).activations / 1000 == 32 * 39.5 * 4096 * 2
    # The T4 emulation's measured peak at 36,864 tokens (offloaded, fp16; docs/benchmarks.md): 14.09 GiB.
    assert estimate(LLAMA31_8B, UNSLOTH_BF16, "offload", 36864).total / GIB == pytest.approx(14.09, rel=0.05)


def test_plain_recompute_keeps_each_layers_input_and_eager_modules_save_more():
    offload = estimate(LLAMA31_8B, QLORA_FP16, "offload", 4096).activations
    recompute = estimate(LLAMA31_8B, QLORA_FP16, "recompute", 4096).activations
    assert recompute - offload == 32 * 4096 * 2 * 4096
    assert (
        estimate(LLAMA31_8B, QLORA_FP16, "none", 4096).activations
        > estimate(LLAMA31_8B, UNSLOTH_BF16, "none", 4096).activations
    )


def test_a_big_card_trains_without_recompute():
    plans = make_plans(
        LLAMA31_8B, UNSLOTH_BF16, LENGTHS, "padding_free", 8, 1, "auto", budget=139 * GIB, card=139 * GIB
    )
    first = plans[0]
    assert (first.recompute, first.micro_batch, first.accumulation) == ("none", 8, 1)
    assert first.describe().startswith("plan: no recompute, 8 conversations/step, est. ")
    assert first.describe().endswith(" GiB of 139 GiB")
    assert first.tokens == sum(sorted(LENGTHS)[-8:])  # the eight longest side by side


def test_a_middle_card_halves_the_step_before_it_recomputes():
    plans = make_plans(LLAMA31_8B, UNSLOTH_BF16, LENGTHS, "padding_free", 8, 1, "auto", budget=48 * GIB, card=48 * GIB)
    assert (plans[0].recompute, plans[0].micro_batch, plans[0].accumulation) == ("none", 4, 2)
    assert plans[0].estimate_bytes <= 0.9 * 48 * GIB
    assert [p.recompute for p in plans[1:]] == ["offload"] * 4  # then offloaded at 8, 4, 2, 1


@pytest.mark.parametrize("setup, mode", [(UNSLOTH_BF16, "offload"), (QLORA_FP16, "recompute")])
def test_the_t4_preset_on_15_gib_keeps_checkpointing(setup, mode):
    cfg = load_config(ROOT / "configs" / "llama31-8b-t4.yaml")
    t = cfg.training
    assert t.gradient_checkpointing == "auto"
    plans = make_plans(
        LLAMA31_8B,
        setup,
        [2048] * 50,
        "padding_free",
        t.per_device_batch_size,
        t.gradient_accumulation_steps,
        t.gradient_checkpointing,
        budget=15 * GIB,
        card=15 * GIB,
    )
    assert (plans[0].recompute, plans[0].micro_batch, plans[0].accumulation) == (mode, 2, 4)


def test_true_and_false_force_the_choice():
    forced_on = make_plans(LLAMA31_8B, UNSLOTH_BF16, LENGTHS, "padding_free", 8, 1, True, budget=139 * GIB)
    assert forced_on[0].recompute == "offload" and forced_on[0].micro_batch == 8
    assert "training.gradient_checkpointing=true" in forced_on[0].reason
    forced_off = make_plans(LLAMA31_8B, UNSLOTH_BF16, LENGTHS, "padding_free", 8, 1, False, budget=8 * GIB)
    assert [(p.recompute, p.micro_batch) for p in forced_off] == [("none", 8)]


def test_nothing_fits_starts_from_the_leanest():
    plans = make_plans(LLAMA31_8B, UNSLOTH_BF16, LENGTHS, "padding_free", 8, 1, "auto", budget=4 * GIB)
    assert (plans[0].recompute, plans[0].micro_batch) == ("offload", 1) and "no plan fits" in plans[0].reason


def test_fallbacks_need_less_memory_and_keep_the_conversations_per_step():
    plans = make_plans(LLAMA31_8B, UNSLOTH_BF16, LENGTHS, "padding_free", 8, 2, "auto", budget=139 * GIB)
    later = fallbacks_after(plans, plans[0])
    assert len(later) == len(plans) - 1
    assert all(a.estimate_bytes > b.estimate_bytes for a, b in zip(plans, plans[1:]))
    assert all(p.micro_batch * p.accumulation == 16 for p in plans)


class RefuseWithoutCheckpointing(TrainerCallback):
    """A card too small to keep every activation: the first step without checkpointing runs out of memory."""

    def __init__(self):
        self.refused = 0

    def on_step_begin(self, args, state, control, model=None, **kwargs):
        if not model.is_gradient_checkpointing:
            self.refused += 1
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 20.00 GiB (injected)")


def _losses(run_dir):
    with open(run_dir / "loss.csv", encoding="utf-8") as f:
        return [float(r["loss"]) for r in csv.DictReader(f) if r["loss"]]


def test_out_of_memory_on_the_first_step_falls_back_and_equals_a_run_started_there(tiny_overrides):
    common = [
        *tiny_overrides,
        f"data.train={MINI}",
        "data.validation=null",
        "training.strategy=qlora",
        "training.max_steps=4",
        "training.per_device_batch_size=4",
        "training.logging_steps=1",
        "training.warmup_ratio=0",
    ]
    refuse = RefuseWithoutCheckpointing()
    cfg = load_config(
        ROOT / "configs" / "tiny-cpu.yaml", [*common, "training.gradient_checkpointing=auto", "output.name=fell-back"]
    )
    summary = LLAMAFineTuner(cfg, callbacks=[refuse], progress=False).train()
    # No recompute at 4, then at 2 conversations per step, both refused; then checkpointing at 4.
    assert refuse.refused == 2 and summary["steps"] == 4
    assert [f["at_step"] for f in summary["plan_fallbacks"]] == [0, 0]
    assert summary["plan"]["recompute"] == "recompute" and summary["plan"]["micro_batch"] == 4
    assert summary["plan_fallbacks"][-1]["to"] == summary["plan"]["description"]

    direct = load_config(
        ROOT / "configs" / "tiny-cpu.yaml",
        [*common, "training.gradient_checkpointing=true", "output.name=started-there"],
    )
    started = LLAMAFineTuner(direct, progress=False).train()
    assert started["plan"]["recompute"] == "recompute" and not started["plan_fallbacks"]
    assert _losses(cfg.run_dir) == pytest.approx(_losses(direct.run_dir), rel=1e-6)
    assert len(_losses(cfg.run_dir)) == 4


def test_forced_no_recompute_out_of_memory_stops_with_advice(tiny_overrides):
    cfg = load_config(
        ROOT / "configs" / "tiny-cpu.yaml",
        [
            *tiny_overrides,
            f"data.train={MINI}",
            "data.validation=null",
            "training.strategy=qlora",
            "training.max_steps=2",
            "training.gradient_checkpointing=false",
            "output.name=forced-off",
        ],
    )
    from bondhu.errors import BondhuError

    with pytest.raises(BondhuError, match="out of GPU memory.*plan: no recompute"):
        LLAMAFineTuner(cfg, callbacks=[RefuseWithoutCheckpointing()], progress=False).train()
