r"""Spectrum of the tangent kernel: ``λ_min``, ``λ_max``, condition number, eigenvalues.

Dense (``N = n·ks ≲ 4096``): build ``K`` (:func:`~lossgeometry.kernel.tangent.tangent_kernel`)
and take all eigenvalues with ``torch.linalg.eigvalsh`` in float64. The eigenvalue error is
then dominated by the rounding of ``K`` in its own dtype (Weyl: ``|λ̂_i − λ_i| ≤ ‖K̂ − K‖₂``),
reported as ``error_estimate = eps · ‖K̂‖_F``.

Matrix-free (``method="lanczos"``, ``"arpack"`` or ``"lobpcg"``) on the NTK-vector-product
operator (:func:`~lossgeometry.kernel.ntvp.ntk_operator`). The smallest eigenvalue of a PSD
kernel sits at the bottom of a spectrum with a large dynamic range and converges slowly;
shift-invert is not available without factorizing ``K``. ``"lanczos"`` (the default
matrix-free method) runs lossgeometry's thick-restart Lanczos
(:func:`~lossgeometry.linalg.lanczos_extremes`) once for both ends, with a large basis
(:func:`default_ncv`: up to 512 vectors of length ``N``, which is cheap next to the model)
and a test on the relative accuracy of each eigenvalue (its error bound
``min(‖r‖, ‖r‖²/δ̂) ≤ tol·|λ|``). On the default report's kernel (``N = 1280``,
``κ = 4·10⁴``) it needs 240 products for both ends where ARPACK needed 1068 (two runs, basis
40); at ``N = 5120``, ``κ = 1.5·10⁶`` it needs 940 where ARPACK had not converged after 29 000
(measured in ``docs/kernel.md``). ``"arpack"`` keeps SciPy's ``eigsh`` (``which="LA"``,
then ``"SA"``, basis :data:`LANCZOS_NCV`, residual ``≤ tol·|θ|``). ``"lobpcg"`` runs block
LOBPCG, optionally preconditioned at the bottom by the inverse per-sample diagonal blocks
``K_ii`` (computed cheaply by the structured rules); it needed 5–10× more products than
ARPACK in our measurements, with or without the preconditioner. The result records
iterations, products and the true residual norms ``‖K v − λ v‖`` of the returned pairs, so
a non-converged estimate is visible as such. Expect of the order of ``N/5`` products for
``λ_min`` of an ill-conditioned kernel: when the dense kernel fits in memory it is cheaper.

Normalization: ``K`` is defined on the outputs, independent of the loss reduction; for
``L = c · ½‖F − Y‖²`` (``c = problem.loss_scale``) uniform conditioning gives the PL*
constant ``µ = 2 c λ_min(K)``.
"""

from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from lossgeometry.kernel import memory as _mem
from lossgeometry.linalg.arpack import eigsh_end, lobpcg_end
from lossgeometry.linalg.lanczos import lanczos_extremes
from lossgeometry.operators.ntk import NTKOperator
from lossgeometry.problem import Problem
from lossgeometry.results import Result

DENSE_THRESHOLD: int = 4096
"""``method="auto"`` builds the dense kernel when ``N = n·ks`` is at most this (and it fits
in memory); matrix-free Lanczos otherwise."""

SPECTRUM_METHODS = ("auto", "dense", "lanczos", "arpack", "lobpcg")

LANCZOS_NCV: int | None = 40
"""Default ARPACK basis size (``method="arpack"``): larger than SciPy's ``max(2k+1, 20)``
because the bottom of an ill-conditioned kernel needed several times fewer products with it
(see ``docs/kernel.md``)."""

LANCZOS_BASIS_BYTES = 2**30
"""Memory budget of the thick-restart Lanczos basis (``method="lanczos"``)."""


