"""Trainer callbacks: a rich progress bar and a Ctrl-C that saves a checkpoint."""

from __future__ import annotations

import signal
import time

from transformers import TrainerCallback


class RichProgress(TrainerCallback):
    """One progress bar with loss, learning rate, tokens/s and time left."""

    def __init__(self, enabled: bool = True):
        self.enabled = enabled
        self.progress = None
        self.task = None
        self._t0 = 0.0
        self._tokens0 = 0
        self.tokens = 0  # non-padding tokens trained in this session, summed over all processes
        self.seconds = 0.0
        # Throughput after the first steps, which pay for CUDA init, kernel autotuning and compiles.
        self.warmup_steps = 0
        self._start_step = 0
        self._steady0: tuple[int, float, int] | None = None
        self.steady_tokens_per_second: float | None = None

    def on_train_begin(self, args, state, control, **kwargs):
        self._t0, self._tokens0 = time.perf_counter(), state.num_input_tokens_seen
        self.warmup_steps = min(5, max(1, (state.max_steps - state.global_step) // 5))
        self._start_step = state.global_step
        if not self.enabled or not state.is_world_process_zero:
            return
        from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

        self.progress = Progress(
            TextColumn("[bold]train"),
            BarColumn(),
            TextColumn("{task.completed}/{task.total}"),
            TextColumn("{task.fields[info]}"),
            TimeElapsedColumn(),
            TextColumn("left"),
            TimeRemainingColumn(),
        )
        self.progress.start()
        self.task = self.progress.add_task("train", total=state.max_steps, completed=state.global_step, info="")

    def on_step_end(self, args, state, control, **kwargs):
        if state.global_step == self._start_step + self.warmup_steps:
            _sync()
            self._steady0 = (state.global_step, time.perf_counter(), state.num_input_tokens_seen)
        if state.global_step == state.max_steps:
            # Measured before the Trainer saves its end-of-training checkpoint: that is disk time,
            # not training speed, and a short run would read much slower for it.
            self._steady_end(state)
        if self.progress is not None:
            self.progress.update(self.task, completed=state.global_step)

    def on_log(self, args, state, control, logs=None, **kwargs):
        if self.progress is None or not logs:
            return
        elapsed = max(time.perf_counter() - self._t0, 1e-9)
        tps = (state.num_input_tokens_seen - self._tokens0) / elapsed
        parts = []
        if "loss" in logs:
            parts.append(f"loss {logs['loss']:.3f}")
        if "eval_loss" in logs:
            parts.append(f"val {logs['eval_loss']:.3f}")
        if "learning_rate" in logs:
            parts.append(f"lr {logs['learning_rate']:.2e}")
        parts.append(f"{tps:,.0f} tok/s")
        self.progress.update(self.task, info=" · ".join(parts))

    def on_train_end(self, args, state, control, **kwargs):
        _sync()
        now = time.perf_counter()
        self.seconds = now - self._t0
        self.tokens = state.num_input_tokens_seen - self._tokens0
        if self.steady_tokens_per_second is None:  # stopped before max_steps
            self._steady_end(state)
        if self.progress is not None:
            self.progress.stop()
            self.progress = None

    def _steady_end(self, state) -> None:
        if self._steady0 and state.global_step > self._steady0[0]:
            _sync()
            self.steady_tokens_per_second = (state.num_input_tokens_seen - self._steady0[2]) / (
                time.perf_counter() - self._steady0[1]
            )


def _sync() -> None:
    import torch

    if torch.cuda.is_available():
        torch.cuda.synchronize()


class SaveOnInterrupt(TrainerCallback):
    """The first Ctrl-C asks the trainer to save a checkpoint and stop at the end of the step."""

    def __init__(self):
        self.interrupted = False
        self._previous = None

    def on_train_begin(self, args, state, control, **kwargs):
        try:
            self._previous = signal.signal(signal.SIGINT, self._handle)
        except ValueError:  # not the main thread: leave signals alone
            self._previous = None

    def _handle(self, signum, frame):
        if self.interrupted:  # a second Ctrl-C stops at once
            raise KeyboardInterrupt
        self.interrupted = True

    def on_step_end(self, args, state, control, **kwargs):
        if self.interrupted:
            control.should_save = True
            control.should_training_stop = True

    def on_train_end(self, args, state, control, **kwargs):
        if self._previous is not None:
            signal.signal(signal.SIGINT, self._previous)


class LargestStep:
    """The most tokens one training forward pass held (padding included): what peak memory follows."""

    def __init__(self, model):
        self.tokens = 0
        self._handle = model.register_forward_pre_hook(self._see, with_kwargs=True)

    def _see(self, module, args, kwargs):
        ids = kwargs.get("input_ids", args[0] if args else None)
        if module.training and ids is not None:
            self.tokens = max(self.tokens, int(ids.numel()))

    def remove(self) -> None:
        self._handle.remove()
