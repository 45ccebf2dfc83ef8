"""The progress callback's steady throughput: what `bondhu train` reports as tokens/s after warm-up."""

from types import SimpleNamespace

import pytest

from bondhu.train import callbacks
from bondhu.train.callbacks import RichProgress


class Clock:
    def __init__(self):
        self.now = 100.0

    def perf_counter(self):
        return self.now


@pytest.fixture
def clock(monkeypatch):
    fake = Clock()
    monkeypatch.setattr(callbacks, "time", fake)
    return fake


def run_steps(clock, steps, stop_at=None, after_last=0.0):
    """``steps`` planned steps of 1 s and 100 tokens each (stopping after ``stop_at``), then
    ``after_last`` seconds before training ends (the Trainer's end-of-training checkpoint)."""
    progress = RichProgress(enabled=False)
    state = SimpleNamespace(global_step=0, max_steps=steps, num_input_tokens_seen=0, is_world_process_zero=True)
    progress.on_train_begin(None, state, None)
    for _ in range(stop_at or steps):
        clock.now += 1.0
        state.global_step += 1
        state.num_input_tokens_seen += 100
        progress.on_step_end(None, state, None)
    clock.now += after_last
    progress.on_train_end(None, state, None)
    return progress


def test_steady_rate_leaves_out_warmup_and_the_final_checkpoint(clock):
    progress = run_steps(clock, steps=10, after_last=30.0)
    assert progress.warmup_steps == 2
    assert progress.steady_tokens_per_second == pytest.approx(100.0)  # 800 tokens in 8 s, not in 38 s
    assert progress.tokens == 1000 and progress.seconds == pytest.approx(40.0)  # the session's totals count all


def test_a_run_stopped_early_reports_its_steady_rate_at_the_end(clock):
    progress = run_steps(clock, steps=10, stop_at=6, after_last=2.0)
    assert progress.steady_tokens_per_second == pytest.approx(400 / 6)  # steps 3-6, then 2 s to the stop
    assert progress.tokens == 600
