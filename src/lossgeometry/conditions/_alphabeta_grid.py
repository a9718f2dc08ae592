"""Exact minima of the affine α-β test quantity over many records.

Every record ``k`` (a training step, or a point and a sample ``i`` of an analytic example)
contributes three scalars, and the α-β test quantity is affine in ``(α, β)``:

    T_k(α, β) = c_k − α a_k + β b_k,
    c_k = ⟨∇f_i(x), x − x_p⟩,   a_k = f_i(x) − f_i(x_p),   b_k = f_i(x) − f_i*.

A pair holds on the records when ``min_k T_k(α, β) ≥ −tol``. This module evaluates that
minimum on grids (:func:`min_affine`), the exact boundary ``β_min(α)`` (:func:`beta_min`) and
the exact smallest feasible pair by linear programming (:func:`smallest_feasible_pair`).
"""

from __future__ import annotations

import numpy as np

_BRUTE_LIMIT = 4_000_000  # records × grid pairs evaluated per numpy block


def _as_1d(x: np.ndarray | list[float] | tuple[float, ...], name: str) -> np.ndarray:
    a = np.asarray(x, dtype=float).reshape(-1)
    if a.size == 0:
        raise ValueError(f"{name} is empty: pass at least one value")
    if not np.all(np.isfinite(a)):
        raise ValueError(f"{name} contains NaN or Inf")
    return a


def _check_records(c: np.ndarray, a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, ...]:
    c, a, b = (np.asarray(v, dtype=float).reshape(-1) for v in (c, a, b))
    if not (c.shape == a.shape == b.shape):
        raise ValueError(f"c, a, b must have the same length, got {c.size}, {a.size}, {b.size}")
    if c.size == 0:
        raise ValueError("there are no records: record at least one step or point")
    bad = ~(np.isfinite(c) & np.isfinite(a) & np.isfinite(b))
    if bad.any():
        raise ValueError(
            f"{int(bad.sum())} record(s) hold NaN or Inf (first at index {int(np.argmax(bad))}): "
            "the run diverged or a loss is not finite"
        )
    return c, a, b


