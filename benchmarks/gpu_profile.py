"""Where run c's step time goes: per-step wall times and a torch.profiler table of two steps.

    python benchmarks/gpu_workers.py profile_unsloth [--set key=value ...]

Prints the kernel table (sorted by CUDA time) to stdout, which gpu.py keeps in the section log.
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


WORKERS = {"profile_unsloth": profile_unsloth}
