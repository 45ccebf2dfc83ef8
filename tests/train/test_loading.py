"""Finding and loading a model: the tiny model built on demand, a missing one named in one line."""

import pytest

from bondhu.config import ModelConfig
from bondhu.errors import BondhuError
from bondhu.train.loading import load_causal_lm, load_tokenizer, resolve_model_path


def test_a_configured_tiny_model_is_built_where_the_config_says(tmp_path, tiny_spec):
    cfg = ModelConfig(name_or_path=str(tmp_path / "tiny"), tiny=tiny_spec)
    path = resolve_model_path(cfg)
    assert path == str(tmp_path / "tiny") and (tmp_path / "tiny" / "config.json").is_file()
    tok = load_tokenizer(cfg, path)
    assert tok.pad_token == "<|finetune_right_pad_id|>" and tok.pad_token_id != tok.eos_token_id


def test_a_missing_model_is_one_line(tmp_path):
    cfg = ModelConfig(name_or_path=str(tmp_path / "nowhere"))
    with pytest.raises(BondhuError, match="cannot load the model or tokenizer") as err:
        load_causal_lm(cfg, cfg.name_or_path)
    assert "\n" not in str(err.value)