def _hull_candidates(c: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Indices of records that can attain ``min_k (c_k − α a_k + β b_k)`` for some ``(α, β)``.

    The minimum of a linear functional over a finite point set is attained at a vertex of the
    set's convex hull, so only hull vertices of ``{(a_k, b_k, c_k)}`` are needed. Falls back
    to all records when the hull is degenerate (flat or too few points).
    """
    n = c.size
    if n <= 64:
        return np.arange(n)
    try:
        from scipy.spatial import ConvexHull

        pts = np.stack([a, b, c], axis=1)
        scale = np.maximum(np.abs(pts).max(axis=0), 1e-300)
        hull = ConvexHull(pts / scale)
        return np.unique(hull.vertices)
    except Exception:  # degenerate (coplanar) point sets: no reduction
        return np.arange(n)


def min_affine(
    c: np.ndarray, a: np.ndarray, b: np.ndarray, alphas: np.ndarray, betas: np.ndarray
) -> np.ndarray:
    """``M[i, j] = min_k (c_k − alphas[i] a_k + betas[j] b_k)``, an ``(A, B)`` array.

    Exact: the records are first reduced to the vertices of the convex hull of
    ``{(a_k, b_k, c_k)}`` (the minimum of a linear function is attained there), then
    evaluated in blocks.
    """
    c, a, b = _check_records(c, a, b)
    al, be = _as_1d(alphas, "alphas"), _as_1d(betas, "betas")
    keep = _hull_candidates(c, a, b)
    c, a, b = c[keep], a[keep], b[keep]
    out = np.empty((al.size, be.size))
    block = max(1, _BRUTE_LIMIT // max(1, c.size * be.size))
    for s in range(0, al.size, block):
        A = al[s : s + block, None, None]
        vals = c[None, None, :] - A * a[None, None, :] + be[None, :, None] * b[None, None, :]
        out[s : s + block] = vals.min(axis=2)
    return out


def beta_min(
    c: np.ndarray, a: np.ndarray, b: np.ndarray, alphas: np.ndarray, tol: float = 0.0
) -> tuple[np.ndarray, np.ndarray]:
    """For each α, the interval ``[β_lo(α), β_hi(α)]`` of β ≥ 0 with ``min_k T_k ≥ −tol``.

    ``T_k ≥ −tol`` reads ``β b_k ≥ α a_k − c_k − tol``: a lower bound on β where ``b_k > 0``,
    an upper bound where ``b_k < 0`` (a loss below the given ``f_i*``), a condition on α alone
    where ``b_k = 0``. Returns ``(lo, hi)``; the set is empty where ``lo > hi`` (``lo = inf``
    when a ``b_k = 0`` record fails).
    """
    c, a, b = _check_records(c, a, b)
    al = _as_1d(alphas, "alphas")
    need = al[:, None] * a[None, :] - c[None, :] - tol  # β b_k ≥ need
    pos, neg, zero = b > 0, b < 0, b == 0
    lo = np.zeros(al.size)
    hi = np.full(al.size, np.inf)
    if pos.any():
        lo = np.maximum(lo, (need[:, pos] / b[pos]).max(axis=1))
    if neg.any():
        hi = np.minimum(hi, (need[:, neg] / b[neg]).min(axis=1))
    if zero.any():
        fails = (need[:, zero] > 0).any(axis=1)
        lo = np.where(fails, np.inf, lo)
    return lo, hi


def alpha_interval(
    c: np.ndarray, a: np.ndarray, b: np.ndarray, betas: np.ndarray, tol: float = 0.0
) -> tuple[np.ndarray, np.ndarray]:
    """For each β, the interval ``[α_lo(β), α_hi(β)]`` of α with ``min_k T_k ≥ −tol``.

    ``T_k ≥ −tol`` reads ``α a_k ≤ c_k + β b_k + tol``: an upper bound on α where ``a_k > 0``
    (the loss went down from ``x_k`` to ``x^K`` on the batch), a lower bound where ``a_k < 0``,
    a condition on β alone where ``a_k = 0``. Empty where ``lo > hi``. ``α_hi(0)`` is the
    largest constant of the quasar-convexity-like inequality ``⟨∇f_B, x_k − x^K⟩ ≥
    α (f_B(x_k) − f_B(x^K))`` along the run.
    """
    c, a, b = _check_records(c, a, b)
    be = _as_1d(betas, "betas")
    room = c[None, :] + be[:, None] * b[None, :] + tol  # α a_k ≤ room
    pos, neg, zero = a > 0, a < 0, a == 0
    lo = np.full(be.size, -np.inf)
    hi = np.full(be.size, np.inf)
    if pos.any():
        hi = np.minimum(hi, (room[:, pos] / a[pos]).min(axis=1))
    if neg.any():
        lo = np.maximum(lo, (room[:, neg] / a[neg]).max(axis=1))
    if zero.any():
        fails = (room[:, zero] < 0).any(axis=1)
        hi = np.where(fails, -np.inf, hi)
    return lo, hi


def smallest_feasible_pair(
    c: np.ndarray,
    a: np.ndarray,
    b: np.ndarray,
    margin: float = 0.1,
    tol: float = 0.0,
    alpha_max: float = 1e6,
) -> tuple[float, float] | None:
    """The feasible pair with the smallest α (then the smallest β), by linear programming.

    Solves ``min α`` subject to ``α a_k − β b_k ≤ c_k + tol`` for all records, ``β ≥ 0``,
    ``α ≥ β + margin`` and ``α ≤ alpha_max``; then, at that α, ``min β``. Returns ``None``
    when no pair is feasible.
    """
    from scipy.optimize import linprog

    c, a, b = _check_records(c, a, b)
    if margin < 0:
        raise ValueError(f"margin must be >= 0, got {margin}")
    keep = _hull_candidates(c, a, b)
    c, a, b = c[keep], a[keep], b[keep]
    A_ub = np.concatenate([np.stack([a, -b], axis=1), [[-1.0, 1.0]]])
    b_ub = np.concatenate([c + tol, [-margin]])
    bounds = [(0.0, alpha_max), (0.0, None)]
    r1 = linprog([1.0, 0.0], A_ub=A_ub, b_ub=b_ub, bounds=bounds, method="highs")
    if r1.status == 2:  # infeasible
        return None
    if r1.status != 0:
        raise ValueError(f"the linear program for the smallest pair failed: {r1.message}")
    a_star = float(r1.x[0])
    slack = 1e-9 * max(1.0, abs(a_star))
    r2 = linprog(
        [0.0, 1.0],
        A_ub=A_ub,
        b_ub=b_ub,
        bounds=[(0.0, a_star + slack), (0.0, None)],
        method="highs",
    )
    if r2.status != 0:
        return a_star, float(r1.x[1])
    return float(r2.x[0]), float(r2.x[1])


def signed_log(M: np.ndarray) -> np.ndarray:
    """Map values to ``[−1, 1]`` keeping the sign: ``±log(1 + |M|/s)/log(1 + max_±/s)``.

    Positive and negative values are scaled by their own maximum, so a small feasible region
    stays visible next to large violations (``s`` = 10⁻³ of the largest magnitude).
    """
    M = np.asarray(M, dtype=float)
    big = float(np.abs(M).max()) if M.size else 0.0
    if big == 0:
        return np.zeros_like(M)
    s = 1e-3 * big
    out = np.zeros_like(M)
    for sign in (1.0, -1.0):
        part = np.where(sign * M > 0, np.abs(M), 0.0)
        top = part.max()
        if top > 0:
            out += sign * np.log1p(part / s) / np.log1p(top / s)
    return out


def draw_heatmap(
    ax: object, alphas: np.ndarray, betas: np.ndarray, M: np.ndarray, colorbar: bool, label: str
) -> object:
    """Draw ``M`` (shape ``(len(alphas), len(betas))``) on ``ax``: blue ≥ 0, red < 0."""
    import matplotlib.pyplot as plt

    mesh = ax.pcolormesh(  # type: ignore[attr-defined]
        alphas, betas, signed_log(M).T, cmap="RdBu", vmin=-1, vmax=1, shading="nearest"
    )
    if colorbar:
        cb = plt.colorbar(mesh, ax=ax)
        cb.set_label(label + " (signed log scale)")
        ticks, labels = signed_log_ticks(M)
        cb.set_ticks(ticks)
        cb.set_ticklabels(labels)
    return mesh


def tick_label(value: float) -> str:
    """A colour-bar label: 2 significant digits, ``×10ⁿ`` for small or large magnitudes.

    A true minus sign, and ``0`` only for zero: ``0.14``, ``−0.0031``, ``2.5×10⁻⁵``, ``−1.2×10⁴``.
    """
    if value == 0:
        return "0"
    sign = "−" if value < 0 else ""
    a = abs(value)
    if 1e-3 <= a < 100:
        return sign + f"{a:.2g}"
    if 100 <= a < 1e4:  # 2 significant digits without an exponent: 1500, 99
        return sign + f"{float(f'{a:.2g}'):.0f}"
    mant, exp = f"{a:.1e}".split("e")
    sup = str(int(exp)).translate(str.maketrans("-0123456789", "⁻⁰¹²³⁴⁵⁶⁷⁸⁹"))
    return f"{sign}{mant}×10{sup}"


def signed_log_ticks(M: np.ndarray) -> tuple[list[float], list[str]]:
    """Colour-bar ticks of :func:`signed_log` and the values of ``M`` they stand for.

    Ticks at ``0`` and, on each side that ``M`` reaches, ``±1`` (the extreme value) and
    ``±0.5`` (the value mapped half-way, ``s·expm1(½ log1p(max/s))``): labels are the values
    of ``M`` at those positions (:func:`tick_label`), so no two ticks read the same.
    """
    M = np.asarray(M, dtype=float)
    big = float(np.abs(M).max()) if M.size else 0.0
    if big == 0:
        return [0.0], ["0"]
    s = 1e-3 * big
    ticks, labels = [], []
    for sign in (-1.0, 1.0):
        part = np.where(sign * M > 0, np.abs(M), 0.0)
        top = float(part.max())
        if top <= 0:
            continue
        half = s * float(np.expm1(0.5 * np.log1p(top / s)))
        for pos, val in ((0.5, half), (1.0, top)):
            ticks.append(sign * pos)
            labels.append(tick_label(sign * val))
    ticks.append(0.0)
    labels.append("0")
    order = np.argsort(ticks)
    return [float(ticks[i]) for i in order], [labels[i] for i in order]
