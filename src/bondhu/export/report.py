"""Perplexity of GGUF files through llama.cpp, on held-out conversations of the run's data.

The conversations are scored as ``bondhu evaluate`` scores them (the assistant's tokens, in the
run's chat format, with its system prompt), so a quantized file's figure sits beside f16's and
beside the evaluation report's. Each conversation is also tokenized by llama.cpp from its text
and compared with the token ids Bondhu trains on.
"""

from __future__ import annotations

import math
from pathlib import Path

from bondhu.config import BondhuConfig
from bondhu.data.processor import DatasetProcessor
from bondhu.data.template import render
from bondhu.errors import BondhuError
from bondhu.export.llamacpp import load_gguf


def scoring_rows(cfg: BondhuConfig, tokenizer, samples: int) -> tuple[list[dict], list[str]]:
    """The first ``samples`` conversations of the evaluation split: their encoded rows (input ids
    and assistant-only labels) and their rendered texts."""
    split = cfg.evaluation.split
    source = getattr(cfg.data, split)
    if not source:
        raise BondhuError(f"--report: the run's config has no data.{split} split to score")
    processor = DatasetProcessor(tokenizer, cfg.data, cfg.model.pad_token)
    conversations, _ = processor.load(source)
    messages = [c.messages for c in conversations[:samples]]
    if not messages:
        raise BondhuError(f"--report: {source} has no usable conversations")
    texts = [render(tokenizer, processor.with_system(m)) for m in messages]
    return processor.encode_many(messages), texts


def gguf_perplexity(path: Path, rows: list[dict], texts: list[str], threads: int | None = None) -> dict:
    """Token-weighted perplexity of the GGUF at ``path`` over the rows' scored tokens, and how
    many rows llama.cpp tokenizes from their text into exactly the same ids."""
    import numpy as np

    llm = load_gguf(path, max(len(r["input_ids"]) for r in rows), threads)
    total, tokens, identical = 0.0, 0, 0
    try:
        for row, text in zip(rows, texts):
            ids = row["input_ids"]
            identical += llm.tokenize(text.encode("utf-8"), add_bos=False, special=True) == ids
            llm.reset()
            llm.eval(ids)
            keep = np.asarray(row["labels"][1:]) != -100
            # Only the scored positions are upcast: a 128k vocabulary's logits for every position
            # of a long conversation would take gigabytes in float64.
            logits = np.asarray(llm.scores[: len(ids) - 1][keep], dtype=np.float64)
            target = np.asarray(ids[1:])[keep]
            top = logits.max(axis=1, keepdims=True)
            log_z = top[:, 0] + np.log(np.exp(logits - top).sum(axis=1))
            total += float((log_z - logits[np.arange(len(target)), target]).sum())
            tokens += int(keep.sum())
    finally:
        llm.close()
    if not tokens:
        raise BondhuError("--report: the conversations have no assistant tokens to score")
    mean = total / tokens
    return {"perplexity": math.exp(mean), "mean_nll": mean, "tokens": tokens, "tokenization_identical": identical}
