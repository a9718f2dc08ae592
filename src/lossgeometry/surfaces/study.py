r"""The loss-surface studies: :func:`loss_surface` (2D) and :func:`loss_path` (1D).

A surface is ``L(w + x d₁ + y d₂)`` on a ``points × points`` grid of ``(x, y)``; a path is
``L(w + t d)`` on ``points`` values of ``t``. The directions (``SurfaceOptions.directions``):

* ``"random"``: filter-normalized Gaussian directions (Li et al. 2018; biases and
  normalization layers zero, see :mod:`lossgeometry.surfaces.directions`), seeds ``seed`` and
  ``seed + 1``. Default range ``[-1, 1]``.
* ``"hessian"``: the top eigenvectors of ``∇²L(w)`` (unit norm; 1D: the top one);
  ``"hessian_bottom"`` (1D): the most negative one. Default range ``[-1, 1]`` (distance 1).
* ``"gradient"`` (1D): ``∇L(w)/‖∇L(w)‖``.
* ``"pca"`` (2D): the top-2 PCA directions of a training run's iterates around ``w`` (Li et
  al. Sec. 7), with the run projected on the plane. Default range: the projected run's extent
  with a 20 % margin.
* ``loss_path(..., end=w_end)``: the linear interpolation ``w + t (w_end − w)`` (Goodfellow,
  Vinyals & Saxe 2015), default ``t ∈ [-0.25, 1.25]``.

Evaluation is batched (:func:`~lossgeometry.surfaces.evaluate.evaluate_points`:
``batch_points`` grid points per forward pass with ``torch.func.vmap``, one by one when the
model cannot be vmapped). A surface is resumable: with ``checkpoint=PATH`` every finished row
is written to ``PATH`` atomically, keyed by everything the values depend on (the point, the
directions, the grid, the Problem's normalization), and a rerun reads the finished rows back
instead of recomputing them.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import time
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch

from lossgeometry._progress import progress_bar
from lossgeometry.options import Options, OptionsError
from lossgeometry.problem import Problem
from lossgeometry.results import atomic_write_json
from lossgeometry.surfaces.directions import (
    filter_normalized_direction,
    gradient_direction,
    hessian_directions,
    trajectory_pca,
)
from lossgeometry.surfaces.evaluate import evaluate_points
from lossgeometry.surfaces.results import LossPath, LossSurface

__all__ = ["SurfaceOptions", "loss_path", "loss_surface"]

Directions = Literal["random", "hessian", "pca", "gradient", "hessian_bottom"]


@dataclasses.dataclass(frozen=True)
class SurfaceOptions(Options):
    """Options of :func:`loss_surface` and :func:`loss_path` (``[report.surface]``, CLI)."""

    directions: Directions = "random"
    """``"random"`` (filter-normalized), ``"hessian"``, ``"pca"`` (2D), ``"gradient"`` and
    ``"hessian_bottom"`` (1D)."""
    points: int = 21
    """Grid points per axis (a surface has ``points²``)."""
    xrange: tuple[float, ...] | None = None
    """``[lo, hi]`` along the first direction (``t`` of a path); unset: by direction (see the
    module docstring)."""
    yrange: tuple[float, ...] | None = None
    """``[lo, hi]`` along the second direction; unset: like ``xrange``."""
    seed: int = 0
    """Seed of the random directions (``seed``, ``seed + 1``) and of the Hessian's Lanczos."""
    ignore: Literal["biasbn", "none"] = "biasbn"
    """Filter normalization of 1-d tensors: zero (``"biasbn"``, Li et al.'s default) or ``w``."""
    accuracy: bool = False
    """Also the accuracy (cross-entropy problems)."""
    batch_points: int = 64
    """Grid points per vmapped forward pass."""
    evaluation: Literal["auto", "vmap", "chunks"] = "auto"
    """``"vmap"`` (batched), ``"chunks"`` (one point per pass), ``"auto"`` (vmap, else chunks)."""
    chunk_size: int | None = None
    """Samples per chunk (unset: the Problem's)."""

    def check(self) -> None:
        """At least 2 points per axis; increasing ranges; positive batch."""
        if self.points < 2:
            raise OptionsError(f"points = {self.points}: must be at least 2")
        if self.batch_points < 1:
            raise OptionsError(f"batch_points = {self.batch_points}: must be at least 1")
        for name in ("xrange", "yrange"):
            r = getattr(self, name)
            if r is not None and (len(r) != 2 or not r[0] < r[1]):
                raise OptionsError(f"{name} = {list(r)}: needs lo < hi")


