"""The tiny Llama and its tokenizer, trained on local text, that every CPU test and the demo use."""

import pytest

from bondhu.config import TinyModelSpec
from bondhu.errors import BondhuError
from bondhu.train.tiny import ensure_tiny
from helpers import MINI


def test_the_tiny_model_has_the_spec_shape_and_the_llama3_specials(tiny_model_dir, tiny_spec):
    from transformers import AutoConfig, AutoTokenizer

    cfg = AutoConfig.from_pretrained(tiny_model_dir)
    assert (cfg.model_type, cfg.hidden_size, cfg.num_hidden_layers) == ("llama", tiny_spec.hidden_size, 2)
    tok = AutoTokenizer.from_pretrained(tiny_model_dir)
    for special in ("<|begin_of_text|>", "<|eot_id|>", "<|start_header_id|>", "<|finetune_right_pad_id|>"):
        assert special in tok.get_vocab(), special
    ids = tok("আজ মনটা খুব খারাপ")["input_ids"]
    assert tok.decode(ids, skip_special_tokens=True) == "আজ মনটা খুব খারাপ"


def test_a_built_model_is_reused_and_a_missing_corpus_is_named(tmp_path, tiny_model_dir, tiny_spec):
    assert ensure_tiny(tiny_model_dir, tiny_spec) == tiny_model_dir  # already there: not rebuilt
    spec = TinyModelSpec(tokenizer_corpus=[str(tmp_path / "none.jsonl")])
    with pytest.raises(BondhuError, match="none.jsonl: model.tiny.tokenizer_corpus file not found"):
        ensure_tiny(tmp_path / "new", spec)
    small = TinyModelSpec(
        vocab_size=512,
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=1,
        num_attention_heads=2,
        num_key_value_heads=1,
        tokenizer_corpus=[str(MINI)],
    )
    built = ensure_tiny(tmp_path / "small", small)
    assert (built / "config.json").is_file() and not list(tmp_path.glob("small.*"))  # no staging left behind
