"""LLAMAFineTuner: one config in, one run directory out.

Read top to bottom, ``train`` is the recipe: pick a strategy, load the tokenizer and
data (so data errors surface before the slow model load), load the model, attach LoRA,
train with TRL's SFTTrainer on DatasetProcessor's assistant-only labels, then write the
adapter, the loss history and a summary.
"""

from __future__ import annotations

import logging
import os
import shutil
import time

from bondhu.config import BondhuConfig, dump_config
from bondhu.data.processor import DatasetProcessor, Prepared
from bondhu.errors import BondhuError
from bondhu.train import rundir
from bondhu.train.distributed import is_main_process, wait_for_everyone
from bondhu.train.strategies import resolve_precision, select_strategy

log = logging.getLogger(__name__)

OOM_ADVICE = ("out of GPU memory: lower training.per_device_batch_size (raise gradient_accumulation_steps to "
              "keep the global batch), set data.max_length with data.overflow=truncate_history, keep "
              "training.gradient_checkpointing=true, or use training.strategy=unsloth")


class LLAMAFineTuner:
    """QLoRA/LoRA fine-tuning of a Llama 3.1 model on Bengali conversations."""

    def __init__(self, config: BondhuConfig, callbacks: list | None = None, progress: bool = True):
        self.cfg = config
        self.extra_callbacks = callbacks or []
        self.progress = progress
        self.run_dir = config.run_dir
        self.choice = None
        self.trainer = None

    # ------------------------------------------------------------------ helpers
    def _check_run_dir(self, resume: bool) -> None:
        ckpt = self.run_dir / "checkpoints"
        has_run = (self.run_dir / "summary.json").exists() or (ckpt.exists() and any(ckpt.iterdir()))
        # Every rank looks before rank 0 deletes: a rank still looking while the directory is being
        # removed would find it half gone (FileNotFoundError on summary.json or rng_state_0.pth).
        wait_for_everyone()
        if resume:
            if not ckpt.exists() or not any(ckpt.glob("checkpoint-*")):
                raise BondhuError(f"{self.run_dir}: no checkpoint to resume from")
        elif has_run:
            if not self.cfg.output.overwrite:
                raise BondhuError(f"{self.run_dir} already holds a run: pass --resume to continue it, set "
                                  "output.name=... for a new run, or output.overwrite=true to replace it")
            if is_main_process():
                shutil.rmtree(self.run_dir)
        wait_for_everyone()

    def _report_to(self) -> list[str]:
        targets = []
        if self.cfg.logging.wandb:
            mode = self.cfg.logging.wandb_mode
            if mode == "auto":
                mode = "online" if os.environ.get("WANDB_API_KEY") else "offline"
            # wandb reads its settings from the environment; offline runs can be `wandb sync`ed later.
            os.environ.update(WANDB_MODE=mode, WANDB_DIR=str(self.run_dir.resolve()),
                              WANDB_PROJECT=self.cfg.logging.wandb_project)
            targets.append("wandb")
        if self.cfg.logging.tensorboard:
            os.environ["TENSORBOARD_LOGGING_DIR"] = str(self.run_dir / "tensorboard")
            targets.append("tensorboard")
        return targets

    def _prepare_data(self, tokenizer) -> tuple[Prepared, Prepared | None]:
        processor = DatasetProcessor(tokenizer, self.cfg.data, self.cfg.model.pad_token)
        train = processor.prepare(self.cfg.data.train)
        if not train.rows:
            raise BondhuError(f"{self.cfg.data.train}: no usable training conversations "
                              f"(skipped: {dict(train.report.skipped)})")
        val = processor.prepare(self.cfg.data.validation) if self.cfg.data.validation else None
        return train, val

    def _sft_config(self, precision: str, has_eval: bool, max_len: int):
        from trl import SFTConfig

        t = self.cfg.training
        batching = t.batching
        args = SFTConfig(
            output_dir=str(self.run_dir / "checkpoints"),
            run_name=self.cfg.output.name,
            per_device_train_batch_size=t.per_device_batch_size,
            per_device_eval_batch_size=t.per_device_batch_size,
            gradient_accumulation_steps=t.gradient_accumulation_steps,
            num_train_epochs=t.epochs, max_steps=t.max_steps,
            learning_rate=t.learning_rate, lr_scheduler_type=t.lr_scheduler, warmup_steps=t.warmup_ratio,
            weight_decay=t.weight_decay, max_grad_norm=t.max_grad_norm, optim=t.optimizer,
            bf16=precision == "bf16", fp16=precision == "fp16",
            use_cpu=precision == "fp32" and not _cuda(),
            # The strategy already set up checkpointing (Unsloth's own, or PEFT's non-reentrant).
            gradient_checkpointing=False,
            seed=t.seed, data_seed=t.seed,
            logging_steps=t.logging_steps, save_steps=t.save_steps, save_total_limit=t.save_total_limit,
            eval_strategy=("steps" if t.eval_steps else "epoch") if has_eval else "no",
            eval_steps=t.eval_steps,
            report_to=self._report_to() or "none",
            include_num_input_tokens_seen="non_padding",
            disable_tqdm=True,
            dataloader_num_workers=t.dataloader_workers,
            # Under DDP every LoRA weight gets a gradient each step; searching for unused ones
            # costs a graph traversal per step and breaks Unsloth's reentrant checkpointing.
            ddp_find_unused_parameters=False,
            padding_free=batching == "padding_free",
            packing=batching == "packing", packing_strategy="bfd",
            # Sequences are already complete and never cut; padding-free needs max_length=None.
            max_length=max_len if batching == "packing" else None,
            dataset_num_proc=None,
        )
        if args.world_size == 1 and args.n_gpu > 1:
            # One process on a multi-GPU machine: the model sits whole on one card (device_map), but
            # the HF Trainer would wrap it in nn.DataParallel, which TRL refuses. Keep it on one card.
            log.info("%d GPUs are visible and one process trains on the first; pass --num-processes %d to "
                     "train data-parallel on all of them", args.n_gpu, args.n_gpu)
            args._n_gpu = 1
        return args

    # ------------------------------------------------------------------ the recipe
    def train(self, resume: bool = False) -> dict:
        """Train, checkpoint and write the run directory; returns the summary."""
        cfg = self.cfg
        self.choice = select_strategy(cfg.training.strategy, cfg.training.num_processes)
        strategy = self.choice.strategy
        log.info("strategy %s: %s", strategy.name, self.choice.reason)
        self._check_run_dir(resume)
        precision = resolve_precision(cfg)

        model, tokenizer = strategy.load(cfg)
        train_data, val_data = self._prepare_data(tokenizer)
        model = strategy.prepare_for_training(model, cfg)
        from transformers import set_seed

        set_seed(cfg.training.seed)  # the LoRA initialization is part of the run's reproducibility
        model = strategy.add_adapters(model, cfg)

        from bondhu.train.callbacks import RichProgress, SaveOnInterrupt
        from bondhu.train.trainer import sft_trainer_class

        max_len = max(r["length"] for r in train_data.rows)
        progress, interrupt = RichProgress(self.progress), SaveOnInterrupt()
        self.trainer = trainer = sft_trainer_class()(
            model=model, args=self._sft_config(precision, val_data is not None, max(max_len, cfg.model.max_seq_length)),
            train_dataset=train_data.to_dataset(),
            eval_dataset=val_data.to_dataset() if val_data and val_data.rows else None,
            processing_class=tokenizer, callbacks=[progress, interrupt, *self.extra_callbacks],
        )
        from transformers.trainer_callback import PrinterCallback

        trainer.remove_callback(PrinterCallback)  # our progress bar shows the same numbers
        if precision != "bf16":
            # TRL keeps quantized models' adapters in bf16; fp16 AMP and fp32 need fp32 master weights.
            for p in model.parameters():
                if p.requires_grad:
                    p.data = p.data.float()
        padding_free = _batch_is_padding_free(trainer, train_data)
        if is_main_process():
            self.run_dir.mkdir(parents=True, exist_ok=True)
            resolved = cfg.model_copy(deep=True)
            resolved.training.strategy = strategy.name  # record what ran, not "auto"
            dump_config(resolved, self.run_dir / "config.yaml")

        if resume and trainer.args.world_size > 1 and not _cuda():
            from bondhu.train.distributed import allow_cpu_rank_locations

            allow_cpu_rank_locations()
        start = time.perf_counter()
        try:
            with strategy.training_context(padding_free):
                trainer.train(resume_from_checkpoint=True if resume else None)
        except Exception as err:
            if type(err).__name__ == "OutOfMemoryError":
                raise BondhuError(OOM_ADVICE) from None
            raise
        elapsed = time.perf_counter() - start

        if not trainer.is_world_process_zero():
            return {}
        adapter_dir = self.run_dir / "adapter"
        strategy.save(model, tokenizer, str(adapter_dir))
        rows = rundir.write_loss_csv(trainer.state.log_history, self.run_dir / "loss.csv")
        rundir.plot_loss(rows, self.run_dir / "loss.png", f"{cfg.output.name} ({strategy.name})")
        train_losses = [r["loss"] for r in rows if r["loss"] != ""]
        summary = {
            "name": cfg.output.name, "strategy": strategy.name, "strategy_reason": self.choice.reason,
            "model": cfg.model.name_or_path, "precision": precision,
            "batching": cfg.training.batching, "padding_free_on": padding_free,
            "steps": trainer.state.global_step, "epochs": round(trainer.state.epoch or 0, 3),
            "seconds": round(elapsed, 2),
            "tokens_seen": int(trainer.state.num_input_tokens_seen),
            "tokens_per_second": round(progress.tokens / progress.seconds, 1) if progress.seconds else None,
            "tokens_per_second_after_warmup": _round(progress.steady_tokens_per_second),
            "warmup_steps_excluded": progress.warmup_steps,
            "train_conversations": len(train_data.rows),
            "validation_conversations": len(val_data.rows) if val_data else 0,
            "first_loss": train_losses[0] if train_losses else None,
            "last_loss": train_losses[-1] if train_losses else None,
            "interrupted": interrupt.interrupted, "resumed": resume,
            "num_processes": trainer.args.world_size,
            "data_report": train_data.report.to_json(),
            **rundir.peak_memory_gib(),
        }
        rundir.write_summary(self.run_dir / "summary.json", summary)
        return summary


def _round(x: float | None) -> float | None:
    return None if x is None else round(x, 1)


def _cuda() -> bool:
    import torch

    return torch.cuda.is_available()


def _batch_is_padding_free(trainer, data: Prepared) -> bool:
    """Collate two real rows with the trainer's own collator: one flat row and no padding means on."""
    sample = trainer.train_dataset.select(range(min(2, len(trainer.train_dataset))))
    batch = trainer.data_collator([sample[i] for i in range(len(sample))])
    return "position_ids" in batch and batch["input_ids"].shape[0] == 1 and "attention_mask" not in batch
