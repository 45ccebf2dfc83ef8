"""A run's LoRA adapter on disk: found, checked and attached with errors that name the file."""

from __future__ import annotations

from pathlib import Path

from bondhu.errors import BondhuError

WEIGHTS = ("adapter_model.safetensors", "adapter_model.bin")


def adapter_dir(run: str | Path) -> Path:
    """RUN/adapter, once its config and weights are known to be there. PEFT would otherwise take a
    missing local file for a Hub repo id and fail with an error about repo names."""
    adapter = Path(run) / "adapter"
    if not (adapter / "adapter_config.json").is_file():
        raise BondhuError(f"{run}: the run has no adapter ({adapter / 'adapter_config.json'} is missing); "
                          "did training finish?")
    if not any((adapter / name).is_file() for name in WEIGHTS):
        raise BondhuError(f"{adapter / WEIGHTS[0]}: the adapter's weights are missing; did training finish?")
    if (weights := adapter / WEIGHTS[0]).is_file():  # its header is read now, before a base model loads for minutes
        from safetensors import safe_open

        try:
            with safe_open(str(weights), "pt") as f:
                f.keys()
        except Exception as err:
            raise _unreadable(weights, err) from None
    return adapter


def _unreadable(weights: Path, err: Exception) -> BondhuError:
    detail = str(err).splitlines()[0] if str(err) else "no detail"
    return BondhuError(f"{weights}: the adapter could not be loaded ({type(err).__name__}: {detail})")


def attach(model, adapter: Path):
    """``model`` with the adapter in ``adapter`` loaded onto it (PEFT); a corrupt file is named."""
    from peft import PeftModel

    try:
        return PeftModel.from_pretrained(model, str(adapter))
    except Exception as err:  # safetensors' SafetensorError, torch's unpickling errors, shape mismatches
        raise _unreadable(next((adapter / n for n in WEIGHTS if (adapter / n).is_file()), adapter), err) from None
