r"""Kernel methods, chunk sizes, and the per-chunk factors and blocks of the dense kernel.

Shared by the kernel on one process (:mod:`~lossgeometry.kernel.tangent`) and across ranks
(:mod:`~lossgeometry.kernel.sharded`): :func:`kernel_factors` computes the factors of one
chunk of samples (per-layer structured factors, or per-sample Jacobians), :func:`kernel_block`
contracts two chunks' factors into a block ``K[I, J]`` (summed over the layers), and
:func:`chunk_size_for` picks the samples per chunk so that one chunk's working memory stays
within a byte budget.
"""

from __future__ import annotations

import enum
from typing import Any

import torch

from lossgeometry.kernel import memory as _mem
from lossgeometry.kernel.rules.base import Factors, Materialized, Mode
from lossgeometry.problem import Problem

NOT_FINITE = "the tangent kernel has"
"""Prefix of the error a kernel with NaN/Inf entries raises."""


class KernelMethod(str, enum.Enum):
    """How a tangent kernel is computed; the value is the ``method=`` string.

    * ``STRUCTURED``: per-layer factorized rules (Linear, Conv1d/2d, Embedding, LayerNorm)
      plus exact Jacobians for parameters without a rule. Fastest for the dense kernel;
      memory per chunk ``O(b · k · Σ layer widths)``.
    * ``JACOBIAN``: per-sample Jacobians of all parameters (``vmap(jacrev)``) and their
      contraction — the PyTorch-tutorial approach, chunked. Memory ``O(b · k · p)``.
    * ``NTVP``: matrix-free NTK-vector products ``v ↦ J(Jᵀv)``; memory ``O(p + activations)``
      independent of ``nk``; building the dense kernel costs ``nk/m`` passes.
    * ``AUTO``: ``STRUCTURED`` or ``JACOBIAN``, whichever :mod:`~lossgeometry.kernel.cost`
      predicts faster; ``NTVP`` only when neither fits in memory.
    """

    AUTO = "auto"
    STRUCTURED = "structured"
    JACOBIAN = "jacobian"
    NTVP = "ntvp"


def resolve_method(method: str | KernelMethod) -> KernelMethod:
    """Parse ``method`` (a :class:`KernelMethod` or its string); ``AUTO`` reads as ``STRUCTURED``.

    ``tangent_kernel`` itself resolves ``AUTO`` by the cost model, once it knows the request.
    """
    try:
        m = KernelMethod(method)
    except ValueError:
        raise ValueError(
            f"unknown kernel method {method!r}: use one of {[m.value for m in KernelMethod]}"
        ) from None
    return KernelMethod.STRUCTURED if m is KernelMethod.AUTO else m


def chunk_size_for(
    problem: Problem,
    method: KernelMethod,
    ks: int,
    m: int,
    chunk_size: int | None,
    budget: int,
    plan: Any,
) -> int:
    """Samples per chunk so that one chunk's working memory stays within ``budget`` bytes.

    Per sample ``ks (3 a + 2 f) + e`` elements (structured: ``a`` probed activations, ``f``
    fallback parameters, ``e`` factor elements) or ``3 ks p`` (Jacobian), and ``4 ks²`` per
    pair of samples; halved from ``m`` until a chunk fits. A given ``chunk_size`` is checked.
    """
    item = torch.empty((), dtype=problem.dtype).element_size()
    if method is KernelMethod.STRUCTURED:
        per_sample = ks * (3 * plan.activation_elements + 2 * plan.fallback_size)
        per_sample += sum(e.per_sample_elements for e in plan.entries) * ks // max(problem.k, 1)
    else:  # jacobian
        per_sample = 3 * ks * problem.p
    per_sample *= item
    per_pair = 4 * ks * ks * item
    if chunk_size is not None:
        need = chunk_size * per_sample + chunk_size**2 * per_pair
        _mem.check_memory(
            need,
            f"a chunk of {chunk_size} samples (method={method.value!r})",
            budget,
            problem.device,
            "pass a smaller chunk_size, or method='ntvp'",
        )
        return int(chunk_size)
    b = m
    while b > 1 and b * per_sample + b * b * per_pair > budget:
        b = max(1, b // 2)
    if b * per_sample + b * b * per_pair > budget:
        _mem.check_memory(
            per_sample + per_pair,
            f"one sample's factors (method={method.value!r})",
            budget,
            problem.device,
            "use method='ntvp' (matrix-free) or a subset of outputs",
        )
    return b


def factor_bytes(problem: Problem, plan: Any, ks: int) -> int:
    """Estimated bytes of one sample's factors (``plan=None``: its Jacobian rows)."""
    item = torch.empty((), dtype=problem.dtype).element_size()
    if plan is None:
        return ks * problem.p * item
    per = sum(e.per_sample_elements for e in plan.entries) * ks // max(problem.k, 1)
    return (per + ks * plan.fallback_size) * item


def kernel_factors(
    problem: Problem,
    plan: Any,
    w: torch.Tensor,
    sel: torch.Tensor | None,
    samples: torch.Tensor,
) -> list[Factors]:
    """The factors of the chunk of global sample indices ``samples`` (this rank's own).

    ``plan=None``: the per-sample Jacobian of all counted parameters (one
    :class:`~lossgeometry.kernel.rules.base.Materialized`); else the plan's per-layer factors,
    with every materialized one (and the fallback's Jacobian) joined into one, so that a block
    takes one GEMM for them instead of one per layer.
    """
    from lossgeometry.kernel.rules.fallback import jacobian_factors
    from lossgeometry.kernel.structured import chunk_factors

    x, _ = problem.batch(problem.check_indices(samples))
    if plan is None:
        pdict = problem.param_dict(w)
        return [jacobian_factors(problem, pdict, problem.param_names, x, sel)]
    fs, fb = chunk_factors(problem, plan, w, x, sel)
    fs = fs + ([fb] if fb is not None else [])
    mats = [f.P for f in fs if isinstance(f, Materialized)]
    rest = [f for f in fs if not isinstance(f, Materialized)]
    return rest + ([Materialized(torch.cat(mats, dim=-1))] if mats else [])


def kernel_block(FI: list[Factors], FJ: list[Factors], mode: Mode) -> torch.Tensor:
    """``K[I, J] = Σ_layers K_layer[I, J]`` from two chunks' factors, in ``mode``.

    The first layer's block is allocated and every other layer is added to it in place.
    """
    total = None
    for fi, fj in zip(FI, FJ, strict=True):
        total = fi.block(fj, mode, out=total)  # type: ignore[arg-type]
    assert total is not None
    return total
