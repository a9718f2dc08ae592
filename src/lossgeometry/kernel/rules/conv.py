r"""Tangent-kernel rule for ``nn.Conv1d`` and ``nn.Conv2d`` (unfolded patches).

A convolution is a linear layer applied to every patch: with the input patches
``A_{i,g,l} ∈ R^{(C_in/G)·|kernel|}`` at output position ``l`` and group ``g`` (``unfold``
after the layer's own padding), and ``B_{i,a,g,l} ∈ R^{C_out/G}`` the output gradient there,

    K[(i,a),(j,b)] = Σ_g Σ_{l,l'} ⟨[A_{i,g,l}, 1], [A_{j,g,l'}, 1]⟩ ⟨B_{i,a,g,l}, B_{j,b,g,l'}⟩

(the 1 accounts for the bias; stride, dilation, groups and every ``padding_mode`` are
handled by the unfolding). With many positions the Gram route costs ``O(L²)`` per pair of
samples; the rule then forms the per-sample gradient ``Σ_l B_l ⊗ A_l`` instead (the route is
chosen from flop counts, see :func:`~lossgeometry.kernel.rules.base.bilinear_costs`).
Transposed and 3-d convolutions go to the exact Jacobian fallback.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from lossgeometry.kernel.rules.base import Bilinear, Factors, Materialized, Rule


def _unfold2d(
    x: torch.Tensor,
    ksz: tuple[int, int],
    dil: tuple[int, int],
    st: tuple[int, int],
    ones: bool = False,
) -> torch.Tensor:
    """``F.unfold`` (no padding) by ``|kernel|`` strided slices: ``(b, C·kh·kw, L)``.

    Equivalent to ``torch.nn.functional.unfold``, whose CPU kernel (``im2col``) measured
    several hundred times slower on small feature maps in torch 2.13. With ``ones``, a row of
    ones is appended, ``(b, C·kh·kw + 1, L)`` (the bias column of the per-sample gradient).
    """
    b, C, H, W = x.shape
    (kh, kw), (dh, dw), (sh, sw) = ksz, dil, st
    Lh = (H - dh * (kh - 1) - 1) // sh + 1
    Lw = (W - dw * (kw - 1) - 1) // sw + 1
    out = x.new_empty(b, C * kh * kw + int(ones), Lh * Lw)
    grid = out[:, : C * kh * kw].view(b, C, kh * kw, Lh, Lw)
    for i in range(kh):
        rows = slice(i * dh, i * dh + sh * (Lh - 1) + 1, sh)
        for j in range(kw):
            cols = slice(j * dw, j * dw + sw * (Lw - 1) + 1, sw)
            grid[:, :, i * kw + j].copy_(x[:, :, rows, cols])
    if ones:
        out[:, -1] = 1
    return out


def unfold_columns(
    module: nn.Conv1d | nn.Conv2d, x: torch.Tensor, ones: bool = False
) -> torch.Tensor:
    """Input patches as columns, ``(b, G, (C_in/G)·|kernel|, L)`` (``F.unfold``'s layout).

    ``ones`` (one group only) appends a row of ones: ``(b, 1, C_in·|kernel| + 1, L)``.
    """
    one_d = isinstance(module, nn.Conv1d)
    mode = "constant" if module.padding_mode == "zeros" else module.padding_mode
    pad = list(module._reversed_padding_repeated_twice)
    if any(pad):
        x = F.pad(x, pad, mode=mode)
    if one_d:
        x = x.unsqueeze(2)
        ksz, dil, st = (1, *module.kernel_size), (1, *module.dilation), (1, *module.stride)
    else:
        ksz, dil, st = module.kernel_size, module.dilation, module.stride
    cols = _unfold2d(x, ksz, dil, st, ones)  # (b, C_in·|k| (+ 1), L)
    b, _, L = cols.shape
    return cols.reshape(b, module.groups, -1, L)


def unfold_patches(module: nn.Conv1d | nn.Conv2d, x: torch.Tensor) -> torch.Tensor:
    """Input patches ``(b, G, L, (C_in/G)·|kernel|)`` in the layout of ``module.weight``."""
    return unfold_columns(module, x).transpose(2, 3)


def per_sample_gradients(
    module: nn.Conv1d | nn.Conv2d,
    inputs: Sequence[torch.Tensor],
    grads: Sequence[torch.Tensor],
    active: frozenset[str],
) -> Materialized:
    r"""``P_{i,a} = Σ_calls Σ_l B_{i,a,l} ⊗ [A_{i,l}, 1]`` as one batched GEMM per call.

    Per sample and group, ``(ks·C_out/G × L) @ (L × (C_in/G)·|kernel|)`` with the patches
    read transposed in place (no copy), and the bias part ``Σ_l B_{i,a,l}``: the weight
    gradient exactly as autograd's ``convolution_backward`` would form it per sample.
    """
    b, ks = grads[0].shape[:2]
    G = module.groups
    dB = module.out_channels // G
    P: torch.Tensor | None = None
    for x, g in zip(inputs, grads, strict=True):
        L = math.prod(g.shape[3:])
        # (b, ks, G·dB, L) -> (b·G, ks·dB, L): the only copy of the output gradients
        B = g.reshape(b, ks, G, dB, L).transpose(1, 2).reshape(b * G, ks * dB, L)
        both = "weight" in active and "bias" in active
        if both and G == 1:  # [A; 1]: the bias column comes out of the same GEMM
            A = unfold_columns(module, x.to(g.dtype), ones=True).reshape(b, -1, L)
            Pc = torch.bmm(B, A.transpose(1, 2))  # (b, ks·dB, dA + 1)
        else:
            parts = []
            if "weight" in active:
                A = unfold_columns(module, x.to(g.dtype)).reshape(b * G, -1, L)
                parts.append(torch.bmm(B, A.transpose(1, 2)))  # (b·G, ks·dB, dA)
            if "bias" in active:
                parts.append(B.sum(-1, keepdim=True))
            Pc = parts[0] if len(parts) == 1 else torch.cat(parts, dim=-1)
        Pc = Pc.reshape(b, G, ks, dB, -1).transpose(1, 2).reshape(b, ks, -1)
        P = Pc if P is None else P.add_(Pc)
    assert P is not None
    return Materialized(P)


class ConvRule(Rule):
    """``nn.Conv1d`` / ``nn.Conv2d`` with any stride, dilation, groups, padding and mode."""

    types = (nn.Conv1d, nn.Conv2d)
    name = "conv"

    def check_call(self, module: nn.Module, inp: Any, out: torch.Tensor, batch: int) -> str | None:
        """Batched inputs ``(batch, C_in, *spatial)``."""
        reason = super().check_call(module, inp, out, batch)
        want = 3 if isinstance(module, nn.Conv1d) else 4
        if reason is None and inp.ndim != want:
            return f"input is not batched ({want}-d)"
        return reason

    def shape_info(
        self, module: nn.Module, inp: Any, out: torch.Tensor
    ) -> tuple[int, int, int, int]:
        """``(groups, output positions, C_in/G·|kernel| + 1, C_out/G)``."""
        G = module.groups
        L = math.prod(out.shape[2:])
        dA = module.in_channels // G * math.prod(module.kernel_size) + 1
        return (G, L, dA, module.out_channels // G)

    def factors(
        self,
        module: nn.Module,
        inputs: Sequence[Any],
        grads: Sequence[torch.Tensor],
        active: frozenset[str],
        route: str,
    ) -> Factors:
        """Unfolded patches (plus a 1 for the bias) and output gradients per group.

        The materialized route forms the per-sample gradients directly
        (:func:`per_sample_gradients`).
        """
        if route == "materialize":
            return per_sample_gradients(module, inputs, grads, active)
        b = inputs[0].shape[0]
        ks = grads[0].shape[1]
        G = module.groups
        As, Bs = [], []
        for x, g in zip(inputs, grads, strict=True):
            A = unfold_patches(module, x)  # (b, G, L, dA)
            L = A.shape[2]
            Bg = g.reshape(b, ks, G, module.out_channels // G, L).transpose(3, 4)
            parts = []
            if "weight" in active:
                parts.append(A)
            if "bias" in active:
                parts.append(A.new_ones(b, G, L, 1))
            As.append(torch.cat(parts, dim=-1))
            Bs.append(Bg)
        return Bilinear(B=torch.cat(Bs, dim=3), A=torch.cat(As, dim=2))
