r"""The α-β study: record a run, then its smallest feasible pair, min-T heatmap, Aiming and PL.

:func:`alphabeta_study` is the one function the CLI (``lossgeometry alphabeta``) and the
report's α-β section call; the experiments record their per-seed runs themselves and analyse
the merged trace with :func:`analyze_trace`. :class:`AlphaBetaOptions` holds the only copy of
each default.

With ``T(x_k) = ⟨∇f_B(x_k), x_k − x^K⟩ − α (f_B(x_k) − f_B(x^K)) + β (f_B(x_k) − f_B*)`` (the
last iterate ``x^K`` standing in for the projection, losses the means of per-sample losses),
a pair ``(α, β)`` holds when ``T(x_k) ≥ 0`` at every recorded step (Islamov et al., NeurIPS
2024); pairs need ``α ≥ β + margin``. The smallest feasible pair is exact (a two-variable
linear program); the heatmap of ``min_k T`` is drawn on ``α, β ∈ [0, A]`` with ``A =
alpha_max`` or, by default, ``⌈max(1, 1.5 α* + 0.5)⌉`` around the smallest pair ``α*``
(``10`` when none holds).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from lossgeometry.conditions.aiming import AimingProfile, RelaxedPL
from lossgeometry.conditions.alphabeta import ConditionTrace, record_conditions
from lossgeometry.options import Options, OptionsError
from lossgeometry.problem import Problem
from lossgeometry.results import Result

__all__ = [
    "AlphaBetaOptions",
    "AlphaBetaStudy",
    "alphabeta_study",
    "analyze_trace",
    "heatmap_axis",
]

PL_DELTAS = (1.0, 2.0)
"""The exponents δ of the relaxed PL constants reported (δ = 2: the PL inequality)."""


@dataclasses.dataclass(frozen=True)
class AlphaBetaOptions(Options):
    """Options of :func:`alphabeta_study` (report, ``lossgeometry alphabeta``, experiments)."""

    margin: float = 0.1
    """Feasible pairs need ``α ≥ β + margin``."""
    exclude_last: int = 0
    """Steps at the end of each run left out of ``min T`` (``x_k ≈ x^K`` there)."""
    grid: int = 41
    """Heatmap points per axis."""
    alpha_max: float | None = None
    """Heatmap range ``[0, alpha_max]`` (default: around the smallest pair)."""
    full_loss_every: int | None = None
    """Stride of the full-data records (default: :func:`~lossgeometry.record_conditions`'s
    automatic stride)."""
    f_star: float = 0.0
    """``f_i*`` for every sample (the paper's non-negative losses: 0)."""

    def check(self) -> None:
        """``margin``, ``exclude_last`` non-negative; ``grid ≥ 2``; positive ``alpha_max``."""
        if self.margin < 0:
            raise OptionsError(f"margin = {self.margin}: must be non-negative")
        if self.exclude_last < 0:
            raise OptionsError(f"exclude_last = {self.exclude_last}: must be non-negative")
        if self.grid < 2:
            raise OptionsError(f"grid = {self.grid}: must be at least 2")
        if self.alpha_max is not None and not self.alpha_max > 0:
            raise OptionsError(f"alpha_max = {self.alpha_max}: must be positive")


def heatmap_axis(options: AlphaBetaOptions, alphas: Sequence[float | None]) -> np.ndarray:
    """The heatmap's ``α`` (and ``β``) axis: ``grid`` points on ``[0, A]``.

    ``A = alpha_max`` if set, else ``⌈max(1, 1.5 α + 0.5)⌉`` over the smallest feasible
    ``α`` of each trace shown (``None`` entries: no pair), and ``10`` when no pair holds.
    """
    top = options.alpha_max
    if top is None:
        found = [float(a) for a in alphas if a is not None]
        top = 10.0 if not found else float(math.ceil(max([1.0, *(1.5 * a + 0.5 for a in found)])))
    return np.linspace(0.0, float(top), options.grid)


@dataclasses.dataclass(frozen=True)
class AlphaBetaStudy(Result):
    """A recorded run (or several) and what it says about the α-β-condition.

    Attributes:
        trace: the :class:`~lossgeometry.ConditionTrace`.
        smallest_pair: ``[α, β]``, the feasible pair with the smallest α then β (``None``:
            none holds), with ``exclude_last`` steps left out.
        alphas: the heatmap axis (the same for β).
        min_T: ``min_k T(x_k)`` on the grid, shape ``(len(alphas), len(alphas))``.
        aiming: the Aiming profile on the full-data records (``None`` without them).
        pl: the relaxed PL constants for ``δ ∈ PL_DELTAS`` (``None`` without full records).
        options: the :class:`AlphaBetaOptions` used, as a dict.
    """

    trace: ConditionTrace
    smallest_pair: list[float] | None
    alphas: np.ndarray
    min_T: np.ndarray
    aiming: AimingProfile | None
    pl: RelaxedPL | None
    options: dict[str, Any]

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> AlphaBetaStudy:
        """Rebuild, including the nested results."""
        d = dict(d)
        for name, typ in (("trace", ConditionTrace), ("aiming", AimingProfile), ("pl", RelaxedPL)):
            if isinstance(d.get(name), dict):
                d[name] = typ.from_dict(d[name])
        return super().from_dict(d)

    @property
    def margin(self) -> float:
        """The margin the pairs were judged with."""
        return float(self.options["margin"])

    def summary(self) -> dict[str, Any]:
        """Headline scalars: the smallest pair, α at β = 0, Aiming, PL (δ = 2), the runs."""
        tr = self.trace
        pair = self.smallest_pair
        exclude = int(self.options["exclude_last"])
        out: dict[str, Any] = {
            "alpha": None if pair is None else pair[0],
            "beta": None if pair is None else pair[1],
            "alpha_max_at_beta0": float(tr.alpha_interval([0.0], exclude_last=exclude)[1][0]),
            "runs": len(tr.seeds),
            "steps": int(tr.steps_per_run[0]),
            "final_loss_mean": float(np.mean(tr.final_loss)),
            "max_replay_error": float(tr.replay_error.max()),
        }
        if self.aiming is not None:
            out["aiming_negative_fraction"] = self.aiming.negative_fraction
            out["aiming_min_coefficient"] = self.aiming.min_coefficient
        if self.pl is not None:
            out["pl_mu_delta2"] = float(self.pl.mu[list(self.pl.deltas).index(2.0)])
        return out

    def plot(self, ax: Any = None) -> Any:
        """Heatmap of ``min_k T(x_k)`` on the study's grid (returns the Axes)."""
        return self.trace.plot(ax, alphas=self.alphas, betas=self.alphas, margin=self.margin)


def analyze_trace(
    trace: ConditionTrace, *, options: AlphaBetaOptions | None = None
) -> AlphaBetaStudy:
    """The smallest pair, min-T heatmap, Aiming and PL of an already recorded trace."""
    o = options if options is not None else AlphaBetaOptions()
    pair = trace.smallest_pair(o.margin, exclude_last=o.exclude_last)
    g = heatmap_axis(o, [None if pair is None else pair[0]])
    has_full = trace.full_step.size > 0 and not np.all(np.isnan(trace.full_inner))
    return AlphaBetaStudy(
        trace=trace,
        smallest_pair=None if pair is None else [float(pair[0]), float(pair[1])],
        alphas=g,
        min_T=trace.min_T(g, g, exclude_last=o.exclude_last),
        aiming=trace.aiming("full") if has_full else None,
        pl=trace.pl_relaxed(PL_DELTAS) if has_full else None,
        options=o.to_dict(),
    )


def alphabeta_study(
    problem: Problem,
    optimizer: Any,
    steps: int,
    batch_size: int | None = None,
    seeds: Sequence[int] = (0,),
    *,
    lr: float | None = None,
    optimizer_kwargs: dict[str, Any] | None = None,
    w0: torch.Tensor | None = None,
    x_final: torch.Tensor | None = None,
    options: AlphaBetaOptions | None = None,
    progress: bool | None = None,
) -> AlphaBetaStudy:
    """Record the run(s) (:func:`~lossgeometry.record_conditions`) and analyse the trace.

    Example (SGD with mini-batches of 4 on a small MLP; 60 steps recorded):
        >>> import torch
        >>> import lossgeometry as lg
        >>> g = torch.Generator().manual_seed(0)
        >>> X = torch.randn(12, 3, generator=g, dtype=torch.float64)
        >>> Y = torch.randn(12, 1, generator=g, dtype=torch.float64)
        >>> problem = lg.Problem(lg.models.mlp(3, 8, 1, 1, seed=0).double(), X, Y)
        >>> st = lg.alphabeta_study(problem, "sgd", 60, 4, lr=0.05, progress=False)
        >>> alpha, beta = st.smallest_pair                # the feasible pair of smallest α
        >>> round(alpha - beta, 6) >= st.options["margin"], st.summary()["alpha"] == alpha
        (True, True)

    Args:
        problem: the problem.
        optimizer: a name of :func:`~lossgeometry.train`, an optimizer class or a factory.
        steps: optimizer steps per run.
        batch_size: mini-batch size (``None``: full batch).
        seeds: one run per seed (the seed fixes the batch order).
        lr: learning rate.
        optimizer_kwargs: extra keyword arguments of a named or class optimizer.
        w0: start point (default: the model's parameters).
        x_final: the end point of an identical earlier run (one seed only): the first pass is
            skipped and the replay is checked against it.
        options: :class:`AlphaBetaOptions` (default: its defaults).
        progress: progress bars.

    Returns:
        An :class:`AlphaBetaStudy`.
    """
    o = options if options is not None else AlphaBetaOptions()
    trace = record_conditions(
        problem,
        optimizer,
        steps,
        batch_size,
        seeds=seeds,
        lr=lr,
        optimizer_kwargs=optimizer_kwargs,
        f_star=o.f_star,
        full_loss_every=o.full_loss_every,
        w0=w0,
        x_final=x_final,
        store_indices=False,
        progress=progress,
    )
    return analyze_trace(trace, options=o)