def _digest(*parts: Any) -> str:
    h = hashlib.sha256()
    for part in parts:
        if isinstance(part, torch.Tensor):
            h.update(part.detach().to("cpu", torch.float64).contiguous().numpy().tobytes())
        else:
            h.update(json.dumps(part, sort_keys=True, default=str).encode())
    return h.hexdigest()


def _rows_of_rank0(
    problem: Problem, rows: dict[int, dict[str, Any]], shape: tuple[int, int], accuracy: bool
) -> dict[int, dict[str, Any]]:
    """Rank 0's finished rows on every rank of a data-parallel Problem (exact: zeros + sum)."""
    done = torch.zeros(shape[0], dtype=torch.float64, device=problem.device)
    vals = torch.zeros(2, *shape, dtype=torch.float64, device=problem.device)
    if problem.rank == 0:
        for i, r in rows.items():
            done[i] = 1
            vals[0, i] = torch.as_tensor(r["loss"], dtype=torch.float64)
            if accuracy:
                vals[1, i] = torch.as_tensor(r["accuracy"], dtype=torch.float64)
    done, vals = problem.all_sum(done), problem.all_sum(vals)
    return {
        i: {
            "loss": vals[0, i].tolist(),
            "accuracy": vals[1, i].tolist() if accuracy else None,
        }
        for i in range(shape[0])
        if done[i] > 0
    }


def _read_rows(path: Path | None, key: str, shape: tuple[int, int], acc: bool) -> dict[int, Any]:
    if path is None or not path.exists():
        return {}
    d = json.loads(path.read_text(encoding="utf-8"))
    if d.get("key") != key:
        return {}  # another surface: recompute (the file is overwritten as rows finish)
    rows = {}
    for i, row in d.get("rows", {}).items():
        loss = [float(v) for v in row["loss"]]
        if len(loss) != shape[1] or (acc and row.get("accuracy") is None):
            continue
        rows[int(i)] = {"loss": loss, "accuracy": row.get("accuracy")}
    return rows


def _surface_directions(
    problem: Problem, w: torch.Tensor, opts: SurfaceOptions, trajectory: Any
) -> tuple[torch.Tensor, torch.Tensor, dict[str, Any]]:
    extra: dict[str, Any] = {}
    if opts.directions == "random":
        d1 = filter_normalized_direction(problem, w, seed=opts.seed, ignore=opts.ignore)
        d2 = filter_normalized_direction(problem, w, seed=opts.seed + 1, ignore=opts.ignore)
    elif opts.directions == "hessian":
        V, values = hessian_directions(problem, w, top=2, seed=opts.seed)
        d1, d2 = V[:, 0], V[:, 1]
        extra["eigenvalues"] = values
    elif opts.directions == "pca":
        its = _iterates(trajectory)
        if its is None:
            raise ValueError(
                "directions='pca' needs a training run with its iterates: pass trajectory= "
                "(an lg.Trajectory from lg.train(..., record_iterates=True), or a (T, p) tensor)"
            )
        D, coords, ratio = trajectory_pca(its.to(problem.device, problem.dtype), w)
        d1, d2 = D[:, 0], D[:, 1]
        extra.update(trajectory=coords, explained_variance=ratio)
    else:
        raise ValueError(
            f"directions = {opts.directions!r}: a surface takes 'random', 'hessian' or 'pca'"
        )
    return d1, d2, extra


def _iterates(trajectory: Any) -> torch.Tensor | None:
    if trajectory is None:
        return None
    its = trajectory if isinstance(trajectory, torch.Tensor) else trajectory.iterates
    return None if its is None else torch.as_tensor(its)


def _range(r: tuple[float, ...] | None, default: tuple[float, float]) -> tuple[float, float]:
    return (float(r[0]), float(r[1])) if r is not None else default


