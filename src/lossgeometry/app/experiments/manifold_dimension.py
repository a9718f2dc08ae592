"""The dimension of the manifold of global minima versus ``p − nk`` (Cooper, arXiv:1804.10200).

Main grid: one-hidden-layer tanh MLPs (standard parameterization, float64) on ``digits``
(one-hot, ``k = 10``) and ``synthetic-regression`` (``k = 1``), over hidden widths and sample
counts ``n``. For each point: Gauss–Newton from the initialization to ``‖F − Y‖ < 1e-10``
(:func:`lg.find_interpolant`), then :func:`lg.solution_manifold`: the rank of ``J``, the
measured dimension ``p − rank``, the Hessian nullity, against Cooper's ``p − nk``.
Under-parameterized points (``p < nk``) have no interpolant: ``find_interpolant`` says so and
the point is recorded as such. Narrow hidden layers (width below ``k``) can make ``J``
rank-deficient at every interpolant even with ``p > nk`` (for one hidden layer, the output
layer's columns span at most ``k (w + 1)`` dimensions and the first layer's at most ``w`` per
sample): ``Y`` is then not a regular value, the set of minima has dimension ``p − rank J >
p − nk``, and the point is flagged ``regular = false`` (Gauss–Newton may also stall there).
One-hot targets are not generic either: their rows sum to 1, which at an interpolant whose
hidden features ``(h_i, 1)`` span ``R^{w+1}`` forces ``1ᵀW₂ = 0`` and
``rank J ≤ nk − (n − w − 1)`` (derivation and measurements in ``docs/manifold.md``).
For small manifolds (``p − nk ≤ pca_max_dim``) a random walk with retraction estimates the
local dimension by PCA as a third, independent measurement.

Extra (Cooper, arXiv:2005.04210, degenerate critical points of deep networks): bias-free tanh
MLPs of depth 1-3 on digits at points where two (or all) weight matrices are zero: measured
Hessian nullity against the closed form ``p − 2 rank(Q) rank(GP)`` of
:mod:`lossgeometry.manifold.degenerate`, and the fraction of zero eigenvalues as the width
grows.

Each grid point is saved under ``out/points/`` with every setting it depends on and skipped
on a re-run with the same settings (resume).
"""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path
from typing import Any, ClassVar

import torch

from lossgeometry._progress import progress_bar
from lossgeometry.app.experiments.experiment import experiment
from lossgeometry.app.experiments.manifold_dimension_plots import plot_degenerate, plot_main
from lossgeometry.app.experiments.options import experiment_options
from lossgeometry.app.experiments.plstar_common import cached_point
from lossgeometry.app.outdir import inputs as cache_inputs
from lossgeometry.options import Options, OptionsError
from lossgeometry.results import atomic_write_json

__all__ = ["DegenerateTable", "ManifoldDimensionConfig", "SyntheticTable", "manifold_dimension"]

_DATASETS = ("digits", "synthetic-regression")


@dataclasses.dataclass(frozen=True)
class SyntheticTable(Options):
    """``[synthetic]``: the synthetic-regression data."""

    d: int = 10
    """Input dimension."""
    k: int = 1
    """Outputs per sample."""


@dataclasses.dataclass(frozen=True)
class DegenerateTable(Options):
    """``[degenerate]``: bias-free tanh MLPs on ``n`` digits with two (or all) zero layers."""

    enabled: bool = True
    """Run this part."""
    n: int = 20
    """Samples."""
    depths: tuple[int, ...] = (1, 2, 3)
    """Hidden layers."""
    widths: tuple[int, ...] = (4, 8, 16)
    """Hidden widths."""


@dataclasses.dataclass(frozen=True)
class ManifoldDimensionConfig(Options):
    """The ``manifold_dimension`` experiment's TOML."""

    MERGED_TABLES: ClassVar[tuple[str, ...]] = ("widths", "samples")

    seed: int = 0
    """Seed of the data and the initializations."""
    datasets: tuple[str, ...] = _DATASETS
    """``"digits"`` (one-hot, ``k = 10``) and/or ``"synthetic-regression"``."""
    widths: dict[str, Any] = dataclasses.field(
        default_factory=lambda: {"digits": [4, 16, 32], "synthetic-regression": [4, 16, 32]}
    )
    """Hidden widths per dataset (``[widths]``, merged over these)."""
    samples: dict[str, Any] = dataclasses.field(
        default_factory=lambda: {"digits": [10, 20, 40], "synthetic-regression": [10, 50, 200]}
    )
    """Sample counts ``n`` per dataset (``[samples]``, merged over these)."""
    synthetic: SyntheticTable = dataclasses.field(default_factory=SyntheticTable)
    """The ``[synthetic]`` table."""
    max_iter: int = 100
    """Gauss–Newton iterations per point."""
    tol: float = 1e-10
    """Interpolation target ``‖F − Y‖``."""
    hessian_max_p: int = 3000
    """Dense Hessian up to this ``p`` (randomized range finder above)."""
    pca_max_dim: int = 60
    """Walk + PCA local dimension when ``p − nk ≤`` this."""
    pca_step: float = 1e-6
    """Walk step, relative to ``‖w*‖``."""
    degenerate: DegenerateTable = dataclasses.field(default_factory=DegenerateTable)
    """The ``[degenerate]`` table."""

    def check(self) -> None:
        """Known datasets, each with widths and samples."""
        for ds in self.datasets:
            if ds not in _DATASETS:
                raise OptionsError(f"datasets: {ds!r} is not 'digits' or 'synthetic-regression'")
            for table in ("widths", "samples"):
                if ds not in getattr(self, table):
                    raise OptionsError(f"[{table}] has no entry for dataset {ds!r}")


