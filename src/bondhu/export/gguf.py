"""A merged Llama model as an f16 GGUF file, written with the ``gguf`` package's GGUFWriter.

llama.cpp's convert_hf_to_gguf.py is not on PyPI, so the Llama mapping is written here from
gguf's own tables (MODEL_ARCH.LLAMA, TensorNameMap), producing what that converter produces for
a Llama: the same hyperparameter keys, tensor names and types, the Q/K row permutation, and the
Llama 3 rope factors as a ``rope_freqs`` tensor.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

from bondhu.errors import BondhuError
from bondhu.export.vocab import add_vocab


def require_gguf():
    """The ``gguf`` package, or a one-line error that says how to install it."""
    try:
        import gguf
    except ImportError:
        raise BondhuError("GGUF export needs the gguf package: pip install 'bondhu[export]'") from None
    return gguf


@dataclass
class GGUFMeta:
    """What the file says about itself besides the weights: names, prompt and sampling defaults."""

    name: str
    system_prompt: str
    chat_template: str
    sampling: dict[str, float] = field(default_factory=dict)  # temp, top_p, top_k, penalty_repeat


def write_f16_gguf(model, tokenizer, path: Path, meta: GGUFMeta) -> None:
    """Write ``model`` (a LlamaForCausalLM) and its tokenizer to ``path`` as an f16 GGUF.

    Tensors are converted one at a time while the file is written, so memory holds the model
    plus one tensor, not a second copy of the model.
    """
    gguf = require_gguf()
    config = model.config
    if config.model_type != "llama":
        raise BondhuError(f"GGUF export writes Llama models; this one is {config.model_type!r}")
    writer = gguf.GGUFWriter(path, gguf.MODEL_ARCH_NAMES[gguf.MODEL_ARCH.LLAMA])
    try:
        _add_general(writer, gguf, meta)
        _add_hparams(writer, gguf, config)
        vocab_size = model.get_input_embeddings().weight.shape[0]
        add_vocab(writer, gguf, tokenizer, vocab_size, meta.chat_template)
        plan = list(_tensor_plan(model, gguf))
        for name, shape, dtype, _ in plan:
            writer.add_tensor_info(name, shape, dtype, math.prod(shape) * dtype.itemsize)
        writer.write_header_to_file()
        writer.write_kv_data_to_file()
        writer.write_ti_data_to_file()
        for _, _, dtype, source in plan:
            writer.write_tensor_data(source().astype(dtype, copy=False))
    finally:
        writer.close()


def _add_general(writer, gguf, meta: GGUFMeta) -> None:
    writer.add_type(gguf.GGUFType.MODEL)
    writer.add_name(meta.name)
    writer.add_languages(["bn"])
    writer.add_quantization_version(gguf.GGML_QUANT_VERSION)
    writer.add_file_type(gguf.LlamaFileType.MOSTLY_F16)
    # llama.cpp's own programs (llama-server, llama-cli) start from these when a request sets none.
    for key, value in meta.sampling.items():
        getattr(writer, f"add_sampling_{key}")(value)


def _add_hparams(writer, gguf, config) -> None:
    heads = config.num_attention_heads
    head_dim = _head_dim(config)
    writer.add_context_length(config.max_position_embeddings)
    writer.add_embedding_length(config.hidden_size)
    writer.add_block_count(config.num_hidden_layers)
    writer.add_feed_forward_length(config.intermediate_size)
    writer.add_head_count(heads)
    writer.add_head_count_kv(config.num_key_value_heads or heads)
    writer.add_layer_norm_rms_eps(config.rms_norm_eps)
    writer.add_rope_dimension_count(head_dim)
    if head_dim != config.hidden_size // heads:
        writer.add_key_length(head_dim)
        writer.add_value_length(head_dim)
    writer.add_vocab_size(config.vocab_size)
    rope = rope_parameters(config)
    writer.add_rope_freq_base(rope["rope_theta"])
    kind = rope.get("rope_type", "default")
    if kind == "linear":
        writer.add_rope_scaling_type(gguf.RopeScalingType.LINEAR)
        writer.add_rope_scaling_factor(rope["factor"])
    elif kind not in ("default", "llama3"):  # llama3's factors travel as the rope_freqs tensor
        raise BondhuError(f"GGUF export: rope type {kind!r} is not supported (default, linear and llama3 are)")


def _head_dim(config) -> int:
    return getattr(config, "head_dim", None) or config.hidden_size // config.num_attention_heads


def rope_parameters(config) -> dict:
    """The model's rope settings as one dict (rope_theta, rope_type and the scaling keys), from
    transformers 5's ``rope_parameters`` or the older ``rope_theta`` plus ``rope_scaling``."""
    params = dict(getattr(config, "rope_parameters", None) or {})
    if not params:
        params = {"rope_theta": getattr(config, "rope_theta", 10000.0), **(getattr(config, "rope_scaling", None) or {})}
    if "type" in params and "rope_type" not in params:
        params["rope_type"] = params["type"]
    params.setdefault("rope_theta", 10000.0)
    return params


