"""One benchmark section per process (Unsloth patches transformers globally, so sections
must not share a process). Called by benchmarks/gpu.py; prints one ``RESULT {json}`` line.

    python benchmarks/gpu_workers.py SECTION --model DIR [--steps N] [--tiny]
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import sys
import time
from pathlib import Path

# Process start, or the moment gpu.py released a process it started ahead (see --go): sections
# report their startup (loading, setup) from here.
T0 = time.perf_counter()
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "benchmarks"))

LLAMA31_8B = dict(vocab_size=128256, hidden_size=4096, intermediate_size=14336, num_hidden_layers=32,
                  num_attention_heads=32, num_key_value_heads=8, max_position_embeddings=131072,
                  rope_theta=500000.0, rms_norm_eps=1e-5, tie_word_embeddings=False,
                  rope_scaling={"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0,
                                "high_freq_factor": 4.0, "original_max_position_embeddings": 8192},
                  bos_token_id=128000, eos_token_id=[128001, 128008, 128009], pad_token_id=128004)
ALL_LINEAR = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]


UNSLOTH_SECTIONS = {"train_unsloth", "train_unsloth_cudnn", "train_unsloth_ckpt", "train_unsloth_double", "fallback_unsloth", "seed_recipe",
                    "bare_unsloth", "bare_unsloth_none", "t4_longest",
                    "infer_unsloth", "profile_unsloth"}
IMPORT_SECONDS = None  # set when gpu.py started this process ahead of its turn


def result(**kw):
    if IMPORT_SECONDS is not None:
        kw["import_seconds_ahead"] = IMPORT_SECONDS
    print("RESULT " + json.dumps(kw), flush=True)


def preload(section: str, tiny: bool) -> None:
    """The heavy imports, before any timing: Unsloth first where the section uses it, as
    `bondhu train` with strategy unsloth does (Unsloth patches transformers as it loads)."""
    if section in UNSLOTH_SECTIONS and not tiny:
        import unsloth  # noqa: F401
    import datasets  # noqa: F401
    import peft  # noqa: F401
    import torch  # noqa: F401
    import transformers  # noqa: F401
    import trl  # noqa: F401


def sync():
    import torch

    if torch.cuda.is_available():
        torch.cuda.synchronize()


def peak_gib() -> float | None:
    import torch

    return round(torch.cuda.max_memory_allocated() / 2**30, 2) if torch.cuda.is_available() else None


# ------------------------------------------------------------------ the model
def build(args):
    """A random-initialised model with Llama-3.1-8B's exact shape, plus the Llama 3.1 tokenizer."""
    import tarfile

    import torch
    from transformers import AutoTokenizer, GenerationConfig, LlamaConfig, LlamaForCausalLM

    out = Path(args.model)
    if (out / "config.json").exists():
        return result(section="build", skipped="exists")
    t0 = time.perf_counter()
    tgz = ROOT / ".bench" / "llama31-tok.tgz"
    out.mkdir(parents=True, exist_ok=True)
    if tgz.exists():
        with tarfile.open(tgz) as t:
            t.extractall(out.parent)
        tok = AutoTokenizer.from_pretrained(out.parent / "llama31-tok")
        real = True
    else:  # no rank file: a stand-in BPE trained on the bundled data, padded to the real vocab size
        from bondhu.train.tiny import corpus_texts, train_tokenizer

        tok = train_tokenizer(corpus_texts([str(ROOT / "data/bondhu-empathy/train.jsonl")]), 32000)
        real = False
    cfg = dict(LLAMA31_8B)
    if args.tiny:
        cfg.update(hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4,
                   num_key_value_heads=2, vocab_size=len(tok))
    if not real:
        ids = tok.convert_tokens_to_ids
        cfg.update(bos_token_id=ids("<|begin_of_text|>"), pad_token_id=tok.pad_token_id,
                   eos_token_id=[ids("<|end_of_text|>"), ids("<|eom_id|>"), ids("<|eot_id|>")])
    config = LlamaConfig(**cfg)
    device = "cuda" if torch.cuda.is_available() else "cpu"
    torch.set_default_dtype(torch.bfloat16 if device == "cuda" else torch.float32)
    with torch.device(device):
        model = LlamaForCausalLM(config)
    torch.set_default_dtype(torch.float32)
    model.generation_config = GenerationConfig(bos_token_id=cfg["bos_token_id"], eos_token_id=cfg["eos_token_id"],
                                               pad_token_id=cfg["pad_token_id"])
    model.save_pretrained(out, max_shard_size="5GB")
    tok.save_pretrained(out)
    result(section="build", seconds=round(time.perf_counter() - t0, 1), real_tokenizer=real,
           params=sum(p.numel() for p in model.parameters()))


