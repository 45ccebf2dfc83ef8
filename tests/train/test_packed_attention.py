"""Bondhu's packed flash-attention op for Unsloth: when it is handed over, that it is taken back,
and that its autograd wiring gives each input a gradient of its own shape. The kernel itself is
CUDA-only; benchmarks/gpu_profile.py check_packed_attention compares it with SDPA on the GPU."""

from types import SimpleNamespace

import pytest
import torch
from torch._subclasses.fake_tensor import FakeTensorMode

from bondhu.train.packed_attention import flash_varlen_attn, unsloth_needs_it, unsloth_packed_flash


def fake_dispatch(**overrides):
    """The parts of unsloth.utils.attention_dispatch that the hand-over touches, as torch 2.11 leaves them."""
    ns = SimpleNamespace(HAS_FLASH_ATTENTION=False, _TORCH_VARLEN_ATTN=None, _LEAN_VARLEN=False,
                         _NATIVE_BEATS_XFORMERS=False, _visible_capabilities=lambda: [(9, 0)],
                         _native_beats_xformers=lambda caps, loaded: loaded and all(c[0] >= 8 for c in caps))
    for key, value in overrides.items():
        setattr(ns, key, value)
    return ns


@pytest.fixture
def flash_gpu(monkeypatch):
    """Pretend to be a CUDA machine with torch's flash kernel (the hand-over's precondition)."""
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.backends.cuda, "is_flash_attention_available", lambda: True)


def test_handed_to_unsloth_only_where_it_lacks_a_varlen_path(flash_gpu):
    assert unsloth_needs_it(fake_dispatch())[0]
    assert not unsloth_needs_it(fake_dispatch(HAS_FLASH_ATTENTION=True))[0]
    took, why = unsloth_needs_it(fake_dispatch(_TORCH_VARLEN_ATTN=print))
    assert not took and "torch >= 2.12" in why
    older = fake_dispatch()
    del older._TORCH_VARLEN_ATTN
    assert unsloth_needs_it(older) == (False, "this Unsloth version has no varlen hook to fill")


def test_not_handed_over_without_a_gpu():
    assert unsloth_needs_it(fake_dispatch()) == (False, "torch has no flash-attention kernel here")


def test_hand_over_is_taken_back_after_training_and_after_a_failure(flash_gpu):
    dispatch = fake_dispatch()
    with unsloth_packed_flash(dispatch) as why:
        assert "Bondhu's op fills in" in why
        assert dispatch._TORCH_VARLEN_ATTN is flash_varlen_attn
        assert dispatch._LEAN_VARLEN is False and dispatch._NATIVE_BEATS_XFORMERS is True
    assert dispatch._TORCH_VARLEN_ATTN is None and dispatch._NATIVE_BEATS_XFORMERS is False
    with pytest.raises(RuntimeError):
        with unsloth_packed_flash(dispatch):
            raise RuntimeError("out of memory")
    assert dispatch._TORCH_VARLEN_ATTN is None


def test_without_unsloth_training_goes_on_and_says_why():
    with unsloth_packed_flash() as why:  # unsloth is not installed on the CPU test machine
        assert why.startswith("Unsloth's attention dispatch did not import")


def test_each_input_gets_a_gradient_of_its_own_shape():
    # Fake tensors run the op's registered shapes and autograd, not the CUDA kernel.
    with FakeTensorMode():
        q = torch.empty(30, 8, 16, dtype=torch.bfloat16, requires_grad=True)
        k = torch.empty(30, 2, 16, dtype=torch.bfloat16, requires_grad=True)
        v = torch.empty(30, 2, 16, dtype=torch.bfloat16, requires_grad=True)
        cu = torch.tensor([0, 10, 30], dtype=torch.int32)
        out = flash_varlen_attn(q, k, v, cu, cu, 20, 20, window_size=(-1, 0), enable_gqa=True)
        out.sum().backward()
        assert out.shape == q.shape and out.dtype == q.dtype
        assert (q.grad.shape, k.grad.shape, v.grad.shape) == (q.shape, k.shape, v.shape)


def test_grouped_heads_need_enable_gqa_and_self_attention():
    q, kv = torch.empty(4, 8, 16), torch.empty(4, 2, 16)
    cu = torch.tensor([0, 4], dtype=torch.int32)
    with pytest.raises(ValueError, match="8 query heads and 2 key/value heads need enable_gqa"):
        flash_varlen_attn(q, kv, kv, cu, cu, 4, 4)
    with pytest.raises(ValueError, match="self-attention only"):
        flash_varlen_attn(q, kv, kv, cu, torch.tensor([0, 2], dtype=torch.int32), 4, 4, enable_gqa=True)
