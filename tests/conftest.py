"""Shared fixtures: a tiny tokenizer and model built from local text, and a CLI runner."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("WANDB_SILENT", "true")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

from helpers import BUNDLED, MINI


@pytest.fixture(scope="session")
def tiny_spec():
    from bondhu.config import TinyModelSpec

    corpus = [str(BUNDLED / "train.jsonl")] if (BUNDLED / "train.jsonl").exists() else [str(MINI)]
    return TinyModelSpec(
        vocab_size=2048,
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        tokenizer_corpus=corpus,
    )


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory, tiny_spec) -> Path:
    from bondhu.train.tiny import ensure_tiny

    return ensure_tiny(tmp_path_factory.mktemp("tiny") / "model", tiny_spec)


@pytest.fixture(scope="session")
def tokenizer(tiny_model_dir):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(tiny_model_dir)


@pytest.fixture()
def tiny_overrides(tiny_model_dir, tmp_path) -> list[str]:
    """Config overrides that point a run at the session's tiny model and a temp runs folder."""
    return [f"model.name_or_path={tiny_model_dir}", "model.tiny=null", f"output.runs_dir={tmp_path / 'runs'}"]


@pytest.fixture(scope="session")
def train_tiny_run(tmp_path_factory, tiny_model_dir):
    """Train a short run of the session's tiny model on the mini fixture; returns its run directory."""

    def train(name: str, *overrides: str) -> Path:
        from bondhu.config import load_config
        from bondhu.train.finetuner import LLAMAFineTuner
        from helpers import ROOT

        cfg = load_config(
            ROOT / "configs" / "tiny-cpu.yaml",
            [
                f"model.name_or_path={tiny_model_dir}",
                "model.tiny=null",
                f"output.runs_dir={tmp_path_factory.mktemp(name)}",
                f"data.train={MINI}",
                "data.validation=null",
                "training.max_steps=2",
                f"output.name={name}",
                *overrides,
            ],
        )
        LLAMAFineTuner(cfg, progress=False).train()
        return cfg.run_dir

    return train


class CliResult:
    def __init__(self, code, out, err):
        self.code, self.out, self.err = code, out, err


@pytest.fixture()
def run_cli(capsys, monkeypatch):
    """Run ``bondhu ARGS`` in-process and return exit code, stdout and stderr."""
    from bondhu import cli

    def run(*args: str) -> CliResult:
        monkeypatch.setattr(sys, "argv", ["bondhu", *map(str, args)])
        code = 0
        try:
            cli.main()
        except SystemExit as done:
            code = done.code or 0
        captured = capsys.readouterr()
        return CliResult(code, captured.out, captured.err)

    return run


@pytest.fixture(scope="session")
def lora_run(train_tiny_run):
    """A tiny LoRA run that has learned something, shared by the inference and export tests."""
    return train_tiny_run("fast", "training.strategy=lora", "training.max_steps=6", "training.learning_rate=0.02")


@pytest.fixture(scope="session")
def reference(lora_run):
    """The reference path: the run's base with the adapter unmerged, through transformers."""
    from bondhu.inference.model import load_for_inference

    return load_for_inference(lora_run, backend="hf")
