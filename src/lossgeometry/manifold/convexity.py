"""The convex contrast: the smallest Hessian eigenvalue on spheres around a point.

Measurement (c) of :mod:`lossgeometry.manifold.nonconvexity`: around an isolated minimum
with ``∇²L ≻ 0`` (an under-parameterized model's least-squares minimum) every sampled
``λ_min(∇²L)`` is non-negative for small radii; around an over-parameterized interpolant
some are negative at every radius.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np
import torch

from lossgeometry._compat import deprecated_call_style
from lossgeometry._plotting import axes_or_new
from lossgeometry.linalg.dense import DENSE_MAX_ORDER
from lossgeometry.manifold._linalg import as_float64, flat_w
from lossgeometry.manifold.curvature_near import DEFAULT_RADII, hessian_eigenvalues
from lossgeometry.operators.hessian import HessianOperator
from lossgeometry.problem import Problem
from lossgeometry.results import Result

__all__ = ["LocalConvexity", "local_convexity"]


@dataclasses.dataclass(frozen=True)
class LocalConvexity(Result):
    """The smallest loss-Hessian eigenvalue at random points on spheres around ``w``.

    Attributes:
        radii: sphere radii ``ρ``.
        lambda_min: ``(len(radii), 2·samples)`` exact ``λ_min(∇²L)`` at ``w ± ρ u_j`` for
            ``samples`` random unit directions ``u_j``. Both signs: near an interpolant the
            first-order change of the Hessian on ``ker J`` is linear in the displacement, so
            if ``+u`` bends one way, ``−u`` bends the other.
        lambda_min_center: ``λ_min(∇²L(w))``.
        lambda_max_center: ``λ_max(∇²L(w))``.
        tol: values ``≥ −tol`` count as non-negative, ``tol = p · ε · λ_max`` (rounding).
        min_per_radius: ``min_j λ_min`` per radius.
        convex_per_radius: per radius, whether every sampled point has ``λ_min ≥ −tol``.
        convex_radius: the largest radius ``ρ`` such that ``w`` and every sampled sphere of
            radius ``≤ ρ`` showed no negative eigenvalue (``None`` if even the smallest
            failed). Evidence from samples, not a proof; a negative value *is* a proof.
        convex: ``convex_radius is not None``: a convex neighbourhood was seen (around an
            isolated minimum with ``∇²L ≻ 0``), as opposed to negative curvature at every
            radius (an over-parameterized interpolant).
    """

    radii: np.ndarray
    lambda_min: np.ndarray
    lambda_min_center: float
    lambda_max_center: float
    tol: float
    min_per_radius: np.ndarray
    convex_per_radius: np.ndarray
    convex_radius: float | None
    convex: bool

    def summary(self) -> dict[str, Any]:
        """Headline scalars: the verdict, the convex radius, the smallest value sampled."""
        lm = np.asarray(self.lambda_min, dtype=float)
        return {
            "convex": self.convex,
            "convex_radius": self.convex_radius,
            "lambda_min": float(lm.min()),
            "lambda_min_center": self.lambda_min_center,
            "lambda_max_center": self.lambda_max_center,
            "radii": int(lm.shape[0]),
            "points_per_radius": int(lm.shape[1]),
            "tol": self.tol,
        }

    def plot(self, ax: Any = None) -> Any:
        """Smallest Hessian eigenvalue per radius (symlog), zero marked."""
        ax = axes_or_new(ax, (5, 3.5))
        r = np.asarray(self.radii)
        lm = np.asarray(self.lambda_min)
        for j in range(lm.shape[1]):
            ax.plot(r, lm[:, j], ".", color="0.6", ms=3)
        ax.plot(r, self.min_per_radius, "o-", label="min over samples")
        ax.axhline(0.0, color="k", lw=0.8)
        ax.set_xscale("log")
        ax.set_yscale("symlog", linthresh=max(self.tol, 1e-12))
        ax.set_xlabel("radius ρ")
        ax.set_ylabel("λ_min(∇²L)")
        title = (
            f"convex up to ρ = {self.convex_radius:g}"
            if self.convex
            else "negative curvature at every radius"
        )
        ax.set_title(title)
        ax.legend(fontsize=8)
        return ax


@deprecated_call_style(positional=("radii", "samples", "seed"))
def local_convexity(
    problem: Problem,
    w: torch.Tensor,
    *,
    radii: tuple[float, ...] | list[float] | np.ndarray = DEFAULT_RADII,
    samples: int = 8,
    seed: int = 0,
) -> LocalConvexity:
    """Sample ``λ_min(∇²L)`` on spheres around ``w`` (dense Hessians, ``p ≤`` ``DENSE_MAX_ORDER``).

    Around an isolated minimum with ``∇²L(w) ≻ 0`` every sampled value is positive for small
    ``ρ`` (``convex_radius`` says how far; the contrast case: an under-parameterized model);
    around an over-parameterized interpolant some are negative at every ``ρ``.

    Raises:
        ValueError: ``p`` too large for dense Hessians (use
            :func:`negative_curvature_near`, which is matrix-free), or bad radii.

    Passing ``radii``, ``samples`` or ``seed`` by position (the former call style) works for
    one release, with a :class:`DeprecationWarning`.
    """
    p64 = as_float64(problem)
    if p64.p > DENSE_MAX_ORDER:
        raise ValueError(
            f"local_convexity builds dense Hessians; p = {p64.p} > {DENSE_MAX_ORDER}. Use "
            "lg.negative_curvature_near (matrix-free) for large models"
        )
    w0 = flat_w(p64, w.to(torch.float64))
    rs = np.asarray(radii, dtype=float)
    if rs.ndim != 1 or rs.size == 0 or np.any(rs <= 0):
        raise ValueError("radii must be a non-empty list of positive distances")
    if samples < 1:
        raise ValueError(f"samples must be >= 1, got {samples}")
    ev0 = hessian_eigenvalues(HessianOperator(p64, w0))
    lmin0, lmax0 = float(ev0[0]), float(ev0.abs().max())
    g = torch.Generator(device="cpu").manual_seed(int(seed))
    U = torch.randn(p64.p, samples, generator=g, dtype=torch.float64).to(p64.device)
    U = U / U.norm(dim=0, keepdim=True)
    out = np.empty((rs.size, 2 * samples))
    for i, rho in enumerate(rs):
        for j in range(samples):
            for s, side in enumerate((1.0, -1.0)):
                wp = w0 + side * float(rho) * U[:, j]
                out[i, 2 * j + s] = float(hessian_eigenvalues(HessianOperator(p64, wp))[0])
    tol = p64.p * float(np.finfo(float).eps) * max(lmax0, 1e-300)
    per = (out >= -tol).all(axis=1)
    radius = None
    if lmin0 >= -tol:
        for i in np.argsort(rs):
            if not per[i]:
                break
            radius = float(rs[i])
    return LocalConvexity(
        radii=rs,
        lambda_min=out,
        lambda_min_center=float(lmin0),
        lambda_max_center=float(lmax0),
        tol=tol,
        min_per_radius=out.min(axis=1),
        convex_per_radius=per.astype(float),
        convex_radius=radius,
        convex=radius is not None,
    )
