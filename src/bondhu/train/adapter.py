"""Attach a run's LoRA adapter to a base model, with an error that names the file."""

from __future__ import annotations

from pathlib import Path

from bondhu.run import ADAPTER_WEIGHTS, unreadable_adapter


def attach(model, adapter: Path):
    """``model`` with the adapter in ``adapter`` loaded onto it (PEFT); a corrupt file is named."""
    from peft import PeftModel

    try:
        return PeftModel.from_pretrained(model, str(adapter))
    except Exception as err:  # safetensors' SafetensorError, torch's unpickling errors, shape mismatches
        raise unreadable_adapter(
            next((adapter / n for n in ADAPTER_WEIGHTS if (adapter / n).is_file()), adapter), err
        ) from None
