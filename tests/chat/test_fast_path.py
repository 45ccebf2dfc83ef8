"""The fast backend (merged weights) and `bondhu export --merged` agree with the reference path."""

import pytest
import torch

from bondhu.chat.model import generate, load_for_inference
from bondhu.config import GenerationSettings


@pytest.fixture(scope="module")
def lora_run(train_tiny_run):
    return train_tiny_run("fast", "training.strategy=lora", "training.max_steps=6", "training.learning_rate=0.02")


def test_fast_path_gives_identical_greedy_text(lora_run):
    reference = load_for_inference(lora_run, backend="hf")
    fast = load_for_inference(lora_run, backend="fast")
    assert fast.backend == "fast" and fast.merged and not fast.has_adapter
    greedy = GenerationSettings(max_new_tokens=24, do_sample=False, repetition_penalty=1.0)
    prompts = [[{"role": "user", "content": "আজ মনটা খুব খারাপ।"}], [{"role": "user", "content": "কাল আমার পরীক্ষা।"}]]
    assert generate(fast, prompts, greedy) == generate(reference, prompts, greedy)
    # and the adapter really changes the output: the merged model is not the base
    assert any(torch.any(p != 0) for n, p in reference.model.named_parameters() if "lora_B" in n)


def test_export_merged_matches_the_adapter_model(lora_run, run_cli):
    from transformers import AutoModelForCausalLM

    result = run_cli("export", lora_run, "--merged", "--dtype", "float32")
    assert result.code == 0, result.err
    merged = AutoModelForCausalLM.from_pretrained(lora_run / "merged")
    reference = load_for_inference(lora_run, backend="hf")
    ids = torch.tensor([[1, 5, 9, 42, 77, 101]])
    with torch.no_grad():
        a, b = merged(input_ids=ids).logits, reference.model(input_ids=ids).logits
    assert torch.linalg.norm(a - b) / torch.linalg.norm(b) < 1e-5
    assert (lora_run / "merged" / "tokenizer.json").is_file()
    assert run_cli("export", lora_run).code == 1
