"""Merge a run's LoRA adapter into unquantized 16-bit base weights."""

from __future__ import annotations

from pathlib import Path

from bondhu.config import BondhuConfig
from bondhu.run import RunDir


def merged_model(
    run: str | Path, dtype: str = "auto", device_map: str | dict | None = None, cfg: BondhuConfig | None = None
):
    """The run's base model, unquantized, with the adapter merged in; returns (model, tokenizer, config).
    ``cfg``: the run's config, when the caller has already read it.

    QLoRA trains the adapter against NF4 weights; merging into the 16-bit originals is the
    standard export (PEFT's merge_and_unload) and differs from the NF4 model only by the
    quantization error the adapter never saw.
    """
    from bondhu.train.adapter import attach
    from bondhu.train.loading import load_causal_lm, load_tokenizer, resolve_model_path
    from bondhu.train.strategies import dtype_from_name

    run = RunDir(run)
    cfg = cfg or run.config()
    adapter = run.checked_adapter()
    path = resolve_model_path(cfg.model)
    tokenizer = load_tokenizer(cfg.model, path)
    base = load_causal_lm(cfg.model, path, dtype=dtype_from_name(dtype), device_map=device_map)
    model = attach(base, adapter).merge_and_unload()
    model.eval()
    return model, tokenizer, cfg
