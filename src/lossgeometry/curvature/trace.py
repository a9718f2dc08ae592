"""The trace of the loss Hessian (or its Gauss–Newton part) with a confidence interval.

``tr ∇²L(w)`` is the sum of all curvatures (the Laplacian of the loss). It is estimated from
Hessian-vector products: Hutchinson's estimator (Rademacher probes) or Hutch++ (a low-rank
sketch removes the few large eigenvalues first, then Hutchinson on the rest; far smaller
variance for Hessians, whose trace is dominated by a few outliers). Probes are multiplied in
blocks (one vectorized product per block). See :mod:`lossgeometry.linalg.hutchinson` for the
estimators and their intervals. ``estimator="exact"`` sums the diagonal of the dense Hessian
(``p`` products; small models only).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any, Literal

import torch

from lossgeometry._compat import deprecated_call_style
from lossgeometry.linalg.hutchinson import TraceEstimate, hutchinson, hutchpp
from lossgeometry.operators.hessian import Of, hessian_operator
from lossgeometry.problem import Problem


@dataclasses.dataclass(frozen=True)
class HessianTrace(TraceEstimate):
    """Trace of ``∇²L(w)`` (or the GGN) with a confidence interval.

    Attributes (besides those of :class:`~lossgeometry.linalg.TraceEstimate`: ``estimate``,
    ``ci_low``, ``ci_high``, ``stderr``, ``confidence``, ``method``, ``samples``, ``matvecs``,
    ``deflated``, ``values``):
        of: ``"loss"`` or ``"ggn"``.
        p: number of parameters.
        reduction: the Problem's reduction (the Hessian is that of ``problem.loss``).
    """

    of: str = "loss"
    p: int = 0
    reduction: str = "sum"

    @property
    def mean_curvature(self) -> float:
        """``tr(H)/p``: the average eigenvalue."""
        return self.estimate / self.p

    def summary(self) -> dict[str, Any]:
        """The estimate's scalars (:meth:`TraceEstimate.summary`), the mean curvature, ``p``."""
        return {
            **super().summary(),
            "mean_curvature": self.mean_curvature,
            "of": self.of,
            "p": self.p,
            "reduction": self.reduction,
        }


Estimator = Literal["hutch++", "hutchinson", "exact"]
"""The trace estimators of :func:`hessian_trace` (its ``estimator=``)."""


@deprecated_call_style(renamed={"method": "estimator"}, positional=("estimator", "samples"))
def hessian_trace(
    problem: Problem,
    w: torch.Tensor | None = None,
    *,
    estimator: Estimator = "hutch++",
    samples: int = 99,
    of: Of = "loss",
    seed: int = 0,
    confidence: float = 0.95,
    rtol: float | None = None,
    block: int = 16,
    dtype: torch.dtype | None = None,
    indices: Sequence[int] | torch.Tensor | None = None,
    chunk_size: int | None = None,
    progress: bool | None = None,
) -> HessianTrace:
    """Estimate ``tr ∇²L(w)`` (normalized like ``problem.loss``) with a confidence interval.

    Example (Hutch++ with 30 products against the exact diagonal sum, ``p = 50`` products):
        >>> import torch
        >>> import lossgeometry as lg
        >>> g = torch.Generator().manual_seed(0)
        >>> X = torch.randn(8, 3, generator=g, dtype=torch.float64)
        >>> Y = torch.randn(8, 2, generator=g, dtype=torch.float64)
        >>> problem = lg.Problem(lg.models.mlp(3, 8, 1, 2, seed=0).double(), X, Y)   # p = 50
        >>> t = lg.hessian_trace(problem, samples=30)
        >>> exact = lg.hessian_trace(problem, estimator="exact").estimate
        >>> t.covers(exact), t.matvecs, t.ci_low < t.estimate < t.ci_high
        (True, 30, True)

    Args:
        problem: the Problem.
        w: the point (default: the model's current parameters).
        estimator: ``"hutch++"`` (default; ``samples`` is the product budget, a third of it
            probes the deflated remainder), ``"hutchinson"`` (``samples`` probes) or
            ``"exact"`` (the dense diagonal, ``p`` products).
        samples: number of products (Hutch++) or probes (Hutchinson).
        of: ``"loss"`` or ``"ggn"``.
        seed: seed of the probes.
        confidence: coverage of the interval.
        rtol: Hutchinson only: stop once the half-width is ``≤ rtol·|estimate|``.
        block: probes per vectorized product.
        dtype: ``torch.float64`` for a reference computation.
        indices: the Hessian of a mini-batch.
        chunk_size: samples per chunk.
        progress: a progress bar.

    Returns:
        A :class:`HessianTrace` (its ``method`` field records the estimator).

    The former call style (``method``, ``samples`` by position; ``method=`` for the
    estimator) works for one release, with a :class:`DeprecationWarning`.
    """
    H = hessian_operator(
        problem, w, of=of, dtype=dtype, indices=indices, chunk_size=chunk_size, max_vectors=block
    )
    kw = {"seed": seed, "confidence": confidence, "block": block, "progress": progress}
    if estimator == "hutchinson":
        est = hutchinson(H, samples, rtol=rtol, **kw)
    elif estimator == "hutch++":
        if rtol is not None:
            raise ValueError("rtol applies to estimator='hutchinson' only; give Hutch++ a budget")
        est = hutchpp(H, samples, **kw)
    elif estimator == "exact":
        D = H.to_dense()
        tr = float(torch.diagonal(D).sum())
        est = TraceEstimate(tr, tr, tr, 0.0, confidence, "exact", 0, H.p, 0.0, None)
    else:
        raise ValueError(f"estimator must be 'hutch++', 'hutchinson' or 'exact', got {estimator!r}")
    fields = {f.name: getattr(est, f.name) for f in dataclasses.fields(TraceEstimate)}
    fields["matvecs"] = H.matvecs
    return HessianTrace(**fields, of=of, p=H.p, reduction=problem.reduction)
