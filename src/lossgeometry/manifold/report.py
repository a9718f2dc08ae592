"""The solution manifold through an interpolating point: rank, dimension, Hessian nullity.

Cooper (arXiv:1804.10200): if ``y`` is a regular value of ``F: R^p → R^{nk}`` (``J = DF(w)``
has full row rank ``nk`` wherever ``F(w) = y``), the global minima of the squared loss,
``M = {w : F(w) = y}``, form a smooth submanifold of dimension ``p − nk``, with tangent
space ``ker J`` at each point. At ``w* ∈ M`` the residual vanishes, so the loss Hessian is

    ``∇²L(w*) = c · (Jᵀ J + Σ_i r_i ∇²F_i) = c · Jᵀ J``    (``r = 0``, ``c`` = loss_scale)

whose null space is exactly ``ker J``: ``nk`` positive eigenvalues ``c σ_i²`` and ``p − nk``
zeros. :func:`solution_manifold` measures both sides independently (the singular values of
``J``; the eigenvalues of the Hessian from Hessian-vector products) and checks that they
agree with ``p − nk``.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np
import torch

from lossgeometry._compat import deprecated_call_style
from lossgeometry._plotting import axes_or_new
from lossgeometry.linalg.dense import DENSE_MAX_ORDER
from lossgeometry.linalg.rank import Rank
from lossgeometry.manifold._linalg import (
    DENSE_JACOBIAN_MAX_BYTES,
    as_float64,
    flat_w,
    require_mse,
    residual_vector,
)
from lossgeometry.manifold.nullity import HessianNullity, hessian_nullity
from lossgeometry.manifold.tangent import TangentSpace
from lossgeometry.problem import Problem
from lossgeometry.results import Result

__all__ = ["HessianNullity", "ManifoldReport", "hessian_nullity", "solution_manifold"]


@dataclasses.dataclass(frozen=True)
class ManifoldReport(Result):
    """The solution set ``M = {F(w) = Y}`` near ``w*``: its dimension, measured two ways.

    Attributes:
        p: parameters; ``n``: samples; ``k``: outputs per sample; ``nk``: equations.
        loss_scale: ``c`` in ``L = c · ½‖F − Y‖²`` (1 for ``"sum"``, ``2/(nk)`` for
            ``"mean"``); the Hessian at ``w*`` is ``c JᵀJ``.
        residual_norm: ``‖F(w*) − Y‖₂`` (float64, no normalization).
        loss: ``L(w*)`` in the Problem's normalization.
        at_interpolant: ``residual_norm ≤ residual_tol``: ``w*`` is (numerically) a global
            minimum. If not, ``dimension`` is still ``dim ker J`` but it is not the dimension
            of a solution set, and the Hessian nullity need not agree.
        singular_values: singular values of ``J = DF(w*)`` in decreasing order: all of them
            (dense route), or the largest and the smallest ``num_singular`` (matrix-free route,
            from ARPACK on ``J Jᵀ``; resolution ``√ε σ_max``).
        singular_values_complete: whether ``singular_values`` holds all ``min(nk, p)``.
        rank: the numerical rank of ``J`` with the gap that decided it (matrix-free route: read
            from the eigenvalues of the Gram matrix ``J Jᵀ``, so its values are ``σ²``).
        dimension: ``p − rank``, the measured dimension of ``M`` at ``w*`` (``dim ker J``).
        expected_dimension: ``max(p − nk, 0)``, Cooper's prediction.
        hessian_nullity: the number of zero eigenvalues of ``∇²L(w*)`` (``None``: not computed
            or undecided); at an interpolant it must equal ``dimension``.
        hessian_eigenvalues: the Hessian eigenvalues used (all, or the largest ``num``).
        hessian_method: ``"dense"``, ``"randomized"``, ``"lanczos"`` or ``"skipped"``.
        jacobian_method: ``"dense"`` or ``"matrix-free"``.
        notes: warnings in words (not an interpolant, rank deficiency, ...).
    """

    p: int
    n: int
    k: int
    nk: int
    loss_scale: float
    residual_norm: float
    loss: float
    at_interpolant: bool
    singular_values: np.ndarray
    singular_values_complete: bool
    rank: Rank
    dimension: int
    expected_dimension: int
    hessian_nullity: int | None
    hessian_eigenvalues: np.ndarray | None
    hessian_method: str
    jacobian_method: str
    notes: list[str]

    def summary(self) -> dict[str, Any]:
        """Headline scalars: the dimension measured two ways against Cooper's ``p − nk``."""
        return {
            "dimension": self.dimension,
            "expected_dimension": self.expected_dimension,
            "hessian_nullity": self.hessian_nullity,
            "agrees": self.agrees,
            "rank": self.rank.rank,
            "rank_gap": self.rank.gap,
            "at_interpolant": self.at_interpolant,
            "residual_norm": self.residual_norm,
            "loss": self.loss,
            "p": self.p,
            "n": self.n,
            "k": self.k,
            "nk": self.nk,
            "jacobian_method": self.jacobian_method,
            "hessian_method": self.hessian_method,
        }

    @property
    def agrees(self) -> bool:
        """``dimension == expected_dimension`` and (if computed) ``hessian_nullity`` too."""
        ok = self.dimension == self.expected_dimension
        if self.hessian_nullity is not None:
            ok = ok and self.hessian_nullity == self.dimension
        return ok

    # ------------------------------------------------------------------ live methods
    @property
    def tangent_space(self) -> TangentSpace:
        """The :class:`TangentSpace` at ``w*`` (only on a report computed in this session)."""
        space = getattr(self, "_space", None)
        if space is None:
            raise ValueError(
                "this ManifoldReport was loaded from disk and has no tangent space attached: "
                "call lg.solution_manifold(problem, w_star) (or lg.tangent_space) again"
            )
        return space

    def tangent_directions(self, m: int = 1, seed: int = 0) -> torch.Tensor:
        """``m`` random orthonormal unit tangent directions at ``w*`` (``(p, m)``, ``J t ≈ 0``)."""
        return self.tangent_space.sample_tangent(m, seed)

    def normal_directions(self, m: int = 1, seed: int = 0) -> torch.Tensor:
        """``m`` random orthonormal unit normal directions at ``w*`` (``(p, m)``, in range Jᵀ)."""
        return self.tangent_space.sample_normal(m, seed)

    def project_tangent(self, v: torch.Tensor) -> torch.Tensor:
        """Project ``v`` (``(p,)`` or ``(p, m)``) onto ``ker J`` without a ``p × p`` matrix."""
        return self.tangent_space.project_tangent(v)

    def plot(self, ax: Any = None) -> Any:
        """Singular values of ``J`` and ``|λ|`` of the Hessian (log scale), the cut marked.

        Lines, in order: ``c σ_i(J)²`` (at the Hessian's scale: at ``w*`` its non-zero
        eigenvalues); ``|λ_i(∇²L)|`` sorted decreasingly when computed. Returns the Axes.
        """
        ax = axes_or_new(ax, (6, 4))
        tiny = 1e-300
        c = self.loss_scale
        s = np.asarray(self.singular_values, dtype=float)
        if self.singular_values_complete:
            ax.semilogy(
                np.arange(1, len(s) + 1),
                np.maximum(c * s**2, tiny),
                ".",
                ms=4,
                label="c σ_i(J)²",
            )
        else:
            idx = np.r_[1, np.arange(self.nk - len(s) + 2, self.nk + 1)]
            ax.semilogy(idx, np.maximum(c * s**2, tiny), ".", ms=4, label="c σ_i(J)² (computed)")
        if self.hessian_eigenvalues is not None:
            h = np.sort(np.abs(np.asarray(self.hessian_eigenvalues, dtype=float)))[::-1]
            ax.semilogy(
                np.arange(1, len(h) + 1),
                np.maximum(h, tiny),
                "x",
                ms=3,
                alpha=0.6,
                label="|λ_i(∇²L)|",
            )
        ax.axvline(self.rank.rank + 0.5, color="C3", ls="--", label=f"rank J = {self.rank.rank}")
        ax.axvline(self.nk + 0.5, color="0.4", ls=":", label=f"nk = {self.nk}")
        ax.set_xlabel("index (decreasing)")
        ax.set_ylabel("value")
        ax.set_title(f"dim M = {self.dimension} (p − nk = {self.expected_dimension})")
        ax.legend(fontsize=8)
        return ax


