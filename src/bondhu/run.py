"""A run directory's layout, owned in one place: what `bondhu train` writes and everything else reads.

RUN/config.yaml     the resolved config the run was trained with
RUN/adapter/        the LoRA adapter (safetensors) and the tokenizer
RUN/checkpoints/    the trainer's checkpoints, for --resume
RUN/summary.json    steps, time, tokens/s, peak memory, the strategy and the memory plan
RUN/loss.csv, RUN/loss.png
RUN/eval/           `bondhu evaluate`'s reports
RUN/merged/         `bondhu export --merged`'s merged 16-bit model
RUN/gguf/           `bondhu export --gguf`'s GGUF files, Modelfile and README
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from bondhu.config import BondhuConfig, load_config
from bondhu.errors import BondhuError

ADAPTER_WEIGHTS = ("adapter_model.safetensors", "adapter_model.bin")


@dataclass(frozen=True)
class RunDir:
    """The paths of one run directory, and the checks that give a clear error before a slow load."""

    path: Path

    def __init__(self, path: str | Path):
        object.__setattr__(self, "path", Path(path))

    config_file = property(lambda self: self.path / "config.yaml")
    adapter = property(lambda self: self.path / "adapter")
    checkpoints = property(lambda self: self.path / "checkpoints")
    summary = property(lambda self: self.path / "summary.json")
    loss_csv = property(lambda self: self.path / "loss.csv")
    loss_png = property(lambda self: self.path / "loss.png")
    eval = property(lambda self: self.path / "eval")
    merged = property(lambda self: self.path / "merged")
    gguf = property(lambda self: self.path / "gguf")

    def has_checkpoint(self) -> bool:
        return any(self.checkpoints.glob("checkpoint-*"))

    def holds_a_run(self) -> bool:
        return self.summary.exists() or (self.checkpoints.exists() and any(self.checkpoints.iterdir()))

    def config(self) -> BondhuConfig:
        """The resolved config the run was trained with."""
        if not self.path.exists():
            raise BondhuError(f"{self.path}: run directory not found")
        if not self.config_file.is_file():
            raise BondhuError(
                f"{self.path}: not a Bondhu run directory (no config.yaml); train one with `bondhu train`"
            )
        return load_config(self.config_file)

    def checked_adapter(self) -> Path:
        """RUN/adapter, once its config and weights are known to be there. PEFT would otherwise take a
        missing local file for a Hub repo id and fail with an error about repo names."""
        adapter = self.adapter
        if not (adapter / "adapter_config.json").is_file():
            raise BondhuError(
                f"{self.path}: the run has no adapter ({adapter / 'adapter_config.json'} is missing); "
                "did training finish?"
            )
        if not any((adapter / name).is_file() for name in ADAPTER_WEIGHTS):
            raise BondhuError(
                f"{adapter / ADAPTER_WEIGHTS[0]}: the adapter's weights are missing; did training finish?"
            )
        if (weights := adapter / ADAPTER_WEIGHTS[0]).is_file():  # its header is read now, before a base model loads
            from safetensors import safe_open

            try:
                with safe_open(str(weights), "pt") as f:
                    f.keys()
            except Exception as err:
                raise unreadable_adapter(weights, err) from None
        return adapter


def unreadable_adapter(weights: Path, err: Exception) -> BondhuError:
    detail = str(err).splitlines()[0] if str(err) else "no detail"
    return BondhuError(f"{weights}: the adapter could not be loaded ({type(err).__name__}: {detail})")
