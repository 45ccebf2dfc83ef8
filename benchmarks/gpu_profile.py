"""Where the time goes: run c's training step, and the fast path's decode step; and the fast
path's compile settings side by side.

    python benchmarks/gpu_workers.py profile_unsloth [--set key=value ...]
    python benchmarks/gpu_workers.py profile_fast
    python benchmarks/gpu.py --sections build,fast_variants_bf16,fast_variants_int8,fast_variants_int8_fused

Each prints torch.profiler kernel tables (sorted by CUDA time) to stdout, which gpu.py keeps
in the section log, and a RESULT line with the timings.
"""

from __future__ import annotations

import time

from common import bondhu_train, peak_gib, result, sync


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
            self.steps.append(
                {
                    "step": state.global_step,
                    "seconds": round(time.perf_counter() - self.t, 3),
                    "tokens_seen": int(state.num_input_tokens_seen),
                }
            )
            if state.global_step == last and self.prof is not None:
                self.prof.__exit__(None, None, None)
                _kernel_tables(self.prof)
                self.prof = None

    cb = Profile()
    bondhu_train(args, "unsloth", extra_callbacks=[cb])
    result(section="profile_unsloth", steps=cb.steps)


def _kernel_tables(prof) -> None:
    table = prof.key_averages()
    print(table.table(sort_by="cuda_time_total", row_limit=45, max_name_column_width=90), flush=True)
    print(table.table(sort_by="self_cuda_time_total", row_limit=30, max_name_column_width=90), flush=True)


def profile_bare(args, first: int = 6, last: int = 7) -> None:
    """The bare loop without recompute (e's ceiling), profiled over the same steps as c: the two
    kernel tables side by side say where c's step spends what e's does not."""
    import torch
    from unsloth import FastLanguageModel

    from gpu_train import unsloth_lora

    model, _ = unsloth_lora(args.model, checkpointing=False)
    FastLanguageModel.for_training(model)
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-4)
    x = torch.randint(0, 128000, (2, 2048), device="cuda")
    steps, prof = [], None
    for step in range(1, last + 1):
        if step == first:
            acts = [torch.profiler.ProfilerActivity.CPU, torch.profiler.ProfilerActivity.CUDA]
            prof = torch.profiler.profile(activities=acts)
            prof.__enter__()
        sync()
        t = time.perf_counter()
        model(input_ids=x, labels=x).loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
        sync()
        steps.append({"step": step, "seconds": round(time.perf_counter() - t, 3), "tokens": 4096})
    prof.__exit__(None, None, None)
    _kernel_tables(prof)
    result(section="profile_bare", steps=steps, peak_gpu_gib=peak_gib())


def loop_rate(decoder, ids: list[int], settings) -> float:
    """Tokens per second of the decoder's own token loop for one reply to ``ids``."""
    sync()
    t = time.perf_counter()
    n = len(list(decoder.tokens(ids, settings)))
    sync()
    return round(n / (time.perf_counter() - t), 1)


def profile_fast(args, steps: int = 128) -> None:
    """The fast path's token loop against its bare compiled step (back to back, no host sync), the
    eager step, and a kernel table."""
    import torch

    from bondhu.inference.model import load_for_inference
    from gpu_infer import greedy, make_run, prompt

    loaded = load_for_inference(make_run(args), backend="fast")
    ids = prompt(loaded.tokenizer, 128)
    settings = greedy(steps)
    out = {}

    def bare(decoder, fn):
        """ms per step, issuing ``steps`` steps with no host sync in between."""
        logits, seq, positions = decoder.prefill(ids, len(ids) + steps)
        token = logits.argmax(-1).view(1, 1)
        sync()
        t = time.perf_counter()
        for pos in range(len(ids), len(ids) + steps):
            token = fn(decoder, token, pos, positions).argmax(-1).view(1, 1)
        sync()
        return round((time.perf_counter() - t) * 1000 / steps, 3)

    compiled = lambda d, tok, pos, positions: d._decode(tok, pos, positions)  # noqa: E731
    eager = lambda d, tok, pos, positions: d.forward(tok, positions[pos : pos + 1])  # noqa: E731
    with torch.inference_mode():
        d = loaded.decoder
        out["loop_tokens_per_second"] = loop_rate(d, ids, settings)
        out["loop_tokens_per_second_again"] = loop_rate(d, ids, settings)
        out["compiled_step_ms_no_sync"] = bare(d, compiled)
        out["eager_step_ms_no_sync"] = bare(d, eager)
        acts = [torch.profiler.ProfilerActivity.CPU, torch.profiler.ProfilerActivity.CUDA]
        with torch.profiler.profile(activities=acts) as prof:
            bare(d, compiled)
        table = prof.key_averages()
        print(table.table(sort_by="self_cuda_time_total", row_limit=30, max_name_column_width=90), flush=True)
        print(table.table(sort_by="self_cpu_time_total", row_limit=25, max_name_column_width=90), flush=True)
    result(section="profile_fast", peak_gpu_gib=peak_gib(), **out)


