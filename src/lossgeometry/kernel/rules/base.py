r"""The shared algebra of per-layer tangent-kernel rules.

Notation. A chunk holds ``b`` samples; the kernel is requested on ``ks`` outputs per sample
(``ks = k`` for ``outputs="full"``). For a layer called at sample ``i`` with output ``z_i``,
``B_{i,a} = ∂f_a(x_i)/∂z_i`` is the output gradient of output ``a``.

Two kinds of factors describe one layer's contribution ``K_layer = J_layer J_layerᵀ``:

* :class:`Bilinear` — layers whose per-sample gradient is a sum of outer products over
  positions ``s`` (tokens, time steps, convolution patches) and groups ``g``::

      ∂f_a(x_i)/∂W_g = Σ_s B_{i,a,g,s} ⊗ A_{i,g,s}

  so that, without ever forming the ``d_out × d_in`` gradient,

      K[(i,a),(j,b)] = Σ_g Σ_{s,t} ⟨A_{i,g,s}, A_{j,g,t}⟩ · ⟨B_{i,a,g,s}, B_{j,b,g,t}⟩.

  A bias is folded in by appending a constant 1 to ``A`` (``⟨[A,1],[A',1]⟩ = ⟨A,A'⟩ + 1``).
  The input Gram ``⟨A_{i,g,s}, A_{j,g,t}⟩`` is either computed from dense ``A`` or given by
  the rule (embeddings: ``[id_{i,s} = id_{j,t}]``). Cost per pair of samples
  ``O(G (S T (d_A + ks d_B) + S ks² d_B))`` instead of ``O(ks² d_A d_B)``; for ``S = 1``
  (a dense layer on vectors) it is ``O(d_A + ks² d_B)``.
* :class:`Materialized` — the per-sample gradient itself, ``P_{i,a} ∈ R^X`` (LayerNorm's
  ``γ, β``; convolutions when many positions make the Gram route dearer; the generic
  Jacobian fallback). ``K = P Pᵀ``.

Modes of a kernel block (``I``, ``J`` chunks of samples):

* ``"full"``: ``(b_I, ks, b_J, ks)``;
* ``"trace"``: ``Σ_a K[(i,a),(j,a)]``, shape ``(b_I, b_J)``;
* ``"diag"``: the per-sample blocks ``K[(i,·),(i,·)]`` of one chunk, ``(b, ks, ks)``;
* ``"diag_trace"``: ``Σ_a K[(i,a),(i,a)] = ‖∂f(x_i)/∂w‖_F²``, shape ``(b,)``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any, ClassVar, Literal

import torch
from torch import nn

Mode = Literal["full", "trace", "diag", "diag_trace"]

WORK_ELEMENTS: int = 2**25
"""Largest intermediate (in elements) one rule contraction may allocate at once (≈128 MiB
in float32); contractions are split over rows of the block to stay below it."""


SYMMETRIC_BLOCK: int = 256
"""Rows per block of :func:`symmetric_product`; smaller products are formed whole."""


def symmetric_product(P: torch.Tensor, out: torch.Tensor | None = None) -> torch.Tensor:
    """``P Pᵀ`` (or ``out + P Pᵀ``, in place) from its lower block triangle: about half the flops.

    The rows are cut into ``c = min(8, ⌈N / SYMMETRIC_BLOCK⌉)`` blocks; block row ``I`` is
    ``P_I P_{≤I}ᵀ`` (one GEMM), and the blocks above the diagonal are the transposes of those
    below, so ``c (c + 1) / 2`` of the ``c²`` blocks are multiplied (56% of the flops at
    ``c = 8``). The result is exactly symmetric off the diagonal blocks.
    """
    N = P.shape[0]
    bs = max(SYMMETRIC_BLOCK, -(-N // 8))
    fresh = out is None
    res = P.new_empty(N, N) if out is None else out
    for i0 in range(0, N, bs):
        i1 = min(i0 + bs, N)
        if fresh:
            res[i0:i1, :i1].addmm_(P[i0:i1], P[:i1].T, beta=0)
            res[:i0, i0:i1] = res[i0:i1, :i0].T
        else:
            T = P[i0:i1] @ P[:i1].T
            res[i0:i1, :i1] += T
            res[:i0, i0:i1] += T[:, :i0].T
    return res


@dataclasses.dataclass
class Materialized:
    """Per-sample gradients ``P`` of shape ``(b, ks, X)``: ``K = P Pᵀ``."""

    P: torch.Tensor

    @property
    def nbytes(self) -> int:
        """Memory held by the factors."""
        return self.P.numel() * self.P.element_size()

    def block(
        self, other: Materialized, mode: Mode, out: torch.Tensor | None = None
    ) -> torch.Tensor:
        """The kernel block between this chunk (rows) and ``other`` (columns).

        With ``out``, the block is added to it in place (and ``out`` returned): the layers of
        a model accumulate into one tensor instead of one temporary each.
        """
        P, Q = self.P, other.P
        if mode == "full":
            b, ks, _ = P.shape
            P2, Q2 = P.reshape(b * ks, -1), Q.reshape(Q.shape[0] * ks, -1)
            if other is self and P2.shape[0] >= 2 * SYMMETRIC_BLOCK:
                flat = None if out is None else out.view(b * ks, b * ks)
                return symmetric_product(P2, flat).reshape(b, ks, b, ks)
            if out is None:
                return (P2 @ Q2.T).reshape(b, ks, Q.shape[0], ks)
            out.view(b * ks, Q.shape[0] * ks).addmm_(P2, Q2.T)
            return out
        if mode == "trace":
            blk = torch.einsum("iax,jax->ij", P, Q)
        elif mode == "diag":
            blk = P @ P.transpose(1, 2)
        else:
            blk = P.pow(2).sum(dim=(1, 2))
        return blk if out is None else out.add_(blk)


@dataclasses.dataclass
class Bilinear:
    """Factors of a layer whose per-sample gradient is ``Σ_s B_s ⊗ A_s`` (see module doc).

    Attributes:
        B: output gradients, ``(b, ks, G, S, d_B)``.
        A: layer inputs, ``(b, G, S, d_A)`` (with a trailing 1 when the bias counts), or
            ``None`` when ``ids`` is given.
        ids: for embeddings, the looked-up rows ``(b, S)`` (``-1`` for padding positions,
            whose rows get no gradient); the input Gram is ``[id_{i,s} = id_{j,t} ≥ 0]``.
    """

    B: torch.Tensor
    A: torch.Tensor | None = None
    ids: torch.Tensor | None = None

    @property
    def nbytes(self) -> int:
        """Memory held by the factors."""
        n = self.B.numel() * self.B.element_size()
        if self.A is not None:
            n += self.A.numel() * self.A.element_size()
        if self.ids is not None:
            n += self.ids.numel() * self.ids.element_size()
        return n

    def _gram(self, other: Bilinear, g: int, rows: slice, diag: bool) -> torch.Tensor:
        """Input Gram for group ``g``: ``(r, b_J, S, T)`` (pairs) or ``(r, S, S)`` (diag)."""
        if self.ids is not None:
            assert other.ids is not None
            a = self.ids[rows]
            if diag:
                eq = a[:, :, None] == a[:, None, :]
                return (eq & (a[:, :, None] >= 0)).to(self.B.dtype)
            c = other.ids
            eq = a[:, None, :, None] == c[None, :, None, :]
            return (eq & (a[:, None, :, None] >= 0)).to(self.B.dtype)
        assert self.A is not None and other.A is not None
        a = self.A[rows, g]
        if diag:
            return a @ a.transpose(1, 2)
        return torch.einsum("isd,jtd->ijst", a, other.A[:, g])

    def block(self, other: Bilinear, mode: Mode, out: torch.Tensor | None = None) -> torch.Tensor:
        """The kernel block between this chunk (rows) and ``other`` (columns), or ``out`` plus it.

        Dense layers on vectors (one position) take two GEMMs and one fused multiply-add
        (``addcmul_``) into the accumulator; other layers the contractions below.
        """
        BI, BJ = self.B, other.B
        bi, ks, G, S, dB = BI.shape
        bj = BJ.shape[0]
        diag = mode in ("diag", "diag_trace")
        out_shape: tuple[int, ...] = {
            "full": (bi, ks, bj, ks),
            "trace": (bi, bj),
            "diag": (bi, ks, ks),
            "diag_trace": (bi,),
        }[mode]
        if out is None:
            out = BI.new_zeros(out_shape)
        # rows per slice so that the largest intermediate stays below WORK_ELEMENTS
        if S == 1 and BJ.shape[3] == 1 and not diag:
            # dense layers on vectors: two GEMMs, intermediates (r, bj) and (r·ks, bj·ks).
            # (The general count below charges ks·dB per pair, which sliced a 4096-sample
            # block of a width-1024 layer into 1024 slices of 4 rows: 5x slower.)
            per_row = bj * (1 + ks * ks)
        else:
            per_row = (1 if diag else bj) * S * max(S * (1 + ks), ks * dB, ks * ks)
        step = max(1, WORK_ELEMENTS // max(per_row, 1))
        for r0 in range(0, bi, step):
            rows = slice(r0, min(r0 + step, bi))
            for g in range(G):
                GA = self._gram(other, g, rows, diag)
                bI = BI[rows, :, g]  # (r, ks, S, dB)
                if diag:
                    if mode == "diag":
                        # C[i,s,b,d] = Σ_t GA[i,s,t] B[i,b,t,d]
                        C = torch.einsum("ist,ibtd->isbd", GA, bI)
                        out[rows] += torch.einsum("iasd,isbd->iab", bI, C)
                    else:
                        GB = torch.einsum("iasd,iatd->ist", bI, bI)
                        out[rows] += (GA * GB).sum(dim=(1, 2))
                    continue
                bJ = BJ[:, :, g]  # (bj, ks, T, dB)
                if S == 1 and BJ.shape[3] == 1:
                    ga = GA[:, :, 0, 0]  # (r, bj)
                    if mode == "full":
                        gb = (bI[:, :, 0].reshape(-1, dB) @ bJ[:, :, 0].reshape(-1, dB).T).reshape(
                            ga.shape[0], ks, bj, ks
                        )
                        out[rows].addcmul_(ga[:, None, :, None], gb)
                    else:
                        gb = torch.einsum("iad,jad->ij", bI[:, :, 0], bJ[:, :, 0])
                        out[rows].addcmul_(ga, gb)
                    continue
                if mode == "full":
                    C = torch.einsum("ijst,jbtd->ijsbd", GA, bJ)
                    out[rows] += torch.einsum("iasd,ijsbd->iajb", bI, C)
                else:
                    GB = torch.einsum("iasd,jatd->ijst", bI, bJ)
                    out[rows] += (GA * GB).sum(dim=(2, 3))
        return out


Factors = Materialized | Bilinear


GRAM_PENALTY: float = 25.0
"""Cost factor of the Gram route when ``S > 1``: its contractions go through large
intermediates and run memory-bound, while the materialized route is one GEMM. Calibrated on
a CNN (conv 32→32, 3×3, 16 positions, n = 256, one thread): the Gram route took ~20-40×
longer per flop than the materialized one."""


def bilinear_costs(b: int, n: int, ks: int, G: int, S: int, dA: int, dB: int) -> dict[str, float]:
    """Cost estimates of the whole kernel on ``n`` samples for both routes of a bilinear layer.

    ``"gram"`` contracts input and output Grams per pair of samples,
    ``n² G (S² (d_A + ks d_B) + S ks² d_B)`` flops, times :data:`GRAM_PENALTY` when ``S > 1``;
    ``"materialize"`` forms the per-sample gradient once per sample and takes inner
    products, ``n G ks S d_A d_B + n² ks² G d_A d_B`` flops.
    """
    gram = n * n * G * (S * S * (dA + ks * dB) + S * ks * ks * dB)
    if S > 1:
        gram *= GRAM_PENALTY
    mat = n * G * ks * S * dA * dB + n * n * ks * ks * G * dA * dB
    return {"gram": float(gram), "materialize": float(mat)}


def materialize(f: Bilinear) -> Materialized:
    """Per-sample gradients ``P_{i,a} = Σ_s B_{i,a,s} ⊗ A_{i,s}`` of dense bilinear factors."""
    assert f.A is not None
    b, ks = f.B.shape[:2]
    P = torch.einsum("iagsd,igse->iagde", f.B, f.A)
    return Materialized(P.reshape(b, ks, -1))


class Rule:
    """A per-layer tangent-kernel rule (subclass per layer type; one file per layer).

    Subclasses set :attr:`types` and implement :meth:`factors`; they may refuse a module or
    a call (the layer's parameters then go to the exact Jacobian fallback) by returning a
    reason from :meth:`unsupported` or :meth:`check_call`.
    """

    types: ClassVar[tuple[type[nn.Module], ...]] = ()
    name: ClassVar[str] = "rule"
    routes: ClassVar[tuple[str, ...]] = ("gram", "materialize")
    """The factor routes the rule supports (the planner picks the cheapest)."""

    def matches(self, module: nn.Module) -> bool:
        """Whether this rule is meant for ``module``.

        It must be one of :attr:`types` whose class does not override ``forward`` (a
        subclass computing something else must not match).
        """
        return any(isinstance(module, t) and type(module).forward is t.forward for t in self.types)

    def unsupported(self, module: nn.Module) -> str | None:
        """A reason why the rule cannot handle this module instance, or ``None``."""
        return None

    def check_call(self, module: nn.Module, inp: Any, out: torch.Tensor, batch: int) -> str | None:
        """A reason why a call is not handled, or ``None``.

        ``inp`` is the call's input, ``out`` its output, ``batch`` the number of samples.
        The default requires tensors with a leading batch dimension.
        """
        if not torch.is_tensor(inp) or inp.ndim == 0 or inp.shape[0] != batch:
            return "input without a leading batch dimension"
        if out.ndim == 0 or out.shape[0] != batch:
            return "output without a leading batch dimension"
        return None

    def param_names(self, module: nn.Module) -> list[str]:
        """Local names of the parameters this rule accounts for."""
        return [n for n, _ in module.named_parameters(recurse=False)]

    def factors(
        self,
        module: nn.Module,
        inputs: Sequence[Any],
        grads: Sequence[torch.Tensor],
        active: frozenset[str],
        route: str,
    ) -> Factors:
        """Factors of one chunk from the module's calls.

        Args:
            module: the layer.
            inputs: its input (first positional argument) at each call in the forward pass,
                each with a leading batch dimension ``b``.
            grads: ``∂f_a/∂output`` at each call, ``(b, ks, *output.shape[1:])``.
            active: local names of the parameters that count (others are fixed).
            route: ``"gram"`` or ``"materialize"`` (see :func:`bilinear_costs`).
        """
        raise NotImplementedError

    def shape_info(
        self, module: nn.Module, inp: Any, out: torch.Tensor
    ) -> tuple[int, int, int, int]:
        """``(G, S, d_A, d_B)`` of one call with a one-sample batch (for the route choice)."""
        return (1, 1, 1, 1)