# ------------------------------------------------------------------ training helpers
class Throughput:
    """Useful (non-padding) tokens per second after ``skip`` warm-up steps."""

    def __init__(self, skip: int = 2):
        from transformers import TrainerCallback

        outer = self

        class CB(TrainerCallback):
            def on_train_begin(self, a, state, control, **kw):
                outer.startup = time.perf_counter() - T0

            def on_step_end(self, a, state, control, **kw):
                # Synchronize only at the window's edges: a sync every step would stop the host
                # from queueing the next step ahead, which training without the meter does.
                if state.global_step == 1:
                    sync()
                    outer.first_step = time.perf_counter() - T0 - outer.startup
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
    return [f"model.name_or_path={args.model}", "model.tiny=null", f"training.strategy={strategy}",
            f"training.max_steps={args.steps}", "training.save_steps=100000", "data.validation=null",
            "logging.wandb=false", f"output.runs_dir={args.runs}",
            f"output.name={name}", "output.overwrite=true", "training.per_device_batch_size=8",
            "training.gradient_accumulation_steps=1", "training.warmup_ratio=0", "training.logging_steps=1"] + (
        ["training.optimizer=adamw_torch"] if args.tiny else [])


def bondhu_train(args, strategy: str, extra_callbacks=(), section: str | None = None):
    """Runs b and c: the product's own `bondhu train` path (LLAMAFineTuner) with a timing callback."""
    from bondhu.config import load_config
    from bondhu.train.finetuner import LLAMAFineTuner

    cfg = load_config(ROOT / "configs" / "llama31-8b.yaml",
                      bench_overrides(args, strategy, f"bench-{strategy}") + list(args.set or []))
    meter = Throughput(args.skip)
    summary = LLAMAFineTuner(cfg, callbacks=[meter.callback, *extra_callbacks], progress=False).train()
    losses = [r["loss"] for r in csv.DictReader(open(cfg.run_dir / "loss.csv", encoding="utf-8")) if r["loss"]]
    result(section=section or f"train_{strategy}", tokens_per_second=round(meter.tokens_per_second(), 1),
           peak_gpu_gib=summary.get("peak_gpu_allocated_gib"), reserved_gib=summary.get("peak_gpu_reserved_gib"),
           padding_free_on=summary["padding_free_on"], steps=summary["steps"], strategy=summary["strategy"],
           precision=summary["precision"], last_loss=summary["last_loss"], losses=[float(x) for x in losses],
           plan=summary["plan"], plan_fallbacks=summary["plan_fallbacks"],
           largest_step_tokens=summary["largest_step_tokens"],
           estimate_at_largest_step_gib=summary["estimate_at_largest_step_gib"],
           mean_tokens_per_step=round((meter.n1 - meter.n0) / max(1, meter.steps - meter.skip)), **meter.timings())


def train_qlora(args):
    bondhu_train(args, "qlora")


def train_unsloth(args):
    bondhu_train(args, "unsloth")


def train_qlora_half(args):
    """b at 4 conversations × 2 accumulation steps: the plan's estimate on another step size."""
    args.set = [*(args.set or []), "training.per_device_batch_size=4", "training.gradient_accumulation_steps=2"]
    bondhu_train(args, "qlora", section="train_qlora_half")