def llama3_rope_factors(config) -> list[float] | None:
    """Llama 3.1's per-frequency rope divisors, computed as llama.cpp's converter does (in float32,
    as transformers does); None unless the rope type is llama3. llama.cpp divides each rotary
    frequency by its factor, which is what transformers' llama3 rope does to the inverse frequencies."""
    import torch

    rope = rope_parameters(config)
    if rope.get("rope_type") != "llama3":
        return None
    dim = _head_dim(config)
    freqs = 1.0 / (rope["rope_theta"] ** (torch.arange(0, dim, 2, dtype=torch.float32) / dim))
    factor = rope.get("factor", 8.0)
    low, high = rope.get("low_freq_factor", 1.0), rope.get("high_freq_factor", 4.0)
    old_context = rope.get("original_max_position_embeddings", 8192)
    factors = []
    for freq in freqs.tolist():
        wavelen = 2 * math.pi / freq
        if wavelen < old_context / high:
            factors.append(1.0)
        elif wavelen > old_context / low:
            factors.append(factor)
        else:
            smooth = (old_context / wavelen - low) / (high - low)
            factors.append(1 / ((1 - smooth) / factor + smooth))
    return factors


def permute_qk(weight, n_head: int, n_head_kv: int | None = None):
    """Reorder Q or K rows from transformers' rotate-half layout to the interleaved pairs that
    llama.cpp's rope expects (the converter's ``LlamaModel.permute``)."""
    if n_head_kv is not None and n_head != n_head_kv:
        n_head = n_head_kv
    shape = weight.shape
    return weight.reshape(n_head, 2, shape[0] // n_head // 2, *shape[1:]).swapaxes(1, 2).reshape(shape)


def _tensor_plan(model, gguf):
    """(GGUF name, shape, numpy dtype, a function that returns the array) for each tensor, in
    file order. Matrices are f16 and vectors (the norms, rope factors) f32, as in the converter."""
    import numpy as np
    import torch

    config = model.config
    heads, kv_heads = config.num_attention_heads, config.num_key_value_heads or config.num_attention_heads
    names = gguf.get_tensor_name_map(gguf.MODEL_ARCH.LLAMA, config.num_hidden_layers)
    tied = getattr(config, "tie_word_embeddings", False)
    for key, tensor in model.state_dict().items():
        if tied and key == "lm_head.weight":
            continue  # llama.cpp reuses token_embd when the file has no output tensor
        name = names.get_name(key, try_suffixes=(".weight", ".bias"))
        if name is None:
            raise BondhuError(f"GGUF export: {key} has no name in the Llama tensor map")
        dtype = np.dtype(np.float16 if tensor.ndim > 1 else np.float32)

        def source(t=tensor, k=key):
            if k.endswith(("q_proj.weight", "q_proj.bias")):
                t = permute_qk(t, heads, heads)
            elif k.endswith(("k_proj.weight", "k_proj.bias")):
                t = permute_qk(t, heads, kv_heads)
            return t.detach().to(torch.float32 if t.ndim == 1 else torch.float16).cpu().numpy()

        yield name, tuple(tensor.shape), dtype, source
    factors = llama3_rope_factors(config)
    if factors is not None:
        name = gguf.TENSOR_NAMES[gguf.MODEL_TENSOR.ROPE_FREQS] + ".weight"
        yield name, (len(factors),), np.dtype(np.float32), lambda: np.asarray(factors, dtype=np.float32)
