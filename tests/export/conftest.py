"""A run whose shapes llama.cpp's k-quants can hold, exported once as f16, q8_0 and q4_k_m."""

from __future__ import annotations

import pytest

from helpers import BUNDLED, LLAMA31_ROPE

# With Llama 3.1-8B-Instruct's rope scaling (tests/helpers.py), the export's rope_freqs tensor is
# exercised: with these factors, most of a 64-wide head's frequencies change even at short range.


@pytest.fixture(scope="session")
def kquant_base(tmp_path_factory, tokenizer):
    """The session tokenizer on a Llama whose matrices k-quants can quantize, briefly pretrained.

    k-quants (q4_k_m, q6_k, ...) pack rows in blocks of 256 values; the session model's 64- and
    128-wide rows do not divide, and llama.cpp stores every such tensor in a 32-block type instead
    (q4_k_m becomes q5_0 throughout), so the q4_k_m test would test q5_0. Hidden 256 and
    intermediate 512 are the smallest widths that keep every matrix in its k-quant type. A few
    pretraining steps on the users' turns make the next token clear enough (its logit ahead of the
    runner-up by far more than f16 rounding moves it) for a greedy comparison to mean something.
    """
    import torch
    from transformers import LlamaForCausalLM

    from bondhu.config import TinyModelSpec
    from bondhu.train.tiny import build_tiny_model, corpus_texts, pretrain

    spec = TinyModelSpec(
        hidden_size=256,
        intermediate_size=512,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=131072,
        tokenizer_corpus=[str(BUNDLED / "train.jsonl")],
    )
    config = build_tiny_model(spec, tokenizer).config
    config.rope_parameters = dict(LLAMA31_ROPE)
    torch.manual_seed(0)
    model = LlamaForCausalLM(config)
    # A fixed amount of pretraining (the first 800 user turns, about v1's whole training split), so
    # the model, and the error bounds measured on it, do not move with the bundled dataset's size.
    users = corpus_texts(spec.tokenizer_corpus, roles=("user",))[:800]
    pretrain(model, tokenizer, users, 0.3, seed=0)
    # After seconds of training, attention is close to uniform, and the output hardly depends on
    # where a token sits: a file with a wrong Q/K row order or without Llama 3.1's rope factors
    # computed nearly the same logits. Query and key weights four times larger make attention
    # sharp; then missing rope factors move f16's logits nine times further than f16 rounding does.
    with torch.no_grad():
        for layer in model.model.layers:
            layer.self_attn.q_proj.weight.mul_(4.0)
            layer.self_attn.k_proj.weight.mul_(4.0)
    out = tmp_path_factory.mktemp("kquant") / "model"
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    return out


@pytest.fixture(scope="session")
def kquant_run(train_tiny_run, kquant_base):
    """A LoRA run on that base, trained on the mini fixture long enough to end its replies with
    <|eot_id|> on its own."""
    return train_tiny_run(
        "kquant",
        f"model.name_or_path={kquant_base}",
        "training.strategy=lora",
        "training.max_steps=4",
        f"data.test={BUNDLED / 'test.jsonl'}",
    )
