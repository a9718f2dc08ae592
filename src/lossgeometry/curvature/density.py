"""The spectral density of the loss Hessian by stochastic Lanczos quadrature (SLQ).

``φ(t) = (1/p) Σ_j δ(t − λ_j)`` over the ``p`` eigenvalues of ``∇²L(w)``, estimated from
``probes`` random start vectors with ``steps`` Lanczos steps each and smoothed by a Gaussian of
width ``sigma``; see :mod:`lossgeometry.linalg.slq` for the method and why it integrates to
one. The estimate keeps its quadrature nodes and weights, so it can be re-smoothed or
re-gridded without new products (:meth:`HessianDensity.evaluate`).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from lossgeometry._compat import deprecated_call_style
from lossgeometry._plotting import axes_or_new
from lossgeometry.linalg.slq import default_grid, gaussian_density, slq_nodes
from lossgeometry.operators.hessian import Of, hessian_operator
from lossgeometry.problem import Problem
from lossgeometry.results import Result


@dataclasses.dataclass(frozen=True)
class HessianDensity(Result):
    """SLQ estimate of the Hessian's spectral density.

    Attributes:
        grid: points ``t`` where the density was evaluated.
        density: ``φ̂(t)`` on ``grid`` (integrates to one over the real line).
        sigma: Gaussian smoothing width (in eigenvalue units).
        nodes: quadrature nodes ``θ`` (Ritz values), shape ``(probes, steps)``.
        weights: quadrature weights ``τ`` (each row sums to one), same shape.
        probes: number of random start vectors.
        steps: Lanczos steps per probe.
        matvecs: Hessian-vector products used (``probes · steps``).
        of: ``"loss"`` or ``"ggn"``.
        p: number of parameters.
        reduction: the Problem's loss reduction.
    """

    grid: np.ndarray
    density: np.ndarray
    sigma: float
    nodes: np.ndarray
    weights: np.ndarray
    probes: int
    steps: int
    matvecs: int
    of: str
    p: int
    reduction: str

    def evaluate(self, grid: np.ndarray | None = None, sigma: float | None = None) -> np.ndarray:
        """Evaluate the smoothed density on another ``grid`` and/or with another ``sigma``."""
        g = self.grid if grid is None else np.asarray(grid, dtype=float)
        return gaussian_density(
            np.asarray(self.nodes), np.asarray(self.weights), g, sigma or self.sigma
        )

    def cdf(self, t: np.ndarray | float) -> np.ndarray:
        """Return the (unsmoothed) quadrature estimate of the spectral CDF ``#{λ_j ≤ t}/p``."""
        t = np.atleast_1d(np.asarray(t, dtype=float))
        nodes, weights = np.asarray(self.nodes), np.asarray(self.weights)
        return np.array([(weights * (nodes <= s)).sum() / nodes.shape[0] for s in t])

    def moment(self, j: int) -> float:
        """``tr(H^j)/p`` estimated by the quadrature: ``mean_l Σ_k τ_k θ_k^j``."""
        nodes, weights = np.asarray(self.nodes), np.asarray(self.weights)
        return float((weights * nodes**j).sum() / nodes.shape[0])

    @property
    def trace_estimate(self) -> float:
        """``tr(H) ≈ p · Σ τ θ`` (the SLQ trace estimate)."""
        return self.p * self.moment(1)

    def summary(self) -> dict[str, Any]:
        """Headline scalars: the spectrum's support, the SLQ trace, the settings and cost."""
        nodes = np.asarray(self.nodes, dtype=float)
        return {
            "support_min": float(nodes.min()),
            "support_max": float(nodes.max()),
            "trace_estimate": self.trace_estimate,
            "sigma": self.sigma,
            "probes": self.probes,
            "steps": self.steps,
            "matvecs": self.matvecs,
            "of": self.of,
            "p": self.p,
            "reduction": self.reduction,
        }

    def plot(self, ax: Any = None, *, log: bool = True, label: str | None = None, **kw: Any) -> Any:
        """Plot the density (log scale by default, as is customary for Hessians).

        On a log scale the density is floored at ``1e-12 · max`` (it is ``≈ 0`` far from the
        nodes). ``kw`` goes to ``ax.plot``. Returns the Axes.
        """
        ax = axes_or_new(ax, (6, 3.5))
        d = np.asarray(self.density)
        if log:
            floor = max(d.max() * 1e-12, 1e-300)
            ax.semilogy(self.grid, np.maximum(d, floor), label=label, **kw)
        else:
            ax.plot(self.grid, d, label=label, **kw)
        ax.set_xlabel(f"eigenvalue of {'∇²L' if self.of == 'loss' else 'GGN'}")
        ax.set_ylabel("density")
        if label is not None:
            ax.legend()
        return ax


