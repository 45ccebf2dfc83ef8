"""The fast backend (merged weights, static cache, own decode loop) agrees with the reference path."""

import dataclasses
import threading

import pytest
import torch

from bondhu.config import GenerationSettings
from bondhu.inference.fast import FastDecoder
from bondhu.inference.model import generate, load_for_inference, prompt_ids, stream

PROMPTS = [[{"role": "user", "content": "আজ মনটা খুব খারাপ।"}], [{"role": "user", "content": "কাল আমার পরীক্ষা।"}]]


@pytest.fixture(scope="module")
def fast(lora_run):
    return load_for_inference(lora_run, backend="fast")


def test_fast_path_gives_identical_greedy_text(reference, fast):
    assert fast.backend == "fast" and fast.merged and not fast.has_adapter
    assert fast.decoder is not None
    assert hasattr(fast.model.model.layers[0].self_attn, "qkv_proj")  # the fused projections gave this text
    greedy = GenerationSettings(max_new_tokens=24, do_sample=False, repetition_penalty=1.0)
    assert generate(fast, PROMPTS, greedy) == generate(reference, PROMPTS, greedy)
    # and the adapter really changes the output: the merged model is not the base
    assert any(torch.any(p != 0) for n, p in reference.model.named_parameters() if "lora_B" in n)


def same_model_through_generate(fast):
    """The fast backend's own merged weights, answered by ``model.generate`` instead of the decoder."""
    return dataclasses.replace(fast, decoder=None, lock=threading.Lock())


def test_decoder_samples_exactly_like_generate(fast):
    # Same weights, same seed: the decoder's processors and draws must be generate's, token for token
    # (generate at batch 1, where each reply is seeded, as the decoder's are).
    settings = GenerationSettings(
        max_new_tokens=30, do_sample=True, temperature=0.9, top_p=0.8, top_k=40, repetition_penalty=1.3, seed=7
    )
    ours = generate(fast, PROMPTS, settings)
    assert ours == generate(same_model_through_generate(fast), PROMPTS, settings, batch_size=1)
    assert ours != generate(fast, PROMPTS, settings.model_copy(update={"seed": 8}))


def test_stream_gives_the_text_generate_gives(fast):
    settings = GenerationSettings(max_new_tokens=20, do_sample=False, repetition_penalty=1.1)
    streamed = "".join(stream(fast, prompt_ids(fast, PROMPTS[0]), settings)).strip()
    assert streamed == generate(fast, PROMPTS[:1], settings)[0]


def test_decode_path_logits_match_a_full_forward_pass(fast):
    prompt, forced = prompt_ids(fast, PROMPTS[1]), [5, 17, 99, 3, 250]
    with torch.inference_mode():
        ours = fast.decoder.teacher_forced_logits(prompt, forced)
        full = fast.model(input_ids=torch.tensor([prompt + forced])).logits[0, len(prompt) - 1 :].float()
    assert ours.shape == full.shape
    assert torch.linalg.norm(ours - full) / torch.linalg.norm(full) < 1e-5


def test_fast_path_logits_match_the_reference_path(reference, fast):
    # The bar is a relative L2 error under 2e-2 against the reference path (base + unmerged
    # adapter); on the trained tiny model in fp32 the two agree to rounding.
    prompt, forced = prompt_ids(fast, PROMPTS[0]), [7, 42, 300, 11]
    with torch.inference_mode():
        ours = fast.decoder.teacher_forced_logits(prompt, forced)
        ref = reference.model(input_ids=torch.tensor([prompt + forced])).logits[0, len(prompt) - 1 :].float()
    assert reference.has_adapter and not reference.merged
    assert torch.linalg.norm(ours - ref) / torch.linalg.norm(ref) < 1e-5


def test_fused_projections_compute_what_the_separate_ones_did(tiny_model_dir):
    import copy

    from transformers import AutoModelForCausalLM, GPT2Config, GPT2LMHeadModel

    from bondhu.inference.fast import fuse_projections

    plain = AutoModelForCausalLM.from_pretrained(tiny_model_dir, dtype=torch.float32).eval()
    fused = copy.deepcopy(plain)
    assert fuse_projections(fused)
    attn, mlp = fused.model.layers[0].self_attn, fused.model.layers[0].mlp
    assert hasattr(attn, "qkv_proj") and not hasattr(attn, "q_proj")
    assert hasattr(mlp, "gate_up_proj") and not hasattr(mlp, "up_proj")
    assert sum(p.numel() for p in fused.parameters()) == sum(p.numel() for p in plain.parameters())
    ids = torch.randint(0, plain.config.vocab_size, (2, 19), generator=torch.Generator().manual_seed(0))
    with torch.inference_mode():
        torch.testing.assert_close(fused(input_ids=ids).logits, plain(input_ids=ids).logits, rtol=1e-5, atol=1e-5)
    # a model that is not Llama is left as it is
    other = GPT2LMHeadModel(GPT2Config(n_layer=1, n_embd=16, n_head=2, vocab_size=50))
    assert not fuse_projections(other)
    assert hasattr(other.transformer.h[0].attn, "c_attn")


