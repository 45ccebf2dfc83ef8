"""The memory-aware training plan: what to recompute, and how many conversations go into one step.

Gradient checkpointing trades compute for memory: without it the backward pass reads the
activations the forward pass saved; with it they are recomputed (plain, PEFT) or brought back from
CPU RAM (offloaded, Unsloth), which costs a third more FLOPs per token (6N instead of 4N for LoRA,
whose frozen base weights need no weight gradients). A card with room to spare should not pay it.

``make_plans`` estimates the peak memory of each candidate from the model's shape, the
quantization, the LoRA rank, the optimizer and the tokens of the largest step, and returns the
candidates that fit, fastest first. The estimate's constants come from measured peaks on the 8B
shape (docs/benchmarks.md, "The memory-aware training plan"); the benchmark checks them again.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

GIB = 2**30
LABELS = {"none": "no recompute", "offload": "offloaded checkpointing", "recompute": "checkpointing (recompute)"}
# Room left free on the card: the allocator rounds blocks up and fragments, and CUDA libraries keep
# workspaces outside the estimate.
MARGIN = 0.10
# With checkpointing, the backward pass holds one layer's activations, recomputed, and their
# gradients: about two layers' worth at the peak, fitted on the 8B shape's measured peaks.
CHECKPOINT_LAYERS = 2.0
OVERHEAD_BYTES = GIB // 4  # cuBLAS workspaces, the loss's chunks, the RNG state

_OPTIMIZER_STATE = {"8bit": 2, "adafactor": 1, "sgd": 4}  # bytes per trainable parameter


@dataclass(frozen=True)
class Shape:
    """The sizes that memory depends on, read from a Hugging Face model config."""

    layers: int
    hidden: int
    intermediate: int
    vocab: int
    kv_dim: int  # key/value heads × head size (grouped-query attention makes it smaller than hidden)
    tied: bool = False

    @classmethod
    def of(cls, config) -> "Shape":
        heads = config.num_attention_heads
        head_dim = getattr(config, "head_dim", None) or config.hidden_size // heads
        kv_heads = getattr(config, "num_key_value_heads", None) or heads
        return cls(
            config.num_hidden_layers,
            config.hidden_size,
            config.intermediate_size,
            config.vocab_size,
            kv_heads * head_dim,
            bool(getattr(config, "tie_word_embeddings", False)),
        )

    def linears(self) -> dict[str, tuple[int, int]]:
        """Each decoder layer's projections as (inputs, outputs)."""
        h, i, kv = self.hidden, self.intermediate, self.kv_dim
        return {
            "q_proj": (h, h),
            "k_proj": (h, kv),
            "v_proj": (h, kv),
            "o_proj": (h, h),
            "gate_proj": (h, i),
            "up_proj": (h, i),
            "down_proj": (i, h),
        }


@dataclass(frozen=True)
class Setup:
    """How the model is trained, as far as memory goes."""

    quantized: bool  # NF4 base weights (bitsandbytes or Unsloth)
    dtype_bytes: int  # 2 for bf16/fp16, 4 for fp32
    lora_r: int
    lora_targets: tuple[str, ...]
    optimizer: str
    fused: bool  # Unsloth's kernels: its RMSNorm, SwiGLU and loss save fewer tensors than eager modules
    chunked_loss: bool  # the loss never holds the full logits (Unsloth's, or TRL's Triton kernel)
    checkpointing: str = "recompute"  # what "checkpointing on" means for this strategy: offload or recompute


@dataclass(frozen=True)
class Estimate:
    weights: int
    adapters: int
    activations: int
    overhead: int = OVERHEAD_BYTES

    @property
    def total(self) -> int:
        return self.weights + self.adapters + self.activations + self.overhead


def weight_bytes(shape: Shape, setup: Setup) -> int:
    linear = shape.layers * sum(i * o for i, o in shape.linears().values())
    embeddings = shape.vocab * shape.hidden * (1 if shape.tied else 2)
    norms = (2 * shape.layers + 1) * shape.hidden
    if not setup.quantized:
        return (linear + embeddings + norms) * setup.dtype_bytes
    # NF4: half a byte per weight, one 8-bit scale per 64 weights and one fp32 scale per 256 of those.
    nf4 = linear * (0.5 + 1 / 64 + 4 / (64 * 256))
    return int(nf4) + (embeddings + norms) * setup.dtype_bytes


def lora_parameters(shape: Shape, r: int, targets: tuple[str, ...]) -> int:
    return shape.layers * sum(r * (i + o) for name, (i, o) in shape.linears().items() if name in targets)


