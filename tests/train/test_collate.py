"""Padded batching without a mask: exact for right-padded rows, and a run trains with it."""

from __future__ import annotations

import json

import pytest
import torch

from bondhu.train.collate import CausalPadded


def _collator(tokenizer):
    from trl.trainer.sft_trainer import DataCollatorForLanguageModeling

    return DataCollatorForLanguageModeling(pad_token_id=tokenizer.pad_token_id)


def test_no_mask_gives_every_real_token_the_logits_it_has_alone(tiny_model_dir, tokenizer):
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir, attn_implementation="sdpa").eval()
    rows = [tokenizer("আজ মনটা খুব খারাপ, কিছুই ভালো লাগছে না।")["input_ids"], tokenizer("ধন্যবাদ")["input_ids"]]
    assert len(rows[0]) > len(rows[1])
    batch = CausalPadded(_collator(tokenizer))([{"input_ids": r} for r in rows])
    assert "attention_mask" not in batch
    # TRL's loss needs position ids when there is no mask; these are plain 0..n-1, no resets.
    assert (batch["position_ids"] == torch.arange(batch["input_ids"].shape[1])).all()
    assert (batch["input_ids"][1, len(rows[1]) :] == tokenizer.pad_token_id).all()
    with torch.no_grad():
        together = model(input_ids=batch["input_ids"], position_ids=batch["position_ids"]).logits
        for i, row in enumerate(rows):
            alone = model(input_ids=torch.tensor([row])).logits[0]
            torch.testing.assert_close(together[i, : len(row)], alone, rtol=1e-4, atol=1e-4)


def test_left_padding_is_refused(tokenizer):
    def left(features):
        return {"input_ids": torch.tensor([[0, 5, 6]]), "attention_mask": torch.tensor([[0, 1, 1]])}

    with pytest.raises(ValueError, match="right padding"):
        CausalPadded(left)([{}])


def test_a_padded_run_trains_and_says_so(train_tiny_run):
    run = train_tiny_run("padded", "training.batching=padded")
    summary = json.loads((run / "summary.json").read_text("utf-8"))
    assert summary["batching"] == "padded" and not summary["padding_free_on"]
    assert summary["steps"] == 2 and summary["last_loss"] > 0
