"""Interpolating an over-parameterized MLP to ‖F − Y‖ < 1e-10: lossgeometry vs SciPy.

The tool a user would otherwise pick is ``scipy.optimize.least_squares`` (``method="trf"``;
``"lm"`` refuses fewer residuals than variables), fed the dense Jacobian from torch. We time
both from the same start in float64 on one thread, and report the final residual.

    .venv/bin/python benchmarks/manifold_interpolant.py
"""

from __future__ import annotations

import time

import numpy as np
import scipy.optimize
import torch
from torch import nn

import lossgeometry as lg
from lossgeometry.operators.jacobian import dense_jacobian

torch.set_num_threads(1)


def problem(n: int, d: int, width: int, k: int) -> lg.Problem:
    g = torch.Generator().manual_seed(0)
    X = torch.randn(n, d, generator=g, dtype=torch.float64)
    Y = torch.randn(n, k, generator=g, dtype=torch.float64)
    torch.manual_seed(0)
    return lg.Problem(
        nn.Sequential(nn.Linear(d, width), nn.Tanh(), nn.Linear(width, k)).double(), X, Y
    )


def scipy_solve(pr: lg.Problem, w0: torch.Tensor) -> tuple[float, float, int]:
    def fun(v: np.ndarray) -> np.ndarray:
        return pr.residual(torch.from_numpy(v)).reshape(-1).numpy()

    def jac(v: np.ndarray) -> np.ndarray:
        return dense_jacobian(pr, torch.from_numpy(v)).numpy()

    t = time.perf_counter()
    res = scipy.optimize.least_squares(
        fun, w0.numpy(), jac=jac, method="trf", xtol=1e-15, ftol=1e-15, gtol=1e-15, max_nfev=2000
    )
    return time.perf_counter() - t, float(np.linalg.norm(res.fun)), int(res.nfev)


def main() -> None:
    rows = []
    for n, d, width, k in [(20, 4, 16, 2), (50, 4, 32, 2), (100, 8, 64, 2), (200, 10, 64, 1)]:
        pr = problem(n, d, width, k)
        w0 = pr.params()
        lg.find_interpolant(pr, w0, max_iter=1, progress=False)  # vmap warm-up
        t = time.perf_counter()
        sol = lg.find_interpolant(pr, w0, progress=False)
        t_lg = time.perf_counter() - t
        t_sp, r_sp, nfev = scipy_solve(pr, w0)
        rows.append((pr.p, n * k, t_lg, sol.residual_norm, sol.iterations, t_sp, r_sp, nfev))
    print("| p | nk | lossgeometry GN (s) | ‖F − Y‖ | iters | SciPy trf (s) | ‖F − Y‖ | nfev |")
    print("|---|---|---|---|---|---|---|---|")
    for p, nk, a, ra, it, b, rb, nf in rows:
        print(f"| {p} | {nk} | {a:.2f} | {ra:.1e} | {it} | {b:.2f} | {rb:.1e} | {nf} |")


if __name__ == "__main__":
    main()
