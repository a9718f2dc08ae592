"""Thick-restart Lanczos in torch: both ends of a symmetric spectrum from one Krylov space.

:func:`lanczos_extremes` is a thick-restart Lanczos method (Wu & Simon, 2000; the symmetric
case of Stewart's Krylov–Schur) with full reorthogonalization. It computes the ``top``
largest and the ``bottom`` smallest (most negative) eigenvalues of a symmetric operator from
*one* Krylov space.

Why our own and not ``scipy.sparse.linalg.eigsh`` (ARPACK), which is also offered
(``solver="arpack"`` in :func:`lossgeometry.hessian_spectrum`):

* **Both ends at once.** ARPACK's ``which="BE"`` splits one ``k`` between the ends; asking
  for ``top`` and ``bottom`` separately needs two Krylov runs. One Krylov space
  approximates both ends, so one run serves both.
* **A tolerance relative to the spectral norm.** ARPACK accepts a Ritz value ``θ`` when its
  residual is ``≤ tol·|θ|``; for the small negative eigenvalues of a loss Hessian near a
  minimum (``|θ| ≪ ‖H‖``) that demands far more accuracy than the products have (float32
  Hessian-vector products carry errors ``~1e-7·‖H‖``), so it stalls. Here the test is
  relative to ``‖A‖`` (estimated by the largest ``|θ|``).
* **A tolerance on the eigenvalue, if asked.** ``criterion="residual"`` accepts a Ritz pair
  when ``‖r‖ = ‖A y − θ y‖ ≤ tol·‖A‖``: by Weyl's theorem some eigenvalue lies within
  ``‖r‖`` of ``θ``, and the vector is accurate too (``sin∠(y, u) ≤ ‖r‖/gap``). But a Ritz
  *value* is far more accurate than that: ``|λ − θ| ≤ ‖r‖²/δ`` (Kato–Temple), ``δ`` the
  distance from ``θ`` to the rest of the spectrum. ``criterion="eigenvalue"`` accepts when
  the error bound ``min(‖r‖, ‖r‖²/δ̂) ≤ tol·‖A‖``, with ``δ̂`` the distance to the nearest
  other Ritz value less that value's own residual (each Ritz value ``θ_j`` has an
  eigenvalue within ``‖r_j‖``). ``δ̂`` is an estimate: an eigenvalue the Krylov space has
  not yet seen could lie closer. For a well-separated top eigenvalue it stops after about
  half the products the residual test needs (tol 1e-3 on an MLP Hessian: 7 instead of 10),
  which is what makes it the right test when only eigenvalues are wanted.
* **Torch-native.** Basis vectors stay on the operator's device; no NumPy round trip per
  product.

Plain Lanczos from several start vectors at once, for stochastic Lanczos quadrature, is
:func:`~lossgeometry.linalg.tridiagonal.lanczos_tridiag`.
"""

from __future__ import annotations

import dataclasses
import warnings
from typing import Literal

import torch

from lossgeometry._progress import progress_bar
from lossgeometry.linalg.ritz import Criterion, accepted, error_bounds
from lossgeometry.operators.base import square_operator

__all__ = ["Criterion", "LanczosResult", "error_bounds", "lanczos_extremes"]


@dataclasses.dataclass
class LanczosResult:
    """Output of :func:`lanczos_extremes`.

    Attributes:
        top: the largest Ritz values, descending, shape ``(top,)``.
        bottom: the smallest Ritz values, ascending (most negative first), ``(bottom,)``.
        top_vectors: Ritz vectors of ``top`` (columns), ``(p, top)``.
        bottom_vectors: Ritz vectors of ``bottom``, ``(p, bottom)``.
        top_residuals: ``‖A y − θ y‖`` of each top pair (Lanczos estimate ``|β_m y_m|``, equal
            to the explicit residual up to rounding thanks to full reorthogonalization).
        bottom_residuals: the same for the bottom pairs.
        matvecs: operator products used.
        restarts: thick restarts performed.
        converged: whether every wanted pair passed the ``criterion`` at ``tol``.
        norm_estimate: ``max |θ|`` over all Ritz values seen (a lower bound of ``‖A‖₂``).
        tol: the tolerance used.
        top_errors: estimated eigenvalue errors ``min(‖r‖, ‖r‖²/δ̂)`` of the top values.
        bottom_errors: the same for the bottom values.
        criterion: ``"residual"`` or ``"eigenvalue"``.
    """

    top: torch.Tensor
    bottom: torch.Tensor
    top_vectors: torch.Tensor
    bottom_vectors: torch.Tensor
    top_residuals: torch.Tensor
    bottom_residuals: torch.Tensor
    matvecs: int
    restarts: int
    converged: bool
    norm_estimate: float
    tol: float
    top_errors: torch.Tensor | None = None
    bottom_errors: torch.Tensor | None = None
    criterion: str = "residual"


