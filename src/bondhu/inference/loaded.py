"""A model ready to generate: what chat, evaluation, the server and the fast decoder share."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from functools import cached_property

from bondhu.config import BondhuConfig
from bondhu.data.template import STOP_TOKENS


@dataclass
class LoadedModel:
    """A model ready to generate, with what it is made of."""

    model: object
    tokenizer: object
    config: BondhuConfig
    source: str
    adapter: str | None = None
    backend: str = "hf"
    merged: bool = False  # the adapter is folded into the weights and cannot be switched off
    decoder: object | None = None  # the fast backend's FastDecoder: batch-1 replies go through it
    lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def has_adapter(self) -> bool:
        return self.adapter is not None and not self.merged

    def adapter_off(self, off: bool = True):
        """A context in which the adapter is switched off, when ``off`` and there is one to switch."""
        import contextlib

        return self.model.disable_adapter() if off and self.has_adapter else contextlib.nullcontext()

    @cached_property
    def stop_ids(self) -> list[int]:
        """The token ids that end a reply. Looked up once: a fast tokenizer's get_vocab() builds a
        dict of the whole vocabulary (128k entries for Llama 3.1) on every call."""
        tok = self.tokenizer
        vocab = tok.get_vocab()
        return [tok.convert_tokens_to_ids(t) for t in STOP_TOKENS if t in vocab] or [tok.eos_token_id]
