"""`bondhu export --merged`: the adapter folded into 16-bit weights computes what the adapter model does."""

import torch


def test_export_merged_matches_the_adapter_model(lora_run, reference, run_cli):
    from transformers import AutoModelForCausalLM

    result = run_cli("export", lora_run, "--merged", "--dtype", "float32")
    assert result.code == 0, result.err
    merged = AutoModelForCausalLM.from_pretrained(lora_run / "merged")
    ids = torch.tensor([[1, 5, 9, 42, 77, 101]])
    with torch.no_grad():
        a, b = merged(input_ids=ids).logits, reference.model(input_ids=ids).logits
    assert torch.linalg.norm(a - b) / torch.linalg.norm(b) < 1e-5
    assert (lora_run / "merged" / "tokenizer.json").is_file()
    assert run_cli("export", lora_run).code == 1
