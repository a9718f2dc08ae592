"""What each rank computes in the 2-rank tangent-kernel tests (importable by spawned processes).

Each function builds the same float64 Problem on every rank, shards it when a process group
runs (``rank=None``: one process, the Problem unchanged) and returns its measurements as a
dict of tensors and floats; the test compares the ranks with each other and with one process.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

import lossgeometry as lg
from lossgeometry.kernel.structured import agreed_plan

METHODS = ("structured", "jacobian", "ntvp")


def make_problem(n: int, k: int = 2, *, d: int = 16, width: int = 32) -> lg.Problem:
    """An MLP on ``n`` Gaussian inputs in ``R^d``: a well-conditioned kernel (κ ≈ 50 at n = 11),
    so that λ_min is determined to 1e-14 relative and the ranks' rounding stays below 1e-12."""
    g = torch.Generator().manual_seed(0)
    X = torch.randn(n, d, generator=g, dtype=torch.float64)
    Y = torch.randn(n, k, generator=g, dtype=torch.float64)
    model = lg.models.mlp(d, width, 1, k, seed=1).double()
    return lg.Problem(model, X, Y, loss="mse", chunk_size=3)


SUBSET = [5, 0, 3, 3, 6, 1]
"""A kernel on a subset: unsorted, with a repeated sample, from both ranks' shards."""


