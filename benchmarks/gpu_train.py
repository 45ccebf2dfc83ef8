"""Training sections of the GPU benchmark: the model build, a to e, the memory plan's checks, the
matmul peak and the T4 emulation. Each is a function of the parsed arguments; SECTIONS names them."""

from __future__ import annotations

import time
from pathlib import Path

from bondhu.config import ALL_LINEAR
from common import (
    CLOCK,
    LLAMA31_8B,
    ROOT,
    Throughput,
    bondhu_train,
    conversation_lengths,
    conversations,
    peak_gib,
    result,
    sync,
)


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
        cfg.update(
            hidden_size=64,
            intermediate_size=128,
            num_hidden_layers=2,
            num_attention_heads=4,
            num_key_value_heads=2,
            vocab_size=len(tok),
        )
    if not real:
        ids = tok.convert_tokens_to_ids
        cfg.update(
            bos_token_id=ids("<|begin_of_text|>"),
            pad_token_id=tok.pad_token_id,
            eos_token_id=[ids("<|end_of_text|>"), ids("<|eom_id|>"), ids("<|eot_id|>")],
        )
    config = LlamaConfig(**cfg)
    device = "cuda" if torch.cuda.is_available() else "cpu"
    torch.set_default_dtype(torch.bfloat16 if device == "cuda" else torch.float32)
    with torch.device(device):
        model = LlamaForCausalLM(config)
    torch.set_default_dtype(torch.float32)
    model.generation_config = GenerationConfig(
        bos_token_id=cfg["bos_token_id"], eos_token_id=cfg["eos_token_id"], pad_token_id=cfg["pad_token_id"]
    )
    model.save_pretrained(out, max_shard_size="5GB")
    tok.save_pretrained(out)
    result(
        section="build",
        seconds=round(time.perf_counter() - t0, 1),
        real_tokenizer=real,
        params=sum(p.numel() for p in model.parameters()),
    )


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


def unsloth_lora(model_dir: str, checkpointing: bool):
    """The 4-bit model with LoRA r=16 on all linear layers, as Unsloth's notebooks build it (a, d and e)."""
    from unsloth import FastLanguageModel

    model, tok = FastLanguageModel.from_pretrained(model_dir, max_seq_length=2048, dtype=None, load_in_4bit=True)
    model = FastLanguageModel.get_peft_model(
        model,
        r=16,
        lora_alpha=16,
        lora_dropout=0,
        target_modules=ALL_LINEAR,
        bias="none",
        use_gradient_checkpointing="unsloth" if checkpointing else False,
        random_state=3407,
    )
    return model, tok


def seed_recipe(args):
    """Run a: the common Unsloth notebook recipe (text + DataCollatorForSeq2Seq + train_on_responses_only)."""
    import datasets
    from transformers import DataCollatorForSeq2Seq
    from trl import SFTConfig, SFTTrainer
    from unsloth.chat_templates import train_on_responses_only

    model, tok = unsloth_lora(args.model, checkpointing=True)
    texts = [tok.apply_chat_template(c, tokenize=False) for c in conversations(args.model)]
    ds = datasets.Dataset.from_dict({"text": texts})
    meter = Throughput(args.skip)
    trainer = SFTTrainer(
        model=model,
        processing_class=tok,
        train_dataset=ds,
        data_collator=DataCollatorForSeq2Seq(tokenizer=tok),
        callbacks=[meter.callback],
        args=SFTConfig(
            dataset_text_field="text",
            max_length=2048,
            per_device_train_batch_size=2,
            gradient_accumulation_steps=4,
            max_steps=args.steps,
            learning_rate=2e-4,
            logging_steps=1,
            optim="adamw_8bit",
            bf16=True,
            report_to="none",
            output_dir=f"{args.runs}/seed",
            include_num_input_tokens_seen="non_padding",
            save_strategy="no",
            seed=3407,
        ),
    )
    trainer = train_on_responses_only(
        trainer,
        instruction_part="<|start_header_id|>user<|end_header_id|>\n\n",
        response_part="<|start_header_id|>assistant<|end_header_id|>\n\n",
    )
    trainer.train()
    result(
        section="seed_recipe",
        tokens_per_second=round(meter.tokens_per_second(), 1),
        peak_gpu_gib=peak_gib(),
        steps=meter.steps,
        **meter.timings(),
    )


