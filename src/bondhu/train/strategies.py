"""Training back ends behind one small protocol, chosen by name or by ``auto``.

Each strategy is self-contained: it loads the model its own way, attaches LoRA, readies
the model for training or inference, and saves the adapter. Trade-offs:

- ``unsloth``: 4-bit NF4 through Unsloth's FastLanguageModel, its fused kernels and its
  offloaded gradient checkpointing. Fastest and leanest; needs a CUDA GPU.
- ``qlora``: transformers + bitsandbytes NF4 with double quantization, then PEFT LoRA.
  Portable (bitsandbytes 0.50 runs NF4 on the CPU too), about 4x slower than Unsloth.
- ``lora``: PEFT LoRA over unquantized bf16/fp16/fp32 weights. Needs 16-bit room for the
  whole model (about 16 GB for 8B), but no quantization library at all.
"""

from __future__ import annotations

import contextlib
import importlib.util
import logging
from dataclasses import dataclass
from typing import ContextManager, Protocol

from bondhu.config import BondhuConfig
from bondhu.errors import BondhuError
from bondhu.train.loading import load_causal_lm, load_tokenizer, model_not_found, resolve_model_path

log = logging.getLogger(__name__)


class TrainingStrategy(Protocol):
    """What LLAMAFineTuner needs from a back end."""

    name: str
    quantized: bool  # NF4 base weights
    fused: bool  # fused kernels that save fewer activations (the memory plan reads these three)
    checkpointing: str  # what checkpointing means here: "offload" or "recompute"

    def load(self, cfg: BondhuConfig) -> tuple[object, object]: ...
    def prepare_for_training(self, model, cfg: BondhuConfig): ...
    def add_adapters(self, model, cfg: BondhuConfig): ...
    def for_inference(self, model): ...
    def save(self, model, tokenizer, out_dir: str) -> None: ...
    def training_context(self, padding_free: bool) -> ContextManager: ...


def torch_dtype(precision: str):
    import torch

    return {"bf16": torch.bfloat16, "fp16": torch.float16, "fp32": torch.float32}[precision]


def resolve_precision(cfg: BondhuConfig) -> str:
    """The configured precision, or with ``auto`` the hardware's (bf16, fp16 on a T4, fp32 on CPU)."""
    import torch

    wanted = cfg.training.precision
    if wanted != "auto":
        if wanted in ("bf16", "fp16") and not torch.cuda.is_available():
            raise BondhuError(f"training.precision={wanted} needs a CUDA GPU; use auto or fp32 on CPU")
        return wanted
    return hardware_precision()


def dtype_from_name(name: str):
    """torch dtype for "auto" (the hardware's), "bfloat16", "float16" or "float32"."""
    names = {"bfloat16": "bf16", "float16": "fp16", "float32": "fp32"}
    if name != "auto" and name not in names:
        raise BondhuError(f"dtype {name!r}: expected auto, bfloat16, float16 or float32")
    return torch_dtype(hardware_precision() if name == "auto" else names[name])


def hardware_precision() -> str:
    """What this machine computes best in: bf16 on Ampere and newer, fp16 on older GPUs, fp32 on CPU."""
    import torch

    if not torch.cuda.is_available():
        return "fp32"
    return "bf16" if torch.cuda.is_bf16_supported() else "fp16"


def peft_lora_config(cfg: BondhuConfig):
    from peft import LoraConfig

    return LoraConfig(
        r=cfg.lora.r,
        lora_alpha=cfg.lora.alpha,
        lora_dropout=cfg.lora.dropout,
        target_modules=list(cfg.lora.target_modules),
        use_rslora=cfg.lora.use_rslora,
        bias="none",
        task_type="CAUSAL_LM",
    )


def _device_map():
    """One whole model per process on its own GPU; none under FSDP, which places and shards it."""
    import torch
    from transformers.integrations.fsdp import is_fsdp_enabled

    if is_fsdp_enabled():
        return None
    if torch.cuda.is_available():
        from accelerate import PartialState

        return {"": PartialState().process_index % torch.cuda.device_count()}
    return {"": "cpu"}