@deprecated_call_style(positional=("probes", "steps"))
def hessian_density(
    problem: Problem,
    w: torch.Tensor | None = None,
    *,
    probes: int = 8,
    steps: int = 80,
    sigma: float | None = None,
    grid: np.ndarray | int = 1000,
    of: Of = "loss",
    seed: int = 0,
    reorthogonalize: bool = True,
    dtype: torch.dtype | None = None,
    indices: Sequence[int] | torch.Tensor | None = None,
    chunk_size: int | None = None,
    max_vectors: int | None = 16,
    progress: bool | None = None,
) -> HessianDensity:
    """Spectral density of ``∇²L(w)`` (normalized like ``problem.loss``) by SLQ.

    Example (the density integrates to one; its first moment is the trace over ``p``):
        >>> import torch
        >>> import lossgeometry as lg
        >>> g = torch.Generator().manual_seed(0)
        >>> X = torch.randn(8, 3, generator=g, dtype=torch.float64)
        >>> Y = torch.randn(8, 2, generator=g, dtype=torch.float64)
        >>> problem = lg.Problem(lg.models.mlp(3, 8, 1, 2, seed=0).double(), X, Y)   # p = 50
        >>> dens = lg.hessian_density(problem, probes=4, steps=20)
        >>> import numpy as np
        >>> round(float(np.trapezoid(dens.density, dens.grid)), 6), dens.matvecs
        (1.0, 80)
        >>> ax = dens.plot()                                      # log scale; returns the Axes
        >>> ax.get_yscale(), bool((ax.lines[0].get_xdata() == dens.grid).all())
        ('log', True)
        >>> import matplotlib.pyplot as plt
        >>> plt.close(ax.figure)

    Args:
        problem: the Problem.
        w: the point (default: the model's current parameters).
        probes: random start vectors (their Lanczos runs share vectorized products).
        steps: Lanczos steps per start vector (the quadrature is exact for polynomials of
            degree ``2·steps − 1``).
        sigma: Gaussian width; default ``0.01 · (max θ − min θ)``.
        grid: an array of points, or the number of points of an even grid over the nodes'
            range padded by ``5σ``.
        of: ``"loss"`` or ``"ggn"``.
        seed: seed of the start vectors.
        reorthogonalize: full reorthogonalization (memory ``probes·steps·p``; recommended).
        dtype: ``torch.float64`` for a reference computation.
        indices: the Hessian of a mini-batch.
        chunk_size: samples per chunk.
        max_vectors: vectors per vectorized product (``probes`` at most is useful).
        progress: a progress bar over Lanczos steps.

    Returns:
        A :class:`HessianDensity`.

    Passing ``probes`` and ``steps`` by position (the former call style) works for one
    release, with a :class:`DeprecationWarning`.
    """
    H = hessian_operator(
        problem,
        w,
        of=of,
        dtype=dtype,
        indices=indices,
        chunk_size=chunk_size,
        max_vectors=max_vectors,
    )
    nodes, weights, _ = slq_nodes(
        H,
        probes=probes,
        steps=steps,
        seed=seed,
        reorthogonalize=reorthogonalize,
        progress=progress,
    )
    if sigma is None:
        span = float(nodes.max() - nodes.min())
        sigma = 0.01 * span if span > 0 else max(abs(float(nodes.max())), 1.0) * 1e-3
    if isinstance(grid, (int, np.integer)):
        g = default_grid(nodes, sigma, int(grid))
    else:
        g = np.asarray(grid, dtype=float)
    dens = gaussian_density(nodes, weights, g, sigma)
    return HessianDensity(
        grid=g,
        density=dens,
        sigma=float(sigma),
        nodes=nodes,
        weights=weights,
        probes=probes,
        steps=nodes.shape[1],
        matvecs=H.matvecs,
        of=of,
        p=H.p,
        reduction=problem.reduction,
    )
