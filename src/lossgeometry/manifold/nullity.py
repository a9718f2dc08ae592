"""The number of zero eigenvalues of the loss Hessian: dense, randomized or Lanczos.

At an interpolant the loss Hessian is ``c JᵀJ`` and its null space is ``ker J``, the tangent
space of the manifold of minima (:mod:`lossgeometry.manifold.report`). :func:`hessian_nullity`
counts the zero eigenvalues from Hessian-vector products alone; the three routes and why a cut
among the largest eigenvalues decides the nullity are in its docstring.
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
from lossgeometry.linalg.rank import Rank, numerical_rank
from lossgeometry.manifold._linalg import as_float64, flat_w
from lossgeometry.operators.hessian import HessianOperator
from lossgeometry.problem import Problem
from lossgeometry.results import Result

__all__ = ["HessianNullity", "hessian_nullity"]


@dataclasses.dataclass(frozen=True)
class HessianNullity(Result):
    """The number of (numerically) zero eigenvalues of the loss Hessian ``∇²L(w)``.

    Attributes:
        nullity: ``p − rank``, the count of zero eigenvalues; ``None`` when the Lanczos route
            found no cut among the eigenvalues it computed (the Hessian then has more than
            ``len(eigenvalues)`` non-zero eigenvalues).
        rank: the numerical rank (:class:`~lossgeometry.linalg.Rank`, read from ``|λ|``).
        eigenvalues: all eigenvalues in decreasing order (dense), or the computed ones
            (Lanczos: the largest in magnitude), in the Problem's loss normalization.
        method: the solver used: ``"dense"`` (``eigvalsh`` of the ``p × p`` Hessian built from ``p``
            Hessian-vector products), ``"randomized"`` (range finder) or ``"lanczos"``
            (ARPACK, largest magnitude).
        p: the number of parameters.
        negative: the number of eigenvalues below ``−tol`` (where ``tol`` is the rank's
            threshold): negative curvature at ``w``.
    """

    nullity: int | None
    rank: Rank
    eigenvalues: np.ndarray
    method: str
    p: int
    negative: int

    def summary(self) -> dict[str, Any]:
        """Headline scalars: the nullity, the rank with its gap, negative eigenvalues."""
        return {
            "nullity": self.nullity,
            "rank": self.rank.rank,
            "gap": self.rank.gap,
            "negative": self.negative,
            "computed": int(np.asarray(self.eigenvalues).size),
            "p": self.p,
            "method": self.method,
        }

    def plot(self, ax: Any = None) -> Any:
        """``|λ|`` of the computed eigenvalues, largest first (log scale), the cut marked.

        Lines, in order: all ``|λ_i|`` sorted decreasingly; the negative ones (below ``−tol``)
        among them as red crosses (at their place in that order). The vertical line is the
        cut (``rank + ½``), the horizontal one the rank's threshold. Returns the Axes.
        """
        ax = axes_or_new(ax, (5, 3.5))
        ev = np.asarray(self.eigenvalues, dtype=float)
        order = np.argsort(-np.abs(ev), kind="stable")
        mags = np.maximum(np.abs(ev[order]), 1e-300)
        idx = np.arange(1, ev.size + 1)
        ax.semilogy(idx, mags, ".", ms=4, color="C0", label="|λ_i(∇²L)|")
        neg = ev[order] < -self.rank.tol
        ax.semilogy(idx[neg], mags[neg], "x", ms=5, color="C3", label=f"λ < 0 ({self.negative})")
        ax.axvline(self.rank.rank + 0.5, color="C3", ls="--", lw=1, label=f"rank {self.rank.rank}")
        ax.axhline(max(self.rank.tol, 1e-300), color="0.5", ls=":", lw=1, label="threshold")
        ax.set_xlabel("index (decreasing |λ|)")
        ax.set_ylabel("|eigenvalue|")
        null = "undecided" if self.nullity is None else str(self.nullity)
        ax.set_title(f"Hessian nullity {null} of p = {self.p} ({self.method})")
        ax.legend(fontsize=8)
        return ax


@deprecated_call_style(renamed={"method": "solver"})
def hessian_nullity(
    problem: Problem,
    w: torch.Tensor | None = None,
    *,
    solver: str = "auto",
    num: int | None = None,
    min_gap: float = 1e3,
    tol: float | None = None,
) -> HessianNullity:
    """Count the zero eigenvalues of the loss Hessian at ``w`` (float64).

    Args:
        problem: any Problem (a float64 copy is used).
        w: the point (default: the model's current parameters).
        solver: ``"dense"``, ``"randomized"``, ``"lanczos"`` or ``"auto"`` (dense for
            ``p ≤`` :data:`~lossgeometry.linalg.DENSE_MAX_ORDER`, else randomized).
        num: randomized/Lanczos: how many probe vectors / eigenvalues; the Hessian's rank
            must be smaller than ``num`` for the nullity to be decided (default 200).
        min_gap: the relative gap that separates zero from non-zero eigenvalues
            (:func:`~lossgeometry.linalg.numerical_rank`).
        tol: an absolute threshold instead of the gap rule.

    The nullity is ``p − (number of |λ| above the cut)``.

    All routes work on the :class:`~lossgeometry.operators.HessianOperator` at ``w``.

    * ``"dense"``: all ``p`` eigenvalues (``eigvalsh`` of the Hessian built from ``p``
      Hessian-vector products).
    * ``"randomized"`` (Halko, Martinsson & Tropp's range finder): ``Q = orth(H Ω)`` for a
      Gaussian ``Ω ∈ R^{p × num}``, then the eigenvalues of ``Qᵀ H Q`` (``2 · num``
      products in blocks). If ``rank H < num``, ``range Q = range H`` (almost surely)
      and these are exactly the non-zero eigenvalues plus ``num − rank`` numerical zeros, so
      a cut among them decides the nullity. Made for Hessians of low rank, as at an
      interpolant (``rank = nk``).
    * ``"lanczos"``: ARPACK's ``num`` eigenvalues of largest magnitude; if a cut lies among
      them, every eigenvalue not computed is smaller still, hence zero.

    ``method=`` (the former name of ``solver=``) works for one release, with a
    :class:`DeprecationWarning`.
    """
    p64 = as_float64(problem)
    w = flat_w(p64, None if w is None else w.to(torch.float64))
    if solver == "auto":
        solver = "dense" if p64.p <= DENSE_MAX_ORDER else "randomized"
    H = HessianOperator(p64, w)
    if solver == "dense":
        ev = torch.linalg.eigvalsh(symmetric_dense(H)).cpu().numpy()[::-1].copy()
        rk = numerical_rank(ev, tol, min_gap=min_gap, dim=p64.p)
        nullity: int | None = p64.p - rk.rank
    elif solver == "randomized":
        m = int(min(num or 200, p64.p))
        g = torch.Generator(device="cpu").manual_seed(0)
        omega = torch.randn(p64.p, m, generator=g, dtype=torch.float64).to(p64.device)
        Q, _ = torch.linalg.qr(H @ omega)
        B = Q.T @ (H @ Q)
        ev = torch.linalg.eigvalsh(0.5 * (B + B.T)).cpu().numpy()
        ev, rk, nullity = _nullity_from_largest(ev, p64.p, tol, min_gap)
    elif solver == "lanczos":
        num = int(min(num or 200, p64.p - 1))
        ev, _, _ = eigsh_end(H, num, "LM", v0=0, vectors=False)
        ev, rk, nullity = _nullity_from_largest(ev, p64.p, tol, min_gap)
    else:
        raise ValueError(
            f"solver must be 'auto', 'dense', 'randomized' or 'lanczos', got {solver!r}"
        )
    negative = int(np.sum(ev < -rk.tol))
    return HessianNullity(
        nullity=nullity, rank=rk, eigenvalues=ev, method=solver, p=p64.p, negative=negative
    )


def _nullity_from_largest(
    ev: np.ndarray, p: int, tol: float | None, min_gap: float
) -> tuple[np.ndarray, Rank, int | None]:
    """The nullity of a ``p × p`` matrix from its ``m`` eigenvalues of largest magnitude.

    If the cut lies among them (rank ``< m``), every eigenvalue not computed is smaller
    still, hence zero: nullity ``p − rank``; otherwise it is undecided (``None``, rank ``≥ m``).
    Returns the values in decreasing order, the :class:`Rank` (size ``p``) and the nullity.
    """
    m = ev.size
    ev = ev[np.argsort(-np.abs(ev))]
    rk = numerical_rank(ev, tol, min_gap=min_gap, dim=p)
    if rk.rank < m:
        nullity: int | None = p - rk.rank
        rk = dataclasses.replace(rk, size=p)
    else:
        nullity = None
        rk = dataclasses.replace(rk, size=p, rank=m)
    return np.sort(ev)[::-1], rk, nullity
