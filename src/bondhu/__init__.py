"""Bondhu: fine-tune, evaluate, serve and safeguard an empathetic Bengali LLaMA 3.1 chatbot."""

from __future__ import annotations

__version__ = "0.1.0"

# Imported on first use, so `import bondhu` stays light and never pulls in Unsloth or torch early.
_EXPORTS = {
    "DatasetProcessor": "bondhu.data.processor",
    "LLAMAFineTuner": "bondhu.train.finetuner",
    "Evaluator": "bondhu.evaluate.evaluator",
    "ChatSession": "bondhu.chat.session",
    "load_config": "bondhu.config",
    "normalize_bengali": "bondhu.data.normalize",
}
__all__ = list(_EXPORTS)


def __getattr__(name: str):
    if name in _EXPORTS:
        import importlib

        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'bondhu' has no attribute {name!r}")
