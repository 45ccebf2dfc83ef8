"""Where Bondhu leans on transformers' and TRL's internals, in one place, each behind a check.

pyproject pins transformers 5.0-5.17 and TRL 1.0-1.15, the range this code is tested with
(the upper bounds are Unsloth 2026.10's). A new release that changes one of these is a change here.
"""

from __future__ import annotations

import transformers


def warmup(ratio: float) -> dict:
    """The SFTConfig keyword for a warm-up of ``ratio`` of the steps. transformers 5 removed
    warmup_ratio and reads a float in [0, 1) given as warmup_steps as that ratio; under 4.x the same
    float would have been a step count, and 0.03 steps means no warm-up at all."""
    if int(transformers.__version__.split(".")[0]) < 5:
        raise RuntimeError(f"transformers {transformers.__version__}: Bondhu needs 5.0 or newer (see pyproject.toml)")
    return {"warmup_steps": ratio}


def keep_on_one_gpu(args) -> None:
    """Stop the Trainer from wrapping a single process's model in nn.DataParallel (which TRL refuses)
    when several GPUs are visible. TrainingArguments has no public switch for it: its device count
    is the private ``_n_gpu``, set while it sets up devices."""
    if not hasattr(args, "_n_gpu"):
        raise RuntimeError(
            f"transformers {transformers.__version__}: TrainingArguments._n_gpu is gone; "
            "bondhu.train.compat.keep_on_one_gpu needs updating"
        )
    args._n_gpu = 1


def has_chunked_loss() -> bool:
    """Whether TRL's fused loss kernel loads here (Triton), so the full logits are never held."""
    from trl.trainer import utils as trl_utils

    return getattr(trl_utils, "_ChunkedLogProbFunction", None) is not None


def sft_trainer_class():
    """SFTTrainer when its fused LM-head kernel can load, else a subclass using the model's own loss.

    TRL 1.x computes the SFT loss with a Triton kernel that never materializes the logits.
    Triton ships with CUDA builds of PyTorch only, so on CPU the loss falls back to the
    model's cross-entropy, which transformers weights by ``num_items_in_batch`` the same
    way: the optimization is identical, only the extra entropy/accuracy metrics are gone.
    """
    from trl import SFTTrainer

    if has_chunked_loss():
        return SFTTrainer
    from transformers import Trainer

    class PortableSFTTrainer(SFTTrainer):
        def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
            return Trainer.compute_loss(self, model, inputs, return_outputs, num_items_in_batch)

    return PortableSFTTrainer