def bare_unsloth(args, recompute: bool = True, section: str = "bare_unsloth"):
    """Run d: a bare Unsloth loop on fixed 2048-token rows at batch 2: the ceiling, not a competitor."""
    import torch
    from unsloth import FastLanguageModel

    model, tok = unsloth_lora(args.model, checkpointing=recompute)
    # Training mode, as in c: without it the model stays in eval mode, skips gradient checkpointing
    # and keeps every activation (21 GiB, and a ceiling no checkpointed run can reach).
    FastLanguageModel.for_training(model)
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-4)
    x = torch.randint(0, 128000, (2, 2048), device="cuda")
    startup = time.perf_counter() - CLOCK.t0
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
    result(
        section=section,
        tokens_per_second=round(4096 * (args.steps - args.skip) / steady, 1),
        peak_gpu_gib=peak_gib(),
        steps=args.steps,
        startup_seconds=round(startup, 1),
        first_step_seconds=round(marks[1] - CLOCK.t0 - startup, 1),
    )


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
    result(
        section="matmul_peak",
        tflops=round(2 * n**3 * 20 / (time.perf_counter() - t) / 1e12, 1),
        gpu=torch.cuda.get_device_name(),
    )


def t4_longest(args):
    """T4 emulation: 15 GiB cap, fp16; the longest single conversation run c trains at batch 1."""
    import torch

    from bondhu.config import load_config
    from bondhu.train.strategies import UnslothStrategy

    total = torch.cuda.get_device_properties(0).total_memory
    torch.cuda.set_per_process_memory_fraction(15 * 2**30 / total)
    cfg = load_config(
        ROOT / "configs" / "llama31-8b-t4.yaml",
        [f"model.name_or_path={args.model}", "model.max_seq_length=65536", "training.precision=fp16"],
    )
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
    # The target alone: the lengths around it ran in earlier runs (24,576 to 32,768 in
    # gpu-20261125-2142, 32,768 to 40,960 in gpu-20261202-0038; 40,960 ran out of memory in
    # gpu-20261202-0404 as its estimate said it would), and one length keeps "all" in one call.
    for length in (36864,):
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
            tried.append(
                {"tokens": length, "ok": True, "seconds": round(time.perf_counter() - t, 1), "peak_gib": peak_gib()}
            )
            best = length
        except torch.OutOfMemoryError as err:
            tried.append({"tokens": length, "ok": False, "error": str(err).splitlines()[0][:200]})
            break
        finally:
            torch.cuda.empty_cache()
    result(section="t4_longest", longest_tokens=best, tried=tried, **planned)


def t4_plan(cfg) -> dict:
    """What `auto` picks for the T4 preset on this 15 GiB share, and the estimate for each tried length."""
    from transformers import AutoConfig

    from bondhu.train.finetuner import memory_setup
    from bondhu.train.plan import GIB, Shape, card_memory, estimate, plans_for
    from bondhu.train.strategies import UnslothStrategy

    shape, setup = (
        Shape.of(AutoConfig.from_pretrained(cfg.model.name_or_path)),
        memory_setup(UnslothStrategy(), cfg, "fp16"),
    )
    budget, card = card_memory(None)
    lengths = [min(n, cfg.data.max_length or n) for n in conversation_lengths(cfg.model.name_or_path)]
    plan = plans_for(cfg.training, shape, setup, lengths, budget, card)[0]
    return {
        "plan": plan.to_json(),
        "estimates_gib": {
            n: round(estimate(shape, setup, "offload", n).total / GIB, 2) for n in (32768, 36864, 40960, 45056, 49152)
        },
    }


SECTIONS = {
    "build": build,
    "train_unsloth": train_unsloth,
    "train_unsloth_ckpt": train_unsloth_ckpt,
    "train_qlora_half": train_qlora_half,
    "train_unsloth_double": train_unsloth_double,
    "fallback_unsloth": fallback_unsloth,
    "bare_unsloth_none": bare_unsloth_none,
    "train_qlora": train_qlora,
    "seed_recipe": seed_recipe,
    "bare_unsloth": bare_unsloth,
    "matmul_peak": matmul_peak,
    "t4_longest": t4_longest,
}
