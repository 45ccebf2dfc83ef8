"""Resolve where a model lives and load its tokenizer, building the tiny model on demand."""

from __future__ import annotations

import logging

from bondhu.config import ModelConfig
from bondhu.errors import BondhuError

log = logging.getLogger(__name__)


def resolve_model_path(cfg: ModelConfig) -> str:
    """The local folder or Hub id to load; builds the tiny CPU model first when configured."""
    if cfg.tiny is not None:
        from bondhu.train.tiny import ensure_tiny

        return str(ensure_tiny(cfg.name_or_path, cfg.tiny))
    return cfg.name_or_path


def model_not_found(name: str, err: Exception) -> BondhuError:
    first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
    return BondhuError(
        f"{name}: cannot load the model or tokenizer (not a local folder, and the Hub gave: {first[:300]})"
    )


def load_causal_lm(cfg: ModelConfig, path: str, **kwargs):
    """The model at ``path`` with the config's revision, attention and remote-code settings;
    a model that cannot be found is a one-line error."""
    from transformers import AutoModelForCausalLM

    try:
        return AutoModelForCausalLM.from_pretrained(
            path,
            revision=cfg.revision,
            attn_implementation=cfg.attn_implementation,
            trust_remote_code=cfg.trust_remote_code,
            **kwargs,
        )
    except OSError as err:
        raise model_not_found(path, err) from None


def load_tokenizer(cfg: ModelConfig, path: str | None = None):
    """Load the tokenizer with a pad token distinct from EOS."""
    from transformers import AutoTokenizer

    from bondhu.data.processor import ensure_pad_token

    path = path or resolve_model_path(cfg)
    try:
        tok = AutoTokenizer.from_pretrained(path, revision=cfg.revision, trust_remote_code=cfg.trust_remote_code)
    except (OSError, ValueError) as err:
        raise model_not_found(path, err) from None
    ensure_pad_token(tok, cfg.pad_token)
    return tok
