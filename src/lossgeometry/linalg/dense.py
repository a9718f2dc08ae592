"""Small operators, densely: the one dense-when-small threshold and the symmetric dense matrix.

An operator of order ``n`` costs ``n`` products to build densely, then ``O(n³)`` for all of
its eigenvalues; an iterative solver needs a few dozen to a few hundred products for the
ends of the spectrum. Every ``solver="auto"`` that chooses between a dense and a
matrix-free route for an operator built from products (the loss Hessian in
:func:`~lossgeometry.hessian_spectrum`, :func:`~lossgeometry.hessian_nullity`,
:func:`~lossgeometry.negative_curvature_near`, and the dense-only
:func:`~lossgeometry.local_convexity`) uses :data:`DENSE_MAX_ORDER`.
"""

from __future__ import annotations

import torch

from lossgeometry.operators.base import square_operator

__all__ = ["DENSE_MAX_ORDER", "symmetric_dense"]

DENSE_MAX_ORDER = 3000
"""``solver="auto"`` builds an operator densely when its order is at most this."""


def symmetric_dense(A: object) -> torch.Tensor:
    """The dense float64 matrix ``(M + Mᵀ)/2`` of a symmetric operator (``n`` products).

    Symmetrizing removes the rounding asymmetry of the products before ``eigh``.
    """
    M = square_operator(A, "symmetric_dense").to_dense().double()
    return 0.5 * (M + M.T)
