"""Where the time goes: run c's training step, and the fast path's decode step.

    python benchmarks/gpu_workers.py profile_unsloth [--set key=value ...]
    python benchmarks/gpu_workers.py profile_fast

Each prints torch.profiler kernel tables (sorted by CUDA time) to stdout, which gpu.py keeps
in the section log, and a RESULT line with the timings.
"""

from __future__ import annotations

import time

from gpu_workers import bondhu_train, peak_gib, result, sync


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
    from gpu_infer import greedy, make_run, prompt

    loaded = load_for_inference(make_run(args), backend="fast")
    ids = prompt(loaded.tokenizer, 128)
    settings = greedy(steps)
    out = {}

    def loop_rate(decoder):
        sync()
        t = time.perf_counter()
        n = len(list(decoder.tokens(ids, settings)))
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
    result(section="profile_fast", peak_gpu_gib=peak_gib(), **out)


WORKERS = {"profile_unsloth": profile_unsloth, "profile_fast": profile_fast}
