"""The fast inference path: merged 16-bit weights, a static KV cache and CUDA graphs.

In the style of gpt-fast: at batch 1, decoding is bound by reading the weights once per
token, so the wins are (1) merging LoRA into the weights (no extra adapter matmuls),
(2) a static, preallocated KV cache so every step has the same shapes, and (3)
``torch.compile`` with CUDA graphs (transformers compiles the decoding step itself when
the cache is static), which removes the per-kernel launch overhead that dominates an
eager 8B decode. It needs 16-bit room for the whole model (about 16 GB for 8B): on a
16 GB T4 keep the 4-bit ``hf`` or ``unsloth`` backends.
"""

from __future__ import annotations

from pathlib import Path

from bondhu.chat.model import LoadedModel


def load_fast(run: str | Path, dtype: str = "auto") -> LoadedModel:
    """Load RUN merged and, on CUDA, set up a static cache so generate() compiles the decode step."""
    import torch

    from bondhu.train.export import merged_model

    on_gpu = torch.cuda.is_available()
    model, tokenizer, cfg = merged_model(run, dtype, device_map={"": 0} if on_gpu else None)
    model.config.use_cache = True
    if on_gpu:
        model.generation_config.cache_implementation = "static"
    return LoadedModel(model, tokenizer, cfg, cfg.model.name_or_path, str(Path(run) / "adapter"), "fast",
                       merged=True)
