r"""The generic fallback: exact per-sample Jacobians of the outputs w.r.t. a parameter subset.

For parameters no structured rule covers (a layer without a rule, a weight shared between
layers, a call without a leading batch dimension, ``method="jacobian"``), the per-sample
Jacobian ``P_i = ∂f(x_i)/∂θ ∈ R^{ks × p_θ}`` is formed with ``torch.func.vmap(jacrev(...))``
over the samples of a chunk (a Python loop over samples where the model has no ``vmap``
batching rule), restricted to those parameters only; the kernel contribution is ``P Pᵀ``
(:class:`~lossgeometry.kernel.rules.base.Materialized`). Cost ``O(b · ks · backward)`` per
chunk and ``O(ks² p_θ)`` per pair of samples; memory ``b · ks · p_θ`` per chunk.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import torch
from torch.func import jacrev, vmap

from lossgeometry.kernel.rules.base import Materialized
from lossgeometry.problem import Inputs, input_count, map_inputs

if TYPE_CHECKING:
    from lossgeometry.problem import Problem


def jacobian_factors(
    problem: Problem,
    pdict: dict[str, torch.Tensor],
    names: Sequence[str],
    x: Inputs,
    sel: torch.Tensor | None,
) -> Materialized:
    """Per-sample Jacobians ``(b, ks, Σ p_θ)`` of the outputs ``sel`` w.r.t. ``names``.

    Args:
        problem: the problem (its functional forward is used).
        pdict: all counted parameters at the current point, ``name -> tensor``.
        names: the parameters to differentiate (in flat-vector order).
        x: a chunk of inputs ``(b, ...)``.
        sel: output indices (``None``: all ``k``).
    """
    sub = {n: pdict[n] for n in names}
    rest = {n: t for n, t in pdict.items() if n not in sub}

    def f(sub_: dict[str, torch.Tensor], xi: Inputs) -> torch.Tensor:
        xb = map_inputs(lambda t: t.unsqueeze(0), xi)  # one sample as a batch of one
        out = problem.forward_with({**rest, **sub_}, xb).reshape(-1)
        return out if sel is None else out[sel]

    b = input_count(x)
    try:
        J = vmap(jacrev(f), in_dims=(None, 0))(sub, x)
    except RuntimeError as e:  # no batching rule for an op: loop over the samples
        if "vmap" not in str(e) and "batch" not in str(e).lower():
            raise
        rows = [jacrev(f)(sub, map_inputs(lambda t, i=i: t[i], x)) for i in range(b)]
        J = {n: torch.stack([r[n] for r in rows]) for n in names}
    ks = J[names[0]].shape[1]
    return Materialized(torch.cat([J[n].reshape(b, ks, -1) for n in names], dim=-1).detach())
