"""Products needed for both ends of the tangent kernel's spectrum: ARPACK vs our Lanczos.

``λ_min`` of an ill-conditioned NTK is the expensive end. This counts operator products for
``λ_min`` and ``λ_max`` (relative tolerance ``tol`` on each) with

* ``ARPACK``: ``scipy.sparse.linalg.eigsh``, one run with ``which="SA"`` and one with
  ``"LA"``, basis ``ncv = 40`` (the former default of ``kernel_spectrum``), residual
  ``≤ tol·|θ|``, at most ``--arpack-maxiter`` restarts;
* ``lossgeometry``: ``lg.linalg.lanczos_extremes(top=1, bottom=1, criterion="eigenvalue",
  relative_to="value")``, one thick-restart run for both ends, basis ``ncv`` = 40, 160 and
  :func:`lossgeometry.kernel.spectrum.default_ncv` (what ``kernel_spectrum(solver="lanczos")``
  uses).

The operator is the dense float64 kernel of the default report problem (NTK MLP
64→256→256→10 on digits, trained 0 steps) with ``n`` samples, so that a product costs the
same for every solver and the reference eigenvalues come from ``eigvalsh``. Wall times are
for these dense products; with the matrix-free NTK operator each product costs a forward and
a backward pass and the product counts are what matter.

Run::

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/kernel_lanczos.py [--n 128 512]
"""

from __future__ import annotations

import argparse
import copy
import json
import platform
import sys
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

import lossgeometry as lg  # noqa: E402
from lossgeometry.app.config import DEFAULT_CONFIG, build_problem  # noqa: E402
from lossgeometry.kernel.spectrum import default_ncv  # noqa: E402
from lossgeometry.linalg.lanczos import lanczos_extremes  # noqa: E402


def kernel(n: int) -> torch.Tensor:
    cfg = copy.deepcopy(DEFAULT_CONFIG)
    cfg["data"]["n"] = n
    problem, _ = build_problem(cfg)
    return lg.tangent_kernel(problem).double()


def arpack(K: torch.Tensor, tol: float, maxiter: int) -> dict:
    from scipy.sparse.linalg import ArpackNoConvergence, LinearOperator, eigsh

    A = K.numpy()
    N = A.shape[0]
    count = {"n": 0}

    def mv(v):
        count["n"] += 1
        return A @ v

    op = LinearOperator((N, N), matvec=mv, dtype=np.float64)
    out, ok = {}, True
    for which, seed in (("SA", 1), ("LA", 0)):
        v0 = np.random.default_rng(seed).standard_normal(N)
        try:
            out[which] = float(
                eigsh(op, k=1, which=which, tol=tol, ncv=40, maxiter=maxiter, v0=v0)[0][0]
            )
        except ArpackNoConvergence as e:
            ok = False
            out[which] = float(e.eigenvalues[0]) if len(e.eigenvalues) else float("nan")
    return {"min": out["SA"], "max": out["LA"], "products": count["n"], "converged": ok}


def ours(K: torch.Tensor, tol: float, ncv: int) -> dict:
    r = lanczos_extremes(
        K,
        top=1,
        bottom=1,
        tol=tol,
        ncv=ncv,
        maxiter=60_000,
        criterion="eigenvalue",
        relative_to="value",
        warn=False,
    )
    return {
        "min": float(r.bottom[0]),
        "max": float(r.top[0]),
        "products": r.matvecs,
        "converged": r.converged,
        "restarts": r.restarts,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, nargs="+", default=[128, 512])
    ap.add_argument("--tols", type=float, nargs="+", default=[1e-3, 1e-6])
    ap.add_argument("--arpack-maxiter", type=int, default=100)
    ap.add_argument("--out", type=Path, default=Path("benchmarks/results/kernel_lanczos.json"))
    args = ap.parse_args()
    print(f"torch {torch.__version__}, {torch.get_num_threads()} thread(s), {platform.machine()}")
    rows = []
    for n in args.n:
        K = kernel(n)
        ev = torch.linalg.eigvalsh(K)
        lmin, lmax = float(ev[0]), float(ev[-1])
        N = K.shape[0]
        print(f"\n## n = {n}: N = {N}, κ = {lmax / lmin:.3g}", flush=True)
        for tol in args.tols:
            solvers = [("ARPACK SA + LA, ncv 40", None)]
            solvers += [(f"lossgeometry, ncv {c}", c) for c in (40, 160, default_ncv(N))]
            for label, ncv in solvers:
                t0 = time.perf_counter()
                r = arpack(K, tol, args.arpack_maxiter) if ncv is None else ours(K, tol, ncv)
                r.update(
                    n=n,
                    N=N,
                    kappa=lmax / lmin,
                    tol=tol,
                    solver=label,
                    seconds=time.perf_counter() - t0,
                    err_min=abs(r["min"] - lmin) / lmin,
                    err_max=abs(r["max"] - lmax) / lmax,
                )
                rows.append(r)
                print(
                    f"| {N} | {tol:.0e} | {label} | {r['products']} | "
                    f"{'yes' if r['converged'] else 'no'} | {r['err_min']:.1e} | "
                    f"{r['err_max']:.1e} | {r['seconds']:.1f} |",
                    flush=True,
                )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
