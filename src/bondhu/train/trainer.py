"""The trainer class: TRL's SFTTrainer, made to run where Triton is missing (CPU)."""

from __future__ import annotations


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