def _random_unit(
    p: int, gen: torch.Generator, dtype: torch.dtype, device: torch.device
) -> torch.Tensor:
    v = torch.randn(p, generator=gen, dtype=torch.float64).to(device=device, dtype=dtype)
    return v / v.norm()


def _orthogonalize(w: torch.Tensor, V: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Classical Gram–Schmidt twice (CGS2) of ``w`` against the orthonormal *rows* of ``V``.

    Basis vectors are stored as rows so that every slice ``V[:j]`` is contiguous (a plain
    GEMV; column slices of a ``(p, m)`` matrix are strided and several times slower).
    """
    if V.shape[0] == 0:
        return w, torch.zeros(0, dtype=w.dtype, device=w.device)
    h = V @ w
    w = w - h @ V
    h2 = V @ w
    w = w - h2 @ V
    return w, h + h2


def lanczos_extremes(
    A: object,
    *,
    top: int = 1,
    bottom: int = 0,
    tol: float = 1e-6,
    ncv: int | None = None,
    maxiter: int | None = None,
    v0: torch.Tensor | None = None,
    seed: int = 0,
    dtype: torch.dtype | None = None,
    progress: bool | None = None,
    warn: bool = True,
    criterion: Criterion = "residual",
    relative_to: Literal["norm", "value"] = "norm",
    check_every: int | None = None,
) -> LanczosResult:
    """Extreme eigenpairs of a symmetric operator by thick-restart Lanczos.

    Each cycle extends an orthonormal Krylov basis ``V`` (full reorthogonalization, CGS2) to
    ``ncv`` vectors, solves the projected problem ``Vᵀ A V = S`` densely (float64), and tests
    the Ritz pairs ``(θ, y = V s)`` with the residual estimate ``‖A y − θ y‖ = |β_m s_m|``
    after every product (the projected problem is tiny). If some wanted pair has not
    converged by the end of the cycle it restarts with the wanted Ritz vectors plus about
    half of the remaining basis taken from the same ends, and the last Lanczos vector.

    Args:
        A: the symmetric ``p × p`` operator (a
            :class:`~lossgeometry.operators.TorchLinearOperator`, or a dense matrix or SciPy
            operator, see :func:`~lossgeometry.operators.as_torch_operator`). Its product
            counter counts the products.
        top: how many of the largest eigenvalues to compute.
        bottom: how many of the smallest (most negative) eigenvalues to compute.
        tol: accept a pair when its residual ``‖A y − θ y‖`` (``criterion="residual"``) or
            its eigenvalue error bound ``min(‖r‖, ‖r‖²/δ̂)`` (``criterion="eigenvalue"``, see
            :func:`error_bounds`) is ``≤ tol · max|θ|``.
        ncv: Krylov basis size per cycle (default ``max(20, 2(top + bottom) + 10)``, at most
            ``p``). Memory: ``(ncv + 1) · p`` numbers of ``dtype``.
        maxiter: at most this many products (default ``max(1000, 10·ncv)``).
        v0: start vector (default: Gaussian from ``seed``).
        seed: seed of the start vector and of fresh vectors after a breakdown.
        dtype: dtype of the basis vectors (default: the operator's; products are converted
            to it). The basis lives on the operator's device.
        progress: a progress bar over cycles (default: on a tty).
        warn: issue a ``RuntimeWarning`` when ``maxiter`` is reached before convergence.
        criterion: ``"residual"`` (eigenvectors accurate too) or ``"eigenvalue"`` (only the
            eigenvalues to ``tol``; about half the products for a well-separated end).
        relative_to: ``"norm"``: the test is ``≤ tol·max|θ|`` (absolute at the scale of
            ``‖A‖``; right for indefinite spectra whose small eigenvalues are noise-level);
            ``"value"``: ``≤ tol·|θ|`` for each wanted ``θ`` (relative accuracy of every
            eigenvalue, e.g. ``λ_min`` of a positive definite kernel; ARPACK's test).
        check_every: test the wanted pairs every this many products inside a cycle (default
            ``max(1, ncv // 32)``: every product for small bases, where the projected
            eigenproblem is negligible).

    Returns:
        A :class:`LanczosResult`.

    Raises:
        ValueError: ``top``/``bottom`` negative, both zero, or more eigenvalues than ``p``.
    """
    A = square_operator(A, "lanczos_extremes")
    p = A.shape[0]
    dtype = A.torch_dtype if dtype is None else dtype
    device = A.device
    if top < 0 or bottom < 0 or top + bottom == 0:
        raise ValueError(f"need top >= 0, bottom >= 0 and top + bottom >= 1; got {top}, {bottom}")
    if top + bottom > p:
        raise ValueError(f"top + bottom = {top + bottom} exceeds the dimension p = {p}")
    if not tol > 0:
        raise ValueError(f"tol must be positive, got {tol}")
    if criterion not in ("residual", "eigenvalue"):
        raise ValueError(f"criterion must be 'residual' or 'eigenvalue', got {criterion!r}")
    if relative_to not in ("norm", "value"):
        raise ValueError(f"relative_to must be 'norm' or 'value', got {relative_to!r}")
    nwant = top + bottom
    ncv = min(p, ncv if ncv is not None else max(20, 2 * nwant + 10))
    if ncv < min(p, nwant + 1):
        raise ValueError(f"ncv = {ncv} must exceed top + bottom = {nwant}")
    maxiter = maxiter if maxiter is not None else max(1000, 10 * ncv)
    check_every = max(1, int(check_every) if check_every is not None else ncv // 32)
    gen = torch.Generator().manual_seed(seed)

    # basis vectors as rows; only rows [0, j] are ever read, so no need to zero-fill them
    V = torch.empty(ncv + 1, p, dtype=dtype, device=device)
    T = torch.zeros(ncv + 1, ncv + 1, dtype=torch.float64)
    if v0 is None:
        V[0] = _random_unit(p, gen, dtype, device)
    else:
        v0 = v0.to(device=device, dtype=dtype).reshape(-1)
        nrm = v0.norm()
        if not torch.isfinite(nrm) or nrm == 0:
            raise ValueError("v0 must be a finite, non-zero vector")
        V[0] = v0 / nrm

    matvecs, restarts, kept = 0, 0, 0
    norm_est = 0.0
    exhausted = broke = False
    cycles = progress_bar(iter(int, 1), progress, desc="lanczos", unit="cycle")
    for _ in cycles:
        # ---------------------------------------------------------------- expand
        m = ncv
        for j in range(kept, ncv):
            w = A.matvec_torch(V[j]).to(dtype)
            matvecs += 1
            w, h = _orthogonalize(w, V[: j + 1])
            beta = float(w.norm())
            T[: j + 1, j] = h.double().cpu()
            scale = max(norm_est, float(h.abs().max()) if h.numel() else 0.0, 1e-300)
            if beta <= 1e-10 * scale or beta == 0.0:
                # invariant subspace: continue with a fresh vector orthogonal to the basis.
                # Its exact eigenvalues have zero residual but need not be the extreme ones,
                # so from now on convergence is only tested at the end of a full cycle.
                broke = True
                T[j + 1, j] = 0.0
                if j + 1 >= p:
                    m, exhausted = j + 1, True
                    break
                for _attempt in range(3):
                    r, _ = _orthogonalize(_random_unit(p, gen, dtype, device), V[: j + 1])
                    if float(r.norm()) > 1e-3:
                        break
                V[j + 1] = r / r.norm()
            else:
                T[j + 1, j] = beta
                V[j + 1] = w / beta
            if matvecs >= maxiter and j + 1 < ncv:
                m = j + 1
                break
            # early exit inside the cycle: test the wanted Ritz pairs after every product
            if j + 1 < ncv and j + 1 > nwant and not broke and (j + 1 - kept) % check_every == 0:
                Sj = torch.triu(T[: j + 1, : j + 1])
                th_j, Y_j = torch.linalg.eigh(Sj + torch.triu(Sj, 1).T)
                res_j = (float(T[j + 1, j]) * Y_j[j, :]).abs()
                nrm_j = max(norm_est, float(th_j.abs().max()))
                want_j = torch.cat([torch.arange(j, j - top, -1), torch.arange(0, bottom)])
                if accepted(th_j, res_j, want_j, tol, nrm_j, criterion, relative_to):
                    m = j + 1
                    break
        # ---------------------------------------------------------------- Rayleigh-Ritz
        S = torch.triu(T[:m, :m])
        S = S + torch.triu(S, 1).T
        theta, Y = torch.linalg.eigh(S)
        beta_m = 0.0 if exhausted else float(T[m, m - 1])
        res = (beta_m * Y[m - 1, :]).abs()
        norm_est = max(norm_est, float(theta.abs().max()))
        top_idx = torch.arange(m - 1, m - 1 - top, -1)
        bot_idx = torch.arange(0, bottom)
        want = torch.cat([top_idx, bot_idx])
        ok = accepted(theta, res, want, tol, norm_est, criterion, relative_to)
        if ok or exhausted or matvecs >= maxiter or m < ncv:
            break
        # ---------------------------------------------------------------- thick restart
        extra = max(0, (m - nwant) // 2)
        if top and bottom:
            # half each, even when one end has converged: the kept Ritz vectors of the other
            # end deflate it, which shortens the spectrum the unconverged end sees (giving
            # all to the bottom of a kernel doubled its products in our measurements)
            ktop = top + extra // 2
            kbot = bottom + (extra - extra // 2)
        elif top:
            ktop, kbot = top + extra, 0
        else:
            ktop, kbot = 0, bottom + extra
        ktop = min(ktop, m - kbot)
        keep = torch.cat([torch.arange(0, kbot), torch.arange(m - ktop, m)])
        kept = keep.numel()
        Yk = Y[:, keep].to(device=device, dtype=dtype)
        newV = Yk.T @ V[:m]
        last = V[m].clone()
        V[:kept] = newV
        V[kept] = last
        T.zero_()
        T[torch.arange(kept), torch.arange(kept)] = theta[keep]
        T[kept, :kept] = beta_m * Y[m - 1, keep]
        restarts += 1

    converged = bool(ok) or exhausted
    if not converged and warn:
        warnings.warn(
            f"Lanczos stopped after {matvecs} products (maxiter) before every wanted eigenpair "
            f"met tol={tol:g}: increase maxiter or tol; the result reports converged=False",
            RuntimeWarning,
            stacklevel=2,
        )
    Vm = V[:m].T
    Yd = Y.to(device=device, dtype=dtype)
    return LanczosResult(
        top=theta[top_idx].clone(),
        bottom=theta[bot_idx].clone(),
        top_vectors=Vm @ Yd[:, top_idx],
        bottom_vectors=Vm @ Yd[:, bot_idx],
        top_residuals=res[top_idx].clone(),
        bottom_residuals=res[bot_idx].clone(),
        matvecs=matvecs,
        restarts=restarts,
        converged=converged,
        norm_estimate=norm_est,
        tol=tol,
        top_errors=error_bounds(theta, res, top_idx),
        bottom_errors=error_bounds(theta, res, bot_idx),
        criterion=criterion,
    )
