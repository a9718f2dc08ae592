"""Stochastic trace estimation: Hutchinson and Hutch++, with confidence intervals.

Hutchinson (1990): for probes ``z`` with ``E[z zᵀ] = I`` (Rademacher ``±1`` entries here),
``E[zᵀ A z] = tr(A)``; the estimate is the sample mean of ``s probes``. Its variance for
Rademacher probes is ``2(‖A‖_F² − Σ_i A_ii²)/s``.

Hutch++ (Meyer, Musco, Musco & Woodruff, 2021) spends a third of a budget of ``m`` products on
a sketch ``Q = orth(A S)`` (``S`` of ``m/3`` Rademacher columns), computes ``tr(Qᵀ A Q)``
exactly (another third), and runs Hutchinson on the deflated ``(I − QQᵀ) A (I − QQᵀ)`` with
the last third. It is unbiased, and its variance is much smaller when ``A`` has a few large
eigenvalues (loss Hessians do): error ``O(1/m)`` instead of ``O(1/√m)`` for such matrices.

Confidence intervals. Both estimates are means of i.i.d. terms (conditionally on ``Q`` for
Hutch++, for which ``tr(Qᵀ A Q)`` is exact): the interval is
``mean ± t_{(1+c)/2, s−1} · sd/√s`` (Student's t with the sample standard deviation ``sd``),
valid asymptotically by the central limit theorem; with Rademacher probes the terms are
bounded, so it is accurate already for a few tens of probes.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import numpy as np
import torch

from lossgeometry._plotting import axes_or_new
from lossgeometry._progress import progress_bar
from lossgeometry.operators.base import TorchLinearOperator, square_operator
from lossgeometry.results import Result


@dataclasses.dataclass(frozen=True)
class TraceEstimate(Result):
    """A stochastic trace estimate with a confidence interval.

    Attributes:
        estimate: the estimate of ``tr(A)``.
        ci_low: lower end of the confidence interval.
        ci_high: upper end of the confidence interval.
        stderr: standard error ``sd/√s`` of the stochastic part.
        confidence: the interval's nominal coverage (e.g. 0.95).
        method: ``"hutchinson"``, ``"hutch++"`` or ``"exact"``.
        samples: number of random probes in the stochastic part.
        matvecs: operator products used in all.
        deflated: ``tr(Qᵀ A Q)``, the exactly computed part of Hutch++ (0 for Hutchinson).
        values: the per-probe terms ``zᵀ A z`` of the stochastic part (deflated for Hutch++).
    """

    estimate: float
    ci_low: float
    ci_high: float
    stderr: float
    confidence: float
    method: str
    samples: int
    matvecs: int
    deflated: float = 0.0
    values: np.ndarray | None = None

    @property
    def half_width(self) -> float:
        """Half the width of the confidence interval."""
        return 0.5 * (self.ci_high - self.ci_low)

    def covers(self, value: float) -> bool:
        """Whether ``value`` lies inside the confidence interval."""
        return self.ci_low <= value <= self.ci_high

    @property
    def per_sample_estimates(self) -> np.ndarray | None:
        """``deflated + values``: each probe's own unbiased estimate of ``tr(A)``.

        Their mean is ``estimate`` (Hutchinson: ``zᵀAz``; Hutch++: ``tr(QᵀAQ) + g'ᵀAg'``).
        ``None`` when no probe was drawn (``method="exact"``).
        """
        if self.values is None:
            return None
        return self.deflated + np.asarray(self.values, dtype=float)

    def summary(self) -> dict[str, Any]:
        """Headline scalars: the estimate, its interval and standard error, the cost."""
        return {
            "estimate": self.estimate,
            "ci_low": self.ci_low,
            "ci_high": self.ci_high,
            "half_width": self.half_width,
            "stderr": self.stderr,
            "confidence": self.confidence,
            "method": self.method,
            "samples": self.samples,
            "matvecs": self.matvecs,
            "deflated": self.deflated,
        }

    def plot(self, ax: Any = None) -> Any:
        """The per-probe estimates, their running mean, and the estimate with its interval.

        Lines, in order: the per-probe estimates (:attr:`per_sample_estimates`, points), their
        running mean (it ends at ``estimate``), the estimate (horizontal); the confidence
        interval is a shaded band. Returns the Axes.
        """
        ax = axes_or_new(ax, (5, 3.5))
        per = self.per_sample_estimates
        if per is not None and per.size:
            i = np.arange(1, per.size + 1)
            ax.plot(i, per, ".", color="0.55", ms=4, label="per-probe estimates")
            ax.plot(i, np.cumsum(per) / i, color="C0", lw=1.2, label="running mean")
        ax.axhline(self.estimate, color="C3", lw=1.5, label=f"estimate {self.estimate:.4g}")
        lo, hi = self.ci_low, self.ci_high
        if math.isfinite(lo) and math.isfinite(hi) and hi > lo:
            ax.axhspan(lo, hi, color="C3", alpha=0.15, label=f"{self.confidence:.0%} interval")
        ax.set_xlabel("probe")
        ax.set_ylabel("trace estimate")
        ax.set_title(f"{self.method}: {self.estimate:.4g} ± {self.half_width:.2g}")
        ax.legend(fontsize=8)
        return ax


def _rademacher(
    p: int, m: int, gen: torch.Generator, dtype: torch.dtype, device: torch.device
) -> torch.Tensor:
    z = torch.randint(0, 2, (p, m), generator=gen, dtype=torch.int8)
    return (2 * z - 1).to(device=device, dtype=dtype)


def _t_quantile(confidence: float, dof: int) -> float:
    from scipy.stats import t

    return float(t.ppf(0.5 + confidence / 2, dof))


def _interval(
    values: np.ndarray, confidence: float, offset: float = 0.0, scale: float = 1.0
) -> tuple[float, float, float, float]:
    s = values.size
    mean = float(values.mean())
    sd = float(values.std(ddof=1)) if s > 1 else math.inf
    se = sd / math.sqrt(s)
    half = _t_quantile(confidence, s - 1) * se if s > 1 else math.inf
    est = offset + scale * mean
    return est, est - scale * half, est + scale * half, scale * se


def _check(samples: int, confidence: float, minimum: int) -> None:
    if not isinstance(samples, int) or samples < minimum:
        raise ValueError(f"need at least {minimum} probe vectors, got samples={samples!r}")
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must lie in (0, 1), got {confidence}")


def _blocked(A: TorchLinearOperator, Z: torch.Tensor, block: int) -> torch.Tensor:
    """``A Z`` with at most ``block`` columns per product."""
    return torch.cat([A.matmat_torch(Z[:, i : i + block]) for i in range(0, Z.shape[1], block)], 1)


def hutchinson(
    A: object,
    samples: int = 100,
    *,
    seed: int = 0,
    confidence: float = 0.95,
    block: int = 16,
    rtol: float | None = None,
    min_samples: int = 10,
    progress: bool | None = None,
) -> TraceEstimate:
    """Hutchinson's estimate of ``tr(A)`` from Rademacher probes, with a t-interval.

    Args:
        A: the square ``p × p`` operator (a
            :class:`~lossgeometry.operators.TorchLinearOperator`, or a dense matrix or SciPy
            operator); probes take its dtype and device.
        samples: number of probes (the maximum when ``rtol`` is given).
        seed: seed of the probes.
        confidence: nominal coverage of the interval.
        block: probes per product.
        rtol: stop early once the interval's half-width is ``≤ rtol · |estimate|`` (checked
            after each block, once ``min_samples`` probes are in). Early stopping makes the
            interval slightly optimistic; leave ``None`` for a fixed budget.
        min_samples: the fewest probes before ``rtol`` may stop the run.
        progress: a progress bar over blocks.

    Returns:
        A :class:`TraceEstimate` (``method="hutchinson"``).
    """
    _check(samples, confidence, 2)
    A = square_operator(A, "hutchinson")
    p, dtype, device = A.shape[0], A.torch_dtype, A.device
    gen = torch.Generator().manual_seed(seed)
    vals: list[float] = []
    nblocks = math.ceil(samples / block)
    for _ in progress_bar(range(nblocks), progress, desc="hutchinson", unit="block"):
        b = min(block, samples - len(vals))
        Z = _rademacher(p, b, gen, dtype, device)
        AZ = A.matmat_torch(Z)
        vals.extend((Z * AZ).sum(dim=0).double().cpu().tolist())
        if rtol is not None and len(vals) >= max(min_samples, 2):
            est, lo, hi, _ = _interval(np.asarray(vals), confidence)
            if 0.5 * (hi - lo) <= rtol * abs(est):
                break
    v = np.asarray(vals)
    est, lo, hi, se = _interval(v, confidence)
    return TraceEstimate(est, lo, hi, se, confidence, "hutchinson", v.size, v.size, 0.0, v)


def hutchpp(
    A: object,
    matvecs: int = 99,
    *,
    seed: int = 0,
    confidence: float = 0.95,
    block: int = 16,
    progress: bool | None = None,
) -> TraceEstimate:
    """Hutch++ estimate of ``tr(A)`` with a budget of ``matvecs`` products.

    ``s = matvecs // 3`` sketch columns give ``Q = orth(A S)``; ``tr(Qᵀ A Q)`` costs ``s``
    more products; the remaining ``matvecs − 2s`` probes ``g`` estimate
    ``tr((I − QQᵀ) A (I − QQᵀ))`` by Hutchinson on ``g' = (I − QQᵀ) g``. The interval comes
    from the spread of those last terms (the deflated part is exact given ``Q``).

    Args:
        A: the square ``p × p`` operator (see :func:`hutchinson`).
        matvecs: total product budget (at least 6).
        seed: seed of the random matrices.
        confidence: nominal coverage of the interval.
        block: columns per product.
        progress: a progress bar.

    Returns:
        A :class:`TraceEstimate` (``method="hutch++"``).
    """
    _check(matvecs, confidence, 6)
    A = square_operator(A, "hutchpp")
    p, dtype, device = A.shape[0], A.torch_dtype, A.device
    gen = torch.Generator().manual_seed(seed)
    s = min(matvecs // 3, p)
    rest = matvecs - 2 * s

    steps = iter(progress_bar(range(3), progress, desc="hutch++", unit="stage"))
    next(steps, None)
    S = _rademacher(p, s, gen, dtype, device)
    Q, _ = torch.linalg.qr(_blocked(A, S, block))
    next(steps, None)
    exact = float((Q * _blocked(A, Q, block)).sum().double())
    next(steps, None)
    G = _rademacher(p, rest, gen, dtype, device)
    G = G - Q @ (Q.T @ G)
    vals = (G * _blocked(A, G, block)).sum(dim=0).double().cpu().numpy()
    est, lo, hi, se = _interval(vals, confidence, offset=exact)
    return TraceEstimate(est, lo, hi, se, confidence, "hutch++", rest, 2 * s + rest, exact, vals)
