r"""The α-β-condition along a training run: record once, evaluate any ``(α, β)`` afterwards.

Islamov, Ajroldi, Orvieto & Lucchi (NeurIPS 2024), Definition 1: ``f = (1/n) Σ_i f_i``
satisfies the α-β-condition (``α > β ≥ 0``) if for every ``x`` there is
``x_p ∈ Proj(x, S)`` (``S`` the minimizer set of ``f``) with, for all ``i``,

    ⟨∇f_i(x), x − x_p⟩ ≥ α (f_i(x) − f_i(x_p)) − β (f_i(x) − f_i*),     f_i* = min f_i.

The empirical protocol checks it on the mini-batch losses seen by a training run, with the
last iterate ``x^K`` as the proxy for ``x_p``. Per step ``k`` (batch ``B_k``)

    T(x_k) = ⟨∇f_B(x_k), x_k − x^K⟩ − α (f_B(x_k) − f_B(x^K)) + β (f_B(x_k) − f*_B),  B = B_k

and a pair holds on the run when ``min_k T(x_k) ≥ 0`` (over all steps and seeds).

*Sign of the β term.* We follow Definition 1, which gives ``+β (f − f*)`` in ``T``; with it
``(α, β) ⇒ (α + δ, β + δ)`` (because ``f_i* ≤ f_i(x_p)``) and Example 1's region
``4α/5 ≤ β < α`` comes out (see :mod:`lossgeometry.examples.alpha_beta`). The paper's figure
captions print ``− β f_{i_k}(x^k)``; that sign contradicts Definition 1 (with it a larger β
would only make the condition harder and the constraint ``α ≥ β + 0.1`` would be idle).

*Normalization.* ``f_B = (1/|B|) Σ_{i∈B} ℓ_i`` is the **mean** of the Problem's per-sample
losses ``ℓ_i`` whatever the Problem's ``reduction`` (for ``reduction="sum"`` the optimizer
minimizes ``n · f``; the gradients and losses are divided by ``n`` before they are stored).
Scaling ``f`` by ``c > 0`` scales ``T`` by ``c``, so which pairs hold does not depend on it;
``f_i*`` is given in the same units as ``ℓ_i``.

Cost: the run is done twice (once for ``x^K``, once replayed); the replay reuses the gradient
the optimizer needs and adds one forward pass on the batch at ``x^K`` per step, plus a
full-data evaluation every ``full_loss_every`` steps.
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
import time
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import numpy as np
import torch
from torch import nn

from lossgeometry.conditions import _alphabeta_grid as grid
from lossgeometry.conditions.aiming import AimingProfile, RelaxedPL, aiming_profile, relaxed_pl
from lossgeometry.problem import Problem
from lossgeometry.results import Result
from lossgeometry.train import OptimizerSpec, train

__all__ = ["ConditionTrace", "ReplayMismatchError", "record_conditions"]


class ReplayMismatchError(ValueError):
    """The replayed run did not reproduce the first run's last iterate ``x^K``."""


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
        alphas: Sequence[float] | np.ndarray | None = None,
        betas: Sequence[float] | np.ndarray | None = None,
        margin: float = 0.1,
        ax: Any = None,
        title: str | None = None,
        colorbar: bool = True,
    ) -> Any:
        """Heatmap of ``min_k T(x_k)`` over an ``(α, β)`` grid; returns the axes.

        Blue: the pair holds (``min T ≥ 0``); red: it fails. The black line is the exact
        boundary ``min T = 0``, the dashed line ``α = β + margin`` (pairs to its left are
        excluded), the star the smallest feasible pair.
        """
        import matplotlib.pyplot as plt

        if alphas is None or betas is None:
            ga, gb = self.default_grid(margin=margin)
            alphas = ga if alphas is None else alphas
            betas = gb if betas is None else betas
        al, be = np.asarray(alphas, float), np.asarray(betas, float)
        M = self.min_T(al, be)
        if ax is None:
            _, ax = plt.subplots(figsize=(4.6, 3.8))
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


# ---------------------------------------------------------------------- recording
@contextlib.contextmanager
def _dropout_off(model: nn.Module) -> Iterator[list[str]]:
    """Switch every active dropout module to eval mode; restore on exit; yield their names."""
    switched: list[tuple[str, nn.Module]] = []
    for name, mod in model.named_modules():
        active = (isinstance(mod, nn.modules.dropout._DropoutNd) and mod.p > 0) or (
            isinstance(mod, nn.MultiheadAttention) and float(mod.dropout) > 0
        )
        if active and mod.training:
            switched.append((name, mod))
    for _, mod in switched:
        mod.training = False
    try:
        yield [name for name, _ in switched]
    finally:
        for _, mod in switched:
            mod.training = True


