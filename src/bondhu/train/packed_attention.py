"""One flash-attention call per packed row for Unsloth, where torch has no GQA varlen API (< 2.12).

Why: a padding-free row holds several conversations end to end. Unsloth 2026.10 attends over
such a row in one call only through ``torch.nn.attention.varlen.varlen_attn(enable_gqa=...)``,
which arrives in torch 2.12; before that it runs SDPA once per conversation, 8 calls per layer
at Bondhu's batch of 8, with copies around each. The kernel underneath, the flash-attention op
with cumulative sequence lengths (``aten._flash_attention_forward``), is in older torch too and
takes grouped key/value heads as they are. This module wraps it, with its backward, as a torch
custom op (so Unsloth's compiled decoder blocks can trace it) and hands it to Unsloth in
``varlen_attn``'s call shape. Where torch or flash-attn already give Unsloth a varlen path,
nothing changes.
"""

from __future__ import annotations

import contextlib
from typing import Iterator, Optional

import torch
from torch import Tensor


@torch.library.custom_op("bondhu::flash_varlen_fwd", mutates_args=())
def _flash_varlen_fwd(query: Tensor, key: Tensor, value: Tensor, cu_seqlens: Tensor, max_seqlen: int,
                      scale: Optional[float], window_left: int, window_right: int) -> tuple[Tensor, Tensor]:
    out, lse, _, _, _ = torch.ops.aten._flash_attention_forward(
        query, key, value, cu_seqlens, cu_seqlens, max_seqlen, max_seqlen, 0.0,
        (window_left, window_right) == (-1, 0), False, scale=scale,
        window_size_left=window_left, window_size_right=window_right)
    return out, lse


@_flash_varlen_fwd.register_fake
def _(query, key, value, cu_seqlens, max_seqlen, scale, window_left, window_right):
    # The varlen kernel's log-sum-exp is (heads, total tokens), in fp32.
    return torch.empty_like(query), query.new_empty((query.shape[1], query.shape[0]), dtype=torch.float32)


@torch.library.custom_op("bondhu::flash_varlen_bwd", mutates_args=())
def _flash_varlen_bwd(grad_out: Tensor, query: Tensor, key: Tensor, value: Tensor, out: Tensor, lse: Tensor,
                      cu_seqlens: Tensor, max_seqlen: int, scale: Optional[float], window_left: int,
                      window_right: int) -> tuple[Tensor, Tensor, Tensor]:
    # No dropout, so the random-number state the kernel takes is never read (as in varlen_attn).
    rng_state = torch.zeros((2,), dtype=torch.uint64, device=query.device)
    unused = torch.empty(0, device=query.device)
    dq, dk, dv = torch.ops.aten._flash_attention_backward(
        grad_out.contiguous(), query, key, value, out, lse, cu_seqlens, cu_seqlens, max_seqlen, max_seqlen,
        0.0, (window_left, window_right) == (-1, 0), rng_state, unused, scale=scale,
        window_size_left=window_left, window_size_right=window_right)
    return dq, dk, dv


@_flash_varlen_bwd.register_fake
def _(grad_out, query, key, value, out, lse, cu_seqlens, max_seqlen, scale, window_left, window_right):
    return torch.empty_like(query), torch.empty_like(key), torch.empty_like(value)


def _setup_context(ctx, inputs, output):
    query, key, value, cu_seqlens, max_seqlen, scale, window_left, window_right = inputs
    ctx.save_for_backward(query, key, value, output[0], output[1], cu_seqlens)
    ctx.settings = (max_seqlen, scale, window_left, window_right)


def _backward(ctx, grad_out, _grad_lse):
    query, key, value, out, lse, cu_seqlens = ctx.saved_tensors
    dq, dk, dv = _flash_varlen_bwd(grad_out, query, key, value, out, lse, cu_seqlens, *ctx.settings)
    return dq, dk, dv, None, None, None, None, None


