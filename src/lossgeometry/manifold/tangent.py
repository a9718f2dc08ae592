"""The tangent space ``ker J`` of the solution manifold at a point, and its normal space.

At an interpolating point ``w*`` (``F(w*) = Y``) with ``J = DF(w*)`` of full row rank, the
solution set ``M = {w : F(w) = Y}`` is locally a manifold with tangent space
``T = ker J`` (dimension ``p − nk``) and normal space ``N = range Jᵀ`` (dimension ``nk``).

Projections never form a ``p × p`` projector:

* **dense** (``J`` stored): thin SVD ``J = U diag(s) Vᵣᵀ`` (for large wide ``J`` through the
  Gram matrix ``J Jᵀ``, ``Vᵣ = Jᵀ Uᵣ / s``); ``P_N v = Vᵣ (Vᵣᵀ v)`` with the ``r = rank J``
  right singular vectors (``p × r``), ``P_T v = v − P_N v``;
* **matrix-free**: ``P_N v = Jᵀ z`` with ``z = argmin ‖Jᵀ z − v‖`` solved by LSQR (one JVP and
  one VJP per iteration), which is the least-squares solve ``(J Jᵀ) z = J v`` without
  squaring the condition number; ``P_T v = v − Jᵀ z`` is LSQR's residual.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse.linalg as sla
import torch

from lossgeometry.linalg.arpack import eigsh_end
from lossgeometry.linalg.rank import Rank, numerical_rank
from lossgeometry.manifold._linalg import (
    DENSE_JACOBIAN_MAX_BYTES,
    as_float64,
    choose_jacobian,
    flat_w,
    thin_factor,
)
from lossgeometry.operators.jacobian import (
    GramOperator,
    JacobianOperator,
    dense_jacobian,
    gram_operator,
)
from lossgeometry.problem import Problem

__all__ = ["TangentSpace", "tangent_space"]


class TangentSpace:
    """``ker DF(w)`` and ``range DF(w)ᵀ`` at one point, with projections and random samples.

    Build it with :func:`tangent_space` (or take ``report.tangent_space`` of a
    :class:`~lossgeometry.manifold.ManifoldReport`). All vectors are float64 tensors on the
    Problem's device. The dense route factorizes ``J`` by an SVD, or for large wide ``J``
    through ``J Jᵀ`` (``factor="auto"``; see :func:`~lossgeometry.manifold._linalg.thin_factor`).
    The matrix-free route works on the :class:`~lossgeometry.operators.JacobianOperator`
    :attr:`operator`.

    Attributes:
        problem: the float64 Problem.
        w: the point (flat, float64).
        method: ``"dense"`` or ``"matrix-free"``.
        p: number of parameters; ``nk``: number of equations.
    """

    def __init__(
        self,
        problem: Problem,
        w: torch.Tensor | None = None,
        *,
        jacobian: str = "auto",
        max_dense_bytes: int = DENSE_JACOBIAN_MAX_BYTES,
        min_gap: float = 1e3,
        lsqr_tol: float = 1e-12,
        lsqr_maxiter: int | None = None,
        factor: str = "auto",
    ) -> None:
        self.problem = as_float64(problem)
        self.w = flat_w(self.problem, w)
        self.p = self.problem.p
        self.nk = self.problem.n * self.problem.k
        self.method = choose_jacobian(self.problem, jacobian, max_dense_bytes)
        self.min_gap = min_gap
        self.lsqr_tol = lsqr_tol
        self.lsqr_maxiter = lsqr_maxiter or max(200, 4 * min(self.nk, self.p))
        self.operator = JacobianOperator(self.problem, self.w)
        self._rank: Rank | None = None
        if self.method == "dense":
            self.J = dense_jacobian(self.problem, self.w)
            U, S, V, floor = thin_factor(self.J, factor)
            self.U, self.S = U, S
            self._rank = numerical_rank(S.cpu().numpy(), min_gap=min_gap, floor=floor)
            self.basis = V[:, : self._rank.rank]  # p × r, orthonormal basis of range Jᵀ
        self.lsqr_iterations: list[int] = []

    # ------------------------------------------------------------------ rank
    @property
    def rank(self) -> Rank:
        """The numerical rank of ``J``.

        Dense: from all singular values; matrix-free: from the smallest eigenvalues of the
        Gram matrix, see :meth:`singular_values`.
        """
        if self._rank is None:
            self.singular_values()
        assert self._rank is not None
        return self._rank

    @property
    def dimension(self) -> int:
        """``dim ker J = p − rank J``."""
        return self.p - self.rank.rank

    def singular_values(self, num: int = 20, maxiter: int | None = None) -> tuple[np.ndarray, bool]:
        """Singular values of ``J`` in decreasing order, and whether the list is complete.

        Dense: all ``min(nk, p)`` of them (thin SVD). Matrix-free: the largest one and the
        ``num`` smallest, from ARPACK on the smaller Gram matrix (``J Jᵀ`` or ``Jᵀ J``,
        products by JVP/VJP), ``σ = √λ``; their resolution is ``√ε · σ_max`` (the Gram matrix
        squares the condition number). The rank is then read from those eigenvalues.
        """
        if self.method == "dense":
            return self.S.cpu().numpy().copy(), True
        G = gram_operator(self.operator)
        m = G.shape[0]
        num = int(min(num, m - 1)) if m > 1 else 1
        if m <= 2 or num >= m - 1:
            # tiny Gram matrix: build it from m products and use a dense solver
            Gd = G.matmat(np.eye(m))
            ev = np.linalg.eigvalsh(0.5 * (Gd + Gd.T))[::-1]
            ev = np.maximum(ev, 0.0)
            self._rank = numerical_rank(ev, min_gap=self.min_gap**2, dim=m)
            return np.sqrt(ev), True
        lam_max = _top_eigenvalue(G)
        small, _, _ = eigsh_end(
            G,
            num,
            "SA",
            v0=0,
            maxiter=maxiter or 20 * m,
            vectors=False,
            min_found=1,
            hint="use jacobian='dense' on a smaller problem or raise maxiter",
        )
        small = np.sort(np.maximum(np.asarray(small, dtype=float), 0.0))[::-1]
        self._rank = numerical_rank(small, min_gap=self.min_gap**2, size=m, scale=lam_max, dim=m)
        return np.concatenate([[np.sqrt(lam_max)], np.sqrt(small)]), False

    # ------------------------------------------------------------------ projections
    def _as_matrix(self, v: torch.Tensor) -> tuple[torch.Tensor, bool]:
        if not isinstance(v, torch.Tensor):
            raise TypeError(f"expected a torch.Tensor of shape ({self.p},) or ({self.p}, m)")
        if v.shape[0] != self.p or v.ndim not in (1, 2):
            raise ValueError(f"expected shape ({self.p},) or ({self.p}, m), got {tuple(v.shape)}")
        v = v.to(device=self.problem.device, dtype=torch.float64)
        return (v[:, None], True) if v.ndim == 1 else (v, False)

    def project_normal(self, v: torch.Tensor) -> torch.Tensor:
        """``P_N v``: the component of ``v`` in ``range Jᵀ`` (the normal space)."""
        V, single = self._as_matrix(v)
        if self.method == "dense":
            out = self.basis @ (self.basis.T @ V)
        else:
            cols = []
            for j in range(V.shape[1]):
                b = V[:, j].cpu().numpy()
                res = sla.lsqr(
                    self.operator.T,
                    b,
                    atol=self.lsqr_tol,
                    btol=self.lsqr_tol,
                    iter_lim=self.lsqr_maxiter,
                )
                self.lsqr_iterations.append(int(res[2]))
                z = torch.as_tensor(res[0]).to(device=self.problem.device, dtype=torch.float64)
                cols.append(self.operator.rmatvec_torch(z))
            out = torch.stack(cols, dim=1)
        return out[:, 0] if single else out

    def project_tangent(self, v: torch.Tensor) -> torch.Tensor:
        """``P_T v = v − P_N v``: the component of ``v`` in ``ker J`` (the tangent space)."""
        V, single = self._as_matrix(v)
        out = V - self.project_normal(V)
        return out[:, 0] if single else out

    def tangent_residual(self, t: torch.Tensor) -> float:
        """``‖J t‖ / (σ_max ‖t‖)``: how far a vector is from ``ker J`` (0 for exact tangents)."""
        t = t.reshape(-1).to(device=self.problem.device, dtype=torch.float64)
        smax = float(self.S[0]) if self.method == "dense" else self._smax()
        return float((self.operator @ t).norm() / (smax * t.norm()))

    def _smax(self) -> float:
        return float(np.sqrt(_top_eigenvalue(gram_operator(self.operator))))

    # ------------------------------------------------------------------ sampling
    def _gaussian(self, shape: tuple[int, ...], seed: int) -> torch.Tensor:
        g = torch.Generator(device="cpu").manual_seed(int(seed))
        return torch.randn(*shape, generator=g, dtype=torch.float64).to(self.problem.device)

    def sample_tangent(self, m: int = 1, seed: int = 0, orthonormal: bool = True) -> torch.Tensor:
        """``m`` random unit tangent directions, shape ``(p, m)``.

        Gaussian vectors projected onto ``ker J`` (uniform on its unit sphere),
        orthonormalized when ``orthonormal``.

        Raises:
            ValueError: the tangent space is trivial (``rank J = p``), or ``m`` exceeds its
                dimension with ``orthonormal=True``.
        """
        if self.method == "dense" and self.dimension == 0:
            raise ValueError(
                f"ker J is trivial at this point (rank J = p = {self.p}): there are no tangent "
                "directions (the model is not over-parameterized here)"
            )
        if orthonormal and self.method == "dense" and m > self.dimension:
            raise ValueError(
                f"asked for {m} orthonormal tangent directions in a {self.dimension}-"
                "dimensional tangent space"
            )
        T = self.project_tangent(self._gaussian((self.p, m), seed))
        return _normalize(T, orthonormal)

    def sample_normal(self, m: int = 1, seed: int = 0, orthonormal: bool = True) -> torch.Tensor:
        """``m`` random unit normal directions (in ``range Jᵀ``), shape ``(p, m)``.

        Uniform on the normal space's unit sphere; orthonormalized when ``orthonormal``.
        """
        if self.method == "dense":
            r = self.basis.shape[1]
            if r == 0:
                raise ValueError("J = 0 at this point: the normal space is trivial")
            N = self.basis @ self._gaussian((r, m), seed)
        else:
            N = self.project_normal(self._gaussian((self.p, m), seed))
        return _normalize(N, orthonormal)


def _top_eigenvalue(G: GramOperator) -> float:
    """``λ_max`` of a Gram matrix by ARPACK (start vector from seed 0): ``σ_max(J)²``."""
    return float(eigsh_end(G, 1, "LA", v0=0, vectors=False)[0][-1])


def _normalize(V: torch.Tensor, orthonormal: bool) -> torch.Tensor:
    if orthonormal and V.shape[1] > 1:
        Q, R = torch.linalg.qr(V)
        return Q * torch.sign(torch.diagonal(R)).where(torch.diagonal(R) != 0, 1.0)
    norms = V.norm(dim=0, keepdim=True)
    if bool((norms == 0).any()):
        raise ValueError("a sampled direction projected to zero: the subspace is trivial")
    return V / norms


def tangent_space(
    problem: Problem,
    w: torch.Tensor | None = None,
    *,
    jacobian: str = "auto",
    max_dense_bytes: int = DENSE_JACOBIAN_MAX_BYTES,
) -> TangentSpace:
    """The tangent space ``ker DF(w)`` and normal space ``range DF(w)ᵀ`` at ``w``.

    Args:
        problem: any Problem (a float64 copy is used).
        w: the point (default: the model's current parameters).
        jacobian: ``"dense"`` (store ``J``, thin SVD, exact projections), ``"matrix-free"``
            (JVP/VJP and LSQR) or ``"auto"`` (dense when ``J`` takes at most
            ``max_dense_bytes``).
        max_dense_bytes: memory limit of the dense route.

    Example (at any point; at an interpolant ``ker J`` is the tangent space of the minima):
        >>> import torch
        >>> import lossgeometry as lg
        >>> g = torch.Generator().manual_seed(0)
        >>> X = torch.randn(4, 3, generator=g, dtype=torch.float64)
        >>> Y = torch.randn(4, 2, generator=g, dtype=torch.float64)
        >>> problem = lg.Problem(lg.models.mlp(3, 8, 1, 2, seed=0).double(), X, Y)
        >>> T = lg.tangent_space(problem)                   # at the model's parameters
        >>> T.dimension, problem.p - problem.n * problem.k  # dim ker J = p − nk (full rank)
        (42, 42)
        >>> t = T.sample_tangent(3, seed=0)                 # (p, 3), orthonormal, J t ≈ 0
        >>> tuple(t.shape), bool(torch.allclose(t.T @ t, torch.eye(3, dtype=t.dtype)))
        ((50, 3), True)
        >>> T.tangent_residual(t[:, 0]) < 1e-12              # ‖J t‖ / (σ_max ‖t‖)
        True
    """
    return TangentSpace(problem, w, jacobian=jacobian, max_dense_bytes=max_dense_bytes)
