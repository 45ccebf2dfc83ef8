"""Right-padded batches that need no attention mask (``training.batching: padded``)."""

from __future__ import annotations

import dataclasses

import torch
import transformers


class CausalPadded:
    """The trainer's collator, less the attention mask of right-padded rows.

    Why it is exact: padding sits at the end of each row and attention is causal, so a real token
    only ever attends to the real tokens before it; the mask changes nothing the loss reads, and
    the labels of padding are ignored. Why it is faster: without a mask SDPA runs its fused causal
    kernels (cuDNN or flash) once per layer for the whole batch. A mask forces the slower masked
    kernel, and a padding-free row runs one conversation at a time wherever torch has no varlen
    attention that takes grouped heads (docs/benchmarks.md has the H200 figures). Rows of similar
    length are batched together (``length_grouped``), so little compute goes to padding.
    """

    def __init__(self, base):
        self.base = base

    def __call__(self, features):
        batch = self.base(features)
        if not bool(batch["attention_mask"][:, 0].all()):
            raise ValueError("padded batching needs right padding: a row starts with padding")
        del batch["attention_mask"]
        # 0..n-1 on every row, padding included: the model's own default, with no reset for a
        # packed-sequence check to find. TRL's loss wants an attention mask or position ids.
        rows, n = batch["input_ids"].shape
        batch["position_ids"] = torch.arange(n, device=batch["input_ids"].device).expand(rows, n).contiguous()
        return batch


def length_grouped(on: bool) -> dict:
    """The TrainingArguments keyword that batches rows of similar length together."""
    names = {f.name for f in dataclasses.fields(transformers.TrainingArguments)}
    if "train_sampling_strategy" in names:
        return {"train_sampling_strategy": "group_by_length" if on else "random"}
    return {"group_by_length": on}