def _f_star_vector(
    f_star: Any, n: int, device: torch.device
) -> tuple[torch.Tensor | None, float | None]:
    if isinstance(f_star, (int, float)):
        if not math.isfinite(f_star):
            raise ValueError(f"f_star must be finite, got {f_star}")
        return None, float(f_star)
    vec = torch.as_tensor(np.asarray(f_star, dtype=np.float64)).reshape(-1)
    if vec.numel() != n:
        raise ValueError(
            f"f_star must be a number or hold one value per sample ({n}), got {vec.numel()}"
        )
    if not bool(torch.isfinite(vec).all()):
        raise ValueError("f_star contains NaN or Inf")
    return vec.to(device), None


def _couples_samples(model: nn.Module) -> bool:
    """Whether a sample's loss depends on the rest of its batch (train-mode BatchNorm)."""
    return any(
        isinstance(m, nn.modules.batchnorm._BatchNorm) and m.training for m in model.modules()
    )


class _Recorder:
    """The replay callback: per step, the scalars of T from the optimizer's own gradient.

    ``f_B(x^K)`` and ``f*_B`` are filled in by :meth:`finish` from the per-sample losses at
    ``x^K`` (one pass over the data) and the stored batch indices, instead of one forward
    pass per step; models whose samples are coupled (train-mode BatchNorm) get the per-step
    forward pass on the batch instead.
    """

    def __init__(
        self,
        problem: Problem,
        x_final: torch.Tensor,
        steps: int,
        batch: int | None,
        scale: float,
        f_star_vec: torch.Tensor | None,
        f_star: float | None,
        final_loss: float,
        full_every: int,
        full_grad: bool,
    ) -> None:
        self.problem, self.wK, self.scale = problem, x_final, scale
        self.f_star_vec, self.f_star, self.final_loss = f_star_vec, f_star, final_loss
        self.full_every, self.full_grad, self.steps = full_every, full_grad, steps
        self.coupled = _couples_samples(problem.model)
        # rows: inner, loss, grad norm, distance, loss at x^K, f*_B
        self.buf = torch.zeros((6, steps), dtype=torch.float64, device=problem.device)
        self.idx = torch.empty((steps, batch), dtype=torch.long) if batch else None
        self.full: list[tuple[int, torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]] = []
        self.seen = 0

    def __call__(
        self, t: int, w: torch.Tensor, idx: torch.Tensor | None, L: torch.Tensor, g: torch.Tensor
    ) -> None:
        if t >= self.steps:  # pragma: no cover - guarded by train
            raise RuntimeError("the replay took more steps than the first run")
        s = self.scale
        # in the model's dtype: the gradient carries that precision anyway, and float64
        # copies of w and g would cost several passes over p per step
        d = w - self.wK
        g = g.detach()
        vals = torch.stack((torch.dot(g, d), L.detach(), g.norm(), d.norm() * s))
        self.buf[:4, t] = vals.to(torch.float64) / s  # inner, loss, grad norm, distance
        if idx is not None:
            assert self.idx is not None
            self.idx[t] = idx
            if self.coupled:
                self.buf[4, t] = self.problem.loss(self.wK, idx).to(torch.float64) / s
        self.seen += 1
        if self.full_every and (t % self.full_every == 0 or t == self.steps - 1):
            dist = self.buf[3, t]
            if idx is None:
                self.full.append((t, self.buf[1, t], self.buf[0, t], self.buf[2, t], dist))
            elif self.full_grad:
                Lf, gf = self.problem.loss_and_grad(w)
                full = torch.stack((Lf, torch.dot(gf, d), gf.norm())).to(torch.float64) / s
                self.full.append((t, full[0], full[1], full[2], dist))
            else:
                Lf = self.problem.loss(w).to(torch.float64) / s
                nan = torch.tensor(float("nan"), dtype=torch.float64, device=Lf.device)
                self.full.append((t, Lf, nan, nan, dist))

    def finish(self) -> None:
        """Fill in ``f_B(x^K)`` and ``f*_B`` for every step."""
        dev = self.buf.device
        if self.idx is None:  # full batch
            self.buf[4] = self.final_loss
            fs = self.f_star if self.f_star_vec is None else float(self.f_star_vec.mean())
            self.buf[5] = fs
            return
        idx = self.idx.to(dev)
        if not self.coupled:
            per_sample = self.problem.per_sample_losses(self.wK).to(torch.float64)
            self.buf[4] = per_sample.to(dev)[idx].mean(dim=1)
        if self.f_star_vec is None:
            self.buf[5] = self.f_star
        else:
            self.buf[5] = self.f_star_vec.to(dev)[idx].mean(dim=1)