def _data(
    name: str, n: int, c: ManifoldDimensionConfig, seed: int
) -> tuple[torch.Tensor, torch.Tensor]:
    from lossgeometry import data

    if name == "digits":
        ds = data.load("digits", n=n, seed=seed, one_hot=True)
    elif name == "synthetic-regression":
        ds = data.load("synthetic-regression", n=n, seed=seed, **c.synthetic.to_dict())
    else:
        raise ValueError(f"dataset must be 'digits' or 'synthetic-regression', got {name!r}")
    X = ds.X.reshape(n, -1).double()
    # standardized in float32 by the loader: re-center in float64 so that the column means are
    # zero to float64 rounding (not 1e-7), which keeps exact structure (e.g. rank Xᵀ Y = k − 1
    # for one-hot Y) exact instead of a 1e-7-sized singular value that depends on resolution
    return X - X.mean(dim=0, keepdim=True), ds.Y.reshape(n, -1).double()


def _point(dataset: str, width: int, n: int, c: ManifoldDimensionConfig) -> dict[str, Any]:
    from lossgeometry import models
    from lossgeometry.manifold import (
        find_interpolant,
        solution_manifold,
        walk_manifold,
    )
    from lossgeometry.problem import Problem

    seed = c.seed
    X, Y = _data(dataset, n, c, seed)
    model = models.mlp(X.shape[1], width, 1, Y.shape[1], activation="tanh", seed=seed)
    problem = Problem(model.double(), X, Y)
    nk = problem.n * problem.k
    row: dict[str, Any] = {
        "dataset": dataset,
        "width": width,
        "n": n,
        "k": problem.k,
        "p": problem.p,
        "nk": nk,
        "expected_dimension": problem.p - nk,
    }
    t0 = time.perf_counter()
    sol = find_interpolant(problem, tol=c.tol, max_iter=c.max_iter, progress=False)
    row.update(
        interpolated=sol.success,
        residual_norm=sol.residual_norm,
        iterations=sol.iterations,
        reason=sol.reason,
    )
    if sol.success:
        hess = "dense" if problem.p <= c.hessian_max_p else "auto"
        rep = solution_manifold(problem, sol.w, hessian=hess)
        row.update(
            rank=rep.rank.rank,
            rank_gap=rep.rank.gap,
            rank_method=rep.rank.method,
            dimension=rep.dimension,
            hessian_nullity=rep.hessian_nullity,
            sigma_min=float(rep.singular_values[-1]),
            agrees=rep.agrees,
            regular=rep.rank.rank == nk,
        )
        dim = rep.dimension
        if 0 < dim <= c.pca_max_dim:
            h = c.pca_step * max(1.0, float(sol.w.norm()))
            walk = walk_manifold(
                problem, sol.w, steps=2 * dim + 10, step_size=h, seed=seed, pca=True
            )
            row.update(
                pca_dimension=walk.local_dimension,
                walk_max_loss=float(walk.loss.max()),
                walk_success=walk.success,
            )
    row["seconds"] = time.perf_counter() - t0
    return row


def _degenerate_point(
    depth: int, width: int, layers: list[int], c: ManifoldDimensionConfig
) -> dict[str, Any]:
    from lossgeometry import models
    from lossgeometry.manifold import (
        hessian_nullity,
    )
    from lossgeometry.manifold.degenerate import predict_zero_layer_nullity, zero_layers
    from lossgeometry.problem import Problem

    seed = c.seed
    n = c.degenerate.n
    X, Y = _data("digits", n, c, seed)
    model = models.mlp(
        X.shape[1], width, depth, Y.shape[1], activation="tanh", bias=False, seed=seed
    )
    problem = Problem(model.double(), X, Y)
    t0 = time.perf_counter()
    w = zero_layers(problem, problem.params(), layers=layers)
    pred = predict_zero_layer_nullity(problem, w, layers=layers)
    hn = hessian_nullity(
        problem,
        w,
        solver="dense" if problem.p <= c.hessian_max_p else "randomized",
        num=min(problem.p - 1, pred.nonzero + 60),
    )
    return {
        "depth": depth,
        "width": width,
        "layers": layers,
        "p": problem.p,
        "n": n,
        "grad_norm": float(problem.grad(w).norm()),
        "predicted_nullity": pred.nullity,
        "measured_nullity": hn.nullity,
        "rank_Q": pred.rank_Q,
        "rank_GP": pred.rank_GP,
        "fraction_zero": (hn.nullity / problem.p) if hn.nullity is not None else None,
        "agrees": hn.nullity == pred.nullity,
        "seconds": time.perf_counter() - t0,
    }