def loss_surface(
    problem: Problem,
    w: torch.Tensor | None = None,
    *,
    options: SurfaceOptions | None = None,
    directions: tuple[torch.Tensor, torch.Tensor] | None = None,
    trajectory: Any = None,
    checkpoint: str | Path | None = None,
    progress: bool | None = None,
) -> LossSurface:
    """The loss on the plane ``w + x d₁ + y d₂`` on a ``points × points`` grid.

    Args:
        problem: the Problem.
        w: the centre of the plane (default: the model's parameters).
        options: :class:`SurfaceOptions` (directions, grid, seed, batching).
        directions: two flat directions ``(d₁, d₂)`` to use instead of ``options.directions``
            (recorded as ``"given"``; default range ``[-1, 1]``).
        trajectory: a training run (``lg.Trajectory`` with iterates, or a ``(T, p)`` tensor):
            required by ``directions="pca"``, and projected on the plane in that case.
        checkpoint: a JSON file that keeps the finished rows (written atomically after each
            row); a rerun with the same inputs reads them back instead of recomputing them.
        progress: a progress bar over the rows (default: on a terminal).

    Returns:
        A :class:`LossSurface`; ``loss[i, j] = L(w + x_j d₁ + y_i d₂)``.

    Example (a linear model's loss is a quadratic in ``(x, y)``):
        >>> import torch
        >>> import lossgeometry as lg
        >>> g = torch.Generator().manual_seed(0)
        >>> X, Y = torch.randn(20, 3, generator=g), torch.randn(20, 1, generator=g)
        >>> problem = lg.Problem(torch.nn.Linear(3, 1).double(), X.double(), Y.double())
        >>> s = lg.loss_surface(problem, options=lg.SurfaceOptions(points=5))
        >>> s.loss.shape, s.directions, bool(abs(s.loss[2, 2] - s.center_loss) < 1e-12)
        ((5, 5), 'random', True)
    """
    t0 = time.perf_counter()
    opts = options if options is not None else SurfaceOptions()
    w = problem.check_w(w).detach()
    extra: dict[str, Any] = {}
    if directions is not None:
        d1, d2 = (problem.check_v(d.reshape(-1), "direction") for d in directions)
        kind = "given"
    else:
        d1, d2, extra = _surface_directions(problem, w, opts, trajectory)
        kind = opts.directions
    default = (-1.0, 1.0)
    if kind == "pca":
        T = np.asarray(extra["trajectory"])
        lo, hi = T.min(axis=0), T.max(axis=0)
        pad = 0.2 * np.maximum(hi - lo, 1e-12)
        xr = _range(opts.xrange, (float(lo[0] - pad[0]), float(hi[0] + pad[0])))
        yr = _range(opts.yrange, (float(lo[1] - pad[1]), float(hi[1] + pad[1])))
    else:
        xr = _range(opts.xrange, default)
        yr = _range(opts.yrange, xr if opts.xrange is not None else default)
    xs = np.linspace(xr[0], xr[1], opts.points)
    ys = np.linspace(yr[0], yr[1], opts.points)
    path = Path(checkpoint) if checkpoint is not None else None
    key = _digest(
        w, d1, d2, xs.tolist(), ys.tolist(), opts.accuracy, problem.summary(), problem.reduction
    )
    shape = (len(ys), len(xs))
    rows = _read_rows(path, key, shape, opts.accuracy)
    if problem.is_data_parallel:  # the rows rank 0 finished, so every rank skips the same
        rows = _rows_of_rank0(problem, rows, shape, opts.accuracy)
        if problem.rank != 0:
            path = None  # rank 0 alone writes
    resumed = len(rows)
    tx = torch.as_tensor(xs, dtype=problem.dtype, device=problem.device)
    used, evaluated = "vmap" if opts.evaluation != "chunks" else "chunks", 0
    todo = [i for i in range(len(ys)) if i not in rows]
    for i in progress_bar(todo, progress, desc="loss surface rows", total=len(todo)):
        base = w + float(ys[i]) * d2
        loss_row, acc_row = [], []
        for s in range(0, len(xs), opts.batch_points):
            mode = opts.evaluation if used == "vmap" else "chunks"
            L, A, used = evaluate_points(
                problem,
                torch.addr(base, tx[s : s + opts.batch_points], d1),  # one pass: w + x d1 + y d2
                accuracy=opts.accuracy,
                evaluation=mode,
                chunk_size=opts.chunk_size,
            )
            loss_row += L.tolist()
            acc_row += A.tolist() if A is not None else []
        evaluated += len(xs)
        rows[i] = {"loss": loss_row, "accuracy": acc_row if opts.accuracy else None}
        if path is not None:
            atomic_write_json(path, {"key": key, "rows": {str(k): v for k, v in rows.items()}})
    loss = np.array([rows[i]["loss"] for i in range(len(ys))], dtype=float)
    acc = (
        np.array([rows[i]["accuracy"] for i in range(len(ys))], dtype=float)
        if opts.accuracy
        else None
    )
    center = float(evaluate_points(problem, w[None], evaluation="chunks")[0][0])
    n1, n2 = float(d1.norm()), float(d2.norm())
    cos = float(d1 @ d2) / (n1 * n2) if n1 > 0 and n2 > 0 else float("nan")
    return LossSurface(
        x=xs,
        y=ys,
        loss=loss,
        accuracy=acc,
        directions=kind,
        center_loss=center,
        direction_norms=[n1, n2],
        cosine=cos,
        trajectory=extra.get("trajectory"),
        explained_variance=extra.get("explained_variance"),
        eigenvalues=extra.get("eigenvalues"),
        evaluation=used,
        evaluated_points=evaluated,
        resumed_rows=resumed,
        wall_time=time.perf_counter() - t0,
        p=problem.p,
        loss_name=problem.loss_name,
        reduction=problem.reduction,
        options=opts.to_dict(),
    )