def train_unsloth_double(args):
    """c at 16 conversations per step: the plan's estimate on another step size."""
    args.set = [*(args.set or []), "training.per_device_batch_size=16"]
    bondhu_train(args, "unsloth", section="train_unsloth_double")


def train_unsloth_ckpt(args):
    """c with checkpointing forced on (the presets before the memory-aware plan)."""
    args.set = [*(args.set or []), "training.gradient_checkpointing=true"]
    bondhu_train(args, "unsloth", section="train_unsloth_ckpt")


def fallback_unsloth(args):
    """A real out-of-memory: the card is capped at 24 GiB while the planner is told it has 139, so it
    starts without recompute (about 50 GiB), runs out of memory on the first step and falls back."""
    import torch

    total = torch.cuda.get_device_properties(0).total_memory
    torch.cuda.set_per_process_memory_fraction(24 * 2**30 / total)
    args.set = [*(args.set or []), "training.memory_budget_gib=139"]
    bondhu_train(args, "unsloth", section="fallback_unsloth")


def train_unsloth_cudnn(args):
    """c with SDPA's cuDNN backend left on, which the strategy turns off for packed rows: what that gains."""
    import contextlib

    from bondhu.train.strategies import UnslothStrategy

    UnslothStrategy.training_context = lambda self, padding_free: contextlib.nullcontext()
    bondhu_train(args, "unsloth", section="train_unsloth_cudnn")


def conversations(tokenizer_dir):
    """The bundled training conversations with Bondhu's system prompt."""
    from bondhu.config import DataConfig
    from bondhu.data.processor import DatasetProcessor
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(tokenizer_dir)
    proc = DatasetProcessor(tok, DataConfig())
    convs, _ = proc.load(str(ROOT / "data/bondhu-empathy/train.jsonl"))
    return [proc.with_system(c.messages) for c in convs]


def seed_recipe(args):
    """Run a: the common Unsloth notebook recipe (text + DataCollatorForSeq2Seq + train_on_responses_only)."""
    from unsloth import FastLanguageModel
    from unsloth.chat_templates import train_on_responses_only

    import datasets
    from transformers import DataCollatorForSeq2Seq
    from trl import SFTConfig, SFTTrainer

    model, tok = FastLanguageModel.from_pretrained(args.model, max_seq_length=2048, dtype=None, load_in_4bit=True)
    model = FastLanguageModel.get_peft_model(model, r=16, lora_alpha=16, lora_dropout=0, target_modules=ALL_LINEAR,
                                             bias="none", use_gradient_checkpointing="unsloth", random_state=3407)
    texts = [tok.apply_chat_template(c, tokenize=False) for c in conversations(args.model)]
    ds = datasets.Dataset.from_dict({"text": texts})
    meter = Throughput(args.skip)
    trainer = SFTTrainer(
        model=model, processing_class=tok, train_dataset=ds, data_collator=DataCollatorForSeq2Seq(tokenizer=tok),
        callbacks=[meter.callback],
        args=SFTConfig(dataset_text_field="text", max_length=2048, per_device_train_batch_size=2,
                       gradient_accumulation_steps=4, max_steps=args.steps, learning_rate=2e-4, logging_steps=1,
                       optim="adamw_8bit", bf16=True, report_to="none", output_dir=f"{args.runs}/seed",
                       include_num_input_tokens_seen="non_padding", save_strategy="no", seed=3407))
    trainer = train_on_responses_only(trainer, instruction_part="<|start_header_id|>user<|end_header_id|>\n\n",
                                      response_part="<|start_header_id|>assistant<|end_header_id|>\n\n")
    trainer.train()
    result(section="seed_recipe", tokens_per_second=round(meter.tokens_per_second(), 1), peak_gpu_gib=peak_gib(),
           steps=meter.steps, **meter.timings())