def record_conditions(
    problem: Problem,
    optimizer: OptimizerSpec = "sgd",
    steps: int = 100,
    batch_size: int | None = None,
    seeds: Sequence[int] = (0,),
    *,
    lr: float | None = None,
    optimizer_kwargs: dict[str, Any] | None = None,
    lr_scheduler: Callable[[torch.optim.Optimizer], Any] | None = None,
    f_star: float | Sequence[float] | np.ndarray | torch.Tensor = 0.0,
    full_loss_every: int | None = None,
    full_grad: bool = True,
    w0: torch.Tensor | None = None,
    x_final: torch.Tensor | None = None,
    store_indices: bool = True,
    replay_rtol: float = 1e-6,
    progress: bool | None = None,
) -> ConditionTrace:
    """Run training, replay it, and record the per-step scalars of the α-β test quantity.

    For each seed: a first run (:func:`lossgeometry.train`) gives the last iterate ``x^K``;
    the same run is replayed (same start, same seeded batches, fresh optimizer and scheduler
    from the same spec) and, at each step ``k`` before the optimizer steps, records the batch
    indices, ``f_B(x_k)``, ``f_B(x^K)``, ``⟨∇f_B(x_k), x_k − x^K⟩``, ``‖∇f_B(x_k)‖`` (the
    optimizer's own gradient, not recomputed) and, every ``full_loss_every`` steps, the
    full-data loss and gradient. The replay must end at ``x^K`` (checked).

    Args:
        problem: the Problem. Losses are recorded as means of its per-sample losses.
        optimizer: as in :func:`lossgeometry.train`: a name (``"sgd"``, ``"momentum"``,
            ``"adam"``, ...), a ``torch.optim.Optimizer`` class or a factory
            ``params -> Optimizer`` (``lossgeometry.optim.SPSMax`` etc. work).
        steps: optimizer steps ``K`` per run.
        batch_size: mini-batch size (``None``: full batch).
        seeds: one run per seed (the seed fixes the mini-batch order).
        lr: learning rate (required for the SGD family).
        optimizer_kwargs: extra keyword arguments for a named or class optimizer.
        lr_scheduler: factory ``optimizer -> scheduler`` (stepped after every step).
        f_star: ``f_i*``, a number for all samples or one value per sample (units of the
            Problem's per-sample loss ``ℓ_i``). The paper assumes 0 (non-negative losses).
        full_loss_every: stride of the full-data records (``0``: none; the last step is
            always included otherwise). Default: every step for full batch (free), else every
            ``⌈4 n / batch_size⌉`` steps (once per four epochs), so that the full passes cost
            about a quarter of the training.
        full_grad: also compute the full-data gradient at the full records (needed by
            :meth:`ConditionTrace.aiming` and :meth:`ConditionTrace.pl_relaxed`).
        w0: start point (default: the model's current parameters).
        x_final: the last iterate of an identical earlier run (one seed only); the first pass
            is then skipped and the replay is checked against it.
        store_indices: keep the ``(steps, batch_size)`` batch indices in the trace.
        replay_rtol: tolerance of the replay check, relative to ``‖x^K − x_0‖``.
        progress: progress bars.

    Returns:
        A :class:`ConditionTrace`.

    Raises:
        ReplayMismatchError: the replay did not reproduce ``x^K`` (non-deterministic
            operations, e.g. some CUDA kernels: call
            ``torch.use_deterministic_algorithms(True)``, or a stateful optimizer factory).
        ValueError: invalid arguments; lossgeometry.TrainingDivergedError if the run diverges.
    """
    if not isinstance(problem, Problem):
        raise TypeError(f"problem must be a lossgeometry.Problem, got {type(problem).__name__}")
    if not isinstance(steps, int) or steps < 1:
        raise ValueError(f"steps must be a positive integer, got {steps!r}")
    seeds = [int(s) for s in seeds]
    if not seeds:
        raise ValueError("seeds is empty: pass at least one seed")
    if x_final is not None and len(seeds) != 1:
        raise ValueError("x_final is the end point of one run: pass a single seed with it")
    if not (replay_rtol >= 0):
        raise ValueError(f"replay_rtol must be >= 0, got {replay_rtol}")
    n = problem.n
    batch = None if batch_size is None or batch_size >= n else int(batch_size)
    if full_loss_every is None:
        full_loss_every = 1 if batch is None else max(1, math.ceil(4 * n / batch))
    if not isinstance(full_loss_every, int) or full_loss_every < 0:
        raise ValueError(f"full_loss_every must be a non-negative integer, got {full_loss_every}")
    scale = float(n) if problem.reduction == "sum" else 1.0
    f_star_vec, f_star_scalar = _f_star_vector(f_star, n, problem.device)
    start = problem.check_w(w0).detach().clone()
    common = dict(
        lr=lr,
        batch_size=batch,
        w0=start,
        record_every=steps + 1,
        optimizer_kwargs=optimizer_kwargs,
        lr_scheduler=lr_scheduler,
        progress=progress,
    )

    t0 = time.perf_counter()
    recs: list[_Recorder] = []
    finals: list[float] = []
    errors: list[float] = []
    opt_name = ""
    with _dropout_off(problem.model) as disabled:
        for seed in seeds:
            if x_final is None:
                first = train(problem, optimizer, steps, seed=seed, **common)
                assert first.w_final is not None
                wK = first.w_final
                final_loss = float(first.loss[-1]) / scale
                opt_name = first.optimizer
            else:
                wK = problem.check_w(x_final).detach().clone()
                final_loss = float(problem.loss(wK)) / scale
            rec = _Recorder(
                problem,
                wK,
                steps,
                batch,
                scale,
                f_star_vec,
                f_star_scalar,
                final_loss,
                full_loss_every,
                full_grad,
            )
            second = train(problem, optimizer, steps, seed=seed, callback=rec, **common)
            opt_name = second.optimizer
            assert second.w_final is not None
            if rec.seen != steps:
                raise ValueError(f"the replay took {rec.seen} steps instead of {steps}")
            rec.finish()
            ref = float((wK - start).norm())
            err = float((second.w_final - wK).norm()) / max(ref, 1e-30)
            if not math.isfinite(err) or err > replay_rtol:
                raise ReplayMismatchError(
                    f"the replay of seed {seed} did not reproduce the last iterate x^K: "
                    f"relative error {err:.3e} > replay_rtol={replay_rtol:g}. The run is not "
                    "deterministic: remove randomness from the model's forward pass, make a "
                    "stateful optimizer factory build a fresh optimizer on every call, or on "
                    "CUDA call torch.use_deterministic_algorithms(True); raise replay_rtol to "
                    "accept a small mismatch"
                    + (
                        "; x_final must come from the same run (same seed, lr, steps)"
                        if x_final is not None
                        else ""
                    )
                )
            recs.append(rec)
            finals.append(final_loss)
            errors.append(err)
    wall = time.perf_counter() - t0
    return _build_trace(
        recs,
        seeds,
        finals,
        errors,
        steps,
        opt_name,
        lr,
        batch,
        problem,
        f_star_scalar,
        disabled,
        wall,
        store_indices,
    )


