"""Numerical rank: how many singular values are non-zero, decided by a gap or a tolerance.

The rank of a matrix computed in floating point is never exact: singular values that are
zero in exact arithmetic come out as ``O(ε · s_max)`` (rounding) or at the level of the
noise in the entries. :func:`numerical_rank` decides the cut in two ways:

* **a tolerance** ``tol`` (absolute) or ``rtol`` (relative to ``s_max``): the rank is the
  number of values above it;
* **the largest relative gap** (default): among the values above the rounding floor
  ``s_max · max(m, n) · ε`` (NumPy's ``matrix_rank`` default), find the largest ratio
  ``s_i / s_{i+1}`` between consecutive values; if it is at least ``min_gap`` (default
  ``1e3``) the rank is the number of values above that gap, otherwise it is the number of
  values above the floor.

The gap rule finds the rank of a low-rank matrix with noise in its entries (the noise
singular values sit far below the signal ones but above the floor), and leaves a full-rank
matrix with a smoothly decaying spectrum alone.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np
import torch

from lossgeometry._plotting import axes_or_new
from lossgeometry.operators.base import TorchLinearOperator
from lossgeometry.results import Result

__all__ = ["Rank", "numerical_rank"]


@dataclasses.dataclass(frozen=True)
class Rank(Result):
    """The numerical rank of a matrix (or of a list of singular values) and how it was decided.

    Attributes:
        rank: the number of singular values counted as non-zero.
        size: the number of singular values there are (``min(m, n)`` for an ``m × n``
            matrix); ``size - rank`` is the number of numerically zero ones.
        method: ``"gap"`` (the cut is the largest relative gap, at least ``min_gap``) or
            ``"tolerance"`` (values above ``tol`` count).
        tol: the threshold actually used: values ``> tol`` count as non-zero. For
            ``method="gap"`` it is the first value below the gap.
        gap: the ratio across the cut, ``s_rank / s_{rank+1}``; when no value lies below the
            cut (full rank) it is ``s_min / floor``, how far the smallest value sits above the
            rounding floor ``s_max · max(m, n) · ε``. ``inf`` when the value below the cut is
            exactly zero, ``nan`` when the rank is 0 (no value above the cut).
        floor: the rounding floor ``s_max · max(m, n) · ε`` (``ε`` of the input's dtype), or
            the ``floor`` passed in.
        singular_values: the values around the cut (up to ``window`` on each side), in
            decreasing order.
        window_start: index (0-based, in decreasing order) of ``singular_values[0]``.
        s_max: the largest singular value.
    """

    rank: int
    size: int
    method: str
    tol: float
    gap: float
    floor: float
    singular_values: np.ndarray
    window_start: int
    s_max: float

    @property
    def nullity(self) -> int:
        """``size - rank``: the number of numerically zero singular values."""
        return self.size - self.rank

    def summary(self) -> dict[str, Any]:
        """Headline scalars: the rank, the nullity, how the cut was made and how clear it is."""
        return {
            "rank": self.rank,
            "size": self.size,
            "nullity": self.nullity,
            "gap": self.gap,
            "method": self.method,
            "tol": self.tol,
            "floor": self.floor,
            "s_max": self.s_max,
        }

    def plot(self, ax: Any = None) -> Any:
        """The window of singular values around the cut on a log scale, the cut marked."""
        ax = axes_or_new(ax, (5, 3.5))
        idx = np.arange(self.window_start, self.window_start + len(self.singular_values))
        vals = np.maximum(np.asarray(self.singular_values, dtype=float), np.finfo(float).tiny)
        ax.semilogy(idx + 1, vals, "o-", ms=4)
        ax.axvline(self.rank + 0.5, color="C3", ls="--", label=f"rank {self.rank}")
        ax.axhline(self.floor, color="0.5", ls=":", label="rounding floor")
        ax.set_xlabel("index (decreasing order)")
        ax.set_ylabel("singular value")
        ax.legend()
        return ax


def _as_values(x: Any) -> tuple[np.ndarray, int, float]:
    """Singular values (decreasing, float64), the larger matrix dimension, and ε."""
    if isinstance(x, TorchLinearOperator):
        x = x.to_dense()
    if isinstance(x, torch.Tensor):
        eps = (
            float(torch.finfo(x.dtype).eps) if x.is_floating_point() else float(np.finfo(float).eps)
        )
        if x.ndim == 2:
            s = torch.linalg.svdvals(x.detach().to(torch.float64)).cpu().numpy()
            return np.sort(s)[::-1], max(x.shape), eps
        x = x.detach().cpu().numpy()
    arr = np.asarray(x)
    if arr.dtype.kind not in "fiu":
        raise TypeError(f"numerical_rank needs a real matrix or a 1-D array, got dtype {arr.dtype}")
    eps = float(np.finfo(arr.dtype).eps) if arr.dtype.kind == "f" else float(np.finfo(float).eps)
    arr = arr.astype(np.float64)
    if arr.ndim == 2:
        s = np.linalg.svd(arr, compute_uv=False)
        return np.sort(s)[::-1], max(arr.shape), eps
    if arr.ndim != 1:
        raise ValueError(
            f"numerical_rank takes a matrix (2-D) or singular values (1-D), got {arr.ndim}-D"
        )
    return np.sort(np.abs(arr))[::-1], arr.size, eps


def numerical_rank(
    x: Any,
    tol: float | None = None,
    *,
    rtol: float | None = None,
    min_gap: float = 1e3,
    size: int | None = None,
    scale: float | None = None,
    dim: int | None = None,
    floor: float | None = None,
    window: int = 3,
) -> Rank:
    """The numerical rank of a matrix, or of given singular values (or eigenvalues).

    Args:
        x: a 2-D matrix (tensor, array, or a small
            :class:`~lossgeometry.operators.TorchLinearOperator`, made dense from its
            products; its singular values are computed in float64), or a 1-D array of
            singular values or eigenvalues (absolute values are used, so the rank of a
            symmetric matrix can be read from its eigenvalues).
        tol: absolute tolerance: values ``> tol`` count. Disables the gap rule.
        rtol: relative tolerance: values ``> rtol · s_max`` count. Disables the gap rule.
        min_gap: the smallest ratio ``s_i / s_{i+1}`` the gap rule accepts as a cut.
        size: the total number of singular values when ``x`` holds only the *smallest* ones
            (the others are known to be larger, e.g. from an iterative solver): the rank is
            then ``size - (number of zeros among x)``.
        scale: ``s_max`` when ``x`` does not contain the largest value (with ``size``).
        dim: the larger matrix dimension for the rounding floor (default: ``max(m, n)`` of a
            matrix, ``len(x)`` for values).
        floor: the rounding floor itself, when the values are less accurate than a direct SVD
            (e.g. ``σ = √λ(J Jᵀ)`` resolves only ``≈ √(nk ε) · σ_max``); overrides ``dim``.
        window: how many values on each side of the cut to keep in the result.

    Returns:
        A :class:`Rank` (``rank``, ``gap``, ``tol`` used, values around the cut).

    Raises:
        ValueError: NaN/Inf values, a negative tolerance, or ``min_gap <= 1``.
        TypeError: a non-numeric input.

    Example:
        >>> import numpy as np
        >>> rng = np.random.default_rng(0)
        >>> A = rng.standard_normal((20, 3)) @ rng.standard_normal((3, 30))
        >>> numerical_rank(A + 1e-9 * rng.standard_normal((20, 30))).rank
        3
    """
    s, big, eps = _as_values(x)
    if s.size == 0:
        raise ValueError("numerical_rank got an empty matrix or list of values")
    if not np.all(np.isfinite(s)):
        raise ValueError("numerical_rank got NaN or Inf singular values: check the matrix")
    if min_gap <= 1:
        raise ValueError(f"min_gap must be > 1 (a ratio between singular values), got {min_gap}")
    if tol is not None and rtol is not None:
        raise ValueError("give tol (absolute) or rtol (relative), not both")
    if size is not None and size < s.size:
        raise ValueError(f"size={size} is smaller than the number of values given ({s.size})")
    total = size if size is not None else s.size
    s_max = float(scale) if scale is not None else float(s[0])
    if floor is None:
        floor = s_max * (dim if dim is not None else big) * eps
    floor = float(floor)
    tiny = np.finfo(np.float64).tiny

    if tol is not None or rtol is not None:
        thr = float(tol) if tol is not None else float(rtol) * s_max
        if thr < 0:
            raise ValueError(f"the tolerance must be >= 0, got {thr}")
        count = int(np.sum(s > thr))
        method = "tolerance"
    else:
        above = int(np.sum(s > floor))
        count, method, thr = above, "tolerance", floor
        if above >= 2:
            ratios = s[: above - 1] / np.maximum(s[1:above], tiny)
            i = int(np.argmax(ratios))
            if ratios[i] >= min_gap:
                count, method, thr = i + 1, "gap", float(s[i + 1])
    if count < s.size:
        gap = float(s[count - 1] / s[count]) if count > 0 and s[count] > 0 else float("inf")
        if count == 0:
            gap = float("nan")
    else:
        gap = float(s[-1] / floor) if floor > 0 else float("inf")
    lo = max(0, count - window)
    hi = min(s.size, count + window)
    rank = total - (s.size - count)
    return Rank(
        rank=int(rank),
        size=int(total),
        method=method,
        tol=float(thr),
        gap=gap,
        floor=float(floor),
        singular_values=s[lo:hi].copy(),
        window_start=int(lo + (total - s.size)),
        s_max=s_max,
    )
