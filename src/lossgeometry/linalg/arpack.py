"""Adapters to SciPy's eigensolvers: ARPACK (``eigsh``) and LOBPCG at one end of a spectrum.

Both take any square symmetric operator SciPy accepts (a
:class:`~lossgeometry.operators.TorchLinearOperator` as it is) and return NumPy arrays. What
they add to a plain call: the eigenpairs sorted ascending, partial results instead of an
exception when ARPACK stops at ``maxiter`` (with ``converged=False``), and LOBPCG's
convergence warnings silenced (its callers judge convergence on the true residuals).

A solver that stops before every wanted eigenpair met its tolerance says so as the Lanczos
path does (:func:`not_converged_warning`: what stopped it, the tolerance, what to do, and
that the result reports ``converged=False``); ARPACK stopping with no eigenvalue at all is
an error that says which end, after how many restarts, and what to do instead.
"""

from __future__ import annotations

import warnings
from typing import Any, Literal

import numpy as np

__all__ = ["eigsh_end", "lobpcg_end", "not_converged_warning"]

_ENDS = {
    "LA": "largest",
    "SA": "smallest",
    "LM": "largest-magnitude",
    "SM": "smallest-magnitude",
}


def _tol_text(tol: float) -> str:
    return f"tol={tol:g}" if tol > 0 else "tol=0 (machine precision)"


def not_converged_warning(solver: str, stopped: str, tol: float, todo: str) -> None:
    """The one warning of a solver that stopped before every wanted eigenpair met ``tol``.

    ``"{solver} stopped after {stopped} before every wanted eigenpair met tol={tol}: {todo};
    the result reports converged=False"`` as a ``RuntimeWarning`` (the Lanczos path's words).
    """
    warnings.warn(
        f"{solver} stopped after {stopped} before every wanted eigenpair met "
        f"{_tol_text(tol)}: {todo}; the result reports converged=False",
        RuntimeWarning,
        stacklevel=3,
    )


def eigsh_end(
    A: Any,
    k: int,
    which: Literal["LA", "SA", "LM", "SM"],
    *,
    tol: float = 0.0,
    ncv: int | None = None,
    maxiter: int | None = None,
    v0: np.ndarray | int | None = None,
    vectors: bool = True,
    min_found: int | None = None,
    warn: bool = False,
    hint: str = "increase maxiter or tol",
) -> tuple[np.ndarray, np.ndarray | None, bool]:
    """``k`` eigenpairs at one end by ARPACK (``scipy.sparse.linalg.eigsh``).

    ARPACK accepts a Ritz pair when its residual is ``≤ tol·|θ|`` (``tol = 0``: machine
    precision).

    Args:
        A: the symmetric operator.
        k: how many eigenvalues.
        which: ``"LA"`` (largest), ``"SA"`` (smallest), ``"LM"``/``"SM"`` (magnitude).
        tol: ARPACK's relative tolerance.
        ncv: ARPACK's basis size (default: SciPy's).
        maxiter: ARPACK's restart limit (default: SciPy's).
        v0: the start vector, or a seed: ``np.random.default_rng(v0).standard_normal(n)``
            (``None``: ARPACK's own random start).
        vectors: also return the eigenvectors (else ``None``).
        min_found: when ARPACK does not converge, accept a partial result with at least this
            many eigenvalues (default ``k``).
        warn: issue a ``RuntimeWarning`` (:func:`not_converged_warning`) when ARPACK returns
            a partial result (the measurements that report ``converged`` pass ``True``).
        hint: what to do, for the warning and the error message.

    Returns:
        ``(values, vectors, converged)``, values ascending, vectors as matching columns.

    Raises:
        ValueError: ARPACK stopped with fewer than ``min_found`` eigenvalues (``"ARPACK
            stopped after maxiter=… restarts with 0 of the 1 smallest eigenvalues converged
            to tol=…: …"``).
    """
    from scipy.sparse.linalg import ArpackNoConvergence, eigsh

    if isinstance(v0, (int, np.integer)):
        v0 = np.random.default_rng(int(v0)).standard_normal(A.shape[0])
    vecs = None
    try:
        if vectors:
            vals, vecs = eigsh(A, k=k, which=which, tol=tol, ncv=ncv, maxiter=maxiter, v0=v0)
        else:
            vals = eigsh(
                A, k=k, which=which, tol=tol, ncv=ncv, maxiter=maxiter, v0=v0,
                return_eigenvectors=False,
            )  # fmt: skip
        converged = True
    except ArpackNoConvergence as e:
        vals, vecs, converged = e.eigenvalues, e.eigenvectors if vectors else None, False
        need = k if min_found is None else min_found
        found = 0 if vals is None else len(vals)
        end = _ENDS.get(which, which)
        limit = (
            f"maxiter={maxiter} restarts"
            if maxiter is not None
            else f"SciPy's default maxiter ({10 * A.shape[0]} restarts)"
        )
        if found < need:
            raise ValueError(
                f"ARPACK stopped after {limit} with {found} of the {k} {end} eigenvalues "
                f"(which={which!r}) converged to {_tol_text(tol)}, so it has no estimate to "
                f"return: {hint}"
            ) from None
        if warn:
            not_converged_warning(
                "ARPACK", f"{limit} ({found} of the {k} {end} eigenvalues converged)", tol, hint
            )
    vals = np.asarray(vals)
    order = np.argsort(vals)
    return vals[order], (None if vecs is None else vecs[:, order]), converged


def lobpcg_end(
    A: Any,
    X: np.ndarray,
    *,
    largest: bool,
    tol: float,
    maxiter: int,
    M: Any = None,
) -> tuple[np.ndarray, np.ndarray, int]:
    """Block LOBPCG (``scipy.sparse.linalg.lobpcg``) from the block ``X`` at one end.

    SciPy's convergence warnings are silenced: judge convergence on the true residuals of the
    returned pairs.

    Args:
        A: the symmetric operator.
        X: start block ``(n, b)``: ``b`` eigenpairs are computed.
        largest: the largest (``True``) or the smallest eigenvalues.
        tol: LOBPCG's residual tolerance (absolute).
        maxiter: iterations at most.
        M: a preconditioner (an operator approximating ``A⁻¹``), or ``None``.

    Returns:
        ``(values, vectors, iterations)`` in LOBPCG's order (0 iterations when SciPy solved a
        small problem, ``n < 5 b``, densely).
    """
    from scipy.sparse.linalg import lobpcg

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        out = lobpcg(
            A, X, M=M, largest=largest, tol=tol, maxiter=maxiter, retResidualNormsHistory=True
        )
    # SciPy solves a small problem (n < 5 b) densely and then returns no history: 0 iterations
    vals, vecs = out[0], out[1]
    return vals, vecs, (len(out[2]) if len(out) > 2 else 0)
