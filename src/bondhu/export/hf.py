"""A run's adapter merged into its 16-bit base, written as a Hugging Face model."""

from __future__ import annotations

from pathlib import Path

from bondhu.inference.merge import merged_model
from bondhu.run import RunDir


def export_merged(run: str | Path, output: str | Path | None = None, dtype: str = "auto") -> Path:
    """Write the merged 16-bit model plus tokenizer to ``output`` (default RUN/merged)."""
    model, tokenizer, _ = merged_model(run, "bfloat16" if dtype == "auto" else dtype)
    out = Path(output) if output else RunDir(run).merged
    model.save_pretrained(out, safe_serialization=True)
    tokenizer.save_pretrained(out)
    return out