def test_decoder_grows_its_cache_and_honours_stops(fast):
    decoder = FastDecoder(fast.model, capacity=8, compiled=False)
    prompt = prompt_ids(fast, PROMPTS[0])
    greedy = GenerationSettings(max_new_tokens=12, do_sample=False, repetition_penalty=1.0)
    with torch.inference_mode():
        tokens = list(decoder.tokens(prompt, greedy))
        assert len(tokens) == 12 and decoder.capacity == 1024  # grown past prompt + 12, to a multiple of 1024
        assert tokens == list(fast.decoder.tokens(prompt, greedy))
        # a stop id ends the reply before it; a set stop event ends it after the token in flight
        assert list(decoder.tokens(prompt, greedy, stop_ids=[tokens[3]])) == tokens[: tokens.index(tokens[3])]
        stop = threading.Event()
        stop.set()
        assert list(decoder.tokens(prompt, greedy, stop=stop)) == tokens[:1]
    with pytest.raises(ValueError, match="empty"):
        list(decoder.tokens([], greedy))


def test_int8_weights_stay_close_to_the_16_bit_fast_path(lora_run, fast):
    from bondhu.inference.fast import load_fast
    from bondhu.run import RunDir

    cfg = RunDir(lora_run).config()
    cfg = cfg.model_copy(update={"chat": cfg.chat.model_copy(update={"fast_quantization": "int8"})})
    int8 = load_fast(lora_run, cfg)
    assert type(int8.model.model.layers[0].mlp.gate_up_proj.weight).__name__ == "Int8Tensor"
    prompt, forced = prompt_ids(fast, PROMPTS[1]), [5, 17, 99, 3, 250]
    with torch.inference_mode():
        ours = int8.decoder.teacher_forced_logits(prompt, forced)
        full = fast.decoder.teacher_forced_logits(prompt, forced)
    error = torch.linalg.norm(ours - full) / torch.linalg.norm(full)
    assert 0 < error < 2e-2  # rounded, so not identical, but close
    greedy = GenerationSettings(max_new_tokens=12, do_sample=False, repetition_penalty=1.0)
    assert len(generate(int8, PROMPTS[:1], greedy)[0]) > 0


def test_int8_without_torchao_is_a_clear_error(lora_run, monkeypatch):
    import sys

    from bondhu.errors import BondhuError
    from bondhu.inference.fast import quantize_int8

    monkeypatch.setitem(sys.modules, "torchao.quantization", None)  # as if torchao were not installed
    with pytest.raises(BondhuError, match="fast_quantization=int8 needs torchao"):
        quantize_int8(torch.nn.Linear(4, 4))


def test_evaluate_and_serve_take_the_fast_backend(lora_run, reference, fast, run_cli):
    import json

    from fastapi.testclient import TestClient

    from bondhu.serve.app import create_app

    outputs = {}
    for backend in ("hf", "fast"):
        result = run_cli("evaluate", lora_run, "--backend", backend, "--no-base", "--max-samples", "4")
        assert result.code == 0, result.err
        metrics = json.loads((lora_run / "eval" / "metrics.json").read_text("utf-8"))
        gens = (lora_run / "eval" / "generations.jsonl").read_text("utf-8").splitlines()
        outputs[backend] = metrics, [json.loads(g)["replies"]["fine-tuned"] for g in gens]
    (hf_metrics, hf_replies), (fast_metrics, fast_replies) = outputs["hf"], outputs["fast"]
    assert fast_metrics["backend"] == "fast" and hf_metrics["backend"] != "fast"
    assert fast_replies == hf_replies and len(fast_replies) == 4  # evaluation decodes greedily
    assert fast_metrics["results"]["fine-tuned"]["perplexity"] == pytest.approx(
        hf_metrics["results"]["fine-tuned"]["perplexity"], rel=1e-4
    )

    request = {"model": "bondhu", "messages": PROMPTS[0], "temperature": 0, "max_tokens": 12}
    replies = []
    for loaded in (reference, fast):
        with TestClient(create_app(loaded)) as client:
            response = client.post("/v1/chat/completions", json=request)
            assert response.status_code == 200, response.text
            replies.append(response.json()["choices"][0]["message"]["content"])
    assert replies[0] == replies[1] and replies[1]