def bare_unsloth(args, recompute: bool = True, section: str = "bare_unsloth"):
    """Run d: a bare Unsloth loop on fixed 2048-token rows at batch 2: the ceiling, not a competitor."""
    import torch
    from unsloth import FastLanguageModel

    model, tok = FastLanguageModel.from_pretrained(args.model, max_seq_length=2048, dtype=None, load_in_4bit=True)
    model = FastLanguageModel.get_peft_model(model, r=16, lora_alpha=16, lora_dropout=0, target_modules=ALL_LINEAR,
                                             use_gradient_checkpointing="unsloth" if recompute else False,
                                             random_state=3407)
    # Training mode, as in c: without it the model stays in eval mode, skips gradient checkpointing
    # and keeps every activation (21 GiB, and a ceiling no checkpointed run can reach).
    FastLanguageModel.for_training(model)
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-4)
    x = torch.randint(0, 128000, (2, 2048), device="cuda")
    startup = time.perf_counter() - T0
    marks = {}  # synchronized, as in the Throughput meter, only at the timing window's edges
    for step in range(1, args.steps + 1):
        loss = model(input_ids=x, labels=x).loss
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
        if step in (1, args.skip, args.steps):
            sync()
            marks[step] = time.perf_counter()
    steady = marks[args.steps] - marks[args.skip]
    result(section=section, tokens_per_second=round(4096 * (args.steps - args.skip) / steady, 1),
           peak_gpu_gib=peak_gib(), steps=args.steps, startup_seconds=round(startup, 1),
           first_step_seconds=round(marks[1] - T0 - startup, 1))


def bare_unsloth_none(args):
    """The bare loop without recompute: the ceiling for c when the plan keeps every activation."""
    bare_unsloth(args, recompute=False, section="bare_unsloth_none")


def matmul_peak(args):
    """bf16 dense matmul TFLOP/s on this GPU, the denominator of MFU."""
    import torch

    n = 8192
    a = torch.randn(n, n, device="cuda", dtype=torch.bfloat16)
    b = torch.randn(n, n, device="cuda", dtype=torch.bfloat16)
    for _ in range(3):
        a @ b
    sync()
    t = time.perf_counter()
    for _ in range(20):
        a @ b
    sync()
    result(section="matmul_peak", tflops=round(2 * n**3 * 20 / (time.perf_counter() - t) / 1e12, 1),
           gpu=torch.cuda.get_device_name())


