r"""Spectrum of the tangent kernel: ``λ_min``, ``λ_max``, condition number, eigenvalues.

Dense (``N = n·ks ≲ 4096``): build ``K`` (:func:`~lossgeometry.kernel.tangent.tangent_kernel`)
and take all eigenvalues with ``torch.linalg.eigvalsh`` in float64. The eigenvalue error is
then dominated by the rounding of ``K`` in its own dtype (Weyl: ``|λ̂_i − λ_i| ≤ ‖K̂ − K‖₂``),
reported as ``error_estimate = eps · ‖K̂‖_F``.

Matrix-free (``solver="lanczos"``, ``"arpack"`` or ``"lobpcg"``) on the NTK-vector-product
operator (:func:`~lossgeometry.kernel.ntvp.ntk_operator`). The smallest eigenvalue of a PSD
kernel sits at the bottom of a spectrum with a large dynamic range and converges slowly;
shift-invert is not available without factorizing ``K``. ``"lanczos"`` (the default
matrix-free solver) runs lossgeometry's thick-restart Lanczos
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

``"sharded"`` runs the same Lanczos on the *dense* kernel held as row blocks
(:func:`~lossgeometry.kernel.rows.kernel_rows`): on a data-parallel Problem each rank holds the
rows of its own samples and a product is ``K v = gathered K_{S_r,:} v``, so ``λ_min`` is found
where the whole kernel does not fit one process but each rank's rows do; each product is a
matrix-vector product instead of a pass over the data. On one process the block is the whole
kernel. On a data-parallel Problem ``"auto"`` picks it whenever ``"dense"`` is not chosen and
the largest rank's rows fit in memory (the limit being the smallest of the ranks').

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

from lossgeometry._compat import deprecated_call_style
from lossgeometry._plotting import axes_or_new
from lossgeometry.kernel import memory as _mem
from lossgeometry.kernel.spectrum_free import LANCZOS_NCV, default_ncv, solve_ends
from lossgeometry.operators.base import require_finite
from lossgeometry.problem import Problem
from lossgeometry.results import Result

__all__ = [
    "DENSE_THRESHOLD",
    "LANCZOS_NCV",
    "SPECTRUM_METHODS",
    "SPECTRUM_SOLVERS",
    "KernelSpectrum",
    "default_ncv",
    "kernel_spectrum",
    "spectrum_from_kernel",
]

DENSE_THRESHOLD: int = 4096
"""``solver="auto"`` builds the dense kernel when ``N = n·ks`` is at most this (and it fits
in memory); matrix-free Lanczos otherwise."""

SPECTRUM_SOLVERS = ("auto", "dense", "lanczos", "arpack", "lobpcg", "sharded")
"""The eigen-solvers of :func:`kernel_spectrum` (its ``solver=``)."""
SPECTRUM_METHODS = SPECTRUM_SOLVERS
"""Former name of :data:`SPECTRUM_SOLVERS` (kept for one release)."""


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
    """Computed eigenvalues, ascending: all ``N`` (dense) or the ``num_eigenvalues`` smallest
    followed by the ``num_eigenvalues`` largest (matrix-free)."""
    method: str
    """The eigen-solver used: ``"dense"``, ``"lanczos"``, ``"arpack"`` or ``"lobpcg"``."""
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

    def summary(self) -> dict[str, Any]:
        """Headline scalars: both ends, κ, the trace and rank (dense), accuracy and cost."""
        return {
            "lambda_min": self.lambda_min,
            "lambda_max": self.lambda_max,
            "condition_number": self.condition_number,
            "size": self.size,
            "trace": self.trace,
            "rank": self.rank,
            "error_estimate": self.error_estimate,
            "converged": self.converged,
            "method": self.method,
            "kernel_method": self.kernel_method,
            "outputs": self.outputs,
            "iterations": self.iterations,
            "matvecs": self.matvecs,
            "tol": self.tol,
            "dtype": self.dtype,
            "seconds": self.seconds,
        }

    def plot(self, ax: Any = None, *, label: str | None = None) -> Any:
        """Eigenvalues in decreasing order on a log scale (returns the Axes).

        Call it on the same ``ax`` for several spectra; ``label`` gets the condition number.
        Eigenvalues ``≤ 0`` (rounding) are drawn at ``1e-16 · λ_max``.
        """
        ax = axes_or_new(ax, (5, 3.5))
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


@deprecated_call_style(
    renamed={"method": "solver", "k": "num_eigenvalues"},
    positional=("num_eigenvalues", "solver", "tol"),
)
def kernel_spectrum(
    problem: Problem,
    w: torch.Tensor | None = None,
    *,
    num_eigenvalues: int | None = None,
    solver: str = "auto",
    tol: float = 1e-6,
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
        num_eigenvalues: matrix-free: how many eigenvalues at *each* end (default 1).
            Dense: ignored (all ``N`` eigenvalues are returned). (Not ``k``: ``problem.k``
            counts outputs.)
        solver: ``"auto"`` (dense when ``N ≤ DENSE_THRESHOLD`` and it fits in memory, else
            ``"lanczos"``), ``"dense"``, ``"lanczos"`` (thick-restart Lanczos, both ends at
            once), ``"arpack"`` (SciPy ``eigsh``, one run per end), ``"lobpcg"``, or
            ``"sharded"`` (Lanczos on the dense kernel's row blocks, one block per rank; see
            the module docstring). On a data-parallel Problem ``"auto"`` takes
            ``"sharded"`` instead of ``"lanczos"`` when each rank's rows fit in memory.
        tol: matrix-free relative tolerance. ``"lanczos"``: the error bound of every
            returned eigenvalue is ``≤ tol·|λ|`` (relative accuracy, ``λ_min`` included);
            ``"arpack"``: residual ``≤ tol·|θ|``; LOBPCG: residual norm ``≤ tol·λ_max``.
        outputs: ``"full"``, ``"trace"`` (dense and sharded only) or output indices (see
            :func:`~lossgeometry.kernel.tangent.tangent_kernel`).
        indices: restrict to these samples.
        kernel_method: how the dense kernel is built (``"auto"``, ``"structured"``,
            ``"jacobian"``, ``"ntvp"``).
        chunk_size: samples per chunk.
        dtype: compute K in this dtype (e.g. ``torch.float64`` for a reference; the
            problem is copied); eigenvalues are always taken in float64.
        maxiter: matrix-free limit: products for ``"lanczos"`` (default
            ``max(10·ncv, 2N)``), restarts for ``"arpack"`` (SciPy's default), iterations
            for LOBPCG (500). A run that reaches it returns its current estimates with
            ``converged=False`` and a ``RuntimeWarning`` (ARPACK with no estimate at an
            end: a ``ValueError``).
        block_size: LOBPCG block size (default ``max(num_eigenvalues, 4)``).
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
        ValueError: an unknown solver, ``num_eigenvalues < 1``, ``2·num_eigenvalues ≥ N``
            for a matrix-free solver, or a dense request beyond the memory limit (use
            ``solver="lanczos"``).

    The former call style (``k``, ``method``, ``tol`` by position; ``k=`` for
    ``num_eigenvalues``, ``method=`` for the solver) works for one release, with a
    :class:`DeprecationWarning`.
    """
    from lossgeometry.kernel.outputs import resolve_outputs
    from lossgeometry.kernel.tangent import tangent_kernel

    if solver not in SPECTRUM_SOLVERS:
        raise ValueError(f"unknown spectrum solver {solver!r}: use one of {SPECTRUM_SOLVERS}")
    k = num_eigenvalues
    if k is not None and (not isinstance(k, int) or k < 1):
        raise ValueError(f"num_eigenvalues must be a positive integer or None, got {k!r}")
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
    if problem.is_data_parallel:  # one memory limit on every rank: the same solver everywhere
        max_memory = _mem.agreed_limit(problem, max_memory)
    if solver == "auto":
        solver = "dense"
        if N > DENSE_THRESHOLD:
            solver = "lanczos"
        else:
            try:
                _mem.check_memory(N * N * 8 * 3, "dense eigenvalues", max_memory, problem.device)
            except ValueError:
                solver = "lanczos"
        if solver == "lanczos" and problem.is_data_parallel:
            from lossgeometry.kernel.rows import rows_fit

            solver = "sharded" if rows_fit(problem, m, N, indices, max_memory) else "lanczos"
    if solver == "dense":
        _mem.check_memory(
            N * N * 8 * 2 + N * N * torch.empty((), dtype=problem.dtype).element_size(),
            f"the dense {N} × {N} kernel and its eigenvalues",
            max_memory,
            problem.device,
            "use solver='lanczos' (matrix-free) or a subset of samples/outputs",
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
    if trace and solver != "sharded":
        raise ValueError(
            "outputs='trace' needs solver='dense' or 'sharded' (no matrix-free operator)"
        )
    from lossgeometry.kernel.ntvp import ntk_operator

    q = k or 1
    if 2 * q >= N:
        raise ValueError(
            f"num_eigenvalues={q} at each end of a kernel of order N={N} is too many for a "
            "matrix-free solver: use solver='dense'"
        )
    if solver == "sharded":
        from lossgeometry.kernel.rows import kernel_rows

        op: Any = kernel_rows(
            problem, w, method=kernel_method, outputs=outputs, chunk_size=chunk_size,
            indices=indices, max_memory=max_memory, progress=progress,
        ).operator(problem)  # fmt: skip
    else:
        op = ntk_operator(
            problem,
            w,
            chunk_size=chunk_size,
            outputs=outputs if sel is not None else "full",
            indices=indices,
        )
    diag = None
    if preconditioner and solver == "lobpcg":

        def diag() -> torch.Tensor:
            return tangent_kernel(
                problem,
                w,
                outputs=sel.tolist() if sel is not None else "full",
                diagonal_only=True,
                indices=indices,
                chunk_size=chunk_size,
                max_memory=max_memory,
            )

    vals, _, converged, iters, resid = solve_ends(
        op, solver, q, tol, maxiter, ncv, block_size, seed, diag, progress
    )
    products = op.matvecs
    lmin, lmax = float(vals[0]), float(vals[-1])
    return KernelSpectrum(
        lambda_min=lmin,
        lambda_max=lmax,
        condition_number=_condition(lmin, lmax),
        eigenvalues=vals,
        method=solver,
        size=N,
        error_estimate=float(resid.max()),
        converged=bool(converged),
        iterations=int(iters),
        matvecs=int(products),
        residual_norms=resid,
        tol=float(tol),
        kernel_method=kernel_method if solver == "sharded" else "ntvp",
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
    require_finite(K, "the kernel K has")
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