def adapter_bytes(shape: Shape, setup: Setup) -> int:
    """fp32 adapter weights and gradients, plus the optimizer's state for them."""
    opt = setup.optimizer.lower()
    state = next((b for key, b in _OPTIMIZER_STATE.items() if key in opt), 8)  # AdamW: two fp32 moments
    return lora_parameters(shape, setup.lora_r, setup.lora_targets) * (4 + 4 + state)


def layer_activation_bytes(shape: Shape, setup: Setup) -> int:
    """What one decoder layer saves per token for its backward pass."""
    h, i, kv = shape.hidden, shape.intermediate, shape.kv_dim
    attention = (h + 2 * kv) + h  # q, k, v and the attention output (also o_proj's input)
    if setup.fused:
        norms = 2 * h  # Unsloth's RMSNorm keeps its input (and one scale per token)
        mlp = 3 * i  # gate and up outputs, and their SwiGLU product (down_proj's input)
        casts = 0
    else:
        norms = 2 * 2 * h  # eager RMSNorm keeps the fp32 copy of its input
        mlp = 4 * i  # SiLU's input and output, up's output, the product
        # PEFT keeps adapters in fp32 and casts each adapted projection's input to it, so every
        # target keeps its own fp32 copy of its input for the adapter's gradient.
        casts = 2 * sum(i_ for name, (i_, _) in shape.linears().items() if name in setup.lora_targets)
    return (norms + attention + mlp + casts) * setup.dtype_bytes


def activation_bytes(shape: Shape, setup: Setup, recompute: str, tokens: int) -> int:
    layer = layer_activation_bytes(shape, setup)
    if recompute == "none":
        per_token = shape.layers * layer
    else:
        per_token = int(CHECKPOINT_LAYERS * layer)
        if recompute == "recompute":  # each layer's input stays on the card; offloading moves it to CPU RAM
            per_token += shape.layers * shape.hidden * setup.dtype_bytes
    if not setup.chunked_loss:  # 16-bit logits, their fp32 copy and the log-softmax
        per_token += shape.vocab * (setup.dtype_bytes + 8)
    return per_token * tokens


def estimate(shape: Shape, setup: Setup, recompute: str, tokens: int) -> Estimate:
    """Peak memory of a training step on ``tokens`` tokens (in one micro-batch)."""
    return Estimate(
        weight_bytes(shape, setup), adapter_bytes(shape, setup), activation_bytes(shape, setup, recompute, tokens)
    )


def step_tokens(lengths: list[int], micro_batch: int, batching: str, max_length: int | None = None) -> int:
    """Tokens in the largest possible micro-batch: the longest conversations side by side."""
    longest = sorted(lengths, reverse=True)[:micro_batch]
    if batching == "padding_free":
        return sum(longest)
    if batching == "packing":
        return micro_batch * (max_length or max(lengths))
    return micro_batch * longest[0]  # padded to the longest in the batch


@dataclass(frozen=True)
class Plan:
    recompute: str  # none, offload or recompute
    micro_batch: int  # conversations per forward pass
    accumulation: int  # forward passes per optimizer step
    tokens: int  # the largest micro-batch the estimate is for
    estimate_bytes: int
    budget_bytes: int | None = None  # the memory training may use (None: not known)
    card_bytes: int | None = None  # the card's size (or its share for this process)
    reason: str = ""
    estimate_parts: dict = field(default_factory=dict)

    @property
    def checkpointing(self) -> bool:
        return self.recompute != "none"

    def describe(self) -> str:
        steps = f"{self.micro_batch} conversations/step"
        if self.accumulation > 1:
            steps = f"{self.micro_batch} conversations × {self.accumulation} accumulation steps"
        room = f" of {self.card_bytes / GIB:.0f} GiB" if self.card_bytes else ""
        return f"plan: {LABELS[self.recompute]}, {steps}, est. {self.estimate_bytes / GIB:.1f} GiB{room}"

    def to_json(self) -> dict:
        out = asdict(self)
        out.update(
            description=self.describe(),
            estimate_gib=round(self.estimate_bytes / GIB, 2),
            budget_gib=round(self.budget_bytes / GIB, 2) if self.budget_bytes else None,
            card_gib=round(self.card_bytes / GIB, 2) if self.card_bytes else None,
        )
        out["estimate_parts"] = {k: round(v / GIB, 3) for k, v in self.estimate_parts.items()}
        return out