VARIANTS = {  # name: (fuse projections, int8, extra inductor options)
    "bf16": (False, False, {}),
    "bf16_cdt": (False, False, {"coordinate_descent_tuning": True}),
    "bf16_fused": (True, False, {}),
    "bf16_fused_cdt": (True, False, {"coordinate_descent_tuning": True}),
    "int8_cdt": (False, True, {"coordinate_descent_tuning": True}),
    "int8_cdt_all": (False, True, {"coordinate_descent_tuning": True, "coordinate_descent_check_all_directions": True}),
    "int8_fused": (True, True, {}),
    "int8_fused_cdt": (True, True, {"coordinate_descent_tuning": True}),
    # torchao's recommended_inductor_config_setter (its default with quantize_) adds these:
    "int8_fused_cdt_all": (
        True,
        True,
        {"coordinate_descent_tuning": True, "coordinate_descent_check_all_directions": True},
    ),
}


def fast_variants(args, names: list[str]) -> None:
    """Fast-path settings side by side in one process, each compiled cold (its own inductor cache):
    compile seconds, best of 3 decodes of 256 tokens, and logits against the first variant's.
    Fusing and quantizing change the model in place, so ``names`` go from plain to fused to int8."""
    import os

    import torch

    from bondhu.inference import fast
    from bondhu.inference.merge import merged_model
    from gpu_infer import greedy, make_run, prompt

    model, tok, _ = merged_model(make_run(args), "auto", device_map={"": 0})
    model.config.use_cache = True
    ids, settings, out = prompt(tok, 128), greedy(args.new_tokens), {}
    fused, quantized, forced, ref = False, False, None, None
    for name in names:
        fuse, int8, options = VARIANTS[name]
        if fuse and not fused:
            fused = fast.fuse_projections(model)
        if int8 and not quantized:
            fast.quantize_int8(model)
            quantized = True
        torch._dynamo.reset()
        os.environ["TORCHINDUCTOR_CACHE_DIR"] = f"/tmp/inductor-{name}"
        t = time.perf_counter()
        decoder = fast.FastDecoder(
            model, capacity=2048, compiled=True, compile_options={**fast.COMPILE_OPTIONS, **options}
        )
        with torch.inference_mode():
            decoder.warm_up()
            compile_s = time.perf_counter() - t
            best = max(loop_rate(decoder, ids, settings) for _ in range(3))
            forced = forced or list(decoder.tokens(ids, greedy(16)))
            logits = decoder.teacher_forced_logits(ids, forced)
        ref = logits if ref is None else ref
        out[name] = {
            "compile_seconds": round(compile_s, 1),
            "tokens_per_second": best,
            "logits_vs_first": (torch.linalg.norm(logits - ref) / torch.linalg.norm(ref)).item(),
        }
        print(name, out[name], flush=True)
        del decoder
    result(section="fast_variants", variants=out, peak_gpu_gib=peak_gib())


SECTIONS = {
    "profile_unsloth": profile_unsloth,
    "profile_bare": profile_bare,
    "profile_fast": profile_fast,
    "fast_variants_bf16": lambda args: fast_variants(args, ["bf16", "bf16_cdt", "bf16_fused", "bf16_fused_cdt"]),
    "fast_variants_int8": lambda args: fast_variants(args, ["int8_cdt", "int8_cdt_all"]),
    # untuned int8 ("int8_fused": 15 tokens/s in gpu-20261126-0105) is left out: it costs a minute to decode
    "fast_variants_int8_fused": lambda args: fast_variants(args, ["int8_fused_cdt", "int8_fused_cdt_all"]),
    "fast_variants_int8_untuned": lambda args: fast_variants(args, ["int8_fused"]),
}
