"""Both ends of the loss Hessian's spectrum: the largest and the most negative eigenvalues.

Near a global minimum of an over-parameterized model the loss Hessian has ``nk`` positive
eigenvalues and ``p − nk`` (near-)zero ones; arbitrarily close to it there are points with
negative eigenvalues (no convex neighbourhood). :func:`hessian_spectrum` computes the ``top``
largest and ``bottom`` smallest eigenvalues from one Krylov space (thick-restart Lanczos,
:func:`lossgeometry.linalg.lanczos_extremes`), or with ARPACK (``eigsh``), or densely.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from typing import Any, Literal

import numpy as np
import torch

from lossgeometry._compat import deprecated_call_style
from lossgeometry._plotting import axes_or_new
from lossgeometry.linalg.arpack import eigsh_end
from lossgeometry.linalg.dense import DENSE_MAX_ORDER, symmetric_dense
from lossgeometry.linalg.lanczos import Criterion, lanczos_extremes
from lossgeometry.operators.base import TorchLinearOperator
from lossgeometry.operators.hessian import Of, hessian_operator
from lossgeometry.problem import Problem
from lossgeometry.results import Result

Solver = Literal["auto", "lanczos", "arpack", "dense"]
"""The eigen-solvers of :func:`hessian_spectrum` (its ``solver=``)."""
Method = Solver
"""Former name of :data:`Solver` (kept for one release)."""


def default_tol(dtype: torch.dtype) -> float:
    """Default eigen-tolerance: ``1e-4`` for float32 products, ``1e-8`` for float64."""
    return 1e-8 if dtype == torch.float64 else 1e-4


@dataclasses.dataclass(frozen=True)
class HessianSpectrum(Result):
    """The ``top`` largest and ``bottom`` smallest eigenvalues of a Hessian.

    Attributes:
        top: the largest eigenvalues, descending (``top[0] = λ_max``).
        bottom: the smallest eigenvalues, ascending (``bottom[0] = λ_min``, the most negative).
        residuals: ``‖H y − θ y‖`` of each Ritz pair, the ``top`` ones first, then the
            ``bottom`` ones. Some exact eigenvalue lies within that distance of each ``θ``.
        matvecs: Hessian-vector products used (``p`` for the dense method).
        converged: whether every pair passed the ``criterion`` at ``tol`` (always true for
            dense).
        tol: the tolerance (relative to the spectral norm estimate ``max|θ|``; ARPACK's is
            relative to ``|θ|`` instead).
        method: ``"lanczos"``, ``"arpack"`` or ``"dense"``.
        of: ``"loss"`` (``∇²L``) or ``"ggn"`` (the Gauss–Newton part).
        p: number of parameters.
        reduction: the Problem's loss reduction; the Hessian is that of ``problem.loss``
            (for MSE ``"mean"`` it is ``loss_scale = 2/(nk)`` times that of ``½‖F − Y‖²``).
        loss_scale: ``problem.loss_scale`` for MSE, else ``None``.
        vectors: eigenvectors as columns (``top`` then ``bottom``), only if requested.
        criterion: the acceptance test: ``"eigenvalue"`` (error bound of the values) or
            ``"residual"`` (residual of the pairs; ARPACK and dense report this).
        error_bounds: estimated eigenvalue errors ``min(‖r‖, ‖r‖²/δ̂)`` in the order of
            ``residuals`` (see :func:`lossgeometry.linalg.lanczos.error_bounds`).
    """

    top: np.ndarray
    bottom: np.ndarray
    residuals: np.ndarray
    matvecs: int
    converged: bool
    tol: float
    method: str
    of: str
    p: int
    reduction: str
    loss_scale: float | None = None
    vectors: np.ndarray | None = None
    criterion: str = "residual"
    error_bounds: np.ndarray | None = None

    @property
    def lambda_max(self) -> float:
        """The largest eigenvalue (``nan`` if ``top = 0`` were asked)."""
        return float(self.top[0]) if len(self.top) else math.nan

    @property
    def lambda_min(self) -> float:
        """The smallest eigenvalue (``nan`` if ``bottom = 0`` were asked)."""
        return float(self.bottom[0]) if len(self.bottom) else math.nan

    @property
    def top_residuals(self) -> np.ndarray:
        """Residual norms of the ``top`` pairs."""
        return np.asarray(self.residuals)[: len(self.top)]

    @property
    def bottom_residuals(self) -> np.ndarray:
        """Residual norms of the ``bottom`` pairs."""
        return np.asarray(self.residuals)[len(self.top) :]

    def summary(self) -> dict[str, Any]:
        """Headline scalars: both ends, convergence, the largest residual and the cost."""
        res = np.asarray(self.residuals, dtype=float)
        return {
            "lambda_max": self.lambda_max,
            "lambda_min": self.lambda_min,
            "top": len(self.top),
            "bottom": len(self.bottom),
            "converged": self.converged,
            "max_residual": float(res.max()) if res.size else math.nan,
            "matvecs": self.matvecs,
            "method": self.method,
            "criterion": self.criterion,
            "tol": self.tol,
            "of": self.of,
            "p": self.p,
            "reduction": self.reduction,
        }

    def plot(self, ax: Any = None) -> Any:
        """Plot the computed eigenvalues on a line (top blue, bottom red); return the Axes."""
        ax = axes_or_new(ax, (6, 2.2))
        ax.axvline(0.0, color="0.6", lw=0.8)
        ax.plot(self.top, np.zeros(len(self.top)), "|", ms=30, color="C0", label="top")
        ax.plot(self.bottom, np.zeros(len(self.bottom)), "|", ms=30, color="C3", label="bottom")
        ax.set_yticks([])
        ax.set_xlabel(f"eigenvalue of {'∇²L' if self.of == 'loss' else 'GGN'}")
        ax.legend(loc="upper center", ncol=2, frameon=False)
        return ax


@deprecated_call_style(renamed={"method": "solver"}, positional=("top", "bottom", "tol"))
def hessian_spectrum(
    problem: Problem,
    w: torch.Tensor | None = None,
    *,
    top: int = 1,
    bottom: int = 1,
    tol: float | None = None,
    of: Of = "loss",
    solver: Solver = "auto",
    ncv: int | None = None,
    maxiter: int | None = None,
    seed: int = 0,
    dtype: torch.dtype | None = None,
    indices: Sequence[int] | torch.Tensor | None = None,
    return_vectors: bool = False,
    chunk_size: int | None = None,
    progress: bool | None = None,
    criterion: Criterion = "eigenvalue",
) -> HessianSpectrum:
    """Compute the ``top`` largest and ``bottom`` most negative eigenvalues of the Hessian.

    The Hessian is that of ``problem.loss`` under the Problem's reduction (see
    :func:`lossgeometry.hessian_operator`).

    Example (against the dense eigenvalues; indefinite away from a minimum):
        >>> import torch
        >>> import lossgeometry as lg
        >>> g = torch.Generator().manual_seed(0)
        >>> X = torch.randn(8, 3, generator=g, dtype=torch.float64)
        >>> Y = torch.randn(8, 2, generator=g, dtype=torch.float64)
        >>> problem = lg.Problem(lg.models.mlp(3, 8, 1, 2, seed=0).double(), X, Y)   # p = 50
        >>> spec = lg.hessian_spectrum(problem, top=3, bottom=2, solver="lanczos", tol=1e-10)
        >>> ev = torch.linalg.eigvalsh(lg.hessian_operator(problem).to_dense())
        >>> abs(spec.lambda_max - float(ev[-1])) < 1e-9, abs(spec.lambda_min - float(ev[0])) < 1e-9
        (True, True)
        >>> spec.converged, spec.lambda_min < 0 < spec.lambda_max, spec.matvecs < problem.p
        (True, True, True)

    Args:
        problem: the Problem.
        w: the point (default: the model's current parameters).
        top: number of largest eigenvalues.
        bottom: number of smallest (most negative) eigenvalues.
        tol: the accuracy asked, relative to ``‖H‖`` (estimated by the largest ``|θ|``): of
            each eigenvalue (``criterion="eigenvalue"``) or of each eigenpair's residual
            (``"residual"``). Default: ``1e-4`` in float32, ``1e-8`` in float64.
        of: ``"loss"`` or ``"ggn"``.
        solver: ``"lanczos"`` (thick-restart Lanczos, both ends from one Krylov space),
            ``"arpack"`` (``scipy.sparse.linalg.eigsh``: one run per end, ``tol`` relative to
            ``|λ|``), ``"dense"`` (``p`` products, then ``eigh``), ``"auto"`` (dense when
            ``p ≤`` :data:`~lossgeometry.linalg.DENSE_MAX_ORDER`, else Lanczos).
        ncv: Krylov basis size (Lanczos/ARPACK).
        maxiter: at most this many products (Lanczos) or restarts (ARPACK).
        seed: seed of the start vector.
        dtype: ``torch.float64`` for a reference computation (the Problem is copied).
        indices: the Hessian of a mini-batch (these samples) instead of the full data.
        return_vectors: also return the eigenvectors (``p × (top + bottom)`` numbers).
        chunk_size: samples per chunk.
        progress: progress bars.
        criterion: Lanczos acceptance test. ``"eigenvalue"`` (default): stop when the error
            bound ``min(‖r‖, ‖r‖²/δ̂)`` of every wanted eigenvalue is ``≤ tol·‖H‖`` (a Ritz
            value is accurate to the *square* of its residual over the gap; for a separated
            ``λ_max`` this needs about half the products). ``"residual"``: stop when every
            residual is ``≤ tol·‖H‖``; choose it when the eigenvectors matter
            (``return_vectors``): their angle error is about ``‖r‖/gap``.

    Returns:
        A :class:`HessianSpectrum`.

    Raises:
        ValueError: ``top + bottom`` is zero or exceeds ``p``, or an unknown ``solver``.

    The former call style (``top``, ``bottom``, ``tol`` by position; ``method=`` for the
    solver) works for one release, with a :class:`DeprecationWarning`.
    """
    if solver not in ("auto", "lanczos", "arpack", "dense"):
        raise ValueError(f"solver must be 'auto', 'lanczos', 'arpack' or 'dense', got {solver!r}")
    if not (isinstance(top, int) and isinstance(bottom, int)) or top < 0 or bottom < 0:
        raise ValueError(f"top and bottom must be non-negative integers, got {top!r}, {bottom!r}")
    if top + bottom == 0:
        raise ValueError("ask for at least one eigenvalue (top >= 1 or bottom >= 1)")
    if criterion not in ("eigenvalue", "residual"):
        raise ValueError(f"criterion must be 'eigenvalue' or 'residual', got {criterion!r}")
    H = hessian_operator(problem, w, of=of, dtype=dtype, indices=indices, chunk_size=chunk_size)
    if top + bottom > H.p:
        raise ValueError(f"top + bottom = {top + bottom} exceeds the number of parameters {H.p}")
    tol = default_tol(H.torch_dtype) if tol is None else float(tol)
    if solver == "auto":
        solver = "dense" if H.p <= DENSE_MAX_ORDER else "lanczos"
    vecs = None
    if solver == "dense":
        M = symmetric_dense(H)
        ev, U = torch.linalg.eigh(M)
        t_idx = torch.arange(H.p - 1, H.p - 1 - top, -1)
        b_idx = torch.arange(bottom)
        t_vals, b_vals = ev[t_idx], ev[b_idx]
        idx = torch.cat([t_idx, b_idx])
        R = M @ U[:, idx] - U[:, idx] * ev[idx]
        res = R.norm(dim=0)
        errs = res
        converged = True
        if return_vectors:
            vecs = U[:, idx].cpu().numpy()
    elif solver == "lanczos":
        r = lanczos_extremes(
            H,
            top=top,
            bottom=bottom,
            tol=tol,
            ncv=ncv,
            maxiter=maxiter,
            seed=seed,
            progress=progress,
            criterion=criterion,
        )
        t_vals, b_vals = r.top, r.bottom
        res = torch.cat([r.top_residuals, r.bottom_residuals])
        errs = torch.cat([r.top_errors, r.bottom_errors])
        converged = r.converged
        if return_vectors:
            vecs = torch.cat([r.top_vectors, r.bottom_vectors], dim=1).cpu().double().numpy()
    else:
        t_vals, b_vals, res, converged, vecs = _arpack(H, top, bottom, tol, ncv, maxiter, seed)
        errs = res
        if not return_vectors:
            vecs = None
    loss_scale = problem.loss_scale if problem.is_mse else None
    return HessianSpectrum(
        top=np.asarray(torch.as_tensor(t_vals).double().cpu().numpy()),
        bottom=np.asarray(torch.as_tensor(b_vals).double().cpu().numpy()),
        residuals=np.asarray(torch.as_tensor(res).double().cpu().numpy()),
        matvecs=H.matvecs,
        converged=bool(converged),
        tol=tol,
        method=solver,
        of=of,
        p=H.p,
        reduction=problem.reduction,
        loss_scale=loss_scale,
        vectors=vecs,
        criterion=criterion if solver == "lanczos" else "residual",
        error_bounds=np.asarray(torch.as_tensor(errs).double().cpu().numpy()),
    )


def _arpack(
    H: TorchLinearOperator,
    top: int,
    bottom: int,
    tol: float,
    ncv: int | None,
    maxiter: int | None,
    seed: int,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, bool, np.ndarray]:
    """Both ends with ARPACK (one run per end from the same start vector), and residuals."""
    out_vals, out_vecs, converged = [], [], True
    for k, which in ((top, "LA"), (bottom, "SA")):
        if k == 0:
            out_vals.append(np.zeros(0))
            out_vecs.append(np.zeros((H.p, 0)))
            continue
        vals, vecs, ok = eigsh_end(
            H, k, which, tol=tol, ncv=ncv, maxiter=maxiter, v0=seed, warn=True,
            hint="increase maxiter/tol or use solver='lanczos'",
        )  # fmt: skip
        converged = converged and ok
        if which == "LA":  # descending
            vals, vecs = vals[::-1], vecs[:, ::-1]
        out_vals.append(vals)
        out_vecs.append(vecs)
    V = np.concatenate(out_vecs, axis=1)
    lam = np.concatenate(out_vals)
    HV = H.matmat_torch(torch.as_tensor(V)).double().cpu().numpy()
    res = np.linalg.norm(HV - V * lam, axis=0)
    return (
        torch.as_tensor(out_vals[0].copy()),
        torch.as_tensor(out_vals[1].copy()),
        torch.as_tensor(res),
        converged,
        V,
    )
