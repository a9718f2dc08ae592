"""Adapters to SciPy's eigensolvers: ARPACK (``eigsh``) and LOBPCG at one end of a spectrum.

Both take any square symmetric operator SciPy accepts (a
:class:`~lossgeometry.operators.TorchLinearOperator` as it is) and return NumPy arrays. What
they add to a plain call: the eigenpairs sorted ascending, partial results instead of an
exception when ARPACK stops at ``maxiter`` (with ``converged=False``), and LOBPCG's
convergence warnings silenced (its callers judge convergence on the true residuals).
"""

from __future__ import annotations

import warnings
from typing import Any, Literal

import numpy as np

__all__ = ["eigsh_end", "lobpcg_end"]


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
    hint: str = "raise maxiter or tol",
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
        warn: issue a ``RuntimeWarning`` when ARPACK does not converge.
        hint: what to do, for the error message.

    Returns:
        ``(values, vectors, converged)``, values ascending, vectors as matching columns.

    Raises:
        ValueError: ARPACK stopped with fewer than ``min_found`` eigenvalues.
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
        if warn:
            warnings.warn(
                f"ARPACK did not converge for which={which!r}: {e}", RuntimeWarning, stacklevel=3
            )
        vals, vecs, converged = e.eigenvalues, e.eigenvectors if vectors else None, False
        need = k if min_found is None else min_found
        if vals is None or len(vals) < need:
            found = 0 if vals is None else len(vals)
            raise ValueError(
                f"ARPACK found only {found} of {k} eigenvalues (which={which!r}) within "
                f"maxiter={maxiter}: {hint}"
            ) from None
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
        ``(values, vectors, iterations)`` in LOBPCG's order.
    """
    from scipy.sparse.linalg import lobpcg

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        vals, vecs, hist = lobpcg(
            A, X, M=M, largest=largest, tol=tol, maxiter=maxiter, retResidualNormsHistory=True
        )
    return vals, vecs, len(hist)
