"""GGUF types, and quantizing the f16 file with llama.cpp's own quantizer (llama_model_quantize)."""

from __future__ import annotations

import ctypes
from pathlib import Path

from bondhu.errors import BondhuError
from bondhu.export.llamacpp import captured_log, require_llama_cpp

# The llama.cpp file types (enum llama_ftype in llama.h) that need no importance matrix, by the
# names llama-quantize uses. The very-low-bit IQ1/IQ2/IQ3_XXS types and Q2_K_S refuse to run
# without one, which Bondhu does not compute. "f16" is written directly, the rest from it.
GGUF_TYPES = {
    "f16": 1,
    "bf16": 32,
    "q8_0": 7,
    "q6_k": 18,
    "q5_k_m": 17,
    "q5_k_s": 16,
    "q5_1": 9,
    "q5_0": 8,
    "q4_k_m": 15,
    "q4_k_s": 14,
    "q4_1": 3,
    "q4_0": 2,
    "iq4_xs": 30,
    "iq4_nl": 25,
    "q3_k_l": 13,
    "q3_k_m": 12,
    "q3_k_s": 11,
    "q2_k": 10,
}


def parse_types(spec: str | list[str]) -> list[str]:
    """``"f16,q8_0"`` as ``["f16", "q8_0"]``, each checked against GGUF_TYPES (case-insensitive, no
    repeats); an unknown name is an error that lists the valid ones, before any work starts."""
    items = spec.split(",") if isinstance(spec, str) else [p for s in spec for p in s.split(",")]
    types: list[str] = []
    for item in (i.strip().lower() for i in items):
        if not item:
            continue
        if item not in GGUF_TYPES:
            raise BondhuError(f"--gguf {item!r}: unknown type; valid types: {', '.join(GGUF_TYPES)}")
        if item not in types:
            types.append(item)
    if not types:
        raise BondhuError(f"--gguf: no type given; valid types: {', '.join(GGUF_TYPES)}")
    return types


def quantize(source: Path, target: Path, type_name: str, threads: int = 0) -> tuple[int, int] | None:
    """Quantize the f16 GGUF ``source`` into ``target`` as ``type_name``; returns the quantizer's
    fallback count (tensors whose rows do not fit the type's blocks), or None when there were none.
    A failure is a BondhuError with llama.cpp's reason."""
    llama_cpp = require_llama_cpp()
    params = llama_cpp.llama_model_quantize_default_params()
    params.ftype = GGUF_TYPES[type_name]
    params.nthread = threads
    with captured_log(llama_cpp) as record:
        code = llama_cpp.llama_model_quantize(str(source).encode(), str(target).encode(), ctypes.byref(params))
    if code != 0:
        # llama.cpp's line reads "llama_model_quantize: failed to quantize: <reason>".
        reason = (record.error or f"llama_model_quantize returned {code}").split("failed to quantize: ")[-1]
        raise BondhuError(f"quantizing to {type_name} failed (llama.cpp: {reason})")
    return record.fallbacks()
