"""The per-step record of an α-β run, from which ``T(x_k)`` follows for any ``(α, β)``.

:class:`ConditionTrace` is what :func:`lossgeometry.record_conditions` returns (definitions,
the sign of the β term and the normalization: :mod:`lossgeometry.conditions.alphabeta`). Per
step ``k`` it holds the three scalars of the affine test quantity

    T_k(α, β) = c_k − α a_k + β b_k,
    c_k = ⟨∇f_B(x_k), x_k − x^K⟩,   a_k = f_B(x_k) − f_B(x^K),   b_k = f_B(x_k) − f*_B,

and answers exact questions about them (minimum over a grid, feasible intervals, the smallest
feasible pair) through :mod:`lossgeometry.conditions._alphabeta_grid`, plus the Aiming and
relaxed-PL views of its full-data records (:mod:`lossgeometry.conditions.aiming`).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from lossgeometry._plotting import axes_or_new
from lossgeometry.conditions import _alphabeta_grid as grid
from lossgeometry.conditions.aiming import AimingProfile, RelaxedPL, aiming_profile, relaxed_pl
from lossgeometry.results import Result

__all__ = ["ConditionTrace"]


def _int_array(x: Any) -> np.ndarray:
    return np.asarray(x).astype(np.int64)


@dataclasses.dataclass(frozen=True)
class ConditionTrace(Result):
    """The per-step scalars of one or more runs from which T(x_k) follows for any (α, β).

    Per-step arrays (length ``m`` = total steps over all runs) describe step ``k`` of run
    ``run[k]``, batch ``B_k``; losses are means of per-sample losses (module docstring).
    Full-data arrays (``full_*``) are taken every ``full_loss_every`` steps.
    """

    run: np.ndarray
    """Run index (into :attr:`seeds`) of each recorded step."""
    step: np.ndarray
    """Optimizer step ``k`` (``0 … K−1``) of each recorded step."""
    loss_batch: np.ndarray
    """``f_{B_k}(x_k) = mean_{i∈B_k} ℓ_i(x_k)``."""
    loss_batch_final: np.ndarray
    """``f_{B_k}(x^K)``: the same batch at the run's last iterate."""
    f_star_batch: np.ndarray
    """``f*_{B_k} = mean_{i∈B_k} f_i*`` (the given per-sample minima; 0 by default)."""
    inner: np.ndarray
    """``⟨∇f_{B_k}(x_k), x_k − x^K⟩``."""
    grad_norm: np.ndarray
    """``‖∇f_{B_k}(x_k)‖``."""
    distance: np.ndarray
    """``‖x_k − x^K‖``."""
    full_run: np.ndarray
    """Run index of each full-data record."""
    full_step: np.ndarray
    """Step of each full-data record."""
    full_loss: np.ndarray
    """``f(x_k) = (1/n) Σ_i ℓ_i(x_k)``."""
    full_inner: np.ndarray
    """``⟨∇f(x_k), x_k − x^K⟩`` (``nan`` when recorded without the full gradient)."""
    full_grad_norm: np.ndarray
    """``‖∇f(x_k)‖`` (``nan`` when recorded without the full gradient)."""
    full_distance: np.ndarray
    """``‖x_k − x^K‖``."""
    seeds: list[int]
    """Seed of each run (mini-batch order)."""
    final_loss: np.ndarray
    """``f(x^K)`` per run."""
    replay_error: np.ndarray
    """``‖x^K_replay − x^K‖ / max(‖x^K − x_0‖, ε)`` per run (0 for a bit-exact replay)."""
    steps_per_run: np.ndarray
    """Number of optimizer steps ``K`` of each run."""
    optimizer: str
    lr: float | None
    batch_size: int | None
    """``None`` for full batch (then ``f_{B_k} = f``)."""
    n: int
    p: int
    loss_name: str
    reduction: str
    """The Problem's reduction; stored quantities are always means (module docstring)."""
    f_star: float | None
    """The scalar ``f_i*`` given (``None`` when per-sample values were given)."""
    dropout_disabled: list[str]
    """Dropout modules switched off (eval mode) during both runs."""
    wall_time: float
    """Seconds for both passes of all runs."""
    batch_indices: np.ndarray | None = None
    """``(m, b)`` sample indices of each batch (``None``: full batch or not stored)."""

    def __post_init__(self) -> None:
        for name in ("run", "step", "full_run", "full_step", "steps_per_run"):
            object.__setattr__(self, name, _int_array(getattr(self, name)))
        if self.batch_indices is not None:
            object.__setattr__(self, "batch_indices", _int_array(self.batch_indices))
        object.__setattr__(self, "seeds", [int(s) for s in self.seeds])
        m = self.step.size
        for name in ("loss_batch", "loss_batch_final", "f_star_batch", "inner", "grad_norm"):
            if np.asarray(getattr(self, name)).shape != (m,):
                raise ValueError(f"{name} must have one entry per recorded step ({m})")

    # ------------------------------------------------------------------ the affine pieces
    def _mask(self, exclude_last: int) -> np.ndarray:
        if exclude_last < 0:
            raise ValueError(f"exclude_last must be >= 0, got {exclude_last}")
        K = self.steps_per_run[self.run]
        return self.step < K - exclude_last

    def coefficients(self, exclude_last: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(c, a, b)`` with ``T_k(α, β) = c_k − α a_k + β b_k`` for the kept steps.

        ``c = ⟨∇f_B(x_k), x_k − x^K⟩``, ``a = f_B(x_k) − f_B(x^K)``, ``b = f_B(x_k) − f*_B``.
        ``exclude_last`` drops the last steps of every run (where ``x_k ≈ x^K``).
        """
        m = self._mask(exclude_last)
        if not m.any():
            raise ValueError("no steps left: exclude_last removes every recorded step")
        c = self.inner[m]
        a = self.loss_batch[m] - self.loss_batch_final[m]
        b = self.loss_batch[m] - self.f_star_batch[m]
        return c, a, b

    def T(self, alpha: float, beta: float) -> np.ndarray:
        """``T(x_k)`` at one pair, for every recorded step (all runs)."""
        c = self.inner
        a = self.loss_batch - self.loss_batch_final
        b = self.loss_batch - self.f_star_batch
        return c - alpha * a + beta * b

    def min_T(
        self,
        alphas: Sequence[float] | np.ndarray,
        betas: Sequence[float] | np.ndarray,
        *,
        exclude_last: int = 0,
    ) -> np.ndarray:
        """``min_k T(x_k)`` over all steps and runs, shape ``(len(alphas), len(betas))``.

        Exact (no sampling): the minimum of an affine function over the records is taken on
        the convex hull of ``{(a_k, b_k, c_k)}``.
        """
        return grid.min_affine(*self.coefficients(exclude_last), alphas, betas)

    def feasible_region(
        self,
        alphas: Sequence[float] | np.ndarray,
        betas: Sequence[float] | np.ndarray,
        margin: float = 0.1,
        *,
        tol: float = 0.0,
        exclude_last: int = 0,
    ) -> np.ndarray:
        """Boolean ``(len(alphas), len(betas))``: ``min T ≥ −tol`` and ``α ≥ β + margin``."""
        M = self.min_T(alphas, betas, exclude_last=exclude_last)
        A = np.asarray(alphas, dtype=float).reshape(-1, 1)
        B = np.asarray(betas, dtype=float).reshape(1, -1)
        return (M >= -tol) & (A >= B + margin) & (B >= 0)

    def beta_interval(
        self, alphas: Sequence[float] | np.ndarray, *, tol: float = 0.0, exclude_last: int = 0
    ) -> tuple[np.ndarray, np.ndarray]:
        """Exact ``[β_lo(α), β_hi(α)]`` of β ≥ 0 with ``min T ≥ −tol`` (empty if lo > hi)."""
        return grid.beta_min(*self.coefficients(exclude_last), alphas, tol=tol)

    def alpha_interval(
        self, betas: Sequence[float] | np.ndarray, *, tol: float = 0.0, exclude_last: int = 0
    ) -> tuple[np.ndarray, np.ndarray]:
        """Exact ``[α_lo(β), α_hi(β)]`` with ``min T ≥ −tol`` (empty if lo > hi).

        ``alpha_interval([0])[1][0]`` is the largest α with ``⟨∇f_B(x_k), x_k − x^K⟩ ≥
        α (f_B(x_k) − f_B(x^K))`` at every step: how strongly the run "aims" at ``x^K``, a
        useful number when the smallest pair sits at the floor ``(margin, 0)``.
        """
        return grid.alpha_interval(*self.coefficients(exclude_last), betas, tol=tol)

    def smallest_pair(
        self, margin: float = 0.1, *, tol: float = 0.0, exclude_last: int = 0
    ) -> tuple[float, float] | None:
        """The feasible pair with the smallest α, then the smallest β (``α ≥ β + margin``).

        Exact, by a two-variable linear program over all records (no grid). ``None`` when no
        pair with ``α ≤ 10⁶`` holds.
        """
        return grid.smallest_feasible_pair(*self.coefficients(exclude_last), margin=margin, tol=tol)

    def default_grid(self, size: int = 41, margin: float = 0.1) -> tuple[np.ndarray, np.ndarray]:
        """A square grid ``α, β ∈ [0, A]`` that shows the smallest feasible pair (``A ≥ 1``)."""
        pair = self.smallest_pair(margin)
        top = 10.0 if pair is None else float(math.ceil(max(1.0, 2.0 * pair[0] + 1.0)))
        g = np.linspace(0.0, top, size)
        return g, g.copy()

    # ------------------------------------------------------------------ Aiming and PL
    def aiming(self, source: str = "full") -> AimingProfile:
        """Angle ``∠(∇f(x_k), x_k − x^K)`` and the aiming coefficient along the run(s).

        ``source="full"``: the full-data gradient at the full-data records; ``"batch"``: the
        optimizer's mini-batch gradient at every step (free, noisier).
        """
        if source == "full":
            if np.all(np.isnan(self.full_inner)):
                raise ValueError(
                    "the trace was recorded with full_grad=False: use aiming(source='batch') "
                    "or record again with full_grad=True"
                )
            fstar = self.f_star if self.f_star is not None else float(np.mean(self.f_star_batch))
            return aiming_profile(
                self.full_run,
                self.full_step,
                self.full_inner,
                self.full_grad_norm,
                self.full_distance,
                self.full_loss,
                fstar,
                "full",
            )
        if source == "batch":
            return aiming_profile(
                self.run,
                self.step,
                self.inner,
                self.grad_norm,
                self.distance,
                self.loss_batch,
                self.f_star_batch,
                "batch",
            )
        raise ValueError(f"source must be 'full' or 'batch', got {source!r}")

    def pl_relaxed(self, deltas: Sequence[float] = (1.0, 2.0)) -> RelaxedPL:
        """``log µ_k(δ) = 2 log‖∇f(x_k)‖ − (2/δ) log(f(x_k) − f(x^K))`` on the full records."""
        if np.all(np.isnan(self.full_grad_norm)):
            raise ValueError("the trace was recorded with full_grad=False: no full gradients")
        excess = self.full_loss - self.final_loss[self.full_run]
        return relaxed_pl(self.full_run, self.full_step, self.full_grad_norm, excess, deltas)

    # ------------------------------------------------------------------ combine, report
    @classmethod
    def concat(cls, traces: Sequence[ConditionTrace]) -> ConditionTrace:
        """Merge traces of several runs (e.g. different initializations) into one.

        All must come from the same data (``n``) and loss; minima are then over all of them.
        """
        traces = list(traces)
        if not traces:
            raise ValueError("concat needs at least one trace")
        t0 = traces[0]
        for t in traces[1:]:
            if (t.n, t.loss_name) != (t0.n, t0.loss_name):
                raise ValueError("traces to concat must share the data size n and the loss")
        offs = np.cumsum([0] + [len(t.seeds) for t in traces])
        cat = np.concatenate
        idx = [t.batch_indices for t in traces]
        same_b = all(i is not None for i in idx) and len({i.shape[1] for i in idx}) == 1
        return cls(
            run=cat([t.run + o for t, o in zip(traces, offs, strict=False)]),
            step=cat([t.step for t in traces]),
            loss_batch=cat([t.loss_batch for t in traces]),
            loss_batch_final=cat([t.loss_batch_final for t in traces]),
            f_star_batch=cat([t.f_star_batch for t in traces]),
            inner=cat([t.inner for t in traces]),
            grad_norm=cat([t.grad_norm for t in traces]),
            distance=cat([t.distance for t in traces]),
            full_run=cat([t.full_run + o for t, o in zip(traces, offs, strict=False)]),
            full_step=cat([t.full_step for t in traces]),
            full_loss=cat([t.full_loss for t in traces]),
            full_inner=cat([t.full_inner for t in traces]),
            full_grad_norm=cat([t.full_grad_norm for t in traces]),
            full_distance=cat([t.full_distance for t in traces]),
            seeds=[s for t in traces for s in t.seeds],
            final_loss=cat([t.final_loss for t in traces]),
            replay_error=cat([t.replay_error for t in traces]),
            steps_per_run=cat([t.steps_per_run for t in traces]),
            optimizer=t0.optimizer if all(t.optimizer == t0.optimizer for t in traces) else "mixed",
            lr=t0.lr if all(t.lr == t0.lr for t in traces) else None,
            batch_size=t0.batch_size
            if all(t.batch_size == t0.batch_size for t in traces)
            else None,
            n=t0.n,
            p=t0.p if all(t.p == t0.p for t in traces) else -1,
            loss_name=t0.loss_name,
            reduction=t0.reduction,
            f_star=t0.f_star if all(t.f_star == t0.f_star for t in traces) else None,
            dropout_disabled=sorted({d for t in traces for d in t.dropout_disabled}),
            wall_time=float(sum(t.wall_time for t in traces)),
            batch_indices=cat(idx) if same_b else None,
        )

    def summary(self, margin: float = 0.1) -> dict[str, Any]:
        """JSON-able headline numbers: smallest pair, Aiming, PL constants, run info."""
        pair = self.smallest_pair(margin)
        out: dict[str, Any] = {
            "runs": len(self.seeds),
            "steps": int(self.steps_per_run.sum()),
            "optimizer": self.optimizer,
            "lr": self.lr,
            "batch_size": self.batch_size,
            "smallest_pair": None if pair is None else {"alpha": pair[0], "beta": pair[1]},
            "alpha_max_at_beta0": float(self.alpha_interval([0.0])[1][0]),
            "margin": margin,
            "final_loss": [float(v) for v in self.final_loss],
            "max_replay_error": float(self.replay_error.max()),
            "dropout_disabled": self.dropout_disabled,
        }
        if not np.all(np.isnan(self.full_inner)) and self.full_step.size:
            am = self.aiming("full")
            out["aiming"] = am.summary()
            out["pl"] = self.pl_relaxed((1.0, 2.0)).summary()
        return out

    def plot(
        self,
        ax: Any = None,
        *,
        alphas: Sequence[float] | np.ndarray | None = None,
        betas: Sequence[float] | np.ndarray | None = None,
        margin: float = 0.1,
        title: str | None = None,
        colorbar: bool = True,
    ) -> Any:
        """Heatmap of ``min_k T(x_k)`` over an ``(α, β)`` grid; returns the axes.

        Blue: the pair holds (``min T ≥ 0``); red: it fails. The black line is the exact
        boundary ``min T = 0``, the dashed line ``α = β + margin`` (pairs to its left are
        excluded), the star the smallest feasible pair.

        Args:
            ax: the matplotlib Axes to draw on (default: a new figure).
            alphas: the α grid (default: :meth:`default_grid`).
            betas: the β grid (default: :meth:`default_grid`).
            margin: pairs need ``α ≥ β + margin``.
            title: the title (default: the number of runs).
            colorbar: draw a colour bar.
        """
        if alphas is None or betas is None:
            ga, gb = self.default_grid(margin=margin)
            alphas = ga if alphas is None else alphas
            betas = gb if betas is None else betas
        al, be = np.asarray(alphas, float), np.asarray(betas, float)
        M = self.min_T(al, be)
        ax = axes_or_new(ax, (4.6, 3.8))
        grid.draw_heatmap(ax, al, be, M, colorbar, r"$\min_k T(x_k)$")
        lo, hi = self.beta_interval(al)
        ok = (lo <= hi) & np.isfinite(lo)
        ax.plot(al[ok], lo[ok], color="k", lw=1.4, label="min T = 0")
        ax.plot(al, al - margin, color="k", lw=1.0, ls="--", label=f"α = β + {margin:g}")
        pair = self.smallest_pair(margin)
        if pair is not None:
            ax.plot(
                *pair,
                marker="*",
                color="gold",
                mec="k",
                ms=12,
                ls="none",
                label=f"({pair[0]:.2f}, {pair[1]:.2f})",
            )
        ax.set_xlim(al.min(), al.max())
        ax.set_ylim(be.min(), be.max())
        ax.set_xlabel("α")
        ax.set_ylabel("β")
        ax.set_title(title or f"min T over {len(self.seeds)} run(s)")
        ax.legend(fontsize=7, loc="upper left")
        return ax

    def plot_aiming(self, ax: Any = None, source: str = "full") -> Any:
        """``cos ∠(∇f(x_k), x_k − x^K)`` along the run(s); returns the axes."""
        return self.aiming(source).plot(ax=ax)