def _point_keys(c: ManifoldDimensionConfig) -> tuple[dict[str, Any], dict[str, Any]]:
    """The settings every main-grid point and every degenerate point depends on.

    The whole config less the grid lists (``datasets``, ``widths``, ``samples``; the
    degenerate part's ``depths``, ``widths``, ``enabled``): a point's own coordinates are
    added to its key, so a grown grid reuses the points it already has.
    """
    base = {
        k: v
        for k, v in c.to_dict().items()
        if k not in ("datasets", "widths", "samples", "degenerate")
    }
    return base, {**base, "degenerate_n": c.degenerate.n}


@experiment("manifold_dimension", options=ManifoldDimensionConfig)
def manifold_dimension(
    cfg: dict[str, Any], out: Path, full: bool, progress: bool | None
) -> dict[str, Any]:
    """Measured manifold dimension vs ``p − nk``; nullity at degenerate critical points."""
    c = experiment_options(ManifoldDimensionConfig, cfg, full)
    torch_threads = torch.get_num_threads()
    jobs = [(ds, int(w), int(n)) for ds in c.datasets for n in c.samples[ds] for w in c.widths[ds]]
    main_key, degenerate_key = _point_keys(c)
    named = cache_inputs(c.to_dict())  # the versions (the data sets need no files)
    rows = []
    for ds, w, n in progress_bar(jobs, progress, desc="manifold grid"):
        rows.append(
            cached_point(
                out,
                f"{ds}_w{w}_n{n}",
                {**main_key, "dataset": ds, "width": w, "n": n},
                lambda ds=ds, w=w, n=n: _point(ds, w, n, c),
                inputs=named,
            )
        )
    plot_main(rows, out / "dimension.png")
    deg_rows: list[dict[str, Any]] = []
    if c.degenerate.enabled:
        djobs = []
        for depth in c.degenerate.depths:
            L = int(depth) + 1
            pairs = [[0, 1]] + ([[0, L - 1]] if L > 2 else []) + ([list(range(L))] if L > 2 else [])
            for width in c.degenerate.widths:
                djobs += [(int(depth), int(width), layers) for layers in pairs]
        for depth, width, layers in progress_bar(djobs, progress, desc="degenerate points"):
            key = f"degenerate_d{depth}_w{width}_z{'-'.join(map(str, layers))}"
            deg_rows.append(
                cached_point(
                    out,
                    key,
                    {**degenerate_key, "depth": depth, "width": width, "layers": layers},
                    lambda d=depth, w=width, z=layers: _degenerate_point(d, w, z, c),
                    inputs=named,
                )
            )
        plot_degenerate(deg_rows, out / "degenerate.png")
    interp = [r for r in rows if r.get("interpolated")]
    summary = {
        "points": len(rows),
        "interpolated": len(interp),
        "under_parameterized": sum(1 for r in rows if r["p"] < r["nk"]),
        "dimension_equals_p_minus_nk": sum(
            1 for r in interp if r["dimension"] == r["expected_dimension"]
        ),
        "not_regular": sum(1 for r in interp if not r.get("regular", True)),
        "hessian_nullity_agrees": sum(
            1 for r in interp if r.get("hessian_nullity") == r["dimension"]
        ),
        "pca_agrees": sum(
            1
            for r in interp
            if r.get("pca_dimension") is not None and r["pca_dimension"] == r["dimension"]
        ),
        "pca_points": sum(1 for r in interp if r.get("pca_dimension") is not None),
        "degenerate_points": len(deg_rows),
        "degenerate_agree": sum(1 for r in deg_rows if r["agrees"]),
        "torch_threads": torch_threads,
    }
    results = {
        "summary": summary,
        "grid": rows,
        "degenerate": deg_rows,
        "config": c.to_dict(),
        "full": full,
    }
    atomic_write_json(out / "results.json", results)
    return {
        "summary": summary,
        "table": [
            {
                k: r.get(k)
                for k in (
                    "dataset",
                    "width",
                    "n",
                    "p",
                    "nk",
                    "expected_dimension",
                    "dimension",
                    "hessian_nullity",
                    "pca_dimension",
                )
            }
            for r in rows
        ],
    }