class TiedWhenLarge(nn.Module):
    """A dense layer whose weight is also used outside its forward, for large inputs only.

    ``f(x) = W₂ tanh(W₁x + b₁ + 0.1·[max|x| > 5]·W₁x)``: the structured rule of ``W₁`` holds
    for small samples and fails its check on large ones, so ranks holding different samples
    disagree about it unless they agree on one plan.
    """

    def __init__(self, d: int = 4, width: int = 6, k: int = 2) -> None:
        super().__init__()
        g = torch.Generator().manual_seed(3)
        self.lin = nn.Linear(d, width).double()
        self.out = nn.Linear(width, k).double()
        with torch.no_grad():
            for t in self.parameters():
                t.copy_(torch.randn(t.shape, generator=g, dtype=torch.float64) / 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        large = (x.abs().amax(dim=1, keepdim=True) > 5).to(x.dtype)
        tied = nn.functional.linear(x, self.lin.weight)
        return self.out(torch.tanh(self.lin(x) + 0.1 * large * tied))


def tied_problem(n: int = 7) -> lg.Problem:
    """Samples 0–3 (rank 0's of 7) small, samples 4–6 (rank 1's) large."""
    g = torch.Generator().manual_seed(5)
    X = torch.randn(n, 4, generator=g, dtype=torch.float64)
    X[4:] *= 20
    return lg.Problem(TiedWhenLarge(), X, torch.zeros(n, 2, dtype=torch.float64))


def kernels(rank: int | None, n: int = 7, k: int = 2) -> dict[str, Any]:
    """Dense kernels (every method and output mode), diagonals, row blocks, NTK products."""
    problem = lg.distributed.shard(make_problem(n, k=k))
    w = problem.params()
    out: dict[str, Any] = {"world_size": problem.world_size}
    for meth in METHODS:
        kw = {"method": meth, "chunk_size": 2}  # several chunks per rank: the exchange loop
        out[f"{meth}/full"] = lg.tangent_kernel(problem, w, **kw)
        out[f"{meth}/trace"] = lg.tangent_kernel(problem, w, outputs="trace", **kw)
        out[f"{meth}/output1"] = lg.tangent_kernel(problem, w, outputs=[1], **kw)
        out[f"{meth}/diag"] = lg.tangent_kernel(problem, w, diagonal_only=True, **kw)
        out[f"{meth}/diag_trace"] = lg.tangent_kernel(
            problem, w, outputs="trace", diagonal_only=True, **kw
        )
        out[f"{meth}/subset"] = lg.tangent_kernel(problem, w, indices=SUBSET, **kw)
        out[f"{meth}/default_chunks"] = lg.tangent_kernel(problem, w, method=meth)
        for mode, extra in (
            ("full", {}),
            ("trace", {"outputs": "trace"}),
            ("subset", {"indices": SUBSET}),
            ("diag", {"diagonal_only": True}),
        ):
            rows = lg.kernel.kernel_rows(problem, w, **kw, **extra)
            out[f"{meth}/rows_{mode}"] = rows.K
            out[f"{meth}/rows_{mode}_index"] = rows.rows
    g = torch.Generator().manual_seed(4)
    V = torch.randn(n * k, 3, generator=g, dtype=torch.float64)
    out["ntk_V"] = lg.ntk_operator(problem, w) @ V
    rows = lg.kernel.kernel_rows(problem, w)
    out["sharded_V"] = rows.operator(problem) @ V
    # samples of rank 0 only: rank 1 holds none of them (an empty block of rows)
    out["rank0_only"] = lg.tangent_kernel(problem, w, indices=[2, 0])
    out["rank0/rows_subset"] = lg.kernel.kernel_rows(problem, w, indices=[2, 0]).K
    # 3 samples: rank 1 holds a single one (its plan is checked on that sample twice)
    small = lg.distributed.shard(make_problem(3, k=k))
    out["one_sample_rank"] = lg.tangent_kernel(small, chunk_size=1)
    tied = lg.distributed.shard(tied_problem())
    for meth in ("structured", "jacobian"):
        out[f"tied/{meth}"] = lg.tangent_kernel(tied, method=meth, chunk_size=2)
    out["tied/fallback"] = float("lin" in agreed_plan(tied).reasons)
    return out


def spectra(rank: int | None, n: int = 11, k: int = 2) -> dict[str, Any]:
    """λ_min, λ_max by every solver, and the PL* certificate."""
    problem = lg.distributed.shard(make_problem(n, k=k))
    w = problem.params()
    out: dict[str, Any] = {}
    for solver in ("dense", "lanczos", "arpack", "lobpcg", "sharded"):
        spec = lg.kernel_spectrum(problem, w, solver=solver, tol=1e-10, progress=False)
        out[f"{solver}/lambda_min"] = spec.lambda_min
        out[f"{solver}/lambda_max"] = spec.lambda_max
        out[f"{solver}/matvecs"] = float(spec.matvecs)
    spec = lg.kernel_spectrum(problem, w, solver="sharded", outputs="trace", progress=False)
    out["sharded_trace/lambda_min"] = spec.lambda_min
    spec = lg.kernel_spectrum(
        problem, w, solver="lobpcg", preconditioner=True, tol=1e-10, progress=False
    )
    out["lobpcg_prec/lambda_min"] = spec.lambda_min
    cert = lg.certify_plstar(lg.distributed.shard(make_problem(5)), samples=3, progress=False)
    for field in (
        "mu",
        "lambda0",
        "lambda_max0",
        "lipschitz_F",
        "smoothness_F",
        "residual_norm",
        "loss0",
        "radius",
        "sampled_radius",
        "step_size",
        "step_size_strict",
        "rate",
        "pl_constant",
        "condition_number",
        "conditioning_bound",
        "analytic_margin",
    ):
        out[f"cert/{field}"] = float(getattr(cert, field))
    for field in ("sample_distance", "sample_lambda_min", "sample_lambda_max"):
        out[f"cert/{field}"] = torch.as_tensor(getattr(cert, field))
    out["cert/sample_hessian_norm"] = torch.as_tensor(cert.sample_hessian_norm)
    out["cert/points"] = cert.points
    out["cert/certified"] = float(cert.certified)
    out["cert/n"] = float(cert.n)
    return out


LARGE_N = 40
"""Samples of the row-sharded case (k = 2, N = 80; p = 610 > N, κ ≈ 1.5·10³)."""


def full_kernel_bytes() -> int:
    return (LARGE_N * 2) ** 2 * 8


def sharded_lambda_min(rank: int | None, max_memory: int) -> dict[str, Any]:
    """λ_min where ``max_memory`` refuses the whole dense kernel but admits each rank's rows."""
    problem = lg.distributed.shard(make_problem(LARGE_N))
    spec = lg.kernel_spectrum(problem, tol=1e-12, max_memory=max_memory, progress=False)
    rows = lg.kernel.kernel_rows(problem, max_memory=max_memory)
    refused = ""
    try:
        lg.tangent_kernel(problem, max_memory=max_memory)
    except ValueError as e:
        refused = str(e)
    return {
        "method": spec.method,
        "lambda_min": spec.lambda_min,
        "lambda_max": spec.lambda_max,
        "converged": float(spec.converged),
        "rows_shape": torch.tensor(rows.K.shape),
        "refused": refused,
    }
