"""Negative curvature arbitrarily close to a global minimum, certified matrix-free.

Measurement (b) of :mod:`lossgeometry.manifold.nonconvexity` (the derivation is there): at
``w* + ρ n`` with ``n = −Jᵀ a/‖Jᵀ a‖``, ``a = D²F(w*)[t, t]`` for a unit tangent ``t``,
``tᵀ∇²L t = −c ρ ‖Jᵀ a‖ + O(ρ²) < 0``: one Hessian-vector product proves a negative
eigenvalue at distance ``ρ``.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np
import torch

from lossgeometry._compat import deprecated_call_style
from lossgeometry._plotting import axes_or_new
from lossgeometry.linalg.arpack import eigsh_end
from lossgeometry.linalg.dense import DENSE_MAX_ORDER, symmetric_dense
from lossgeometry.manifold._linalg import as_float64, flat_w, require_mse
from lossgeometry.manifold.tangent import TangentSpace
from lossgeometry.operators.hessian import HessianOperator
from lossgeometry.operators.model_hessian import second_directional_derivative
from lossgeometry.problem import Problem
from lossgeometry.results import Result

__all__ = ["DEFAULT_RADII", "NegativeCurvature", "hessian_eigenvalues", "negative_curvature_near"]

DEFAULT_RADII = (1e-1, 3e-2, 1e-2, 3e-3, 1e-3)
"""Distances ``ρ`` searched by default (shrinking: the curvature found scales like ``ρ``)."""


@dataclasses.dataclass(frozen=True)
class NegativeCurvature(Result):
    """Negative Hessian eigenvalues found at shrinking distances ``ρ`` from ``w*``.

    Attributes:
        radii: the distances ``ρ`` searched: the points are ``w* + ρ n`` with a unit normal
            direction ``n`` (so ``‖w − w*‖ = ρ``).
        rayleigh: per radius, ``tᵀ ∇²L(w) t`` for the unit tangent direction ``t`` (one
            Hessian-vector product): an upper bound on ``λ_min(∇²L(w))``, so a negative value
            *proves* a negative eigenvalue at distance ``ρ``.
        eigenvalue: per radius, the exact ``λ_min(∇²L(w))`` (dense route), else equal to
            ``rayleigh``.
        point_loss: ``L(w)`` at each point (``≈ ½ c ρ² ‖J n‖²``).
        certificate: ``"exact"`` (dense eigensolver) or ``"rayleigh"``.
        predicted_slope: ``−c ‖Jᵀ D²F(w*)[t, t]‖``, the first-order prediction
            ``rayleigh ≈ predicted_slope · ρ`` (module docstring).
        lambda_scale: ``λ_max(∇²L(w*))``: dense eigensolver, ``c σ_max(J)²`` (equal at an
            interpolant) or ARPACK.
        tol: values below ``−tol`` count as negative, ``tol = p · ε · λ_max`` (rounding).
        found: whether a negative value (``< −tol``) was found at every radius.
        exponent: fitted slope of ``log |eigenvalue|`` against ``log ρ`` (≈ 1); ``None`` if
            fewer than 3 radii gave negative values.

    A result computed in this session also carries ``normal_direction`` (``n``) and
    ``tangent_direction`` (``t``) as tensors (not serialized).
    """

    radii: np.ndarray
    rayleigh: np.ndarray
    eigenvalue: np.ndarray
    point_loss: np.ndarray
    certificate: str
    predicted_slope: float
    lambda_scale: float
    tol: float
    found: bool
    exponent: float | None

    def summary(self) -> dict[str, Any]:
        """Headline scalars: found at every radius?, the slope, the most negative value."""
        e = np.asarray(self.eigenvalue, dtype=float)
        r = np.asarray(self.radii, dtype=float)
        return {
            "found": self.found,
            "exponent": self.exponent,
            "most_negative": float(e.min()),
            "eigenvalue_at_smallest_radius": float(e[np.argmin(r)]),
            "smallest_radius": float(r.min()),
            "radii": int(r.size),
            "predicted_slope": self.predicted_slope,
            "lambda_scale": self.lambda_scale,
            "certificate": self.certificate,
            "tol": self.tol,
        }

    def plot(self, ax: Any = None) -> Any:
        """``|λ|`` found against the radius ``ρ`` (log–log) with the first-order prediction."""
        ax = axes_or_new(ax, (5, 3.5))
        r = np.asarray(self.radii)
        e = np.asarray(self.eigenvalue)
        q = np.asarray(self.rayleigh)
        neg = e < -self.tol
        if self.certificate == "exact":
            ax.loglog(r[neg], -e[neg], "o-", label="−λ_min(∇²L(w* + ρn))")
        qn = q < -self.tol
        ax.loglog(r[qn], -q[qn], "s--", ms=4, label="−tᵀ∇²L t (certificate)")
        if self.predicted_slope < 0:
            ax.loglog(r, -self.predicted_slope * r, "k:", lw=1, label="first-order prediction")
        ax.set_xlabel("radius ρ = ‖w − w*‖")
        ax.set_ylabel("negative curvature")
        ex = "—" if self.exponent is None else f"{self.exponent:.2f}"
        ax.set_title(f"negative curvature near w* (slope {ex})")
        ax.legend(fontsize=8)
        return ax


@deprecated_call_style(renamed={"w_star": "w", "method": "solver"}, positional=("radii", "seed"))
def negative_curvature_near(
    problem: Problem,
    w: torch.Tensor,
    *,
    radii: tuple[float, ...] | list[float] | np.ndarray = DEFAULT_RADII,
    seed: int = 0,
    solver: str = "auto",
    candidates: int = 4,
    space: TangentSpace | None = None,
) -> NegativeCurvature:
    """Find points with a negative loss-Hessian eigenvalue in shrinking balls around ``w*``.

    Construction (module docstring): pick the unit tangent direction ``t`` (best of
    ``candidates`` random ones) with the largest ``‖Jᵀ a‖``, ``a = D²F(w*)[t, t]``, and the
    unit normal direction ``n = −Jᵀ a / ‖Jᵀ a‖``. At ``w = w* + ρ n``,
    ``tᵀ ∇²L(w) t = −c ρ ‖Jᵀ a‖ + O(ρ²) < 0`` for small ``ρ``: one Hessian-vector product
    certifies a negative eigenvalue, for any ``p`` (matrix-free). With ``solver="dense"``
    the exact ``λ_min(∇²L(w))`` is computed too.

    Args:
        problem: an MSE Problem (float64 copy used).
        w: an interpolating point ``w*``.
        radii: distances to search.
        seed: seed of the candidate tangent directions.
        solver: ``"dense"`` (also exact ``λ_min``), ``"rayleigh"`` (certificates only) or
            ``"auto"`` (dense for ``p ≤`` :data:`~lossgeometry.linalg.DENSE_MAX_ORDER`).
        candidates: random tangent directions tried for ``t``.
        space: a :class:`TangentSpace` at ``w*`` to reuse.

    Returns:
        A :class:`NegativeCurvature`. For a linear model ``D²F = 0``: nothing negative is
        found, its loss is convex.

    The former call style (``w_star=``; ``radii``, ``seed`` by position; ``method=`` for the
    solver) works for one release, with a :class:`DeprecationWarning`.
    """
    require_mse(problem, "negative_curvature_near")
    p64 = as_float64(problem)
    w = flat_w(p64, w.to(torch.float64))
    rs = np.asarray(radii, dtype=float)
    if rs.ndim != 1 or rs.size == 0 or np.any(rs <= 0):
        raise ValueError("radii must be a non-empty list of positive distances")
    if solver == "auto":
        solver = "dense" if p64.p <= DENSE_MAX_ORDER else "rayleigh"
    if solver not in ("dense", "rayleigh"):
        raise ValueError(f"solver must be 'auto', 'dense' or 'rayleigh', got {solver!r}")
    if candidates < 1:
        raise ValueError(f"candidates must be >= 1, got {candidates}")
    if space is None:
        space = TangentSpace(p64, w)
    c = p64.loss_scale
    T = space.sample_tangent(candidates, seed=seed, orthonormal=False)
    best_t, best_g, best_norm = T[:, 0], torch.zeros_like(w), -1.0
    for j in range(T.shape[1]):
        t = T[:, j]
        a = second_directional_derivative(p64, w, t)
        g = p64.vjp(w, a.reshape(p64.n, p64.k))
        if float(g.norm()) > best_norm:
            best_t, best_g, best_norm = t, g, float(g.norm())
    if best_norm > 0:
        n = -best_g / best_norm
    else:  # D²F[t, t] ⟂ range J for every candidate (e.g. a linear model): any normal direction
        n = space.sample_normal(1, seed=seed + 1)[:, 0]
    if solver == "dense":
        scale = float(hessian_eigenvalues(HessianOperator(p64, w))[-1])
    elif space.method == "dense":  # at an interpolant ∇²L = c JᵀJ, so λ_max = c σ_max²
        scale = c * float(space.S[0]) ** 2
    else:  # ARPACK, a few dozen products
        H0 = HessianOperator(p64, w)
        scale = float(eigsh_end(H0, 1, "LA", v0=0, tol=1e-3, vectors=False)[0][-1])
    tol = p64.p * float(np.finfo(float).eps) * abs(scale)
    ray, eig, losses = [], [], []
    for rho in rs:
        wp = w + float(rho) * n
        H = HessianOperator(p64, wp)
        q = float(best_t @ (H @ best_t))
        ray.append(q)
        eig.append(float(hessian_eigenvalues(H)[0]) if solver == "dense" else q)
        losses.append(float(p64.loss(wp)))
    e = np.asarray(eig)
    neg = e < -tol
    exponent = None
    if neg.sum() >= 3:
        exponent = float(np.polyfit(np.log(rs[neg]), np.log(-e[neg]), 1)[0])
    result = NegativeCurvature(
        radii=rs,
        rayleigh=np.asarray(ray),
        eigenvalue=e,
        point_loss=np.asarray(losses),
        certificate="exact" if solver == "dense" else "rayleigh",
        predicted_slope=-c * best_norm,
        lambda_scale=float(scale),
        tol=tol,
        found=bool(neg.all()),
        exponent=exponent,
    )
    # the directions, for reuse in this session (not serialized: p numbers each)
    object.__setattr__(result, "normal_direction", n)
    object.__setattr__(result, "tangent_direction", best_t)
    return result


def hessian_eigenvalues(H: HessianOperator) -> torch.Tensor:
    """All eigenvalues of the Hessian ``H``, ascending (dense float64, ``p`` products)."""
    return torch.linalg.eigvalsh(symmetric_dense(H))