def t4_longest(args):
    """T4 emulation: 15 GiB cap, fp16; the longest single conversation run c trains at batch 1."""
    import torch

    from bondhu.config import load_config
    from bondhu.train.strategies import UnslothStrategy

    total = torch.cuda.get_device_properties(0).total_memory
    torch.cuda.set_per_process_memory_fraction(15 * 2**30 / total)
    cfg = load_config(ROOT / "configs" / "llama31-8b-t4.yaml",
                      [f"model.name_or_path={args.model}", "model.max_seq_length=65536", "training.precision=fp16"])
    planned = t4_plan(cfg)  # before the model takes its share of the 15 GiB
    strategy = UnslothStrategy()
    model, tok = strategy.load(cfg)
    model = strategy.add_adapters(model, cfg)
    from unsloth import FastLanguageModel

    FastLanguageModel.for_training(model)  # training mode: offloaded checkpointing and chunked loss
    import bitsandbytes as bnb

    # The T4 preset's optimizer (adamw_8bit): its state is a quarter of fp32 AdamW's.
    opt = bnb.optim.AdamW8bit([p for p in model.parameters() if p.requires_grad], lr=1e-4)
    best, tried = 0, []
    # Up from the target in steps of 4,096 until one runs out of memory (shorter ones ran in
    # earlier runs: 24,576 and 28,672 in gpu-20261125-2142).
    for length in (32768, 36864, 40960, 45056, 49152):
        try:
            x = torch.randint(0, 128000, (1, length), device="cuda")
            labels = x.clone()
            labels[:, : length // 2] = -100  # half the tokens are the assistant's, as in a long chat
            sync()
            t = time.perf_counter()
            with torch.autocast("cuda", dtype=torch.float16):
                loss = model(input_ids=x, labels=labels).loss
            loss.backward()  # memory, not numerics, is measured here: no loss scaling needed
            opt.step()
            opt.zero_grad(set_to_none=True)
            sync()
            tried.append({"tokens": length, "ok": True, "seconds": round(time.perf_counter() - t, 1),
                          "peak_gib": peak_gib()})
            best = length
        except torch.OutOfMemoryError as err:
            tried.append({"tokens": length, "ok": False, "error": str(err).splitlines()[0][:200]})
            break
        finally:
            torch.cuda.empty_cache()
    result(section="t4_longest", longest_tokens=best, tried=tried, **planned)


def t4_plan(cfg) -> dict:
    """What `auto` picks for the T4 preset on this 15 GiB share, and the estimate for each tried length."""
    from bondhu.train.finetuner import memory_setup
    from bondhu.train.plan import GIB, Shape, card_memory, estimate, make_plans
    from bondhu.train.strategies import UnslothStrategy
    from transformers import AutoConfig

    shape, setup = Shape.of(AutoConfig.from_pretrained(cfg.model.name_or_path)), memory_setup(UnslothStrategy(), cfg, "fp16")
    budget, card = card_memory(None)
    lengths = [min(n, cfg.data.max_length or n) for n in conversation_lengths(cfg.model.name_or_path)]
    t = cfg.training
    plan = make_plans(shape, setup, lengths, t.batching, t.per_device_batch_size, t.gradient_accumulation_steps,
                      t.gradient_checkpointing, budget, card)[0]
    return {"plan": plan.to_json(), "estimates_gib": {n: round(estimate(shape, setup, "offload", n).total / GIB, 2)
                                                      for n in (32768, 36864, 40960, 45056, 49152)}}


def conversation_lengths(tokenizer_dir) -> list[int]:
    """Token lengths of the bundled training conversations with Bondhu's system prompt."""
    from bondhu.config import DataConfig
    from bondhu.data.processor import DatasetProcessor
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(tokenizer_dir)
    return [r["length"] for r in DatasetProcessor(tok, DataConfig()).prepare(str(ROOT / "data/bondhu-empathy/train.jsonl")).rows]


WORKERS = {"build": build, "train_unsloth": train_unsloth, "train_unsloth_cudnn": train_unsloth_cudnn,
           "train_unsloth_ckpt": train_unsloth_ckpt, "train_qlora_half": train_qlora_half,
           "train_unsloth_double": train_unsloth_double, "fallback_unsloth": fallback_unsloth,
           "bare_unsloth_none": bare_unsloth_none,
           "train_qlora": train_qlora, "seed_recipe": seed_recipe, "bare_unsloth": bare_unsloth,
           "matmul_peak": matmul_peak, "t4_longest": t4_longest}

if __name__ == "__main__":
    p = argparse.ArgumentParser()
    p.add_argument("section")
    p.add_argument("--model", default="/tmp/llama31-8b-random")
    p.add_argument("--runs", default="/tmp/bench-runs")
    p.add_argument("--steps", type=int, default=12)
    p.add_argument("--new-tokens", type=int, default=256)
    p.add_argument("--skip", type=int, default=5, help="warm-up steps left out of the timing (torch.compile)")
    p.add_argument("--tiny", action="store_true", help="CPU dry run on a tiny model of the same code path")
    p.add_argument("--set", action="append", help="extra config override for the bondhu train sections (key=value)")
    p.add_argument("--go", help="after the imports, wait until this file exists (gpu.py's prefetch)")
    args = p.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    sys.modules.setdefault("gpu_workers", sys.modules["__main__"])  # one module, whoever imports it
    preload(args.section, args.tiny)
    if args.go:  # started ahead by gpu.py: imports done, wait for the card
        IMPORT_SECONDS = round(time.perf_counter() - T0, 1)
        while not Path(args.go).exists():
            time.sleep(0.1)
        T0 = time.perf_counter()
    if args.section in WORKERS:
        WORKERS[args.section](args)
    else:
        from gpu_infer import WORKERS as INFER
        from gpu_profile import WORKERS as PROFILE
        from gpu_scaling import WORKERS as SCALING

        {**INFER, **SCALING, **PROFILE}[args.section](args)
