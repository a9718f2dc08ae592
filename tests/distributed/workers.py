"""What each rank computes in the 2-rank tests (importable by spawned processes).

Each function builds the same float64 Problem on every rank, makes it data-parallel when a
process group runs (on one process :func:`lossgeometry.distributed.shard` returns it
unchanged), and returns the measurements as a dict of tensors and floats, so the parent can
compare the ranks with each other and with one process.
"""

from __future__ import annotations

from typing import Any

import torch

import lossgeometry as lg


def make_problem(n: int, loss: str = "mse", *, k: int = 2, width: int = 8) -> lg.Problem:
    g = torch.Generator().manual_seed(0)
    X = torch.randn(n, 3, generator=g, dtype=torch.float64)
    model = lg.models.mlp(3, width, 1, k, seed=1).double()
    if loss == "mse":
        Y = torch.randn(n, k, generator=g, dtype=torch.float64)
        return lg.Problem(model, X, Y, loss="mse", chunk_size=3)
    Y = torch.randint(0, k, (n,), generator=g)
    return lg.Problem(model, X, Y, loss="cross_entropy", chunk_size=3)


def views(rank: int | None, n: int = 11, loss: str = "mse", own_shard: bool = False) -> dict:
    """Loss, gradient, products and per-sample rows (all samples and a mini-batch)."""
    full = make_problem(n, loss)
    if own_shard and lg.distributed.is_initialized():  # each rank builds only its shard
        start, stop = lg.distributed.shard_bounds(n, lg.distributed.world_size(), rank)
        problem = lg.distributed.data_parallel(full.subset(range(start, stop)))
    else:
        problem = lg.distributed.shard(full)
    w = problem.params()
    g = torch.Generator().manual_seed(2)
    v = torch.randn(problem.p, generator=g, dtype=torch.float64)
    V = torch.randn(problem.p, 3, generator=g, dtype=torch.float64)
    u = torch.randn(problem.n, problem.k, generator=g, dtype=torch.float64)
    batch = [i for i in (0, 3, 4, 9, 10) if i < n] if n > 5 else [0, n - 1]
    H = lg.operators.HessianOperator(problem, w)
    G = lg.operators.HessianOperator(problem, w, of="ggn")
    out: dict[str, Any] = {
        "n": problem.n,
        "world_size": problem.world_size,
        "loss": problem.loss(w),
        "grad": problem.grad(w),
        "loss_batch": problem.loss(w, batch),
        "grad_batch": problem.grad(w, batch),
        "hvp": problem.hvp(w, v),
        "hvp_block": problem.hvp(w, V),
        "hvp_batch": problem.hvp(w, v, batch),
        "H_V": H @ V,
        "GGN_V": G @ V,
        "F": problem.F(w),
        "F_batch": problem.F(w, batch),
        "per_sample": problem.per_sample_losses(w),
        "targets": problem.targets(),
        "jvp": problem.jvp(w, v),
        "vjp": problem.vjp(w, u),
    }
    if loss == "mse":
        out["residual"] = problem.residual(w)
    return out


def spectra(rank: int | None, n: int = 11) -> dict:
    """Hessian extremes (Lanczos), Hutch++ trace, model-Hessian norm, PL* certificate."""
    problem = lg.distributed.shard(make_problem(n))
    w = problem.params()
    spec = lg.hessian_spectrum(problem, w, top=2, bottom=1, solver="lanczos", seed=0)
    tr = lg.hessian_trace(problem, w, estimator="hutch++", samples=30, seed=3)
    mh = lg.model_hessian_norm(problem, w, seed=0)
    return {
        "lambda_max": float(spec.top[0]),
        "top": torch.as_tensor(spec.top),
        "lambda_min": float(spec.bottom[0]),
        "trace": float(tr.estimate),
        "model_hessian_norm": float(mh.norm),
    }


def one_rank_raises(rank: int | None) -> dict:
    """Rank 1 raises before its first measurement; rank 0 measures (and must not hang)."""
    problem = lg.distributed.shard(make_problem(6))
    if rank == 1:
        raise RuntimeError("rank 1 fails on purpose")
    return {"loss": problem.loss()}


def nothing(rank: int | None) -> dict:
    return {}


def solvers_and_surfaces(rank: int | None, n: int = 9, checkpoint: str | None = None) -> dict:
    """Hessian extremes by ARPACK and dense, SLQ density, GGN trace, a loss surface."""
    problem = lg.distributed.shard(make_problem(n, "cross_entropy", k=3))
    w = problem.params()
    arpack = lg.hessian_spectrum(problem, w, top=2, bottom=1, solver="arpack", seed=0)
    dense = lg.hessian_spectrum(problem, w, top=2, bottom=2, solver="dense")
    dens = lg.hessian_density(problem, w, probes=2, steps=12, grid=50, seed=1)
    ggn = lg.hessian_trace(problem, w, of="ggn", estimator="hutchinson", samples=8, seed=0)
    opts = lg.SurfaceOptions(points=4, accuracy=True)
    surf = lg.loss_surface(problem, w, options=opts, checkpoint=checkpoint)
    path = lg.loss_path(problem, w, end=w * 0.5, options=lg.SurfaceOptions(points=5))
    return {
        "arpack_top": torch.as_tensor(arpack.top),
        "arpack_bottom": torch.as_tensor(arpack.bottom),
        "dense_top": torch.as_tensor(dense.top),
        "dense_bottom": torch.as_tensor(dense.bottom),
        "density": torch.as_tensor(dens.density),
        "ggn_trace": float(ggn.estimate),
        "surface": torch.as_tensor(surf.loss),
        "surface_accuracy": torch.as_tensor(surf.accuracy),
        "center": float(surf.center_loss),
        "path": torch.as_tensor(path.loss),
        "evaluated": float(surf.evaluated_points),
    }


def unported(rank: int | None) -> dict:
    """A pass over every sample with iter_chunks (code not written for ranks) must refuse."""
    problem = lg.distributed.shard(make_problem(6))
    list(problem.iter_chunks())
    return {}