def default_ncv(N: int, q: int = 1) -> int:
    """Basis size of ``method="lanczos"``: ``min(N, 512)``, within :data:`LANCZOS_BASIS_BYTES`.

    A basis long enough not to restart is what makes ``λ_min`` converge in few products
    (restarting throws away the polynomial built so far); the basis is ``ncv`` float64
    vectors of length ``N``, small next to the model for any ``N`` that needs this method.
    """
    budget = max(2 * q + 10, LANCZOS_BASIS_BYTES // (8 * max(N, 1)))
    return int(min(N, 512, budget))


@dataclasses.dataclass(frozen=True)
class KernelSpectrum(Result):
    """Eigenvalues of the tangent kernel ``K(w) = DF DFᵀ`` (outputs, not loss, normalized).

    ``λ_min`` and ``λ_max`` are eigenvalues of the ``N × N`` kernel with ``N = n·ks``
    (``ks`` outputs per sample). For ``L = c·½‖F − Y‖²``, ``‖∇L‖² ≥ 2 c λ_min(K) L``
    (PL* with ``µ = 2 c λ_min``); ``L_F² = λ_max(K)`` is the squared Lipschitz constant
    of ``F`` at ``w``.
    """

    lambda_min: float
    """Smallest eigenvalue of K (may be ``≈ 0`` or slightly negative from rounding when K is
    singular, e.g. ``p < N``; compare with ``error_estimate``)."""
    lambda_max: float
    """Largest eigenvalue of K (``= ‖DF‖₂²``)."""
    condition_number: float
    """``λ_max / λ_min`` (``inf`` when ``λ_min ≤ 0``)."""
    eigenvalues: np.ndarray
    """Computed eigenvalues, ascending: all ``N`` (dense) or the ``k`` smallest followed by
    the ``k`` largest (matrix-free)."""
    method: str
    """``"dense"``, ``"lanczos"``, ``"arpack"`` or ``"lobpcg"``."""
    size: int
    """``N = n·ks``, the order of K."""
    trace: float = math.nan
    """``tr K = ‖DF‖_F²`` (dense only; ``nan`` otherwise)."""
    rank: int = -1
    """Number of eigenvalues above ``error_estimate`` (dense only; ``-1`` otherwise)."""
    error_estimate: float = 0.0
    """Dense: ``eps(dtype of K) · ‖K‖_F``, the size of the rounding of K (eigenvalue error
    bound by Weyl up to a modest factor). Matrix-free: the largest residual norm."""
    converged: bool = True
    """Matrix-free: whether the solver reported convergence for both ends."""
    iterations: int = 0
    """Matrix-free: solver iterations summed over both ends (Lanczos: Lanczos steps, one
    product each; LOBPCG: block iterations, ``block_size`` products each)."""
    matvecs: int = 0
    """Matrix-free: single-vector kernel products used by the solver (a block of c columns
    counts c; the final residual check is not included)."""
    residual_norms: np.ndarray = dataclasses.field(default_factory=lambda: np.zeros(0))
    """Matrix-free: ``‖K v − λ v‖`` of each returned pair (same order as ``eigenvalues``)."""
    tol: float = 0.0
    """The solver tolerance used (matrix-free)."""
    kernel_method: str = ""
    """How K (or its products) was computed."""
    outputs: str = "full"
    """Which outputs the kernel covers."""
    dtype: str = ""
    """dtype the kernel was computed in."""
    seconds: float = 0.0
    """Wall time of the computation."""

    def plot(self, ax: Any = None, label: str | None = None) -> Any:
        """Eigenvalues in decreasing order on a log scale (returns the Axes).

        Call it on the same ``ax`` for several spectra; ``label`` gets the condition number.
        """
        import matplotlib.pyplot as plt

        if ax is None:
            _, ax = plt.subplots(figsize=(5, 3.5))
        ev = np.sort(np.asarray(self.eigenvalues, dtype=float))[::-1]
        pos = np.maximum(ev, max(self.lambda_max, 1e-300) * 1e-16)
        text = f"{label + ', ' if label else ''}κ = {self.condition_number:.3g}"
        if self.method == "dense":
            ax.semilogy(np.arange(1, ev.size + 1), pos, label=text)
            ax.set_xlabel("index (descending)")
        else:
            ax.semilogy(np.arange(ev.size), pos, "o", label=text)
            ax.set_xlabel("computed eigenvalues (descending)")
        ax.set_ylabel("eigenvalue of K")
        ax.set_title(f"tangent kernel spectrum (N = {self.size})")
        ax.legend()
        return ax


def _condition(lmin: float, lmax: float) -> float:
    return lmax / lmin if lmin > 0 else math.inf


def kernel_spectrum(
    problem: Problem,
    w: torch.Tensor | None = None,
    k: int | None = None,
    method: str = "auto",
    tol: float = 1e-6,
    *,
    outputs: str | int | Sequence[int] = "full",
    indices: Sequence[int] | torch.Tensor | None = None,
    kernel_method: str = "auto",
    chunk_size: int | None = None,
    dtype: torch.dtype | None = None,
    maxiter: int | None = None,
    block_size: int | None = None,
    ncv: int | None = None,
    preconditioner: bool = False,
    seed: int = 0,
    max_memory: int | str | None = None,
    progress: bool | None = None,
) -> KernelSpectrum:
    r"""Extreme eigenvalues (and, dense, all eigenvalues) of the tangent kernel ``K(w)``.

    Args:
        problem: the problem.
        w: flat parameters (default: the model's current ones).
        k: matrix-free: how many eigenvalues at *each* end (default 1). Dense: ignored
            (all ``N`` eigenvalues are returned).
        method: ``"auto"`` (dense when ``N ≤ DENSE_THRESHOLD`` and it fits in memory, else
            ``"lanczos"``), ``"dense"``, ``"lanczos"`` (thick-restart Lanczos, both ends at
            once), ``"arpack"`` (SciPy ``eigsh``, one run per end) or ``"lobpcg"``.
        tol: matrix-free relative tolerance. ``"lanczos"``: the error bound of every
            returned eigenvalue is ``≤ tol·|λ|`` (relative accuracy, ``λ_min`` included);
            ``"arpack"``: residual ``≤ tol·|θ|``; LOBPCG: residual norm ``≤ tol·λ_max``.
        outputs: ``"full"``, ``"trace"`` (dense only) or output indices (see
            :func:`~lossgeometry.kernel.tangent.tangent_kernel`).
        indices: restrict to these samples.
        kernel_method: how the dense kernel is built (``"auto"``, ``"structured"``,
            ``"jacobian"``, ``"ntvp"``).
        chunk_size: samples per chunk.
        dtype: compute K in this dtype (e.g. ``torch.float64`` for a reference; the
            problem is copied); eigenvalues are always taken in float64.
        maxiter: matrix-free limit: products for ``"lanczos"`` (default
            ``max(10·ncv, 2N)``), restarts for ``"arpack"`` (SciPy's default), iterations
            for LOBPCG (500). A ``"lanczos"`` run that reaches it returns its current
            estimates with ``converged=False`` and a ``RuntimeWarning``.
        block_size: LOBPCG block size (default ``max(k, 4)``).
        ncv: Lanczos basis size (default :func:`default_ncv` for ``"lanczos"``,
            :data:`LANCZOS_NCV` for ``"arpack"``).
        preconditioner: LOBPCG with the block-Jacobi preconditioner ``(K_ii)⁻¹`` (off by
            default: it did not reduce the number of products in our measurements).
        seed: seed of the random start vectors (matrix-free).
        max_memory: memory limit (see :mod:`lossgeometry.kernel.memory`).
        progress: progress bars.

    Returns:
        A :class:`KernelSpectrum`.

    Raises:
        ValueError: an unknown method, ``k < 1``, ``2k ≥ N`` for a matrix-free method, or a
            dense request beyond the memory limit (use ``method="lanczos"``).
    """
    from lossgeometry.kernel.outputs import resolve_outputs
    from lossgeometry.kernel.tangent import tangent_kernel

    if method not in SPECTRUM_METHODS:
        raise ValueError(f"unknown spectrum method {method!r}: use one of {SPECTRUM_METHODS}")
    if k is not None and (not isinstance(k, int) or k < 1):
        raise ValueError(f"k must be a positive integer or None, got {k!r}")
    if not (isinstance(tol, (int, float)) and tol > 0):
        raise ValueError(f"tol must be a positive number, got {tol!r}")
    t0 = time.perf_counter()
    if dtype is not None and dtype != problem.dtype:
        w = problem.check_w(w).to(dtype)
        problem = problem.to(dtype=dtype)
    w = problem.check_w(w).detach()
    sel, trace = resolve_outputs(problem, outputs)
    m = problem.n if indices is None else problem.check_indices(indices).numel()
    ks = problem.k if sel is None else sel.numel()
    N = m if trace else m * ks
    outputs_label = (
        outputs if isinstance(outputs, str) else f"indices {list(np.atleast_1d(outputs))}"
    )
    if method == "auto":
        method = "dense"
        if N > DENSE_THRESHOLD:
            method = "lanczos"
        else:
            try:
                _mem.check_memory(N * N * 8 * 3, "dense eigenvalues", max_memory, problem.device)
            except ValueError:
                method = "lanczos"
    if method == "dense":
        _mem.check_memory(
            N * N * 8 * 2 + N * N * torch.empty((), dtype=problem.dtype).element_size(),
            f"the dense {N} × {N} kernel and its eigenvalues",
            max_memory,
            problem.device,
            "use method='lanczos' (matrix-free) or a subset of samples/outputs",
        )
        K = tangent_kernel(
            problem,
            w,
            method=kernel_method,
            outputs=outputs,
            chunk_size=chunk_size,
            indices=indices,
            max_memory=max_memory,
            progress=progress,
        )
        return spectrum_from_kernel(
            K,
            kernel_method=kernel_method,
            outputs=outputs_label,
            seconds=time.perf_counter() - t0,
        )
    if trace:
        raise ValueError("outputs='trace' needs method='dense' (no matrix-free operator)")
    from lossgeometry.kernel.ntvp import ntk_operator

    q = k or 1
    if 2 * q >= N:
        raise ValueError(
            f"k={q} eigenvalues at each end of a kernel of order N={N} is too many for a "
            "matrix-free method: use method='dense'"
        )
    op = ntk_operator(
        problem,
        w,
        chunk_size=chunk_size,
        outputs=outputs if sel is not None else "full",
        indices=indices,
    )
    if method == "lanczos":
        res = _thick_lanczos(op, q, tol, maxiter, ncv, seed, progress)
    elif method == "arpack":
        res = _lanczos(op, q, tol, maxiter, ncv if ncv is not None else LANCZOS_NCV, seed)
    else:
        res = _lobpcg(
            problem,
            w,
            op,
            q,
            tol,
            maxiter,
            block_size,
            preconditioner,
            seed,
            sel,
            indices,
            chunk_size,
            max_memory,
        )
    vals, vecs, converged, iters = res
    products = op.matvecs
    R = (op @ torch.from_numpy(vecs)).cpu().double().numpy() - vecs * vals[None, :]
    resid = np.linalg.norm(R, axis=0)
    if method == "lobpcg":
        converged = converged and bool(np.all(resid <= tol * float(np.max(np.abs(vals)))))
    lmin, lmax = float(vals[0]), float(vals[-1])
    return KernelSpectrum(
        lambda_min=lmin,
        lambda_max=lmax,
        condition_number=_condition(lmin, lmax),
        eigenvalues=vals,
        method=method,
        size=N,
        error_estimate=float(resid.max()),
        converged=bool(converged),
        iterations=int(iters),
        matvecs=int(products),
        residual_norms=resid,
        tol=float(tol),
        kernel_method="ntvp",
        outputs=outputs_label,
        dtype=str(problem.dtype).replace("torch.", ""),
        seconds=time.perf_counter() - t0,
    )


def spectrum_from_kernel(
    K: torch.Tensor, *, kernel_method: str = "", outputs: str = "full", seconds: float = 0.0
) -> KernelSpectrum:
    """A dense :class:`KernelSpectrum` of an already computed kernel ``K`` (``N × N``).

    All eigenvalues by ``torch.linalg.eigvalsh`` in float64; ``error_estimate = eps ·
    ‖K‖_F`` with ``eps`` of ``K``'s dtype; ``rank`` counts eigenvalues above it.
    """
    if K.ndim != 2 or K.shape[0] != K.shape[1]:
        raise ValueError(f"K must be a square matrix, got shape {tuple(K.shape)}")
    t0 = time.perf_counter()
    eps = torch.finfo(K.dtype).eps
    fro = float(torch.linalg.matrix_norm(K))
    tr = float(K.diagonal().sum())
    ev = torch.linalg.eigvalsh(K.to(torch.float64)).cpu().numpy()
    err = eps * fro
    lmin, lmax = float(ev[0]), float(ev[-1])
    return KernelSpectrum(
        lambda_min=lmin,
        lambda_max=lmax,
        condition_number=_condition(lmin, lmax),
        eigenvalues=ev,
        method="dense",
        size=int(K.shape[0]),
        trace=tr,
        rank=int((ev > err).sum()),
        error_estimate=err,
        kernel_method=kernel_method,
        outputs=outputs,
        dtype=str(K.dtype).replace("torch.", ""),
        seconds=seconds + time.perf_counter() - t0,
    )


def _start(N: int, c: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal((N, c))


def _lanczos(op: NTKOperator, q: int, tol: float, maxiter: int | None, ncv: int | None, seed: int):
    """Both ends by implicitly restarted Lanczos (ARPACK): ``which="LA"`` then ``"SA"``.

    ARPACK's test ``‖r‖ ≤ tol·|θ|`` is relative to each Ritz value θ, so ``λ_min`` gets
    relative accuracy (Lanczos on the shifted ``σI − K`` would only give ``tol·σ`` absolute
    accuracy, useless when ``κ > 1/tol``). ARPACK applies the operator once per Lanczos step,
    so the number of steps equals the number of products (returned as the iteration count).
    """
    N = op.shape[0]
    if ncv is not None:
        ncv = int(min(N - 1, max(ncv, 2 * q + 1)))
    hint = "raise maxiter or tol, or use method='dense'"
    kw = {"tol": tol, "maxiter": maxiter, "ncv": ncv, "hint": hint}
    top, vtop, ok1 = eigsh_end(op, q, "LA", v0=seed, **kw)
    bot, vbot, ok2 = eigsh_end(op, q, "SA", v0=seed + 1, **kw)
    vals = np.concatenate([bot, top])
    vecs = np.concatenate([vbot, vtop], axis=1)
    return vals, vecs, ok1 and ok2, op.matvecs


def _thick_lanczos(
    op: NTKOperator,
    q: int,
    tol: float,
    maxiter: int | None,
    ncv: int | None,
    seed: int,
    progress: bool | None,
) -> tuple[np.ndarray, np.ndarray, bool, int]:
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


def _lobpcg(
    problem: Problem,
    w: torch.Tensor,
    op: NTKOperator,
    q: int,
    tol: float,
    maxiter: int | None,
    block_size: int | None,
    preconditioner: bool,
    seed: int,
    sel: torch.Tensor | None,
    indices: Sequence[int] | torch.Tensor | None,
    chunk_size: int | None,
    max_memory: int | str | None,
):
    """Both ends by block LOBPCG (bottom end optionally preconditioned with ``(K_ii)⁻¹``).

    Convergence is judged on the true residual norms ``‖Kv − λv‖ ≤ tol·λ_max`` of the
    returned pairs and reported in the result (:func:`~lossgeometry.linalg.lobpcg_end`).
    """
    from scipy.sparse.linalg import LinearOperator

    from lossgeometry.kernel.tangent import tangent_kernel

    N = op.shape[0]
    bs = max(q, block_size or 4)
    maxiter = maxiter or 500
    X = _start(N, bs, seed)
    top_tol = tol * np.linalg.norm(op @ X[:, :1]) / np.linalg.norm(X[:, 0])
    top, vtop, iters = lobpcg_end(op, X, largest=True, tol=top_tol, maxiter=maxiter)
    lmax = float(np.max(top))
    M = None
    if preconditioner:
        blocks = tangent_kernel(
            problem,
            w,
            outputs=sel.tolist() if sel is not None else "full",
            diagonal_only=True,
            indices=indices,
            chunk_size=chunk_size,
            max_memory=max_memory,
        ).double()
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
