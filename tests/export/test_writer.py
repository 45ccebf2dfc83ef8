"""The pieces of the GGUF writer: rope factors, the tokenizer's checks and table, the template, types."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from bondhu.errors import BondhuError
from bondhu.export import parse_types
from bondhu.export.gguf import llama3_rope_factors
from bondhu.export.pipeline import partial_name, staged
from bondhu.export.vocab import check_llama3_pretokenizer, jinja_string, template_with_system
from helpers import BUNDLED, LLAMA31_ROPE, ROOT


def test_llama3_rope_factors_divide_the_frequencies_as_transformers_does():
    import torch
    from transformers import LlamaConfig
    from transformers.modeling_rope_utils import ROPE_INIT_FUNCTIONS

    config = LlamaConfig(hidden_size=4096, num_attention_heads=32, max_position_embeddings=131072)
    config.rope_parameters = dict(LLAMA31_ROPE)
    scaled, _ = ROPE_INIT_FUNCTIONS["llama3"](config, "cpu")
    plain = 1.0 / (500000.0 ** (torch.arange(0, 128, 2, dtype=torch.float32) / 128))
    factors = torch.tensor(llama3_rope_factors(config))
    assert torch.allclose(plain / factors, scaled, rtol=1e-6)
    assert factors.min() == 1.0 and factors.max() == 8.0  # both ends of the band are present
    config.rope_parameters = {"rope_type": "default", "rope_theta": 500000.0}
    assert llama3_rope_factors(config) is None


def test_jinja_string_reads_back_as_the_same_text():
    from jinja2 import Environment

    text = 'বন্ধু "quoted" \\ back\\slash\nnew line\ttab {{ not a tag }}'
    assert Environment().from_string("{{ " + jinja_string(text) + " }}").render() == text


def test_template_with_system_adds_the_prompt_only_when_the_conversation_has_none(tokenizer):
    from jinja2.sandbox import ImmutableSandboxedEnvironment

    from bondhu.data.template import with_system

    template = template_with_system(tokenizer.chat_template, "তুমি বন্ধু।")
    env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True)
    user = [{"role": "user", "content": "হ্যালো"}]
    own = [{"role": "system", "content": "অন্য"}, *user]
    for messages in (user, own):
        ours = env.from_string(template).render(messages=messages, bos_token="<|begin_of_text|>")
        assert ours == tokenizer.apply_chat_template(with_system(messages, "তুমি বন্ধু।"), tokenize=False)
    assert template_with_system(tokenizer.chat_template, "") == tokenizer.chat_template


def test_a_tokenizer_that_does_not_split_like_llama_3_is_refused(tokenizer):
    spec = json.loads(tokenizer.backend_tokenizer.to_str())
    check_llama3_pretokenizer(spec)
    spec["pre_tokenizer"] = {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True, "use_regex": True}
    with pytest.raises(BondhuError, match="does not pre-tokenize as Llama 3 does"):
        check_llama3_pretokenizer(spec)


def test_types_are_checked_case_insensitively_and_kept_in_order():
    assert parse_types("Q4_K_M, f16,q4_k_m") == ["q4_k_m", "f16"]
    assert parse_types(["q8_0", "q5_k_m,q4_0"]) == ["q8_0", "q5_k_m", "q4_0"]
    with pytest.raises(BondhuError, match="'q4_k_x': unknown type; valid types: f16, bf16, q8_0, q6_k"):
        parse_types("q4_k_x")
    with pytest.raises(BondhuError, match="no type given"):
        parse_types(" , ")


def test_staged_renames_on_success_and_deletes_on_failure(tmp_path):
    final = tmp_path / "model.gguf"
    with staged(final) as tmp:
        assert tmp == partial_name(final) and not tmp.name.endswith(".gguf")
        tmp.write_bytes(b"GGUF")
    assert final.read_bytes() == b"GGUF" and not partial_name(final).exists()
    with pytest.raises(KeyboardInterrupt), staged(tmp_path / "other.gguf") as tmp:
        tmp.write_bytes(b"half")
        raise KeyboardInterrupt
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.gguf"]


@pytest.fixture(scope="module")
def llama31_tokenizer():
    """Llama 3.1's own tokenizer, rebuilt from its rank file when this checkout has one."""
    sys.path.insert(0, str(ROOT / "benchmarks"))
    try:
        from llama3_tokenizer import load_llama31_tokenizer
    finally:
        sys.path.remove(str(ROOT / "benchmarks"))
    tok = load_llama31_tokenizer()
    if tok is None:
        pytest.skip("no Llama 3.1 rank file (shared/llama3/tokenizer.model) in this checkout")
    return tok


def test_llama_cpp_tokenizes_bengali_as_llama_31s_own_tokenizer_does(llama31_tokenizer, tmp_path):
    llama_cpp = pytest.importorskip("llama_cpp")
    from transformers import LlamaConfig, LlamaForCausalLM

    from bondhu.export.gguf import GGUFMeta, write_f16_gguf

    tok = llama31_tokenizer
    # Only the vocabulary is read back, so the smallest model with Llama 3.1's 128,256 tokens will do.
    config = LlamaConfig(
        vocab_size=len(tok), hidden_size=32, intermediate_size=64, num_hidden_layers=1, num_attention_heads=2
    )
    path = tmp_path / "vocab.gguf"
    write_f16_gguf(LlamaForCausalLM(config), tok, path, GGUFMeta("vocab", "", tok.chat_template))
    texts = [
        m["content"]
        for line in Path(BUNDLED / "test.jsonl").read_text("utf-8").splitlines()
        for m in json.loads(line)["messages"]
    ]
    texts += ["Ami bhalo achi, tumi? ১২৩৪৫ 12345 😀\n\n  দুই  স্পেস\r\n", "it's 'll 'VE"]
    llm = llama_cpp.Llama(str(path), vocab_only=True, verbose=False)
    try:
        differ = [t for t in texts if tok(t, add_special_tokens=False).input_ids != llm.tokenize(t.encode(), False)]
        ids = llm.tokenize("<|start_header_id|>user<|end_header_id|>".encode(), add_bos=False, special=True)
    finally:
        llm.close()
    assert differ == [] and len(texts) > 150  # every message of the bundled test split
    assert ids == [128006, 882, 128007]  # the specials are single control tokens, at Llama 3.1's ids
