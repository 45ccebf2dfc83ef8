"""The fast inference path: merged 16-bit weights, a static KV cache and a compiled one-token step.

In the style of gpt-fast: at batch 1, decoding is bound by reading the weights once per
token (16 GB for an 8B model in bf16), so everything else must get out of the way:

1. LoRA is merged into the weights, so no adapter matmuls run per token.
2. Each layer's q, k and v projections become one matmul, and gate and up another: four
   matrix-vector products per layer instead of seven. The small ones (k and v, 8 MB each in
   8B) left part of the memory bandwidth unused: fused, bf16 decoding ran 12% faster on an
   H200 and compiled in 34 s instead of 44 s (docs/benchmarks.md).
3. A static, preallocated KV cache gives every step the same shapes and addresses.
4. The one-token step is compiled with CUDA graphs, so an 8B step is one graph launch
   instead of about a thousand kernel launches.
5. Grouped-query attention for that one token reads each key/value head once. transformers'
   SDPA path, given the static cache's mask, first copies the 8 key/value heads out to 32
   over the whole cache: on the H100 profile that copy and its attention kernel took about
   2 ms of an 8.4 ms step (docs/benchmarks.md).
6. Our own decode loop replaces ``model.generate``. It uses the logits processors of
   ``transformers`` (the same classes ``generate`` uses, so greedy and seeded sampling pick
   the same tokens), and it queues the next step before it waits to read the current token,
   so the host's per-token work (about 1 ms of guards and graph launch on the H100) runs
   while the GPU computes instead of between steps.
7. Optionally (``chat.fast_quantization: int8``), the merged weights are stored as int8 with
   one scale per output channel, so a token reads half the bytes. Every weight is rounded, so
   replies are no longer exactly the trained model's; the default keeps 16-bit weights.

It needs 16-bit room for the whole model while merging (about 16 GB for 8B): on a 16 GB T4
keep the 4-bit ``hf`` or ``unsloth`` backends. One decoder serves one request at a time
(callers hold ``LoadedModel.lock``).
"""

from __future__ import annotations

import logging
import threading
from pathlib import Path
from typing import Iterator, Sequence

from bondhu.config import BondhuConfig, ChatConfig, GenerationSettings
from bondhu.errors import BondhuError
from bondhu.inference.loaded import LoadedModel
from bondhu.run import RunDir

log = logging.getLogger(__name__)
# "triton.cudagraphs" is what mode="reduce-overhead" turns on; torch.compile takes a mode or
# options, not both.
COMPILE_OPTIONS = {"triton.cudagraphs": True}
# int8 weights need inductor to tune its fused dequantize-and-multiply kernels: untuned, they
# decoded 15 tokens/s on an H200, tuned 185 (docs/benchmarks.md). For bf16, whose matmuls are
# cuBLAS's, tuning gained 1% and doubled the compile time, so it is off there.
INT8_COMPILE_OPTIONS = {**COMPILE_OPTIONS, "coordinate_descent_tuning": True}
_CACHE_STEP = 1024  # a cache that must grow grows to a multiple of this, so regrowth (a recompile) is rare
ATTENTION = "bondhu_gqa_decode"


