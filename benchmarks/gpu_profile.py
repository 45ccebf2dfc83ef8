"""Where the time goes: run c's training step, and the fast path's decode step.

    python benchmarks/gpu_workers.py profile_unsloth [--set key=value ...]
    python benchmarks/gpu_workers.py profile_fast
    python benchmarks/gpu_workers.py check_packed_attention

Each prints torch.profiler kernel tables (sorted by CUDA time) to stdout, which gpu.py keeps
in the section log, and a RESULT line with the timings.
"""

from __future__ import annotations

import time

from gpu_workers import bondhu_train, result, sync


def profile_unsloth(args, first: int = 6, last: int = 7) -> None:
    import torch
    from transformers import TrainerCallback

    class Profile(TrainerCallback):
        def __init__(self):
            self.prof, self.steps, self.t = None, [], None

        def on_step_begin(self, a, state, control, **kw):
            sync()
            self.t = time.perf_counter()
            if state.global_step + 1 == first:
                acts = [torch.profiler.ProfilerActivity.CPU, torch.profiler.ProfilerActivity.CUDA]
                self.prof = torch.profiler.profile(activities=acts)
                self.prof.__enter__()

        def on_step_end(self, a, state, control, **kw):
            sync()
            self.steps.append({"step": state.global_step, "seconds": round(time.perf_counter() - self.t, 3),
                               "tokens_seen": int(state.num_input_tokens_seen)})
            if state.global_step == last and self.prof is not None:
                self.prof.__exit__(None, None, None)
                table = self.prof.key_averages()
                print(table.table(sort_by="cuda_time_total", row_limit=45, max_name_column_width=90), flush=True)
                print(table.table(sort_by="self_cuda_time_total", row_limit=30, max_name_column_width=90), flush=True)
                self.prof = None

    cb = Profile()
    bondhu_train(args, "unsloth", extra_callbacks=[cb])
    result(section="profile_unsloth", steps=cb.steps)


def profile_fast(args, steps: int = 128) -> None:
    """The fast path's token loop against its bare compiled step (back to back, no host sync), the
    eager step, and a kernel table."""
    import torch

    from bondhu.chat.model import load_for_inference
    from bondhu.config import GenerationSettings
    from gpu_infer import make_run, prompt

    loaded = load_for_inference(make_run(args), backend="fast")
    ids = prompt(loaded.tokenizer, 128)
    greedy = GenerationSettings(max_new_tokens=steps, do_sample=False, repetition_penalty=1.0)
    out = {}

    def loop_rate(decoder):
        sync()
        t = time.perf_counter()
        n = len(list(decoder.tokens(ids, greedy)))
        sync()
        return round(n / (time.perf_counter() - t), 1)

    def bare(decoder, fn):
        """ms per step, issuing ``steps`` steps with no host sync in between."""
        logits, seq, positions = decoder._prefill(ids, len(ids) + steps)
        token = logits.argmax(-1).view(1, 1)
        sync()
        t = time.perf_counter()
        for pos in range(len(ids), len(ids) + steps):
            token = fn(decoder, token, pos, positions).argmax(-1).view(1, 1)
        sync()
        return round((time.perf_counter() - t) * 1000 / steps, 3)

    compiled = lambda d, tok, pos, positions: d._decode(tok, pos, positions)  # noqa: E731
    eager = lambda d, tok, pos, positions: d._forward(tok, positions[pos:pos + 1])  # noqa: E731
    with torch.inference_mode():
        d = loaded.decoder
        out["loop_tokens_per_second"] = loop_rate(d)
        out["loop_tokens_per_second_again"] = loop_rate(d)
        out["compiled_step_ms_no_sync"] = bare(d, compiled)
        out["eager_step_ms_no_sync"] = bare(d, eager)
        acts = [torch.profiler.ProfilerActivity.CPU, torch.profiler.ProfilerActivity.CUDA]
        with torch.profiler.profile(activities=acts) as prof:
            bare(d, compiled)
        table = prof.key_averages()
        print(table.table(sort_by="self_cuda_time_total", row_limit=30, max_name_column_width=90), flush=True)
        print(table.table(sort_by="self_cpu_time_total", row_limit=25, max_name_column_width=90), flush=True)
    result(section="profile_fast", peak_gpu_gib=round(torch.cuda.max_memory_allocated() / 2**30, 2), **out)


def check_packed_attention(args) -> None:
    """Bondhu's packed flash op (train/packed_attention.py) against per-conversation SDPA, on one
    packed row of c's size with the 8B shape's heads: errors forward and backward against fp32
    (next to bf16 SDPA's own), eager and compiled, and the time of each path."""
    import torch
    import torch.nn.functional as F

    from bondhu.train.packed_attention import flash_varlen_attn

    if not torch.cuda.is_available():
        return result(section="check_packed_attention", error="needs a CUDA GPU: the flash kernel is CUDA-only")
    torch.manual_seed(0)
    lengths = [1500, 900, 1300, 700, 2000, 1100, 1200, 800]  # one row of 8 conversations
    total, heads, kv_heads, dim = sum(lengths), 32, 8, 128
    cu = torch.tensor([0] + torch.tensor(lengths).cumsum(0).tolist(), dtype=torch.int32, device="cuda")
    q = torch.randn(total, heads, dim, device="cuda", dtype=torch.bfloat16)
    k, v = (torch.randn(total, kv_heads, dim, device="cuda", dtype=torch.bfloat16) for _ in range(2))
    grad = torch.randn(total, heads, dim, device="cuda", dtype=torch.bfloat16)

    def packed(q, k, v):
        return flash_varlen_attn(q, k, v, cu, cu, max(lengths), max(lengths), window_size=(-1, 0), enable_gqa=True)

    def segments(q, k, v):
        outs, start = [], 0
        for n in lengths:
            part = [x[start:start + n].transpose(0, 1).unsqueeze(0) for x in (q, k, v)]
            outs.append(F.scaled_dot_product_attention(*part, is_causal=True, enable_gqa=True)[0].transpose(0, 1))
            start += n
        return torch.cat(outs)

    def run(fn, dtype):
        xs = [x.to(dtype).detach().requires_grad_() for x in (q, k, v)]
        out = fn(*xs)
        out.backward(grad.to(dtype))
        return [out.detach().float()] + [x.grad.float() for x in xs]

    def rel(a, b):
        return [float((x - y).norm() / y.norm()) for x, y in zip(a, b)]

    exact = run(segments, torch.float32)
    names = ["out", "dq", "dk", "dv"]
    out = {"packed_vs_fp32": dict(zip(names, rel(run(packed, torch.bfloat16), exact))),
           "sdpa_bf16_vs_fp32": dict(zip(names, rel(run(segments, torch.bfloat16), exact))),
           "compiled_vs_eager": dict(zip(names, rel(run(torch.compile(packed), torch.bfloat16),
                                                    run(packed, torch.bfloat16))))}

    def ms(fn, repeats=20):
        for _ in range(3):
            run(fn, torch.bfloat16)
        sync()
        t = time.perf_counter()
        for _ in range(repeats):
            run(fn, torch.bfloat16)
        sync()
        return round((time.perf_counter() - t) * 1000 / repeats, 2)

    with torch.nn.attention.sdpa_kernel([torch.nn.attention.SDPBackend.FLASH_ATTENTION]):
        out["ms_forward_backward"] = {"packed": ms(packed), "per_conversation_sdpa_flash": ms(segments)}
    result(section="check_packed_attention", tokens=total, **out)


WORKERS = {"profile_unsloth": profile_unsloth, "profile_fast": profile_fast,
           "check_packed_attention": check_packed_attention}
