"""Merge a run's LoRA adapter into unquantized 16-bit base weights."""

from __future__ import annotations

import logging
from pathlib import Path

from bondhu.config import BondhuConfig
from bondhu.errors import BondhuError

log = logging.getLogger(__name__)


def merged_model(run: str | Path, dtype: str = "auto", device_map: str | dict | None = None,
                 cfg: BondhuConfig | None = None):
    """The run's base model, unquantized, with the adapter merged in; returns (model, tokenizer, config).
    ``cfg``: the run's config, when the caller has already read it.

    QLoRA trains the adapter against NF4 weights; merging into the 16-bit originals is the
    standard export (PEFT's merge_and_unload) and differs from the NF4 model only by the
    quantization error the adapter never saw.
    """
    from bondhu.chat.model import run_config
    from bondhu.train.adapter import adapter_dir, attach
    from bondhu.train.loading import load_causal_lm, load_tokenizer, resolve_model_path
    from bondhu.train.strategies import dtype_from_name

    run = Path(run)
    cfg = cfg or run_config(run)
    adapter = adapter_dir(run)
    path = resolve_model_path(cfg.model)
    tokenizer = load_tokenizer(cfg.model, path)
    base = load_causal_lm(cfg.model, path, dtype=dtype_from_name(dtype), device_map=device_map)
    model = attach(base, adapter).merge_and_unload()
    model.eval()
    return model, tokenizer, cfg


def export_merged(run: str | Path, output: str | Path | None = None, dtype: str = "auto") -> Path:
    """Write the merged 16-bit model plus tokenizer to ``output`` (default RUN/merged)."""
    model, tokenizer, _ = merged_model(run, "bfloat16" if dtype == "auto" else dtype)
    out = Path(output) if output else Path(run) / "merged"
    model.save_pretrained(out, safe_serialization=True)
    tokenizer.save_pretrained(out)
    return out