def gqa_decode_attention(
    module, query, key, value, attention_mask, dropout: float = 0.0, scaling: float | None = None, **kwargs
):
    """Attention for one new token that leaves grouped key/value heads as they are; any other
    shape (the prompt) goes to transformers' SDPA attention."""
    import torch
    from transformers.integrations.sdpa_attention import sdpa_attention_forward

    if query.shape[2] != 1:
        return sdpa_attention_forward(
            module, query, key, value, attention_mask, dropout=dropout, scaling=scaling, **kwargs
        )
    batch, heads, _, dim = query.shape
    groups = key.shape[1]
    # The query heads that share a key/value head become rows of one matmul against it.
    q = query.view(batch, groups, heads // groups, dim)
    scores = torch.matmul(q, key.transpose(2, 3)).float() * (scaling if scaling is not None else dim**-0.5)
    if attention_mask is not None:
        mask = attention_mask.view(batch, 1, 1, -1)
        scores = scores.masked_fill(~mask, float("-inf")) if mask.dtype == torch.bool else scores + mask
    out = torch.matmul(scores.softmax(-1).to(value.dtype), value)
    return out.view(batch, 1, heads, dim), None


def _register_attention() -> None:
    """Add the decode attention to transformers' registry under Bondhu's own name. transformers
    looks attention up by name, so the registry is the only way in; the name is new, so no other
    model's attention changes, and registering twice replaces the entry with the same function."""
    from transformers import AttentionInterface
    from transformers.masking_utils import AttentionMaskInterface, sdpa_mask

    AttentionInterface.register(ATTENTION, gqa_decode_attention)
    AttentionMaskInterface.register(ATTENTION, sdpa_mask)


def logits_processors(settings: GenerationSettings):
    """The processors ``model.generate`` would build for ``settings``, in its order."""
    from transformers import (
        LogitsProcessorList,
        RepetitionPenaltyLogitsProcessor,
        TemperatureLogitsWarper,
        TopKLogitsWarper,
        TopPLogitsWarper,
    )

    chain = LogitsProcessorList()
    if settings.repetition_penalty != 1.0:
        chain.append(RepetitionPenaltyLogitsProcessor(settings.repetition_penalty))
    if settings.samples:
        if settings.temperature != 1.0:
            chain.append(TemperatureLogitsWarper(settings.temperature))
        if settings.top_k:
            chain.append(TopKLogitsWarper(settings.top_k))
        if settings.top_p < 1.0:
            chain.append(TopPLogitsWarper(settings.top_p))
    return chain


class FastDecoder:
    """Batch-1 decoding from a static KV cache, the step compiled with CUDA graphs when ``compiled``."""

    def __init__(self, model, capacity: int, compiled: bool, compile_options: dict | None = None):
        import torch

        _register_attention()
        model.set_attn_implementation(ATTENTION)
        self.model, self.compiled = model, compiled
        self.compile_options = dict(compile_options or COMPILE_OPTIONS)
        self.device = next(model.parameters()).device
        self._host = torch.empty(1, dtype=torch.long, pin_memory=self.device.type == "cuda")
        self._make_cache(capacity)

    def _make_cache(self, capacity: int) -> None:
        import torch
        from transformers import StaticCache

        self.capacity = capacity
        self.cache = StaticCache(config=self.model.config, max_cache_len=capacity)
        # A new cache means new tensor addresses, so a new graph.
        self._step = torch.compile(self.forward, options=self.compile_options) if self.compiled else self.forward

    def forward(self, ids, positions):
        """One uncompiled step through the static cache: the last position's logits (for profiling)."""
        out = self.model(
            input_ids=ids,
            position_ids=positions.unsqueeze(0),
            cache_position=positions,
            past_key_values=self.cache,
            use_cache=True,
            logits_to_keep=1,
        )
        return out.logits[:, -1]

    def prefill(self, prompt: Sequence[int], limit: int):
        """Reset the cache, run the prompt through it (eager: prompt shapes vary) and return
        (its last logits in float32, a [1, limit] buffer holding the prompt, all positions)."""
        import torch

        if not prompt:
            raise ValueError("the prompt is empty")
        if limit > self.capacity:
            grown = -(-limit // _CACHE_STEP) * _CACHE_STEP
            log.info(
                "fast path: growing the KV cache from %d to %d tokens (a one-time recompile)", self.capacity, grown
            )
            self._make_cache(grown)
        self.cache.reset()
        seq = torch.zeros((1, limit), dtype=torch.long, device=self.device)
        seq[0, : len(prompt)] = torch.tensor(prompt, dtype=torch.long)
        positions = torch.arange(limit, device=self.device)
        return self.forward(seq[:, : len(prompt)], positions[: len(prompt)]).float(), seq, positions

    def _decode(self, token, pos: int, positions):
        """Queue the step for ``token`` (a 1-element tensor) at ``pos``."""
        import torch

        if self.compiled:
            # The previous step's outputs are consumed: let the graph reuse their memory.
            torch.compiler.cudagraph_mark_step_begin()
        # A fresh [1, 1] view: one stride for every call, so the compiled step is never recompiled.
        return self._step(token.view(1, 1), positions[pos : pos + 1]).float()

    def _read_later(self, token):
        """Start copying ``token`` to the host; the returned function waits for it and gives the int."""
        import torch

        if self.device.type != "cuda":
            return lambda: int(token)
        self._host.copy_(token, non_blocking=True)
        copied = torch.cuda.Event()
        copied.record()
        return lambda: (copied.synchronize(), int(self._host))[1]

    def tokens(
        self,
        prompt: Sequence[int],
        settings: GenerationSettings,
        stop_ids: Sequence[int] = (),
        stop: threading.Event | None = None,
    ) -> Iterator[int]:
        """Yield new token ids for ``prompt``: up to ``settings.max_new_tokens``, ending before a stop id
        or once ``stop`` is set. Seeded like ``generate`` (the caller seeds)."""
        import torch

        n, processors, sample = len(prompt), logits_processors(settings), settings.samples
        limit = n + settings.max_new_tokens
        logits, seq, positions = self.prefill(prompt, limit)
        for pos in range(n, limit):
            scores = processors(seq[:, :pos], logits)
            token = torch.multinomial(scores.softmax(-1), 1)[:, 0] if sample else scores.argmax(-1)
            seq[:, pos] = token
            read = self._read_later(token)
            if pos + 1 < limit:
                # Queued before the host waits for ``token``: the GPU runs on while the host
                # checks the token and hands it out. After a stop token this step is wasted.
                logits = self._decode(token, pos, positions)
            value = read()
            if value in stop_ids:
                return
            yield value
            if stop is not None and stop.is_set():
                return

    def teacher_forced_logits(self, prompt: Sequence[int], continuation: Sequence[int]):
        """Float32 logits [len(continuation) + 1, vocab] of the decode path fed ``continuation``
        (the logits after the prompt, then after each forced token). Public on purpose: it is how a
        user checks what int8 weights or a new compile setting changed against the reference path
        (docs/serving.md), as the tests and the GPU benchmark do."""
        import torch

        n = len(prompt)
        logits, seq, positions = self.prefill(prompt, n + len(continuation) + 1)
        seq[0, n : n + len(continuation)] = torch.tensor(list(continuation), dtype=torch.long)
        rows = [logits.clone()]
        for pos in range(n, n + len(continuation)):
            rows.append(self._decode(seq[0, pos : pos + 1], pos, positions).clone())
        return torch.cat(rows)

    def warm_up(self) -> None:
        """Compile and record the step now (tens of seconds for 8B) rather than in the first reply."""
        # cudagraph trees run a step eagerly once, record it on the next call, then replay it.
        for _ in self.tokens(
            [0, 1, 2, 3], GenerationSettings(max_new_tokens=4, do_sample=False, repetition_penalty=1.0)
        ):
            pass


def _fused_attention_forward(
    self, hidden_states, position_embeddings=None, attention_mask=None, past_key_values=None, **kwargs
):
    """transformers' LlamaAttention.forward, with q, k and v from one matmul."""
    from transformers.modeling_utils import ALL_ATTENTION_FUNCTIONS
    from transformers.models.llama.modeling_llama import apply_rotary_pos_emb, eager_attention_forward

    batch_seq = hidden_states.shape[:-1]
    shape = (*batch_seq, -1, self.head_dim)
    q, k, v = (t.view(shape).transpose(1, 2) for t in self.qkv_proj(hidden_states).split(self.qkv_sizes, dim=-1))
    q, k = apply_rotary_pos_emb(q, k, *position_embeddings)
    if past_key_values is not None:
        k, v = past_key_values.update(k, v, self.layer_idx)
    attention = ALL_ATTENTION_FUNCTIONS.get_interface(self.config._attn_implementation, eager_attention_forward)
    out, weights = attention(self, q, k, v, attention_mask, dropout=0.0, scaling=self.scaling, **kwargs)
    return self.o_proj(out.reshape(*batch_seq, -1).contiguous()), weights


def _fused_mlp_forward(self, x):
    """transformers' LlamaMLP.forward, with gate and up from one matmul."""
    gate, up = self.gate_up_proj(x).chunk(2, dim=-1)
    return self.down_proj(self.act_fn(gate) * up)


def _fuse(parts):
    """One linear layer whose output is the ``parts``' outputs side by side."""
    import torch

    first = parts[0]
    # On the meta device: the random initialisation is skipped, the real weights are assigned.
    fused = torch.nn.Linear(
        first.in_features, sum(p.out_features for p in parts), bias=first.bias is not None, device="meta"
    )
    fused.weight = torch.nn.Parameter(torch.cat([p.weight.detach() for p in parts]), requires_grad=False)
    if first.bias is not None:
        fused.bias = torch.nn.Parameter(torch.cat([p.bias.detach() for p in parts]), requires_grad=False)
    return fused


def fuse_projections(model) -> bool:
    """Each layer's q, k and v projections into one linear layer, and gate and up into another.

    At batch 1 each matmul reads its weight once; k and v are small (8 MB each in 8B), and a
    small matrix-vector product leaves part of the memory bandwidth unused. Fused, a layer runs
    four matmuls instead of seven. Llama's modules only; any other model is left as it is."""
    from types import MethodType

    from transformers.models.llama.modeling_llama import LlamaAttention, LlamaMLP

    layers = getattr(getattr(model, "model", None), "layers", [])
    if not layers or not all(
        isinstance(layer.self_attn, LlamaAttention) and isinstance(layer.mlp, LlamaMLP) for layer in layers
    ):
        log.info("fast backend: not a Llama model, projections left unfused")
        return False
    for layer in layers:
        attn, mlp = layer.self_attn, layer.mlp
        attn.qkv_proj = _fuse([attn.q_proj, attn.k_proj, attn.v_proj])
        attn.qkv_sizes = [attn.q_proj.out_features, attn.k_proj.out_features, attn.v_proj.out_features]
        del attn.q_proj, attn.k_proj, attn.v_proj
        attn.forward = MethodType(_fused_attention_forward, attn)
        mlp.gate_up_proj = _fuse([mlp.gate_proj, mlp.up_proj])
        del mlp.gate_proj, mlp.up_proj
        mlp.forward = MethodType(_fused_mlp_forward, mlp)
    return True


def quantize_int8(model) -> None:
    """Every linear layer's weight to int8, one scale per output channel (torchao weight-only).

    Compiled (with INT8_COMPILE_OPTIONS), the one-token step then reads int8 weights and scales
    them inside the matmul kernel, so a token reads about half the bytes of bf16."""
    try:
        from torchao.quantization import Int8WeightOnlyConfig, quantize_
    except ImportError:
        raise BondhuError(
            "chat.fast_quantization=int8 needs torchao: pip install torchao (or set chat.fast_quantization=none)"
        ) from None
    # torchao would otherwise set inductor's tuning flags for the whole process; the decoder
    # passes them to its own compile instead.
    quantize_(model, Int8WeightOnlyConfig(set_inductor_config=False))
    log.info("fast backend: linear weights quantized to int8 (per output channel)")


def load_fast(run: str | Path, cfg: BondhuConfig | None = None, dtype: str = "auto") -> LoadedModel:
    """Load RUN merged, with a FastDecoder (compiled and warmed up on CUDA, eager on the CPU)."""
    import torch

    from bondhu.inference.merge import merged_model

    on_gpu = torch.cuda.is_available()
    model, tokenizer, cfg = merged_model(run, dtype, device_map={"": 0} if on_gpu else None, cfg=cfg)
    model.config.use_cache = True
    fuse_projections(model)
    return LoadedModel(
        model,
        tokenizer,
        cfg,
        cfg.model.name_or_path,
        str(RunDir(run).adapter),
        "fast",
        merged=True,
        decoder=decoder_for(model, cfg.chat, compiled=on_gpu),
    )


def decoder_for(model, chat: ChatConfig, compiled: bool) -> FastDecoder:
    """A FastDecoder for merged ``model`` as ``chat`` asks (int8 quantizes the model in place),
    compiled and warmed up when ``compiled``."""
    import torch

    int8 = chat.fast_quantization == "int8"
    if int8:
        quantize_int8(model)
    decoder = FastDecoder(
        model,
        capacity=chat.context_tokens,
        compiled=compiled,
        compile_options=INT8_COMPILE_OPTIONS if int8 else COMPILE_OPTIONS,
    )
    if compiled:
        with torch.inference_mode():
            decoder.warm_up()
    return decoder
