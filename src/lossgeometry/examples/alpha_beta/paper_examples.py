"""The α-β paper's Examples 1–3 and the d-dimensional families of Examples 1 and 2 (Remark 1).

Derivations of the minimizer sets and of Example 1's exact region: the docstring of
:mod:`lossgeometry.examples.alpha_beta` and of each function.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import numpy as np
import torch

from lossgeometry.examples.alpha_beta.check import AlphaBetaExample

__all__ = ["bumps_family", "example_1", "example_2", "example_3", "ridge_family"]


# ---------------------------------------------------------------------- Example 1 and ridges
def _g(s: torch.Tensor) -> torch.Tensor:
    return s**2 / (s**2 + 1)


def _ex1_polynomial_ok(alpha: float, beta: float, tol: float = 1e-12) -> bool:
    """Whether ``P(u) = (5β−4α)u⁴ + (5β−3α+10)u² + 5u + α ≥ 0`` on ``R`` (and α > β ≥ 0)."""
    if not (alpha > beta >= 0):
        return False
    c4, c2, c1, c0 = 5 * beta - 4 * alpha, 5 * beta - 3 * alpha + 10, 5.0, alpha
    if c4 < 0:
        return False
    if c4 == 0:
        return c2 > 0 and c1**2 - 4 * c2 * c0 <= 0
    crit = np.roots([4 * c4, 0.0, 2 * c2, c1])
    crit = crit[np.abs(crit.imag) < 1e-9].real
    vals = c4 * crit**4 + c2 * crit**2 + c1 * crit + c0
    return bool(np.all(vals >= -tol))


def _ex1_exact(A: np.ndarray, B: np.ndarray) -> np.ndarray:
    return np.vectorize(_ex1_polynomial_ok, otypes=[bool])(A, B)


def _ex1_claimed(A: np.ndarray, B: np.ndarray) -> np.ndarray:
    return (A >= 2.5) & (B >= 0.8 * A) & (B < A)


def _ridge_points(direction: np.ndarray, shift: float) -> Callable[[int, int], np.ndarray]:
    """Points whose ``u = ⟨a, x⟩`` covers ``[−10⁴, 10⁴]`` densely near ``S`` and sparsely far."""
    a = direction
    d = a.size

    def sample(count: int, seed: int) -> np.ndarray:
        rng = np.random.default_rng(seed)
        half = count // 2
        near = np.linspace(-12.0, 12.0, half)
        far = np.geomspace(1e-3, 1e4, count - half) * np.where(np.arange(count - half) % 2, 1, -1)
        u = np.concatenate([near, far]) + shift
        X = rng.normal(size=(count, d))
        X -= np.outer(X @ a / (a @ a), a)  # component along a removed
        return X + np.outer(u / (a @ a), a)

    return sample


def ridge_family(dim: int = 2, direction: Sequence[float] | None = None) -> AlphaBetaExample:
    """Example 1 along a direction ``a`` in ``R^dim`` (Remark 1).

    ``f_1 = g(⟨a, x⟩)``, ``f_2 = g(⟨a, x⟩ + 1)``, ``S = {⟨a, x⟩ = −½}`` (a hyperplane).

    ``⟨∇f_i(x), x − x_p⟩ = g'(·)(u + ½)`` with ``u = ⟨a, x⟩`` whatever ``a`` and ``dim``, so the
    region is Example 1's for every direction and dimension.
    """
    a = np.ones(dim) if direction is None else np.asarray(direction, dtype=float).reshape(-1)
    if a.size != dim or not np.any(a):
        raise ValueError(f"direction must be a non-zero vector of length dim={dim}")
    at = torch.as_tensor(a)

    def losses(x: torch.Tensor) -> torch.Tensor:
        u = x @ at
        return torch.stack([_g(u), _g(u + 1)], dim=1)

    def project(x: np.ndarray) -> np.ndarray:
        u = x @ a
        return x - np.outer((u + 0.5) / (a @ a), a)

    name = "example_1" if dim == 2 and direction is None else f"ridge_family(d={dim})"
    return AlphaBetaExample(
        name=name,
        description="unbounded minimizer set: f1 = g(<a,x>), f2 = g(<a,x>+1), g(s)=s²/(s²+1)",
        dim=dim,
        n=2,
        losses=losses,
        f_star=np.zeros(2),
        project=project,
        minimizers="the hyperplane <a, x> = -1/2",
        f_min=0.2,
        sample_points=_ridge_points(a, -0.5),
        claimed_region=_ex1_claimed,
        exact_region=_ex1_exact,
        special_points={"minimizer": -0.5 * a / (a @ a)},
    )


def example_1() -> AlphaBetaExample:
    """The paper's Example 1 (unbounded ``S``); see the module docstring for the regions."""
    return ridge_family(2)