class _PeftStrategy:
    """Shared by qlora and lora: PEFT adapters on a transformers model."""

    name = "peft"
    quantized = False
    fused = False  # eager transformers modules (memory: bondhu.train.plan)
    checkpointing = "recompute"  # PEFT's non-reentrant checkpointing recomputes each layer

    def load(self, cfg: BondhuConfig):
        path = resolve_model_path(cfg.model)
        tokenizer = load_tokenizer(cfg.model, path)
        model = load_causal_lm(cfg.model, path, device_map=_device_map(), **self._load_kwargs(cfg))
        model.config.pad_token_id = tokenizer.pad_token_id
        return model, tokenizer

    def _load_kwargs(self, cfg: BondhuConfig) -> dict:
        return {"dtype": torch_dtype(resolve_precision(cfg))}

    def prepare_for_training(self, model, cfg: BondhuConfig):
        if cfg.training.gradient_checkpointing:
            model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
            # Inputs must require grad for checkpointed blocks to backprop into LoRA weights.
            model.enable_input_require_grads()
        model.config.use_cache = False
        return model

    def add_adapters(self, model, cfg: BondhuConfig):
        from peft import get_peft_model

        return get_peft_model(model, peft_lora_config(cfg))

    def for_inference(self, model):
        model.eval()
        model.config.use_cache = True
        return model

    def save(self, model, tokenizer, out_dir: str) -> None:
        model.save_pretrained(out_dir, safe_serialization=True)
        tokenizer.save_pretrained(out_dir)

    def training_context(self, padding_free: bool) -> ContextManager:
        return contextlib.nullcontext()


class LoRAStrategy(_PeftStrategy):
    """PEFT LoRA over unquantized weights."""

    name = "lora"


class QLoRAStrategy(_PeftStrategy):
    """bitsandbytes NF4 (double quantization) + PEFT LoRA; runs on GPU and on CPU."""

    name = "qlora"
    quantized = True

    def _load_kwargs(self, cfg: BondhuConfig) -> dict:
        from transformers import BitsAndBytesConfig

        compute = cfg.training.compute_dtype
        dtype = torch_dtype(resolve_precision(cfg)) if compute == "auto" else dtype_from_name(compute)
        quant = BitsAndBytesConfig(
            load_in_4bit=True,
            bnb_4bit_quant_type="nf4",
            bnb_4bit_use_double_quant=True,
            bnb_4bit_compute_dtype=dtype,
            bnb_4bit_quant_storage=dtype,
        )
        return {"quantization_config": quant, "dtype": dtype}

    def prepare_for_training(self, model, cfg: BondhuConfig):
        from peft import prepare_model_for_kbit_training

        model = prepare_model_for_kbit_training(
            model,
            use_gradient_checkpointing=cfg.training.gradient_checkpointing,
            gradient_checkpointing_kwargs={"use_reentrant": False},
        )
        model.config.use_cache = False
        return model


class UnslothStrategy:
    """Unsloth FastLanguageModel in 4 bits, with its offloaded gradient checkpointing."""

    name = "unsloth"
    quantized = True
    fused = True  # Unsloth's RMSNorm, SwiGLU and chunked loss kernels
    checkpointing = "offload"  # Unsloth's checkpointing moves each layer's input to CPU RAM

    def load(self, cfg: BondhuConfig):
        from unsloth import FastLanguageModel  # imported here: Unsloth needs a GPU to import

        path = resolve_model_path(cfg.model)
        precision = resolve_precision(cfg)
        try:
            model, tokenizer = FastLanguageModel.from_pretrained(
                model_name=path,
                max_seq_length=cfg.model.max_seq_length,
                dtype=torch_dtype(precision),
                load_in_4bit=True,
                revision=cfg.model.revision,
            )
        except OSError as err:
            raise model_not_found(path, err) from None
        from bondhu.data.processor import ensure_pad_token

        ensure_pad_token(tokenizer, cfg.model.pad_token)
        return model, tokenizer

    def prepare_for_training(self, model, cfg: BondhuConfig):
        return model  # FastLanguageModel.get_peft_model does the preparation

    def add_adapters(self, model, cfg: BondhuConfig):
        from unsloth import FastLanguageModel

        gc = "unsloth" if cfg.training.gradient_checkpointing else False
        return FastLanguageModel.get_peft_model(
            model,
            r=cfg.lora.r,
            lora_alpha=cfg.lora.alpha,
            lora_dropout=cfg.lora.dropout,
            target_modules=list(cfg.lora.target_modules),
            bias="none",
            use_rslora=cfg.lora.use_rslora,
            use_gradient_checkpointing=gc,
            random_state=cfg.training.seed,
            max_seq_length=cfg.model.max_seq_length,
        )

    def for_inference(self, model):
        from unsloth import FastLanguageModel

        FastLanguageModel.for_inference(model)
        return model

    def save(self, model, tokenizer, out_dir: str) -> None:
        model.save_pretrained(out_dir, safe_serialization=True)
        tokenizer.save_pretrained(out_dir)

    def training_context(self, padding_free: bool) -> ContextManager:
        """Packed rows train with SDPA's cuDNN backend off (see ``without_cudnn_attention``)."""
        return without_cudnn_attention() if padding_free else contextlib.nullcontext()


