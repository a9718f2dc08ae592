"""α-β examples from learning: rank-1 matrix factorization and a ReLU unit with logistic loss.

Both have closed-form minimizer sets and exact projections (derivations in the functions).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import torch

from lossgeometry.examples.alpha_beta.check import AlphaBetaExample

__all__ = ["matrix_factorization", "relu_logistic"]


# ---------------------------------------------------------------------- matrix factorization
def matrix_factorization(X: np.ndarray | None = None) -> AlphaBetaExample:
    """Rank-1 factorization of ``X ∈ R^{m×q}``: ``f_i(u, v) = ½‖X_i − u_i v‖²`` (row ``i``).

    Parameters ``x = (u, v) ∈ R^{m+q}``. With ``X = Σ_j σ_j a_j b_jᵀ`` (``σ_1 > σ_2``), the
    minimizers of ``f = (1/m) Σ f_i`` are ``S = {(t a_1, (σ_1/t) b_1) : t ≠ 0}``
    (Eckart–Young), ``f_i* = 0`` (one row alone is fitted exactly), and ``(0, 0)`` is a saddle.
    Projection: minimize ``φ(t) = ‖u − t a‖² + ‖v − (σ/t) b‖²``; ``φ'(t) = 0`` is the quartic
    ``t⁴ − ⟨u, a⟩ t³ + σ⟨v, b⟩ t − σ² = 0``, solved exactly (``numpy.roots``).

    At the saddle ``∇f_i = 0`` and ``f_i(x_p) = ½(‖X_i‖² − σ_1² a_{1i}²)``, so the pair holds
    there iff ``β/α ≥ σ_1² a_{1i}² / ‖X_i‖²`` for every row: impossible (``β < α``) when ``X``
    has rank 1 (then ``f_i(x_p) = 0``), possible otherwise.
    """
    if X is None:
        X = np.array([[3.0, 1.0, 0.5], [1.0, 2.0, -1.0], [0.5, -1.0, 1.5]])
    X = np.asarray(X, dtype=float)
    if X.ndim != 2 or min(X.shape) < 1:
        raise ValueError("X must be a non-empty 2-D array")
    U, s, Vt = np.linalg.svd(X)
    if s.size > 1 and not s[0] > s[1] * (1 + 1e-12):
        raise ValueError("the top singular value of X must be simple (σ_1 > σ_2)")
    m, q = X.shape
    a, b, sig = U[:, 0], Vt[0], float(s[0])
    Xt = torch.as_tensor(X)

    def losses(x: torch.Tensor) -> torch.Tensor:
        u, v = x[:, :m], x[:, m:]
        R = Xt[None] - u[:, :, None] * v[:, None, :]
        return 0.5 * (R**2).sum(2)

    def project(x: np.ndarray) -> np.ndarray:
        out = np.empty_like(x)
        for j, row in enumerate(x):
            u, v = row[:m], row[m:]
            roots = np.roots([1.0, -(u @ a), 0.0, sig * (v @ b), -sig * sig])
            ts = roots[np.abs(roots.imag) < 1e-8 * max(1.0, abs(sig))].real
            ts = ts[ts != 0]
            phi = [((u - t * a) ** 2).sum() + ((v - sig / t * b) ** 2).sum() for t in ts]
            t = ts[int(np.argmin(phi))]
            out[j] = np.concatenate([t * a, sig / t * b])
        return out

    def sample(count: int, seed: int) -> np.ndarray:
        rng = np.random.default_rng(seed)
        return rng.normal(size=(count, m + q)) * math.sqrt(sig) * 0.8

    fmin = 0.5 * float((s[1:] ** 2).sum()) / m
    return AlphaBetaExample(
        name="matrix_factorization",
        description="rank-1 factorization 1/2|X_i - u_i v|^2 per row",
        dim=m + q,
        n=m,
        losses=losses,
        f_star=np.zeros(m),
        project=project,
        minimizers="{(t a1, (σ1/t) b1): t ≠ 0}",
        f_min=fmin,
        sample_points=sample,
        special_points={"saddle": np.zeros(m + q)},
    )


# ---------------------------------------------------------------------- ReLU + logistic
def relu_logistic(xi: Sequence[float] = (0.5, 1.0, 2.0), lam: float = 0.1) -> AlphaBetaExample:
    """A two-layer ReLU unit with logistic loss and weight decay, one sample per ``f_i``.

    ``f_i(w, v) = log(1 + exp(−v·relu(w ξ_i))) + (λ/2)(w² + v²)`` with inputs ``ξ_i > 0`` and
    label ``+1``. Derivation of ``S``: for ``w ≤ 0`` or ``v w ≤ 0`` every ``f_i ≥ log 2``; for
    ``w > 0`` write ``P = v w``, then ``(λ/2)(v² + w²) ≥ λ P`` with equality iff ``v = w``, and
    ``h(P) = mean_i log(1 + e^{−ξ_i P}) + λ P`` is strictly convex with ``h'(P*) = 0`` iff
    ``mean_i ξ_i σ(−ξ_i P*) = λ``. So ``S = {(√P*, √P*)}`` when ``h(P*) < log 2``. The same
    argument for one sample gives ``f_i* = log(ξ_i/(ξ_i − λ)) + (λ/ξ_i) log((ξ_i − λ)/λ)`` when
    ``ξ_i > 2λ`` (else ``log 2``).
    """
    from scipy.optimize import brentq

    xs = np.asarray(xi, dtype=float).reshape(-1)
    if xs.size < 1 or np.any(xs <= 0) or not lam > 0:
        raise ValueError("xi must be positive inputs and lam > 0")
    if not xs.mean() / 2 > lam:
        raise ValueError("need mean(xi)/2 > lam, else the minimizer is the kink at 0")

    from scipy.special import expit as sig

    P = brentq(lambda P: float(np.mean(xs * sig(-xs * P))) - lam, 0.0, 1e3, xtol=1e-15)
    h = float(np.mean(np.log1p(np.exp(-xs * P)))) + lam * P
    if not h < math.log(2):
        raise ValueError("the minimum is at the kink w = 0 for these inputs; raise xi or lower lam")
    fstar = np.where(
        xs > 2 * lam,
        np.log(xs / np.maximum(xs - lam, 1e-300))
        + (lam / xs) * np.log(np.maximum(xs - lam, 1e-300) / lam),
        math.log(2),
    )
    xt = torch.as_tensor(xs)
    r = math.sqrt(P)

    def losses(x: torch.Tensor) -> torch.Tensor:
        w, v = x[:, :1], x[:, 1:2]
        z = v * torch.relu(w * xt[None, :])
        return torch.nn.functional.softplus(-z) + 0.5 * lam * (w**2 + v**2)

    def project(x: np.ndarray) -> np.ndarray:
        return np.broadcast_to(np.array([r, r]), x.shape).copy()

    def sample(count: int, seed: int) -> np.ndarray:
        rng = np.random.default_rng(seed)
        pts = rng.uniform(-4.0, 4.0, size=(count, 2))
        pts[np.abs(pts[:, 0]) < 1e-6, 0] = 1e-3  # stay off the ReLU kink w = 0
        return pts

    return AlphaBetaExample(
        name="relu_logistic",
        description="v relu(w ξ) with logistic loss and weight decay",
        dim=2,
        n=xs.size,
        losses=losses,
        f_star=fstar,
        project=project,
        minimizers=f"the point (√P*, √P*), P* = {P:.6g}",
        f_min=h,
        sample_points=sample,
        special_points={"minimizer": np.array([r, r])},
    )