def loss_path(
    problem: Problem,
    w: torch.Tensor | None = None,
    *,
    end: torch.Tensor | None = None,
    direction: torch.Tensor | None = None,
    options: SurfaceOptions | None = None,
    progress: bool | None = None,
) -> LossPath:
    """The loss along the line ``w + t d``: an interpolation to ``end`` or a slice.

    Args:
        problem: the Problem.
        w: the start (``t = 0``; default: the model's parameters).
        end: the other end (``t = 1``): ``d = end − w`` (linear interpolation, e.g. init →
            trained or two minima); default ``t ∈ [-0.25, 1.25]``; ``t = 0`` and ``t = 1``
            are added to the grid when they lie in the range.
        direction: a flat direction to use instead of ``options.directions`` (``"given"``).
        options: :class:`SurfaceOptions`; ``directions`` is ``"random"``, ``"hessian"``,
            ``"hessian_bottom"`` or ``"gradient"`` for a slice; ``points`` and ``xrange`` set
            the ``t`` grid.
        progress: a progress bar over the batches.

    Returns:
        A :class:`LossPath`.
    """
    t0 = time.perf_counter()
    opts = options if options is not None else SurfaceOptions()
    w = problem.check_w(w).detach()
    eigenvalue = None
    default = (-1.0, 1.0)
    if end is not None:
        d, kind, default = problem.check_w(end).detach() - w, "interpolation", (-0.25, 1.25)
    elif direction is not None:
        d, kind = problem.check_v(direction.reshape(-1), "direction"), "given"
    elif opts.directions == "random":
        d = filter_normalized_direction(problem, w, seed=opts.seed, ignore=opts.ignore)
        kind = "random"
    elif opts.directions in ("hessian", "hessian_bottom"):
        top = opts.directions == "hessian"
        V, values = hessian_directions(
            problem, w, top=int(top), bottom=int(not top), seed=opts.seed
        )
        d, kind, eigenvalue = V[:, 0], opts.directions, float(values[0])
    elif opts.directions == "gradient":
        d, kind = gradient_direction(problem, w), "gradient"
    else:
        raise ValueError(
            f"directions = {opts.directions!r}: a path takes 'random', 'hessian', "
            "'hessian_bottom' or 'gradient' (or end= / direction=)"
        )
    lo, hi = _range(opts.xrange, default)
    ts = np.linspace(lo, hi, opts.points)
    if kind == "interpolation":  # both ends lie on the curve
        ts = np.union1d(ts, [t for t in (0.0, 1.0) if lo <= t <= hi])
    tt = torch.as_tensor(ts, dtype=problem.dtype, device=problem.device)
    losses, accs, used = [], [], opts.evaluation
    for s in progress_bar(range(0, len(ts), opts.batch_points), progress, desc="loss path"):
        W = torch.addr(w, tt[s : s + opts.batch_points], d)
        L, A, got = evaluate_points(
            problem, W, accuracy=opts.accuracy, evaluation=used, chunk_size=opts.chunk_size
        )
        used = "chunks" if got == "chunks" else used
        losses += L.tolist()
        accs += A.tolist() if A is not None else []
    ends = torch.stack([w, w + d]) if kind == "interpolation" else w[None]
    at_ends = evaluate_points(problem, ends, evaluation="chunks", chunk_size=opts.chunk_size)[0]
    return LossPath(
        t=ts,
        loss=np.array(losses, dtype=float),
        accuracy=np.array(accs, dtype=float) if opts.accuracy else None,
        direction=kind,
        direction_norm=float(d.norm()),
        loss_start=float(at_ends[0]),
        loss_end=float(at_ends[1]) if kind == "interpolation" else None,
        eigenvalue=eigenvalue,
        evaluation="vmap" if used in ("auto", "vmap") else "chunks",
        wall_time=time.perf_counter() - t0,
        p=problem.p,
        loss_name=problem.loss_name,
        reduction=problem.reduction,
        options=opts.to_dict(),
    )
