"""Both ends of the tangent kernel's spectrum, matrix-free, on the NTK operator.

Three routes for :func:`~lossgeometry.kernel.kernel_spectrum` (see its module docstring for
the measurements behind them): thick-restart Lanczos
(:func:`~lossgeometry.linalg.lanczos_extremes`, both ends from one Krylov space, a float64
basis of :func:`default_ncv` vectors), ARPACK (one run per end) and block LOBPCG. Each
returns ``(eigenvalues, eigenvectors, converged, iterations)``: the ``q`` smallest
eigenvalues then the ``q`` largest, ascending, with their vectors as columns.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import torch

from lossgeometry._progress import CostEstimate, announce_cost
from lossgeometry.linalg.arpack import eigsh_end, lobpcg_end, not_converged_warning
from lossgeometry.linalg.lanczos import lanczos_extremes
from lossgeometry.operators.ntk import NTKOperator

Ends = tuple[np.ndarray, np.ndarray, bool, int]

LANCZOS_NCV: int | None = 40
"""Default ARPACK basis size (``solver="arpack"``): larger than SciPy's ``max(2k+1, 20)``
because the bottom of an ill-conditioned kernel needed several times fewer products with it
(see ``docs/kernel.md``)."""

LANCZOS_BASIS_BYTES = 2**30
"""Memory budget of the thick-restart Lanczos basis (``solver="lanczos"``)."""


def default_ncv(N: int, q: int = 1) -> int:
    """Basis size of ``solver="lanczos"``: ``min(N, 512)``, within :data:`LANCZOS_BASIS_BYTES`.

    A basis long enough not to restart is what makes ``λ_min`` converge in few products
    (restarting throws away the polynomial built so far); the basis is ``ncv`` float64
    vectors of length ``N``, small next to the model for any ``N`` that needs this method.
    """
    budget = max(2 * q + 10, LANCZOS_BASIS_BYTES // (8 * max(N, 1)))
    return int(min(N, 512, budget))


def announce_free_cost(
    op: NTKOperator, q: int, solver: str, ncv: int | None, progress: bool | None
) -> CostEstimate | None:
    """Print the estimated cost of a matrix-free kernel spectrum before it starts.

    ``products × seconds of one NTK-vector product`` (measured here; the operator's product
    counter is reset afterwards), with the products counted at one Krylov basis (Lanczos:
    :func:`default_ncv`; ARPACK: two runs of :data:`LANCZOS_NCV`; LOBPCG: 20 blocks): more if
    the solver restarts. Nothing is measured with ``progress=False``.
    """
    N = op.shape[0]
    if solver == "lanczos":
        count = min(N, ncv if ncv is not None else default_ncv(N, q))
    elif solver == "arpack":
        count = 2 * min(N, ncv if ncv is not None else (LANCZOS_NCV or 20))
    else:
        count = 20 * max(q, 4)
    probe = torch.ones(N, 1, dtype=op.torch_dtype, device=op.device) / N**0.5
    est = announce_cost(
        "kernel spectrum",
        [("NTK-vector products", count, lambda: op.matmat_torch(probe))],
        progress,
        note="counted at one Krylov basis; more if the solver restarts",
    )
    op.reset_matvecs()
    return est


def _start(N: int, c: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal((N, c))


def arpack_ends(
    op: NTKOperator, q: int, tol: float, maxiter: int | None, ncv: int | None, seed: int
) -> Ends:
    """Both ends by implicitly restarted Lanczos (ARPACK): ``which="LA"`` then ``"SA"``.

    ARPACK's test ``‖r‖ ≤ tol·|θ|`` is relative to each Ritz value θ, so ``λ_min`` gets
    relative accuracy (Lanczos on the shifted ``σI − K`` would only give ``tol·σ`` absolute
    accuracy, useless when ``κ > 1/tol``). ARPACK applies the operator once per Lanczos step,
    so the number of steps equals the number of products (returned as the iteration count).
    """
    N = op.shape[0]
    if ncv is not None:
        ncv = int(min(N - 1, max(ncv, 2 * q + 1)))
    hint = "raise maxiter or tol, or use solver='dense'"
    kw = {"tol": tol, "maxiter": maxiter, "ncv": ncv, "hint": hint}
    top, vtop, ok1 = eigsh_end(op, q, "LA", v0=seed, **kw)
    bot, vbot, ok2 = eigsh_end(op, q, "SA", v0=seed + 1, **kw)
    vals = np.concatenate([bot, top])
    vecs = np.concatenate([vbot, vtop], axis=1)
    return vals, vecs, ok1 and ok2, op.matvecs


def thick_lanczos_ends(
    op: NTKOperator,
    q: int,
    tol: float,
    maxiter: int | None,
    ncv: int | None,
    seed: int,
    progress: bool | None,
) -> Ends:
    """Both ends from one Krylov space (:func:`~lossgeometry.linalg.lanczos_extremes`).

    The eigenvalue test is relative to each ``|λ|``; the basis is float64 on the operator's
    device (the products in the Problem's dtype).
    """
    N = op.shape[0]
    ncv = min(N, ncv if ncv is not None else default_ncv(N, q))
    maxiter = maxiter if maxiter is not None else max(10 * ncv, 2 * N)
    r = lanczos_extremes(
        op,
        top=q,
        bottom=q,
        tol=tol,
        ncv=ncv,
        maxiter=maxiter,
        seed=seed,
        dtype=torch.float64,
        progress=progress,
        criterion="eigenvalue",
        relative_to="value",
    )
    vals = torch.cat([r.bottom, r.top.flip(0)]).numpy()
    vecs = torch.cat([r.bottom_vectors, r.top_vectors.flip(1)], dim=1).cpu().numpy()
    return vals, vecs, r.converged, r.matvecs


def solve_ends(
    op: Any,
    solver: str,
    q: int,
    tol: float,
    maxiter: int | None,
    ncv: int | None,
    block_size: int | None,
    seed: int,
    diagonal_blocks: Callable[[], torch.Tensor] | None,
    progress: bool | None,
) -> tuple[np.ndarray, np.ndarray, bool, int, np.ndarray]:
    """Both ends of ``op`` by ``solver``, and the true residual norms ``‖K v − λ v‖``.

    ``"lanczos"`` and ``"sharded"`` (the same Lanczos on the kernel held as row blocks) by
    :func:`thick_lanczos_ends`, ``"arpack"`` by :func:`arpack_ends`, ``"lobpcg"`` by
    :func:`lobpcg_ends` (converged only if every residual is ``≤ tol·max|λ|``; a warning
    otherwise). The estimated cost is announced first (:func:`announce_free_cost`).
    Returns ``(eigenvalues, eigenvectors, converged, iterations, residual norms)``.
    """
    announce_free_cost(op, q, "lanczos" if solver == "sharded" else solver, ncv, progress)
    if solver in ("lanczos", "sharded"):
        res = thick_lanczos_ends(op, q, tol, maxiter, ncv, seed, progress)
    elif solver == "arpack":
        res = arpack_ends(op, q, tol, maxiter, ncv if ncv is not None else LANCZOS_NCV, seed)
    else:
        res = lobpcg_ends(op, q, tol, maxiter, block_size, seed, diagonal_blocks)
    vals, vecs, converged, iters = res
    R = (op @ torch.from_numpy(vecs)).cpu().double().numpy() - vecs * vals[None, :]
    resid = np.linalg.norm(R, axis=0)
    if solver == "lobpcg":
        limit = tol * float(np.max(np.abs(vals)))
        converged = converged and bool(np.all(resid <= limit))
        if not converged:
            not_converged_warning(
                "LOBPCG",
                f"{int(iters)} iterations (largest residual ‖Kv − λv‖ = {resid.max():.3g}, "
                f"tol·λ_max = {limit:.3g})",
                tol,
                "increase maxiter or tol, or use solver='lanczos'",
            )
    return vals, vecs, converged, iters, resid


def lobpcg_ends(
    op: NTKOperator,
    q: int,
    tol: float,
    maxiter: int | None,
    block_size: int | None,
    seed: int,
    diagonal_blocks: Callable[[], torch.Tensor] | None = None,
) -> Ends:
    """Both ends by block LOBPCG, the bottom end optionally preconditioned with ``(K_ii)⁻¹``.

    ``diagonal_blocks()`` returns the per-sample blocks ``K_ii`` (``(n, ks, ks)``); with it
    the bottom run uses the block-Jacobi preconditioner ``(K_ii + 10⁻⁶ λ_max I)⁻¹``.
    Convergence is judged on the true residual norms ``‖Kv − λv‖ ≤ tol·λ_max`` of the
    returned pairs and reported in the result (:func:`~lossgeometry.linalg.lobpcg_end`).
    """
    from scipy.sparse.linalg import LinearOperator

    N = op.shape[0]
    bs = max(q, block_size or 4)
    maxiter = maxiter or 500
    X = _start(N, bs, seed)
    top_tol = tol * np.linalg.norm(op @ X[:, :1]) / np.linalg.norm(X[:, 0])
    top, vtop, iters = lobpcg_end(op, X, largest=True, tol=top_tol, maxiter=maxiter)
    lmax = float(np.max(top))
    M = None
    if diagonal_blocks is not None:
        blocks = diagonal_blocks().double()
        ks = blocks.shape[-1]
        reg = 1e-6 * lmax * torch.eye(ks, dtype=torch.float64, device=blocks.device)
        inv = torch.linalg.inv(blocks + reg).cpu().numpy()

        def prec(Y: np.ndarray) -> np.ndarray:
            Y2 = Y.reshape(-1, ks, Y.shape[-1] if Y.ndim == 2 else 1)
            return np.einsum("iab,ibc->iac", inv, Y2).reshape(Y.shape)

        M = LinearOperator((N, N), matvec=prec, matmat=prec, dtype=np.float64)
    X = _start(N, bs, seed + 1)
    bot, vbot, it_b = lobpcg_end(op, X, largest=False, tol=tol * lmax, maxiter=maxiter, M=M)
    iters += it_b
    ok = it_b < maxiter + 1  # judged again on the true residuals by the caller
    it = np.argsort(top)[-q:]
    ib = np.argsort(bot)[:q]
    vals = np.concatenate([bot[ib], top[it]])
    vecs = np.concatenate([vbot[:, ib], vtop[:, it]], axis=1)
    return vals, vecs, ok, iters
