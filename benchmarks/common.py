"""What the GPU benchmark's sections share: the 8B shape, the RESULT line, the timing meter and
the product's own `bondhu train` path. Imported by the section modules; it imports none of them."""

from __future__ import annotations

import csv
import json
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

LLAMA31_8B = dict(
    vocab_size=128256,
    hidden_size=4096,
    intermediate_size=14336,
    num_hidden_layers=32,
    num_attention_heads=32,
    num_key_value_heads=8,
    max_position_embeddings=131072,
    rope_theta=500000.0,
    rms_norm_eps=1e-5,
    tie_word_embeddings=False,
    rope_scaling={
        "rope_type": "llama3",
        "factor": 8.0,
        "low_freq_factor": 1.0,
        "high_freq_factor": 4.0,
        "original_max_position_embeddings": 8192,
    },
    bos_token_id=128000,
    eos_token_id=[128001, 128008, 128009],
    pad_token_id=128004,
)


@dataclass
class Clock:
    """Process start, or the moment gpu.py released a process it started ahead (see --go):
    sections report their startup (loading, setup) from ``t0``."""

    t0: float = field(default_factory=time.perf_counter)
    import_seconds: float | None = None  # set when gpu.py started this process ahead of its turn


CLOCK = Clock()


def result(**kw):
    """Print a section's one ``RESULT {json}`` line, which gpu.py reads."""
    if CLOCK.import_seconds is not None:
        kw["import_seconds_ahead"] = CLOCK.import_seconds
    print("RESULT " + json.dumps(kw), flush=True)


def sync():
    import torch

    if torch.cuda.is_available():
        torch.cuda.synchronize()


def peak_gib() -> float | None:
    import torch

    return round(torch.cuda.max_memory_allocated() / 2**30, 2) if torch.cuda.is_available() else None


class Throughput:
    """Useful (non-padding) tokens per second after ``skip`` warm-up steps."""

    def __init__(self, skip: int = 2):
        from transformers import TrainerCallback

        outer = self

        class CB(TrainerCallback):
            def on_train_begin(self, a, state, control, **kw):
                outer.startup = time.perf_counter() - CLOCK.t0

            def on_step_end(self, a, state, control, **kw):
                # Synchronize only at the window's edges: a sync every step would stop the host
                # from queueing the next step ahead, which training without the meter does.
                if state.global_step == 1:
                    sync()
                    outer.first_step = time.perf_counter() - CLOCK.t0 - outer.startup
                if state.global_step == skip:
                    sync()
                    outer.t0, outer.n0 = time.perf_counter(), state.num_input_tokens_seen
                if state.global_step == state.max_steps:
                    # Stop here, before the Trainer saves its end-of-training checkpoint: `bondhu
                    # train` saves one (adapter, optimizer state), the seed recipe and d save none.
                    self.stop(state)

            def on_train_end(self, a, state, control, **kw):
                if outer.t1 is None:  # stopped before max_steps
                    self.stop(state)

            def stop(self, state):
                sync()
                outer.t1, outer.n1, outer.steps = time.perf_counter(), state.num_input_tokens_seen, state.global_step

        self.callback = CB()
        self.t0 = self.n0 = self.t1 = self.n1 = None
        self.startup = self.first_step = None
        self.skip = skip

    def tokens_per_second(self) -> float:
        return (self.n1 - self.n0) / (self.t1 - self.t0)

    def timings(self) -> dict:
        """Seconds from process start to training (imports, loading) and of the first (compiling) step."""
        return {"startup_seconds": round(self.startup or 0, 1), "first_step_seconds": round(self.first_step or 0, 1)}


def bench_overrides(args, strategy: str, name: str) -> list[str]:
    return [
        f"model.name_or_path={args.model}",
        "model.tiny=null",
        f"training.strategy={strategy}",
        f"training.max_steps={args.steps}",
        "training.save_steps=100000",
        "data.validation=null",
        "logging.wandb=false",
        f"output.runs_dir={args.runs}",
        f"output.name={name}",
        "output.overwrite=true",
        "training.per_device_batch_size=8",
        "training.gradient_accumulation_steps=1",
        "training.warmup_ratio=0",
        "training.logging_steps=1",
    ] + (["training.optimizer=adamw_torch"] if args.tiny else [])


def bondhu_train(args, strategy: str, extra_callbacks=(), section: str | None = None):
    """Runs b and c: the product's own `bondhu train` path (LLAMAFineTuner) with a timing callback."""
    from bondhu.config import load_config
    from bondhu.train.finetuner import LLAMAFineTuner

    cfg = load_config(
        ROOT / "configs" / "llama31-8b.yaml",
        bench_overrides(args, strategy, f"bench-{strategy}") + list(args.set or []),
    )
    meter = Throughput(args.skip)
    summary = LLAMAFineTuner(cfg, callbacks=[meter.callback, *extra_callbacks], progress=False).train()
    losses = [r["loss"] for r in csv.DictReader(open(cfg.run_dir / "loss.csv", encoding="utf-8")) if r["loss"]]
    result(
        section=section or f"train_{strategy}",
        tokens_per_second=round(meter.tokens_per_second(), 1),
        peak_gpu_gib=summary.get("peak_gpu_allocated_gib"),
        reserved_gib=summary.get("peak_gpu_reserved_gib"),
        padding_free_on=summary["padding_free_on"],
        steps=summary["steps"],
        strategy=summary["strategy"],
        precision=summary["precision"],
        last_loss=summary["last_loss"],
        losses=[float(x) for x in losses],
        plan=summary["plan"],
        plan_fallbacks=summary["plan_fallbacks"],
        largest_step_tokens=summary["largest_step_tokens"],
        estimate_at_largest_step_gib=summary["estimate_at_largest_step_gib"],
        mean_tokens_per_step=round((meter.n1 - meter.n0) / max(1, meter.steps - meter.skip)),
        **meter.timings(),
    )


def conversations(tokenizer_dir):
    """The bundled training conversations with Bondhu's system prompt."""
    from transformers import AutoTokenizer

    from bondhu.config import DataConfig
    from bondhu.data.processor import DatasetProcessor

    tok = AutoTokenizer.from_pretrained(tokenizer_dir)
    proc = DatasetProcessor(tok, DataConfig())
    convs, _ = proc.load(str(ROOT / "data/bondhu-empathy/train.jsonl"))
    return [proc.with_system(c.messages) for c in convs]


def conversation_lengths(tokenizer_dir) -> list[int]:
    """Token lengths of the bundled training conversations with Bondhu's system prompt."""
    from transformers import AutoTokenizer

    from bondhu.config import DataConfig
    from bondhu.data.processor import DatasetProcessor

    tok = AutoTokenizer.from_pretrained(tokenizer_dir)
    return [
        r["length"]
        for r in DatasetProcessor(tok, DataConfig()).prepare(str(ROOT / "data/bondhu-empathy/train.jsonl")).rows
    ]
