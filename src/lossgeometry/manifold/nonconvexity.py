"""Essential non-convexity of over-parameterized losses, and the convex contrast.

Liu, Zhu & Belkin (arXiv:2003.00307, §3): the loss of an over-parameterized non-linear
system is not convex in *any* neighbourhood of a global minimum. Three measurements:

(a) :func:`segment_loss` — the loss on the segment between two global minima. A convex loss
    is ≤ 0 there; a curved solution manifold makes the midpoint loss positive.

(b) :func:`negative_curvature_near` — points with a negative Hessian eigenvalue at every
    radius ``ρ`` around ``w*``. Derivation: at ``w = w* + ρ n`` with ``n`` a unit normal
    direction, ``r(w) = ρ J n + O(ρ²)`` and (``c`` = loss_scale)

        ``∇²L(w) = c (J(w)ᵀ J(w) + Σ_i r_i(w) ∇²F_i(w))``.

    For a tangent vector ``u ∈ ker J(w*)`` the first term is ``O(ρ²)``, so
    ``uᵀ ∇²L(w) u = c ρ (J n)ᵀ D²F(w*)[u, u] + O(ρ²)`` (``Σ_i r_i uᵀ∇²F_i u`` with
    ``r = ρ J n``). This is linear in ``n``. With ``a = D²F(w*)[t, t]`` for a unit tangent
    ``t``, choose ``n = −Jᵀ a / ‖Jᵀ a‖`` (a unit vector in ``range Jᵀ``, the normal space):
    ``(J n)ᵀ a = −aᵀ J Jᵀ a / ‖Jᵀ a‖ = −‖Jᵀ a‖``, hence

        ``λ_min(∇²L(w* + ρ n)) ≤ tᵀ ∇²L(w* + ρ n) t = −c ρ ‖Jᵀ a‖ + O(ρ²) < 0``

    whenever ``Jᵀ D²F[t, t] ≠ 0`` (it vanishes for a linear model, whose loss is convex):
    negative curvature at distance ``ρ`` for every small ``ρ``, of size ``∝ ρ``, certified
    by one Hessian-vector product (the Rayleigh quotient bounds ``λ_min`` from above).

(c) :func:`local_convexity` — the smallest Hessian eigenvalue at random points on spheres of
    radius ``ρ``: all non-negative around an isolated minimum with a positive definite
    Hessian (e.g. an under-parameterized model's least-squares minimum), negative at some
    points for every ``ρ`` around an over-parameterized interpolant.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np
import torch

from lossgeometry.linalg.arpack import eigsh_end
from lossgeometry.linalg.dense import DENSE_MAX_ORDER, symmetric_dense
from lossgeometry.manifold._linalg import as_float64, flat_w, require_mse
from lossgeometry.manifold.tangent import TangentSpace
from lossgeometry.operators.hessian import HessianOperator
from lossgeometry.operators.model_hessian import second_directional_derivative
from lossgeometry.problem import Problem
from lossgeometry.results import Result

__all__ = [
    "LocalConvexity",
    "NegativeCurvature",
    "SegmentLoss",
    "local_convexity",
    "negative_curvature_near",
    "segment_loss",
]

DEFAULT_RADII = (1e-1, 3e-2, 1e-2, 3e-3, 1e-3)


# ---------------------------------------------------------------------------- (a) segments
@dataclasses.dataclass(frozen=True)
class SegmentLoss(Result):
    """The loss on the segment ``w(s) = (1 − s) w_a + s w_b``, ``s ∈ [0, 1]``.

    Attributes:
        s: the positions.
        loss: ``L(w(s))`` (the Problem's normalization).
        distance: ``‖w_b − w_a‖``.
        midpoint_loss: ``L((w_a + w_b)/2)``.
        convexity_gap: ``max_s [L(w(s)) − ((1 − s) L(w_a) + s L(w_b))]``: positive means the
            loss lies above its chord, so it is not convex on the segment.
        convex_on_segment: ``convexity_gap ≤ tol`` with ``tol = 1e-12 · (1 + max L)`` plus
            the rounding of L.
    """

    s: np.ndarray
    loss: np.ndarray
    distance: float
    midpoint_loss: float
    convexity_gap: float
    convex_on_segment: bool

    def plot(self, ax: Any = None) -> Any:
        """The loss along the segment with its chord."""
        import matplotlib.pyplot as plt

        if ax is None:
            _, ax = plt.subplots(figsize=(5, 3.5))
        s = np.asarray(self.s)
        L = np.asarray(self.loss)
        ax.plot(s, L, "o-", ms=3, label="L((1−s) w_a + s w_b)")
        ax.plot([s[0], s[-1]], [L[0], L[-1]], "k--", lw=1, label="chord")
        ax.set_xlabel("s")
        ax.set_ylabel("loss")
        ax.set_title(f"midpoint loss {self.midpoint_loss:.3g} (‖w_b − w_a‖ = {self.distance:.3g})")
        ax.legend(fontsize=8)
        return ax


def segment_loss(
    problem: Problem, w_a: torch.Tensor, w_b: torch.Tensor, num: int = 21
) -> SegmentLoss:
    """The loss on the straight segment between two points (e.g. two global minima).

    Between two interpolants a convex loss would stay at 0; ``midpoint_loss > 0`` shows the
    set of minima is not convex. ``num`` is odd so that ``s = ½`` is sampled.
    """
    if num < 3:
        raise ValueError(f"num must be >= 3, got {num}")
    num = num + 1 if num % 2 == 0 else num
    p64 = as_float64(problem)
    a = flat_w(p64, w_a.to(torch.float64))
    b = flat_w(p64, w_b.to(torch.float64))
    s = np.linspace(0.0, 1.0, num)
    L = np.array([float(p64.loss((1 - si) * a + si * b)) for si in s])
    chord = (1 - s) * L[0] + s * L[-1]
    gap = float(np.max(L - chord))
    tol = 1e-12 * (1.0 + float(np.max(np.abs(L))))
    return SegmentLoss(
        s=s,
        loss=L,
        distance=float((b - a).norm()),
        midpoint_loss=float(L[num // 2]),
        convexity_gap=gap,
        convex_on_segment=gap <= tol,
    )


# ---------------------------------------------------------------------------- (b) near w*
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

    def plot(self, ax: Any = None) -> Any:
        """``|λ|`` found against the radius ``ρ`` (log–log) with the first-order prediction."""
        import matplotlib.pyplot as plt

        if ax is None:
            _, ax = plt.subplots(figsize=(5, 3.5))
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


def negative_curvature_near(
    problem: Problem,
    w_star: torch.Tensor,
    radii: tuple[float, ...] | list[float] | np.ndarray = DEFAULT_RADII,
    seed: int = 0,
    *,
    method: str = "auto",
    candidates: int = 4,
    space: TangentSpace | None = None,
) -> NegativeCurvature:
    """Find points with a negative loss-Hessian eigenvalue in shrinking balls around ``w*``.

    Construction (module docstring): pick the unit tangent direction ``t`` (best of
    ``candidates`` random ones) with the largest ``‖Jᵀ a‖``, ``a = D²F(w*)[t, t]``, and the
    unit normal direction ``n = −Jᵀ a / ‖Jᵀ a‖``. At ``w = w* + ρ n``,
    ``tᵀ ∇²L(w) t = −c ρ ‖Jᵀ a‖ + O(ρ²) < 0`` for small ``ρ``: one Hessian-vector product
    certifies a negative eigenvalue, for any ``p`` (matrix-free). With ``method="dense"``
    the exact ``λ_min(∇²L(w))`` is computed too.

    Args:
        problem: an MSE Problem (float64 copy used).
        w_star: an interpolating point.
        radii: distances to search.
        seed: seed of the candidate tangent directions.
        method: ``"dense"`` (also exact ``λ_min``), ``"rayleigh"`` (certificates only) or
            ``"auto"`` (dense for ``p ≤`` :data:`~lossgeometry.linalg.DENSE_MAX_ORDER`).
        candidates: random tangent directions tried for ``t``.
        space: a :class:`TangentSpace` at ``w*`` to reuse.

    Returns:
        A :class:`NegativeCurvature`. For a linear model ``D²F = 0``: nothing negative is
        found, its loss is convex.
    """
    require_mse(problem, "negative_curvature_near")
    p64 = as_float64(problem)
    w = flat_w(p64, w_star.to(torch.float64))
    rs = np.asarray(radii, dtype=float)
    if rs.ndim != 1 or rs.size == 0 or np.any(rs <= 0):
        raise ValueError("radii must be a non-empty list of positive distances")
    if method == "auto":
        method = "dense" if p64.p <= DENSE_MAX_ORDER else "rayleigh"
    if method not in ("dense", "rayleigh"):
        raise ValueError(f"method must be 'auto', 'dense' or 'rayleigh', got {method!r}")
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
    if method == "dense":
        scale = float(_eigenvalues(HessianOperator(p64, w))[-1])
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
        eig.append(float(_eigenvalues(H)[0]) if method == "dense" else q)
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
        certificate="exact" if method == "dense" else "rayleigh",
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


def _eigenvalues(H: HessianOperator) -> torch.Tensor:
    """All eigenvalues of the Hessian ``H``, ascending (dense float64, ``p`` products)."""
    return torch.linalg.eigvalsh(symmetric_dense(H))


# ---------------------------------------------------------------------------- (c) contrast
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

    def plot(self, ax: Any = None) -> Any:
        """Smallest Hessian eigenvalue per radius (symlog), zero marked."""
        import matplotlib.pyplot as plt

        if ax is None:
            _, ax = plt.subplots(figsize=(5, 3.5))
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


def local_convexity(
    problem: Problem,
    w: torch.Tensor,
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
    ev0 = _eigenvalues(HessianOperator(p64, w0))
    lmin0, lmax0 = float(ev0[0]), float(ev0.abs().max())
    g = torch.Generator(device="cpu").manual_seed(int(seed))
    U = torch.randn(p64.p, samples, generator=g, dtype=torch.float64).to(p64.device)
    U = U / U.norm(dim=0, keepdim=True)
    out = np.empty((rs.size, 2 * samples))
    for i, rho in enumerate(rs):
        for j in range(samples):
            for s, side in enumerate((1.0, -1.0)):
                wp = w0 + side * float(rho) * U[:, j]
                out[i, 2 * j + s] = float(_eigenvalues(HessianOperator(p64, wp))[0])
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