def _build_trace(
    recs: list[_Recorder],
    seeds: list[int],
    finals: list[float],
    errors: list[float],
    steps: int,
    opt_name: str,
    lr: float | None,
    batch: int | None,
    problem: Problem,
    f_star: float | None,
    disabled: list[str],
    wall: float,
    store_indices: bool,
) -> ConditionTrace:
    bufs = [r.buf.cpu().numpy() for r in recs]
    buf = np.concatenate(bufs, axis=1)
    run = np.concatenate([np.full(steps, j) for j in range(len(recs))])
    step = np.concatenate([np.arange(steps)] * len(recs))
    full_rows = [
        (j, t, *(float(v) for v in vals)) for j, r in enumerate(recs) for (t, *vals) in r.full
    ]
    F = np.asarray(full_rows, dtype=float).reshape(-1, 6)
    idx = None
    if store_indices and all(r.idx is not None for r in recs):
        idx = np.concatenate([r.idx.numpy() for r in recs if r.idx is not None])
    return ConditionTrace(
        run=run,
        step=step,
        inner=buf[0],
        loss_batch=buf[1],
        grad_norm=buf[2],
        distance=buf[3],
        loss_batch_final=buf[4],
        f_star_batch=buf[5],
        full_run=F[:, 0],
        full_step=F[:, 1],
        full_loss=F[:, 2],
        full_inner=F[:, 3],
        full_grad_norm=F[:, 4],
        full_distance=F[:, 5],
        seeds=seeds,
        final_loss=np.asarray(finals),
        replay_error=np.asarray(errors),
        steps_per_run=np.full(len(recs), steps),
        optimizer=opt_name,
        lr=lr,
        batch_size=batch,
        n=problem.n,
        p=problem.p,
        loss_name=problem.loss_name,
        reduction=problem.reduction,
        f_star=f_star,
        dropout_disabled=disabled,
        wall_time=wall,
        batch_indices=idx,
    )