@deprecated_call_style(renamed={"w_star": "w"})
def solution_manifold(
    problem: Problem,
    w: torch.Tensor,
    *,
    jacobian: str = "auto",
    hessian: bool | str = "auto",
    num_singular: int = 20,
    num_hessian: int | None = None,
    residual_tol: float = 1e-8,
    min_gap: float = 1e3,
    max_dense_bytes: int = DENSE_JACOBIAN_MAX_BYTES,
) -> ManifoldReport:
    """Measure the manifold of global minima through an interpolating point ``w*``.

    Args:
        problem: an MSE Problem (a float64 copy is used).
        w: an interpolating point ``w*``, e.g. ``lg.find_interpolant(problem).w``
            (``w_star=`` is its former name, kept for one release with a
            :class:`DeprecationWarning`).
        jacobian: ``"dense"`` (all singular values, exact projections), ``"matrix-free"``
            (ARPACK/LSQR on JVP/VJP products, never stores ``J``) or ``"auto"`` (dense when
            ``J`` takes at most ``max_dense_bytes``, 512 MiB).
        hessian: ``True``/``"dense"``/``"randomized"``/``"lanczos"`` to count the Hessian's
            zero eigenvalues (:func:`hessian_nullity`), ``False`` to skip; ``"auto"``: dense
            for ``p ≤`` :data:`~lossgeometry.linalg.DENSE_MAX_ORDER`, randomized with
            ``num = rank J + 40`` probes when that is at most 1000, else skipped.
        num_singular: matrix-free route: how many of the smallest singular values to compute.
        num_hessian: randomized/Lanczos routes: probe vectors / eigenvalues.
        residual_tol: ``w*`` counts as an interpolant when ``‖F(w*) − Y‖ ≤ residual_tol``.
        min_gap: relative gap for the numerical ranks (:func:`lg.numerical_rank`).
        max_dense_bytes: memory limit of the dense Jacobian.

    Returns:
        A :class:`ManifoldReport`; its ``tangent_directions``/``normal_directions``/
        ``project_tangent`` methods sample and project at ``w*`` (matrix-free when ``J`` is
        large, never forming a ``p × p`` projector).

    Raises:
        ValueError: a non-MSE Problem.
    """
    require_mse(problem, "solution_manifold")
    p64 = as_float64(problem)
    w = flat_w(p64, w.to(torch.float64))
    r = residual_vector(p64, w)
    rn = float(r.norm())
    loss = float(p64.loss(w))
    nk = p64.n * p64.k
    notes: list[str] = []
    space = TangentSpace(
        p64, w, jacobian=jacobian, max_dense_bytes=max_dense_bytes, min_gap=min_gap
    )
    sv, complete = space.singular_values(num_singular)
    rank = space.rank
    at = rn <= residual_tol
    if not at:
        notes.append(
            f"w* is not an interpolant (‖F − Y‖ = {rn:.3e} > {residual_tol:g}): dimension is "
            "dim ker J at w*, not the dimension of a solution set; run lg.find_interpolant first"
        )
    if rank.rank < min(nk, p64.p):
        notes.append(
            f"J is rank deficient (rank {rank.rank} < min(nk, p) = {min(nk, p64.p)}): Y is not a "
            "regular value here (duplicate samples, dead units or a degenerate point)"
        )
    if p64.p < nk:
        notes.append(f"under-parameterized (p = {p64.p} < nk = {nk}): no manifold of interpolants")

    hmode = hessian
    if hessian == "auto":
        if p64.p <= DENSE_MAX_ORDER:
            hmode = "dense"
        elif rank.rank + 40 <= 1000:
            hmode = "randomized"
        else:
            hmode = False
            notes.append("Hessian nullity skipped (p and rank too large for the auto budget)")
    elif hessian is True:
        hmode = "auto"
    h_null: int | None = None
    h_eigs: np.ndarray | None = None
    h_method = "skipped"
    if hmode:
        hn = hessian_nullity(
            p64,
            w,
            solver=str(hmode),
            num=num_hessian or min(rank.rank + 40, p64.p - 1),
            min_gap=min_gap,
        )
        h_null, h_eigs, h_method = hn.nullity, hn.eigenvalues, hn.method
        if at and h_null is not None and h_null != p64.p - rank.rank:
            notes.append(
                f"Hessian nullity {h_null} differs from dim ker J = {p64.p - rank.rank}: the "
                "residual term Σ r_i ∇²F_i is not negligible or the spectra lack a clear gap"
            )
    report = ManifoldReport(
        p=p64.p,
        n=p64.n,
        k=p64.k,
        nk=nk,
        loss_scale=float(p64.loss_scale),
        residual_norm=rn,
        loss=loss,
        at_interpolant=at,
        singular_values=sv,
        singular_values_complete=complete,
        rank=rank,
        dimension=p64.p - rank.rank,
        expected_dimension=max(p64.p - nk, 0),
        hessian_nullity=h_null,
        hessian_eigenvalues=h_eigs,
        hessian_method=h_method,
        jacobian_method=space.method,
        notes=notes,
    )
    object.__setattr__(report, "_space", space)
    return report