_flash_varlen_fwd.register_autograd(_backward, setup_context=_setup_context)


def flash_varlen_attn(query: Tensor, key: Tensor, value: Tensor, cu_seq_q: Tensor, cu_seq_k: Tensor,
                      max_q: int, max_k: int, *, scale: Optional[float] = None,
                      window_size: tuple[int, int] = (-1, -1), enable_gqa: bool = False) -> Tensor:
    """Attention over packed sequences: query (tokens, heads, dim), key/value (tokens, kv heads, dim).

    The call shape of torch 2.12's ``varlen_attn`` for self-attention (the same boundaries for
    queries and keys), which is how Unsloth calls it. ``window_size=(-1, 0)`` is causal.
    """
    if cu_seq_k is not cu_seq_q and not torch.equal(cu_seq_q, cu_seq_k) or max_q != max_k:
        raise ValueError("flash_varlen_attn is self-attention only: queries and keys need the same boundaries")
    if key.shape[1] != query.shape[1] and (not enable_gqa or query.shape[1] % key.shape[1]):
        raise ValueError(f"{query.shape[1]} query heads and {key.shape[1]} key/value heads need enable_gqa "
                         "and a whole number of query heads per key/value head")
    out, _ = _flash_varlen_fwd(query, key, value, cu_seq_q, max_q, scale, *window_size)
    return out


def unsloth_needs_it(dispatch) -> tuple[bool, str]:
    """Whether Unsloth's attention dispatch (its module) lacks a single-call path for packed rows."""
    if getattr(dispatch, "HAS_FLASH_ATTENTION", False):
        return False, "the flash-attn package gives Unsloth its varlen kernel"
    if getattr(dispatch, "_TORCH_VARLEN_ATTN", None) is not None:
        return False, "torch's varlen_attn takes grouped heads here (torch >= 2.12)"
    if not hasattr(dispatch, "_TORCH_VARLEN_ATTN"):
        return False, "this Unsloth version has no varlen hook to fill"
    if not (torch.cuda.is_available() and torch.backends.cuda.is_flash_attention_available()):
        return False, "torch has no flash-attention kernel here"
    return True, "torch has the flash varlen kernel but no grouped-head varlen_attn: Bondhu's op fills in"


@contextlib.contextmanager
def unsloth_packed_flash(dispatch=None) -> Iterator[str]:
    """While open, Unsloth attends over each packed row in one flash call; yields the reason.

    ``dispatch`` is ``unsloth.utils.attention_dispatch`` (the default). Its module state is
    restored on exit, so inference after training is as Unsloth left it.
    """
    if dispatch is None:
        try:  # a private module: another Unsloth version may lack it, and then keeps its own path
            from unsloth.utils import attention_dispatch as dispatch
        except Exception as err:  # Unsloth raises many kinds where it cannot run
            yield f"Unsloth's attention dispatch did not import ({err})"
            return
    needed, why = unsloth_needs_it(dispatch)
    if not needed:
        yield why
        return
    names = [n for n in ("_TORCH_VARLEN_ATTN", "_LEAN_VARLEN", "_NATIVE_BEATS_XFORMERS") if hasattr(dispatch, n)]
    saved = {name: getattr(dispatch, name) for name in names}
    dispatch._TORCH_VARLEN_ATTN = flash_varlen_attn
    # Unsloth's lean path calls torch's own private helpers, which this torch lacks; the custom op
    # serves eager and compiled calls alike.
    dispatch._LEAN_VARLEN = False
    if hasattr(dispatch, "_native_beats_xformers"):
        # With a varlen kernel, Unsloth prefers torch's kernels to xformers' on sm80+ (its own measurement).
        dispatch._NATIVE_BEATS_XFORMERS = dispatch._native_beats_xformers(dispatch._visible_capabilities(), True)
    try:
        yield why
    finally:
        for name, value in saved.items():
            setattr(dispatch, name, value)