# ---------------------------------------------------------------------- Example 2 and bumps
def bumps_family(dim: int = 2, spacing: float = 2.0) -> AlphaBetaExample:
    """Two Gaussian bumps in ``R^dim`` (Example 2 in d dimensions, Remark 1).

    ``f_1 = 1 − exp(−‖x‖²)``, ``f_2 = 1 − exp(−‖x − c‖²)``, ``c = spacing · (1, …, 1)``.

    ``S`` is two points ``t*·1`` and ``c − t*·1`` on the diagonal, where ``t*`` is the root
    near 0 of ``t e^{−d t²} = (s − t) e^{−d (s − t)²}`` (stationarity along the diagonal; by the
    reflection symmetries the minimizers lie on it). The midpoint ``c/2`` is a saddle when the
    bumps are far enough apart (``d s² > 2``).
    """
    from scipy.optimize import brentq

    if dim < 1 or spacing <= 0:
        raise ValueError("dim must be >= 1 and spacing > 0")
    c = np.full(dim, float(spacing))
    ct = torch.as_tensor(c)

    def h(t: float) -> float:
        s = spacing
        return t * math.exp(-dim * t * t) - (s - t) * math.exp(-dim * (s - t) ** 2)

    if h(spacing / 2 - 1e-9) <= 0:
        raise ValueError(
            f"spacing={spacing} is too small for dim={dim}: the bumps merge into one minimum "
            "(need dim·spacing² > 2)"
        )
    t_star = brentq(h, 0.0, spacing / 2 - 1e-9, xtol=1e-15, rtol=1e-15)
    p1 = np.full(dim, t_star)
    p2 = c - p1

    def losses(x: torch.Tensor) -> torch.Tensor:
        return torch.stack(
            [1 - torch.exp(-(x**2).sum(1)), 1 - torch.exp(-((x - ct) ** 2).sum(1))], dim=1
        )

    def project(x: np.ndarray) -> np.ndarray:
        d1 = ((x - p1) ** 2).sum(1)
        d2 = ((x - p2) ** 2).sum(1)
        return np.where((d1 <= d2)[:, None], p1[None, :], p2[None, :])

    def sample(count: int, seed: int) -> np.ndarray:
        rng = np.random.default_rng(seed)
        return c / 2 + rng.uniform(-2.5, 2.5, size=(count, dim)) * max(1.0, spacing / 2)

    fmin = float(losses(torch.as_tensor(p1[None, :])).mean())
    name = "example_2" if dim == 2 and spacing == 2.0 else f"bumps_family(d={dim})"
    return AlphaBetaExample(
        name=name,
        description="saddle: f1 = 1 - exp(-|x|²), f2 = 1 - exp(-|x - c|²)",
        dim=dim,
        n=2,
        losses=losses,
        f_star=np.zeros(2),
        project=project,
        minimizers=f"two points t*·1 and c − t*·1, t* = {t_star:.6g}",
        f_min=fmin,
        sample_points=sample,
        special_points={"saddle": c / 2, "minimizer_1": p1, "minimizer_2": p2},
    )


def example_2() -> AlphaBetaExample:
    """The paper's Example 2: a saddle at ``(1, 1)`` between two minimizers."""
    return bumps_family(2, 2.0)


# ---------------------------------------------------------------------- Example 3
def example_3(center: float = 2.5, width_1: float = 1.0, width_2: float = 2.0) -> AlphaBetaExample:
    """Rational wells at ``0`` and ``c = center·(1, 1)``: a global and a local minimum.

    ``f_1 = ‖x‖²/(‖x‖² + width_1)``, ``f_2 = ‖x − c‖²/(‖x − c‖² + width_2)``. With
    ``width_2 > width_1`` the well at 0 is the deeper one: ``f ≈ ½·f_2(0)`` there against
    ``≈ ½·f_1(c)`` near ``c``. Both minima lie on the diagonal (reflection symmetry); they are
    found by a bracketing root search of ``φ'(t)`` for ``φ(t) = f(t, t)``. ``S`` is the global
    one, the other is a non-global local minimum.
    """
    from scipy.optimize import brentq

    if not (width_2 > width_1 > 0) or center <= 0:
        raise ValueError("need width_2 > width_1 > 0 and center > 0")
    c = np.array([center, center])
    ct = torch.as_tensor(c)

    def losses(x: torch.Tensor) -> torch.Tensor:
        r1 = (x**2).sum(1)
        r2 = ((x - ct) ** 2).sum(1)
        return torch.stack([r1 / (r1 + width_1), r2 / (r2 + width_2)], dim=1)

    def dphi(t: float) -> float:
        x = torch.tensor([[t, t]], dtype=torch.float64, requires_grad=True)
        (g,) = torch.autograd.grad(losses(x).mean(), x)
        return float(g.sum())

    ts = np.linspace(-0.5 * center, 1.5 * center, 401)
    ds = np.array([dphi(float(t)) for t in ts])
    up = np.nonzero((ds[:-1] < 0) & (ds[1:] >= 0))[0]  # φ' from − to +: minima of φ
    if up.size != 2:
        raise ValueError(f"expected two wells on the diagonal, found {up.size} minima")
    t_glob, t_loc = (brentq(dphi, ts[j], ts[j + 1], xtol=1e-15, rtol=1e-15) for j in up)
    p, q = np.array([t_glob, t_glob]), np.array([t_loc, t_loc])
    f_p = float(losses(torch.as_tensor(p[None])).mean())
    f_q = float(losses(torch.as_tensor(q[None])).mean())
    if not f_p < f_q:
        raise ValueError("the well at 0 is not the global minimum for these widths")

    def project(x: np.ndarray) -> np.ndarray:
        return np.broadcast_to(p, x.shape).copy()

    def sample(count: int, seed: int) -> np.ndarray:
        rng = np.random.default_rng(seed)
        return c / 2 + rng.uniform(-6.0, 6.0, size=(count, 2))

    return AlphaBetaExample(
        name="example_3",
        description="local minimum: rational wells at 0 (global) and (2.5, 2.5) (local)",
        dim=2,
        n=2,
        losses=losses,
        f_star=np.zeros(2),
        project=project,
        minimizers=f"the point ({t_glob:.6g}, {t_glob:.6g})",
        f_min=f_p,
        sample_points=sample,
        special_points={"minimizer": p, "local_minimum": q},
    )
