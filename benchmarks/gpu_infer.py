"""Inference sections of the GPU benchmark: batch-1 decode per backend, batch 16 vs 1, and
the fast path's logits against the reference path. Called through gpu_workers.py."""

from __future__ import annotations

import json
import time
from pathlib import Path

from bondhu.config import ALL_LINEAR
from common import ROOT, peak_gib, result, sync


def make_run(args) -> Path:
    """A run directory for the 8B shape with a random LoRA (r=16, all linear layers): speed does not
    depend on what the adapter learned, and this avoids training inside the inference call."""
    import torch
    from safetensors.torch import save_file
    from transformers import AutoConfig

    run = Path(args.runs) / "infer-run"
    if (run / "adapter" / "adapter_model.safetensors").exists():
        return run
    from bondhu.config import dump_config, load_config

    cfg = load_config(
        ROOT / "configs" / "llama31-8b.yaml",
        [
            f"model.name_or_path={args.model}",
            "training.strategy=qlora",
            "output.name=infer-run",
            f"output.runs_dir={args.runs}",
        ],
    )
    (run / "adapter").mkdir(parents=True, exist_ok=True)
    dump_config(cfg, run / "config.yaml")
    mc = AutoConfig.from_pretrained(args.model)
    h, kv = mc.hidden_size, mc.num_key_value_heads * (mc.hidden_size // mc.num_attention_heads)
    shapes = {
        "q_proj": (h, h),
        "k_proj": (h, kv),
        "v_proj": (h, kv),
        "o_proj": (h, h),
        "gate_proj": (h, mc.intermediate_size),
        "up_proj": (h, mc.intermediate_size),
        "down_proj": (mc.intermediate_size, h),
    }
    g = torch.Generator().manual_seed(0)
    tensors = {}
    for i in range(mc.num_hidden_layers):
        for name, (fan_in, fan_out) in shapes.items():
            part = "self_attn" if name in ("q_proj", "k_proj", "v_proj", "o_proj") else "mlp"
            key = f"base_model.model.model.layers.{i}.{part}.{name}"
            tensors[f"{key}.lora_A.weight"] = (torch.randn(16, fan_in, generator=g) * fan_in**-0.5).to(torch.bfloat16)
            tensors[f"{key}.lora_B.weight"] = (torch.randn(fan_out, 16, generator=g) * 1e-3).to(torch.bfloat16)
    save_file(tensors, str(run / "adapter" / "adapter_model.safetensors"))
    (run / "adapter" / "adapter_config.json").write_text(
        json.dumps(
            {
                "peft_type": "LORA",
                "task_type": "CAUSAL_LM",
                "r": 16,
                "lora_alpha": 16,
                "lora_dropout": 0.0,
                "target_modules": ALL_LINEAR,
                "bias": "none",
                "base_model_name_or_path": args.model,
                "fan_in_fan_out": False,
                "inference_mode": True,
                "use_rslora": False,
                "init_lora_weights": True,
            }
        )
    )
    return run


def prompt(tokenizer, n_tokens: int) -> list[int]:
    """A Bengali prompt of exactly ``n_tokens`` tokens, cut from the bundled conversations."""
    text = " ".join(
        json.loads(line)["messages"][0]["content"]
        for line in (ROOT / "data/bondhu-empathy/train.jsonl").read_text("utf-8").splitlines()
    )
    ids = tokenizer(text, add_special_tokens=False)["input_ids"]
    while len(ids) < n_tokens:
        ids = ids + ids
    return ids[:n_tokens]


def greedy(new_tokens: int):
    """Greedy settings without a repetition penalty: every path picks the same kind of token."""
    from bondhu.config import GenerationSettings

    return GenerationSettings(max_new_tokens=new_tokens, do_sample=False, repetition_penalty=1.0)


def decode_rate(loaded, batch: int, prompt_len: int, new_tokens: int, repeats: int = 1) -> dict:
    """Generated tokens per second for ``batch`` prompts, forcing exactly ``new_tokens`` new tokens:
    through the fast backend's decoder at batch 1 (as chat and serve do), else ``model.generate``."""
    import torch

    from bondhu.inference.model import generation_kwargs

    model, tok = loaded.model, loaded.tokenizer
    device = next(model.parameters()).device
    settings = greedy(new_tokens)
    ids = torch.tensor([prompt(tok, prompt_len)] * batch, device=device)
    kwargs = generation_kwargs(loaded, settings)
    kwargs["min_new_tokens"] = new_tokens
    best = None
    with torch.inference_mode():
        for _ in range(repeats):
            sync()
            t = time.perf_counter()
            if loaded.decoder is not None and batch == 1:
                generated = len(list(loaded.decoder.tokens(ids[0].tolist(), settings, stop_ids=())))
            else:
                generated = (
                    model.generate(input_ids=ids, attention_mask=torch.ones_like(ids), **kwargs).shape[1] - prompt_len
                ) * batch
            sync()
            dt = time.perf_counter() - t
            best = dt if best is None else min(best, dt)
    return {
        "batch": batch,
        "new_tokens": new_tokens,
        "seconds": round(best, 3),
        "tokens_per_second": round(generated / best, 1),
    }


def ttft(loaded, prompt_len: int = 1024) -> float:
    r = decode_rate(loaded, 1, prompt_len, 1, repeats=3)
    return round(r["seconds"] * 1000, 1)


def infer_hf(args):
    """HF generate on bitsandbytes 4-bit with the unmerged LoRA (the qlora run's own path), batch 1 and 16."""
    from bondhu.inference.model import load_for_inference

    loaded = load_for_inference(make_run(args), backend="hf")
    # The slow paths decode half the new tokens at batch 1 and a quarter at batch 16: a step costs
    # the same at every position of so short a cache, so the rate is the same in less of the call.
    b1 = decode_rate(loaded, 1, 128, args.new_tokens // 2)
    b16 = decode_rate(loaded, 16, 128, args.new_tokens // 4)
    result(
        section="infer_hf",
        batch1=b1,
        batch16=b16,
        speedup_16_vs_1=round(b16["tokens_per_second"] / b1["tokens_per_second"], 2),
        ttft_1024_ms=ttft(loaded),
        peak_gpu_gib=peak_gib(),
    )


def infer_unsloth(args):
    from bondhu.inference.model import load_for_inference

    loaded = load_for_inference(make_run(args), backend="unsloth")
    result(
        section="infer_unsloth",
        batch1=decode_rate(loaded, 1, 128, args.new_tokens // 2),  # half, as in infer_hf
        ttft_1024_ms=ttft(loaded),
        peak_gpu_gib=peak_gib(),
    )


def infer_fast(args):
    """The fast path, with bf16 weights (the default) and then int8 (``chat.fast_quantization: int8``)
    from the same merged weights: speed, first token, and logits against the reference (16-bit base +
    unmerged LoRA, eager), with the gap split into its causes: merging the adapter, and the
    compiled static-cache step. One process, so the merge and the reference are paid once."""
    import torch

    from bondhu.config import load_config
    from bondhu.inference.fast import decoder_for, load_fast

    run = make_run(args)
    cfg = load_config(run / "config.yaml")
    cfg = cfg.model_copy(update={"chat": cfg.chat.model_copy(update={"fast_quantization": "none"})})
    t = time.perf_counter()
    loaded = load_fast(run, cfg)  # merges, fuses, then compiles and records the step
    bf16 = {"load_and_compile_seconds": round(time.perf_counter() - t, 1), **fast_speed(loaded, args.new_tokens)}
    ids = prompt(loaded.tokenizer, 128)
    with torch.inference_mode():
        # Teacher-forced on the tokens the bf16 path chose, so a near-tie argmax flip on random
        # weights cannot make the paths drift apart: 17 rows of logits each.
        forced = list(loaded.decoder.tokens(ids, greedy(16), stop_ids=()))
    full = ids + forced
    logits = {"bf16": fast_logits(loaded, ids, forced)}
    int8 = {}
    try:
        loaded.decoder = None
        torch._dynamo.reset()  # frees the bf16 step's CUDA graphs
        t = time.perf_counter()
        # What load_fast does after merging and fusing when the config asks for int8.
        loaded.decoder = decoder_for(
            loaded.model, cfg.chat.model_copy(update={"fast_quantization": "int8"}), compiled=torch.cuda.is_available()
        )
        int8 = {
            "quantize_and_compile_seconds": round(time.perf_counter() - t, 1),
            **fast_speed(loaded, args.new_tokens),
        }
        logits["int8"] = fast_logits(loaded, ids, forced)
    except Exception as err:  # torchao missing or failing: the bf16 numbers still count
        int8 = {"error": f"{type(err).__name__}: {err}"[:400]}
    del loaded
    torch._dynamo.reset()  # the CUDA graphs hold the int8 weights
    torch.cuda.empty_cache()
    reference, exact = reference_logits(args, cfg, run, full, len(ids))
    for kind, numbers in (("bf16", bf16), ("int8", int8)):
        if kind in logits:
            numbers.update(logits_agreement(*logits[kind], reference, exact))
    result(section="infer_fast", **bf16, int8=int8)


def fast_speed(loaded, new_tokens: int) -> dict:
    """Batch-1 decode (best of 3), time to first token, and the decoding's peak memory."""
    import torch

    if torch.cuda.is_available():
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()  # decoding's memory, not the 16-bit load's
    b1 = decode_rate(loaded, 1, 128, new_tokens, repeats=3)
    return {"batch1": b1, "ttft_1024_ms": ttft(loaded), "peak_gpu_gib": peak_gib()}


def fast_logits(loaded, ids: list[int], forced: list[int]):
    """(the fast path's logits teacher-forced on ``forced``, the same model's eager forward)."""
    import torch

    with torch.inference_mode():
        fast = loaded.decoder.teacher_forced_logits(ids, forced)
        full = torch.tensor([ids + forced], device=next(loaded.model.parameters()).device)
        eager = loaded.model(input_ids=full).logits[0, len(ids) - 1 :].float()
    return fast, eager


def reference_logits(args, cfg, run: Path, full: list[int], n_prompt: int):
    """The reference path's logits on ``full`` (16-bit base + unmerged LoRA, eager), and the same
    in fp32: the noise floor. On random weights the logits are nearly flat and 32 random layers
    amplify rounding, so bf16 itself may sit far from fp32."""
    import torch
    from peft import PeftModel

    from bondhu.train.strategies import LoRAStrategy

    base, _ = LoRAStrategy().load(cfg)
    ref = PeftModel.from_pretrained(base, str(run / "adapter")).eval()
    ids = torch.tensor([full], device=next(ref.parameters()).device)
    with torch.inference_mode():
        reference = ref(input_ids=ids).logits[0, n_prompt - 1 :].float()
        ref.float()
        exact = ref(input_ids=ids).logits[0, n_prompt - 1 :].float()
    return reference, exact


def logits_agreement(fast, eager, reference, exact) -> dict:
    import torch

    def rel(x, y):
        return (torch.linalg.norm(x - y) / torch.linalg.norm(y)).item()

    return {
        "logits_rel_l2": rel(fast, reference),
        "fast_vs_merged_eager": rel(fast, eager),
        "merged_eager_vs_reference": rel(eager, reference),
        "reference_bf16_vs_fp32": rel(reference, exact),
        "fast_vs_fp32": rel(fast, exact),
        "same_argmax_every_step": bool(torch.equal(fast.argmax(-1), reference.argmax(-1))),
    }


SECTIONS = {"infer_hf": infer_hf, "infer_unsloth": infer_unsloth, "infer_fast": infer_fast}
