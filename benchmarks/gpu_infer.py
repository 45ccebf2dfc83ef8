"""Inference sections of the GPU benchmark: batch-1 decode per backend, batch 16 vs 1, and
the fast path's logits against the reference path. Called through gpu_workers.py."""

from __future__ import annotations

import json
import time
from pathlib import Path

from gpu_workers import ALL_LINEAR, ROOT, peak_gib, result, sync


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

    cfg = load_config(ROOT / "configs" / "llama31-8b.yaml",
                      [f"model.name_or_path={args.model}", "training.strategy=qlora", "output.name=infer-run",
                       f"output.runs_dir={args.runs}"])
    (run / "adapter").mkdir(parents=True, exist_ok=True)
    dump_config(cfg, run / "config.yaml")
    mc = AutoConfig.from_pretrained(args.model)
    h, kv = mc.hidden_size, mc.num_key_value_heads * (mc.hidden_size // mc.num_attention_heads)
    shapes = {"q_proj": (h, h), "k_proj": (h, kv), "v_proj": (h, kv), "o_proj": (h, h),
              "gate_proj": (h, mc.intermediate_size), "up_proj": (h, mc.intermediate_size),
              "down_proj": (mc.intermediate_size, h)}
    g = torch.Generator().manual_seed(0)
    tensors = {}
    for i in range(mc.num_hidden_layers):
        for name, (fan_in, fan_out) in shapes.items():
            part = "self_attn" if name in ("q_proj", "k_proj", "v_proj", "o_proj") else "mlp"
            key = f"base_model.model.model.layers.{i}.{part}.{name}"
            tensors[f"{key}.lora_A.weight"] = (torch.randn(16, fan_in, generator=g) * fan_in**-0.5).to(torch.bfloat16)
            tensors[f"{key}.lora_B.weight"] = (torch.randn(fan_out, 16, generator=g) * 1e-3).to(torch.bfloat16)
    save_file(tensors, str(run / "adapter" / "adapter_model.safetensors"))
    (run / "adapter" / "adapter_config.json").write_text(json.dumps({
        "peft_type": "LORA", "task_type": "CAUSAL_LM", "r": 16, "lora_alpha": 16, "lora_dropout": 0.0,
        "target_modules": ALL_LINEAR, "bias": "none", "base_model_name_or_path": args.model,
        "fan_in_fan_out": False, "inference_mode": True, "use_rslora": False, "init_lora_weights": True}))
    return run


def prompt(tokenizer, n_tokens: int) -> list[int]:
    """A Bengali prompt of exactly ``n_tokens`` tokens, cut from the bundled conversations."""
    text = " ".join(json.loads(line)["messages"][0]["content"]
                    for line in (ROOT / "data/bondhu-empathy/train.jsonl").read_text("utf-8").splitlines())
    ids = tokenizer(text, add_special_tokens=False)["input_ids"]
    while len(ids) < n_tokens:
        ids = ids + ids
    return ids[:n_tokens]


def decode_rate(loaded, batch: int, prompt_len: int, new_tokens: int, repeats: int = 1) -> dict:
    """Generated tokens per second for ``batch`` prompts, forcing exactly ``new_tokens`` new tokens."""
    import torch

    from bondhu.chat.model import _generation_kwargs
    from bondhu.config import GenerationSettings

    model, tok = loaded.model, loaded.tokenizer
    device = next(model.parameters()).device
    ids = torch.tensor([prompt(tok, prompt_len)] * batch, device=device)
    kwargs = _generation_kwargs(loaded, GenerationSettings(max_new_tokens=new_tokens, do_sample=False,
                                                           repetition_penalty=1.0))
    kwargs["min_new_tokens"] = new_tokens
    best = None
    with torch.inference_mode():
        for _ in range(repeats):
            sync()
            t = time.perf_counter()
            out = model.generate(input_ids=ids, attention_mask=torch.ones_like(ids), **kwargs)
            sync()
            dt = time.perf_counter() - t
            best = dt if best is None else min(best, dt)
    generated = (out.shape[1] - prompt_len) * batch
    return {"batch": batch, "new_tokens": new_tokens, "seconds": round(best, 2),
            "tokens_per_second": round(generated / best, 1)}


def ttft(loaded, prompt_len: int = 1024) -> float:
    r = decode_rate(loaded, 1, prompt_len, 1, repeats=3)
    return round(r["seconds"] * 1000, 1)


def infer_hf(args):
    """HF generate on bitsandbytes 4-bit with the unmerged LoRA (the qlora run's own path), batch 1 and 16."""
    from bondhu.chat.model import load_for_inference

    loaded = load_for_inference(make_run(args), backend="hf")
    b1 = decode_rate(loaded, 1, 128, args.new_tokens)
    b16 = decode_rate(loaded, 16, 128, args.new_tokens)
    result(section="infer_hf", batch1=b1, batch16=b16, speedup_16_vs_1=round(b16["tokens_per_second"] / b1["tokens_per_second"], 2),
           ttft_1024_ms=ttft(loaded), peak_gpu_gib=peak_gib())


def infer_unsloth(args):
    from bondhu.chat.model import load_for_inference

    loaded = load_for_inference(make_run(args), backend="unsloth")
    result(section="infer_unsloth", batch1=decode_rate(loaded, 1, 128, args.new_tokens), ttft_1024_ms=ttft(loaded),
           peak_gpu_gib=peak_gib())


def infer_fast(args):
    """The fast path, then its logits against the reference (16-bit base + unmerged LoRA, eager)."""
    import torch
    from peft import PeftModel

    from bondhu.chat.model import LoadedModel, load_for_inference
    from bondhu.config import load_config
    from bondhu.train.strategies import LoRAStrategy

    run = make_run(args)
    t = time.perf_counter()
    loaded = load_for_inference(run, backend="fast")
    load_s = time.perf_counter() - t
    t = time.perf_counter()
    decode_rate(loaded, 1, 128, 16)  # compiles the decode step (CUDA graphs)
    compile_s = time.perf_counter() - t
    b1 = decode_rate(loaded, 1, 128, args.new_tokens, repeats=2)
    first = ttft(loaded)
    # Reference: unquantized 16-bit base with the adapter unmerged, dynamic cache, no compile.
    cfg = load_config(run / "config.yaml")
    base, tok = LoRAStrategy().load(cfg)
    ref = LoadedModel(PeftModel.from_pretrained(base, str(run / "adapter")).eval(), tok, cfg, "", "ref")
    ids = torch.tensor([prompt(tok, 128)], device=next(loaded.model.parameters()).device)
    gen = dict(max_new_tokens=16, min_new_tokens=16, do_sample=False, output_logits=True, return_dict_in_generate=True,
               pad_token_id=tok.pad_token_id)
    with torch.inference_mode():
        out = loaded.model.generate(input_ids=ids, attention_mask=torch.ones_like(ids), **gen)
        # Teacher-forced: the reference scores the very tokens the fast path produced, so a near-tie
        # argmax flip on random weights cannot make the two runs drift apart.
        ref_logits = ref.model(input_ids=out.sequences[:, :-1]).logits[:, ids.shape[1] - 1:]
    la = torch.stack(out.logits, dim=1).float()
    lb = ref_logits.float()
    peak = peak_gib()
    # The noise floor: the same reference computed in fp32. On random weights the logits are nearly
    # flat and 32 random layers amplify rounding, so bf16 itself may sit far from fp32.
    sequences = out.sequences[:, :-1]
    del loaded, out
    torch.cuda.empty_cache()
    with torch.inference_mode():
        ref.model.float()
        lf = ref.model(input_ids=sequences).logits[:, ids.shape[1] - 1:].float()

    def rel(x, y):
        return (torch.linalg.norm(x - y) / torch.linalg.norm(y)).item()

    result(section="infer_fast", batch1=b1, ttft_1024_ms=first, load_seconds=round(load_s, 1),
           compile_seconds=round(compile_s, 1), logits_rel_l2=rel(la, lb), reference_bf16_vs_fp32=rel(lb, lf),
           fast_vs_fp32=rel(la, lf), same_argmax_every_step=bool(torch.equal(la.argmax(-1), lb.argmax(-1))),
           peak_gpu_gib=peak)


WORKERS = {"infer_hf": infer_hf, "infer_unsloth": infer_unsloth, "infer_fast": infer_fast}