def _candidates(setup: Setup, batch: int, mode: bool | str) -> list[tuple[str, int]]:
    """(recompute, micro-batch) in the order tried. No recompute is tried at the configured batch and
    at half of it (recomputing costs a third more FLOPs, halving a step of several thousand tokens
    costs far less); checkpointing at the configured batch and then at halves down to one."""
    ckpt = setup.checkpointing
    halves = [batch // 2**k for k in range(batch.bit_length()) if batch % 2**k == 0]
    if mode is True:
        return [(ckpt, b) for b in halves]
    if mode is False:
        return [("none", batch)]
    none = [("none", b) for b in halves[:2] if b == batch or b >= 2]
    return none + [(ckpt, b) for b in halves]


def make_plans(
    shape: Shape,
    setup: Setup,
    lengths: list[int],
    batching: str,
    batch: int,
    accumulation: int,
    mode: bool | str = "auto",
    budget: int | None = None,
    card: int | None = None,
    max_length: int | None = None,
) -> list[Plan]:
    """The plans to try, in order: the first is the one to start with, the rest are fallbacks.

    ``mode`` is training.gradient_checkpointing: True or False force the choice (and True may still
    fall back to smaller micro-batches), "auto" lets the budget decide. ``budget`` is the memory the
    card offers in bytes; None means unknown, and the fastest candidate is taken.
    """
    plans = []
    for recompute, micro in _candidates(setup, batch, mode):
        tokens = step_tokens(lengths, micro, batching, max_length)
        est = estimate(shape, setup, recompute, tokens)
        plans.append(
            Plan(
                recompute,
                micro,
                accumulation * batch // micro,
                tokens,
                est.total,
                budget,
                card,
                estimate_parts={
                    "weights": est.weights,
                    "adapters": est.adapters,
                    "activations": est.activations,
                    "overhead": est.overhead,
                },
            )
        )
    if mode is not True and mode is not False and budget is None:
        return [_with_reason(plans[0], "the card's memory is unknown: the fastest plan")] + plans[1:]
    forced = "" if mode == "auto" else f"training.gradient_checkpointing={str(mode).lower()}; "
    if mode is False:
        return [_with_reason(plans[0], forced.rstrip("; "))]
    room = budget * (1 - MARGIN) if budget is not None else float("inf")
    fitting = [p for p in plans if p.estimate_bytes <= room]
    if not fitting:  # nothing fits by the estimate: start from the leanest and let the card decide
        lean = min(plans, key=lambda p: p.estimate_bytes)
        return [_with_reason(lean, forced + "no plan fits the estimate; trying the leanest")]
    first = fitting[0]
    why = forced + "the fastest plan whose estimate fits with a 10% margin"
    return [_with_reason(first, why)] + plans[plans.index(first) + 1 :]


def plans_for(
    training,
    shape: Shape,
    setup: Setup,
    lengths: list[int],
    budget: int | None,
    card: int | None,
    max_length: int | None = None,
) -> list[Plan]:
    """``make_plans`` with a TrainingConfig's batching, batch, accumulation and checkpointing choice."""
    t = training
    return make_plans(
        shape,
        setup,
        lengths,
        t.batching,
        t.per_device_batch_size,
        t.gradient_accumulation_steps,
        t.gradient_checkpointing,
        budget,
        card,
        max_length=max_length,
    )


def _with_reason(plan: Plan, reason: str) -> Plan:
    return Plan(**{**plan.__dict__, "reason": reason})


def fallbacks_after(plans: list[Plan], failed: Plan) -> list[Plan]:
    """The plans still to try after ``failed`` ran out of memory, in order."""
    return plans[plans.index(failed) + 1 :]


def card_memory(budget_gib: float | None = None) -> tuple[int | None, int | None]:
    """(bytes training may use, the card's size): this process's GPU, or RAM on a CPU machine.

    The GPU's share honours ``torch.cuda.set_per_process_memory_fraction`` (a card shared on
    purpose, or the benchmark's T4 emulation). ``budget_gib`` (training.memory_budget_gib) wins."""
    import torch

    if torch.cuda.is_available():
        device = torch.cuda.current_device()
        free, total = torch.cuda.mem_get_info(device)
        fraction = getattr(torch.cuda, "get_per_process_memory_fraction", lambda d: 1.0)(device)
        card = int(fraction * total)
        room = min(free, card - torch.cuda.memory_reserved(device))
    else:
        import psutil

        vm = psutil.virtual_memory()
        room, card = vm.available, vm.total
    if budget_gib is not None:
        room = card = int(budget_gib * GIB)
    return room, card
