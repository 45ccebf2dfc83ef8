"""LLAMAFineTuner: one config in, one run directory out.

Read top to bottom, ``train`` is the recipe: pick a strategy, load the tokenizer and
data (so data errors surface before the slow model load), load the model, attach LoRA,
train with TRL's SFTTrainer on DatasetProcessor's assistant-only labels, then write the
adapter, the loss history and a summary.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import time

from bondhu.config import BondhuConfig, dump_config
from bondhu.data.processor import DatasetProcessor, Prepared
from bondhu.errors import BondhuError
from bondhu.run import RunDir
from bondhu.train import compat, rundir
from bondhu.train.collate import CausalPadded, length_grouped
from bondhu.train.distributed import is_main_process, wait_for_everyone
from bondhu.train.plan import Plan, Setup, Shape, card_memory, estimate, fallbacks_after, plans_for
from bondhu.train.strategies import resolve_precision, select_strategy

log = logging.getLogger(__name__)

OOM_ADVICE = (
    "out of GPU memory: lower training.per_device_batch_size (raise gradient_accumulation_steps to "
    "keep the global batch), set data.max_length with data.overflow=truncate_history, keep "
    "training.gradient_checkpointing=true or auto, or use training.strategy=unsloth"
)


class LLAMAFineTuner:
    """QLoRA/LoRA fine-tuning of a Llama 3.1 model on Bengali conversations."""

    def __init__(self, config: BondhuConfig, callbacks: list | None = None, progress: bool = True):
        self.cfg = config
        self.extra_callbacks = callbacks or []
        self.progress = progress
        self.run_dir = config.run_dir
        self.run = RunDir(self.run_dir)
        self.choice = None
        self.trainer = None

    # ------------------------------------------------------------------ helpers
    def _check_run_dir(self, resume: bool) -> None:
        has_run = self.run.holds_a_run()
        # Every rank looks before rank 0 deletes: a rank still looking while the directory is being
        # removed would find it half gone (FileNotFoundError on summary.json or rng_state_0.pth).
        wait_for_everyone()
        if resume:
            if not self.run.has_checkpoint():
                raise BondhuError(f"{self.run_dir}: no checkpoint to resume from")
        elif has_run:
            if not self.cfg.output.overwrite:
                raise BondhuError(
                    f"{self.run_dir} already holds a run: pass --resume to continue it, set "
                    "output.name=... for a new run, or output.overwrite=true to replace it"
                )
            if is_main_process():
                shutil.rmtree(self.run_dir)
        wait_for_everyone()

    def _report_to(self) -> tuple[list[str], dict[str, str]]:
        """The trainer's logging targets, and the environment they read their settings from (wandb
        and TensorBoard take them from there); ``_environ`` sets it for the run and restores it."""
        targets, env = [], {}
        if self.cfg.logging.wandb:
            mode = self.cfg.logging.wandb_mode
            if mode == "auto":
                mode = "online" if os.environ.get("WANDB_API_KEY") else "offline"
            # Offline runs can be `wandb sync`ed later.
            env.update(
                WANDB_MODE=mode, WANDB_DIR=str(self.run_dir.resolve()), WANDB_PROJECT=self.cfg.logging.wandb_project
            )
            targets.append("wandb")
        if self.cfg.logging.tensorboard:
            env["TENSORBOARD_LOGGING_DIR"] = str(self.run_dir / "tensorboard")
            targets.append("tensorboard")
        return targets, env

    def _prepare_data(self, tokenizer) -> tuple[Prepared, Prepared | None]:
        processor = DatasetProcessor(tokenizer, self.cfg.data, self.cfg.model.pad_token)
        train = processor.prepare(self.cfg.data.train, subset=self.cfg.data.train_subset)
        if not train.rows:
            raise BondhuError(
                f"{self.cfg.data.train}: no usable training conversations (skipped: {dict(train.report.skipped)})"
            )
        val = (
            processor.prepare(self.cfg.data.validation, subset=self.cfg.data.validation_subset)
            if self.cfg.data.validation
            else None
        )
        return train, val

    def _sft_config(self, cfg: BondhuConfig, precision: str, has_eval: bool, max_len: int, report_to: list[str]):
        from trl import SFTConfig

        t = cfg.training
        batching = t.batching
        args = SFTConfig(
            output_dir=str(self.run.checkpoints),
            run_name=cfg.output.name,
            per_device_train_batch_size=t.per_device_batch_size,
            per_device_eval_batch_size=t.per_device_batch_size,
            gradient_accumulation_steps=t.gradient_accumulation_steps,
            num_train_epochs=t.epochs,
            max_steps=t.max_steps,
            learning_rate=t.learning_rate,
            lr_scheduler_type=t.lr_scheduler,
            **compat.warmup(t.warmup_ratio),
            weight_decay=t.weight_decay,
            max_grad_norm=t.max_grad_norm,
            optim=t.optimizer,
            bf16=precision == "bf16",
            fp16=precision == "fp16",
            use_cpu=precision == "fp32" and not _cuda(),
            # The strategy already set up checkpointing (Unsloth's own, or PEFT's non-reentrant).
            gradient_checkpointing=False,
            seed=t.seed,
            data_seed=t.seed,
            logging_steps=t.logging_steps,
            save_steps=t.save_steps,
            save_total_limit=t.save_total_limit,
            eval_strategy=("steps" if t.eval_steps else "epoch") if has_eval else "no",
            eval_steps=t.eval_steps,
            report_to=report_to or "none",
            include_num_input_tokens_seen="non_padding",
            disable_tqdm=True,
            dataloader_num_workers=t.dataloader_workers,
            # Under DDP every LoRA weight gets a gradient each step; searching for unused ones
            # costs a graph traversal per step and breaks Unsloth's reentrant checkpointing.
            ddp_find_unused_parameters=False,
            padding_free=batching == "padding_free",
            packing=batching == "packing",
            packing_strategy="bfd",
            **length_grouped(batching == "padded"),
            # Sequences are already complete and never cut; padding-free needs max_length=None.
            max_length=max_len if batching == "packing" else None,
            dataset_num_proc=None,
        )
        if args.world_size == 1 and args.n_gpu > 1:
            # One process on a multi-GPU machine: the model sits whole on one card (device_map), but
            # the HF Trainer would wrap it in nn.DataParallel, which TRL refuses. Keep it on one card.
            log.info(
                "%d GPUs are visible and one process trains on the first; pass --num-processes %d to "
                "train data-parallel on all of them",
                args.n_gpu,
                args.n_gpu,
            )
            compat.keep_on_one_gpu(args)
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
        budget, card = card_memory(cfg.training.memory_budget_gib)  # measured before the model takes its share

        model, tokenizer = strategy.load(cfg)
        train_data, val_data = self._prepare_data(tokenizer)
        setup = memory_setup(strategy, cfg, precision)
        plans = self._plans(model, setup, train_data, budget, card)
        plan, self.fallbacks = plans[0], []
        while True:
            log.info("%s (%s)", plan.describe(), plan.reason)
            try:
                run = self._attempt(strategy, model, tokenizer, train_data, val_data, plan, precision, resume)
                break
            except Exception as err:  # noqa: BLE001 - only out-of-memory is handled, the rest re-raised
                if not _out_of_memory(err):
                    raise
                step = self.trainer.state.global_step if self.trainer is not None else 0
            # Out of the except block, so the traceback no longer holds the failed attempt's tensors.
            plan_failed, plan = plan, self._fallback(plans, plan, step)
            model = tokenizer = None
            self.trainer = None
            _free_memory()
            model, tokenizer = strategy.load(cfg)
            resume = resume or self.run.has_checkpoint()
            self.fallbacks.append(
                {
                    "from": plan_failed.describe(),
                    "to": plan.describe(),
                    "at_step": step,
                    "resumed_from_checkpoint": resume,
                }
            )

        if not self.trainer.is_world_process_zero():
            return {}
        return self._finish(strategy, run, plan, setup, train_data, val_data, precision, resume)

    def _plans(self, model, setup: Setup, train_data: Prepared, budget: int | None, card: int | None) -> list[Plan]:
        t, d = self.cfg.training, self.cfg.data
        lengths = [r["length"] for r in train_data.rows]
        self.shape = Shape.of(model.config)
        return plans_for(
            t,
            self.shape,
            setup,
            lengths,
            budget,
            card,
            max_length=max(d.max_length or 0, self.cfg.model.max_seq_length, max(lengths)),
        )

    def _fallback(self, plans: list[Plan], failed: Plan, step: int) -> Plan:
        left = fallbacks_after(plans, failed)
        if not left or self.cfg.training.num_processes > 1:
            # Under DDP the other ranks wait in an all-reduce for the one that failed: no way back.
            raise BondhuError(f"{OOM_ADVICE} ({failed.describe()}, step {step})")
        log.warning("out of memory at step %d with %s: falling back to %s", step, failed.describe(), left[0].describe())
        return left[0]

    def _attempt(self, strategy, model, tokenizer, train_data, val_data, plan: Plan, precision: str, resume: bool):
        """Ready the model for ``plan``, build the trainer and train; returns what the summary needs."""
        report_to, env = self._report_to()
        with _environ(env):
            return self._train_on_plan(
                strategy, model, tokenizer, train_data, val_data, plan, precision, resume, report_to
            )

    def _train_on_plan(
        self,
        strategy,
        model,
        tokenizer,
        train_data,
        val_data,
        plan: Plan,
        precision: str,
        resume: bool,
        report_to: list[str],
    ) -> dict:
        cfg = _planned(self.cfg, plan)
        model = strategy.prepare_for_training(model, cfg)
        from transformers import set_seed

        set_seed(cfg.training.seed)  # the LoRA initialization is part of the run's reproducibility
        model = strategy.add_adapters(model, cfg)

        from bondhu.train.callbacks import LargestStep, RichProgress, SaveOnInterrupt

        max_len = max(r["length"] for r in train_data.rows)
        progress, interrupt, largest = RichProgress(self.progress), SaveOnInterrupt(), LargestStep(model)
        self.trainer = trainer = compat.sft_trainer_class()(
            model=model,
            args=self._sft_config(
                cfg, precision, val_data is not None, max(max_len, cfg.model.max_seq_length), report_to
            ),
            train_dataset=train_data.to_dataset(),
            eval_dataset=val_data.to_dataset() if val_data and val_data.rows else None,
            processing_class=tokenizer,
            callbacks=[progress, interrupt, *self.extra_callbacks],
        )
        from transformers.trainer_callback import PrinterCallback

        trainer.remove_callback(PrinterCallback)  # our progress bar shows the same numbers
        if cfg.training.batching == "padded":
            trainer.data_collator = CausalPadded(trainer.data_collator)
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
            dump_config(resolved, self.run.config_file)
        if resume and trainer.args.world_size > 1 and not _cuda():
            from bondhu.train.distributed import allow_cpu_rank_locations

            allow_cpu_rank_locations()
        _reset_peak_memory()
        start = time.perf_counter()
        with strategy.training_context(padding_free):
            trainer.train(resume_from_checkpoint=True if resume else None)
        largest.remove()
        return {
            "model": model,
            "progress": progress,
            "interrupt": interrupt,
            "padding_free": padding_free,
            "seconds": time.perf_counter() - start,
            "largest_tokens": largest.tokens,
        }

    def _finish(self, strategy, run: dict, plan: Plan, setup: Setup, train_data, val_data, precision, resume) -> dict:
        cfg, trainer, progress = self.cfg, self.trainer, run["progress"]
        strategy.save(run["model"], trainer.processing_class, str(self.run.adapter))
        rows = rundir.write_loss_csv(trainer.state.log_history, self.run.loss_csv)
        rundir.plot_loss(rows, self.run.loss_png, f"{cfg.output.name} ({strategy.name})")
        train_losses = [r["loss"] for r in rows if r["loss"] != ""]
        seen = (
            estimate(self.shape, setup, plan.recompute, run["largest_tokens"]).total if run["largest_tokens"] else None
        )
        summary = {
            "name": cfg.output.name,
            "strategy": strategy.name,
            "strategy_reason": self.choice.reason,
            "model": cfg.model.name_or_path,
            "precision": precision,
            "batching": cfg.training.batching,
            "padding_free_on": run["padding_free"],
            "plan": plan.to_json(),
            "plan_fallbacks": self.fallbacks,
            "largest_step_tokens": run["largest_tokens"],
            "estimate_at_largest_step_gib": round(seen / 2**30, 3) if seen else None,
            "steps": trainer.state.global_step,
            "epochs": round(trainer.state.epoch or 0, 3),
            "seconds": round(run["seconds"], 2),
            "tokens_seen": int(trainer.state.num_input_tokens_seen),
            "tokens_per_second": round(progress.tokens / progress.seconds, 1) if progress.seconds else None,
            "tokens_per_second_after_warmup": _round(progress.steady_tokens_per_second),
            "warmup_steps_excluded": progress.warmup_steps,
            "train_conversations": len(train_data.rows),
            "validation_conversations": len(val_data.rows) if val_data else 0,
            "first_loss": train_losses[0] if train_losses else None,
            "last_loss": train_losses[-1] if train_losses else None,
            "interrupted": run["interrupt"].interrupted,
            "resumed": resume,
            "num_processes": trainer.args.world_size,
            "data_report": train_data.report.to_json(),
            **rundir.peak_memory_gib(),
        }
        rundir.write_summary(self.run.summary, summary)
        return summary


def memory_setup(strategy, cfg: BondhuConfig, precision: str) -> Setup:
    """What the memory estimate needs to know about how this strategy trains."""
    return Setup(
        quantized=strategy.quantized,
        dtype_bytes=4 if precision == "fp32" else 2,
        lora_r=cfg.lora.r,
        lora_targets=tuple(cfg.lora.target_modules),
        optimizer=cfg.training.optimizer,
        fused=strategy.fused,
        chunked_loss=strategy.fused or compat.has_chunked_loss(),
        checkpointing=strategy.checkpointing,
    )


@contextlib.contextmanager
def _environ(values: dict[str, str]):
    """Set environment variables for the duration, then put back what was there."""
    before = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for key, old in before.items():
            if old is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = old


def _planned(cfg: BondhuConfig, plan: Plan) -> BondhuConfig:
    """The config with the plan's choices in place of auto: what this attempt runs."""
    out = cfg.model_copy(deep=True)
    out.training.gradient_checkpointing = plan.checkpointing
    out.training.per_device_batch_size = plan.micro_batch
    out.training.gradient_accumulation_steps = plan.accumulation
    return out


def _out_of_memory(err: BaseException) -> bool:
    return type(err).__name__ == "OutOfMemoryError" or "out of memory" in str(err).lower()[:200]


def _free_memory() -> None:
    import gc

    import torch

    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()


def _reset_peak_memory() -> None:
    import torch

    if torch.cuda.is_available():
        torch.cuda.reset_peak_memory_stats()


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
