"""Attention that can be differentiated twice: the backend rule of second-order products.

PyTorch runs ``F.scaled_dot_product_attention`` (and so ``nn.MultiheadAttention``,
``nn.TransformerEncoderLayer`` and ``nn.TransformerDecoderLayer``) through fused kernels —
flash attention on the CPU, flash/memory-efficient/cuDNN attention on CUDA — whose backward
has no derivative of its own and which have no forward-mode AD. In eval mode,
``nn.MultiheadAttention`` and ``nn.TransformerEncoderLayer`` may also take a "fast path"
(``_native_multi_head_attention``, ``_transformer_encoder_layer_fwd``) with no forward-mode
AD. A Hessian-vector product (reverse-over-reverse or forward-over-reverse), a Gauss–Newton
product (``jvp`` then ``vjp``), a model-Hessian product and a JVP therefore fail on stock
attention with torch's "derivative for aten::_scaled_dot_product_flash_attention_for_cpu_backward
is not implemented" or "Trying to use forward AD with …".

:func:`differentiable_attention` is the context every such product in lossgeometry runs in:

* ``torch.nn.attention.sdpa_kernel(SDPBackend.MATH)``: scaled dot-product attention is
  computed by its reference formula ``softmax(Q Kᵀ/√d + M) V`` from ordinary operations, which
  are differentiable to any order and in both modes (CPU and CUDA alike);
* the ``nn.MultiheadAttention``/``nn.TransformerEncoderLayer`` fast path is switched off
  (``torch.backends.mha.set_fastpath_enabled(False)``) and restored afterwards.

The math backend computes the same function as the fused kernels (up to rounding) and is
slower and uses more memory (it materializes the ``T × T`` attention matrix); models without
attention are not affected. First-order reverse-mode measurements (gradients, the tangent
kernel) keep torch's default backend. Both settings are process-wide while the context is
active, so another thread running attention at the same time also sees the math backend.
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

import torch

__all__ = ["differentiable_attention", "with_differentiable_attention"]

F = TypeVar("F", bound=Callable[..., Any])


@contextlib.contextmanager
def _mha_fastpath_off() -> Iterator[None]:
    mha = getattr(torch.backends, "mha", None)
    getter = getattr(mha, "get_fastpath_enabled", None)
    setter = getattr(mha, "set_fastpath_enabled", None)
    if getter is None or setter is None:  # an older torch without the switch
        yield
        return
    before = bool(getter())
    setter(False)
    try:
        yield
    finally:
        setter(before)


@contextlib.contextmanager
def differentiable_attention() -> Iterator[None]:
    """Run a block with attention that supports double backward and forward-mode AD.

    The scaled dot-product attention backend is the math one and the multi-head-attention
    fast path is off inside the block; both are restored on exit (see the module docstring).
    Nested use is fine.
    """
    from torch.nn.attention import SDPBackend, sdpa_kernel

    with sdpa_kernel(SDPBackend.MATH), _mha_fastpath_off():
        yield


def with_differentiable_attention(fn: F) -> F:
    """Decorate a product so that it runs inside :func:`differentiable_attention`."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        with differentiable_attention():
            return fn(*args, **kwargs)

    return wrapper  # type: ignore[return-value]