@contextlib.contextmanager
def without_cudnn_attention():
    """Turn off SDPA's cuDNN backend for the duration, then restore it.

    Why: where torch has no GQA-capable varlen attention (before 2.12), Unsloth runs a packed row
    through SDPA one conversation at a time. On an H100 torch then picks cuDNN attention, around
    which Unsloth pads every conversation to a multiple of 128 tokens and copies the 8 key/value
    heads out to 32; flash attention takes grouped heads as they are. Measured on an H100 with the
    8B shape, one run after the other on one card: 8,464 -> 8,574 tokens/s (+1.3%), same memory
    (docs/benchmarks.md). Where torch would not pick cuDNN anyway (T4, A100), this changes nothing.
    """
    import torch

    was = torch.backends.cuda.cudnn_sdp_enabled()
    torch.backends.cuda.enable_cudnn_sdp(False)
    try:
        yield
    finally:
        torch.backends.cuda.enable_cudnn_sdp(was)


STRATEGIES = {"unsloth": UnslothStrategy, "qlora": QLoRAStrategy, "lora": LoRAStrategy}


@dataclass
class Choice:
    strategy: TrainingStrategy
    reason: str


def unsloth_usable() -> tuple[bool, str]:
    import torch

    if not torch.cuda.is_available():
        return False, "no CUDA GPU"
    if importlib.util.find_spec("unsloth") is None:
        return False, "unsloth is not installed (pip install 'bondhu[gpu]')"
    try:
        import unsloth  # noqa: F401
    except Exception as err:  # Unsloth raises many kinds on an unsupported setup
        return False, f"unsloth failed to import ({type(err).__name__}: {str(err)[:120]})"
    return True, "a CUDA GPU is present and unsloth imports"


def bitsandbytes_usable() -> tuple[bool, str]:
    if importlib.util.find_spec("bitsandbytes") is None:
        return False, "bitsandbytes is not installed"
    try:
        import bitsandbytes  # noqa: F401
    except Exception as err:
        return False, f"bitsandbytes failed to import ({type(err).__name__})"
    return True, "bitsandbytes imports, so NF4 works here"


def select_strategy(name: str, num_processes: int = 1) -> Choice:
    """Return the strategy for ``name``; ``auto`` tries unsloth, then qlora, then lora, and says why."""
    if name != "auto":
        if name == "unsloth":
            ok, why = unsloth_usable()
            if not ok:
                raise BondhuError(f"training.strategy=unsloth cannot run here: {why}; use auto, qlora or lora")
        if name == "qlora":
            ok, why = bitsandbytes_usable()
            if not ok:
                raise BondhuError(f"training.strategy=qlora cannot run here: {why}; use lora")
        return Choice(STRATEGIES[name](), f"chosen by name in the config (training.strategy={name})")
    reasons = []
    ok, why = unsloth_usable()
    if ok:
        # Unsloth's loader places one whole model per rank under accelerate/torchrun (DDP).
        return Choice(
            UnslothStrategy(), f"auto: {why}" + (f" (DDP on {num_processes} processes)" if num_processes > 1 else "")
        )
    reasons.append(f"unsloth skipped: {why}")
    ok, why = bitsandbytes_usable()
    if ok:
        return Choice(QLoRAStrategy(), "auto: " + "; ".join(reasons + [f"qlora: {why}"]))
    reasons.append(f"qlora skipped: {why}")
    return Choice(LoRAStrategy(), "auto: " + "; ".join(reasons + ["lora: needs no quantization library"]))
