"""Top Hessian eigenvalue and Hessian trace: lossgeometry vs PyHessian vs curvlinops + eigsh.

Setup (a separate venv, never the project's dependencies)::

    python3 -m venv benchmarks/envs/curvature
    benchmarks/envs/curvature/bin/pip install "torch==2.13.0"
    benchmarks/envs/curvature/bin/pip install pyhessian curvlinops-for-pytorch
    # curvlinops pulls backpack-for-pytorch, which pulls torchvision, which replaces torch
    # with a newer CUDA build: put torch 2.13.0 back (curvlinops and PyHessian do not need
    # torchvision at import time)
    benchmarks/envs/curvature/bin/pip uninstall -y torch torchvision
    benchmarks/envs/curvature/bin/pip install "torch==2.13.0"
    benchmarks/envs/curvature/bin/pip install -e .

Run::

    benchmarks/envs/curvature/bin/python benchmarks/curvature.py [--repeats 3] [--threads 1]

Problems: an MLP 64→512→512→10 (tanh, p = 301,066) and a small CNN (two tanh conv layers
with 8 and 16 channels, average pooling, linear head) on n = 1024 digits (8×8 images),
cross-entropy (mean), each at the point reached by 100 steps of full-batch gradient descent.

Top eigenvalue, each method at the same requested tolerance ``tol`` (1e-3, PyHessian's
default, then 1e-4 and 1e-6), each run from ``--seeds`` different random start vectors:

* ``lossgeometry``: ``lg.hessian_spectrum(top=1, bottom=0, tol=tol)``: Lanczos, stopping
  when the eigenvalue's error bound ``min(‖r‖, ‖r‖²/δ̂)`` is ``≤ tol·λ`` (the default
  ``criterion="eigenvalue"``), cached reverse-over-reverse products over the full batch.
* ``lossgeometry (residual)``: the same with ``criterion="residual"`` (``‖r‖ ≤ tol·λ``).
* ``lossgeometry (chunks of 128)``: the Problem split in chunks of 128 samples (the
  graphs of all chunks are kept, measured to fit the memory budget).
* ``PyHessian (batch)``: ``hessian(model, loss, data=(X, y)).eigenvalues(tol=tol)``: power
  iteration until the estimate changes by less than ``tol`` (relative); the full data as one
  batch, its gradient graph reused (PyHessian's fastest mode).
* ``PyHessian (loader)``: the same with a ``DataLoader`` of batches of 128 (PyHessian's mode
  for data sets that are more than one batch: each product recomputes every batch).
* ``curvlinops + eigsh``: ``HessianLinearOperator(...).to_scipy()`` with
  ``eigsh(k=1, which="LA", tol=tol)`` (the full data as one batch).

Each reports the median wall time over the seeds, the median and the largest number of
Hessian-vector products, and the largest relative error against a float64 reference
``λ_max`` (lossgeometry, float64 products, residual ``≤ 1e-10·λ``). Trace: Hutchinson with
100 Rademacher probes (lossgeometry, curvlinops), Hutch++ with 99 products (lossgeometry,
curvlinops) and PyHessian's ``trace(maxIter=100, tol=1e-3)`` (Hutchinson with its own
early stop), each with ``--repeats`` seeds: median time, largest relative error against the
exact trace (the dense diagonal, CNN) or a 999-product Hutch++ run (MLP; its interval is
printed). ``--no-trace`` / ``--no-top`` run one half.
"""

from __future__ import annotations

import argparse
import importlib
import json
import platform
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

import lossgeometry as lg  # noqa: E402

TOLS = (1e-3, 1e-4, 1e-6)


# ---------------------------------------------------------------------------- problems
def digits(n: int = 1024) -> tuple[torch.Tensor, torch.Tensor]:
    ds = lg.data.load("digits", n=n, seed=0)
    return ds.X.float(), ds.Y.long()


def mlp() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Linear(64, 512), nn.Tanh(), nn.Linear(512, 512), nn.Tanh(), nn.Linear(512, 10)
    )


def cnn() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Unflatten(1, (1, 8, 8)),
        nn.Conv2d(1, 8, 3, padding=1),
        nn.Tanh(),
        nn.AvgPool2d(2),
        nn.Conv2d(8, 16, 3, padding=1),
        nn.Tanh(),
        nn.AvgPool2d(2),
        nn.Flatten(),
        nn.Linear(16 * 2 * 2, 10),
    )


def pretrain(model: nn.Module, X: torch.Tensor, Y: torch.Tensor, steps: int = 100) -> None:
    opt = torch.optim.SGD(model.parameters(), lr=0.5)
    for _ in range(steps):
        opt.zero_grad()
        nn.functional.cross_entropy(model(X), Y).backward()
        opt.step()


# ---------------------------------------------------------------------------- timing
def timed(fn, repeats: int) -> tuple[float, object]:
    times, out = [], None
    for _ in range(repeats):
        t0 = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times), out


# ---------------------------------------------------------------------------- methods
def ours_top(P, tol, seed, criterion="eigenvalue"):
    s = lg.hessian_spectrum(
        P, top=1, bottom=0, tol=tol, solver="lanczos", seed=seed, criterion=criterion
    )
    return float(s.top[0]), s.matvecs


def pyhessian_top(model, X, Y, loader: bool, tol: float, seed: int, max_iter: int = 1000):
    ph = importlib.import_module("pyhessian.hessian")  # the module, not the class

    torch.manual_seed(seed)  # PyHessian draws its start vector from torch's global generator

    count = {"n": 0}
    if loader:
        ds = torch.utils.data.TensorDataset(X, Y)
        dl = torch.utils.data.DataLoader(ds, batch_size=128, shuffle=False)
        H = ph.hessian(model, nn.CrossEntropyLoss(), dataloader=dl, cuda=False)
        orig = H.dataloader_hv_product

        def counted(v):
            count["n"] += 1
            return orig(v)

        H.dataloader_hv_product = counted
    else:
        H = ph.hessian(model, nn.CrossEntropyLoss(), data=(X, Y), cuda=False)
    orig_hvp = ph.hessian_vector_product

    def hvp(*a, **k):
        count["n"] += 1
        return orig_hvp(*a, **k)

    ph.hessian_vector_product = hvp
    try:
        vals, _ = H.eigenvalues(maxIter=max_iter, tol=tol, top_n=1)
    finally:
        ph.hessian_vector_product = orig_hvp
    return float(vals[0]), count["n"]


def curvlinops_operator(model, X, Y):
    from curvlinops import HessianLinearOperator

    params = [p for p in model.parameters() if p.requires_grad]
    return HessianLinearOperator(
        model, nn.CrossEntropyLoss(), params, [(X, Y)], check_deterministic=False
    )


def curvlinops_top(model, X, Y, tol, seed):
    from scipy.sparse.linalg import LinearOperator, eigsh

    H = curvlinops_operator(model, X, Y).to_scipy()
    count = {"n": 0}

    def mv(v):
        count["n"] += 1
        return H @ v

    op = LinearOperator(H.shape, matvec=mv, dtype=H.dtype)
    v0 = np.random.default_rng(seed).standard_normal(H.shape[0]).astype(H.dtype)
    val = eigsh(op, k=1, which="LA", tol=tol, v0=v0, return_eigenvectors=False)[0]
    return float(val), count["n"]


def pyhessian_trace(model, X, Y, seed):
    ph = importlib.import_module("pyhessian.hessian")  # the module, not the class

    torch.manual_seed(seed)
    H = ph.hessian(model, nn.CrossEntropyLoss(), data=(X, Y), cuda=False)
    vals = H.trace(maxIter=100, tol=1e-3)
    return float(np.mean(vals)), len(vals)


def curvlinops_trace(model, X, Y, method: str, seed: int):
    from curvlinops.trace.hutchinson import hutchinson_trace
    from curvlinops.trace.meyer2020hutch import hutchpp_trace

    H = curvlinops_operator(model, X, Y)
    torch.manual_seed(seed)
    if method == "hutchinson":
        return float(hutchinson_trace(H, 100)), 100
    return float(hutchpp_trace(H, 99)), 99


# ---------------------------------------------------------------------------- main
def run(name: str, make, repeats: int, seeds: int, tols, trace: bool = True) -> dict:
    X, Y = digits()
    model = make()
    pretrain(model, X, Y)
    model.eval()
    P = lg.Problem(model, X, Y, loss="cross_entropy")
    P128 = lg.Problem(model, X, Y, loss="cross_entropy", chunk_size=128)
    ref = lg.hessian_spectrum(
        P,
        top=1,
        bottom=0,
        tol=1e-10,
        solver="lanczos",
        seed=7,
        dtype=torch.float64,
        criterion="residual",
    )
    lam = float(ref.top[0])
    print(f"\n## {name}: p = {P.p:,}, n = {P.n}, reference λ_max = {lam:.8g}", flush=True)
    rows = []
    for tol in tols:
        top_methods = {
            "lossgeometry": lambda s, tol=tol: ours_top(P, tol, s),
            "lossgeometry (residual)": lambda s, tol=tol: ours_top(P, tol, s, "residual"),
            "lossgeometry (chunks of 128)": lambda s, tol=tol: ours_top(P128, tol, s),
            "PyHessian (batch)": lambda s, tol=tol: pyhessian_top(model, X, Y, False, tol, s),
            "PyHessian (loader, 128)": lambda s, tol=tol: pyhessian_top(model, X, Y, True, tol, s),
            "curvlinops + eigsh": lambda s, tol=tol: curvlinops_top(model, X, Y, tol, s),
        }
        for label, fn in top_methods.items():
            try:
                fn(seeds)  # warm-up (allocator, lazy imports), not timed
                times, mvs, errs = [], [], []
                for seed in range(seeds):
                    t0 = time.perf_counter()
                    val, mv = fn(seed)
                    times.append(time.perf_counter() - t0)
                    mvs.append(mv)
                    errs.append(abs(val - lam) / abs(lam))
                rows.append(
                    {
                        "task": "λ_max",
                        "tol": tol,
                        "method": label,
                        "time_s": statistics.median(times),
                        "times_s": times,
                        "matvecs": statistics.median(mvs),
                        "matvecs_all": mvs,
                        "rel_error": max(errs),
                        "rel_errors": errs,
                    }
                )
            except Exception as e:  # report, do not hide
                rows.append(
                    {
                        "task": "λ_max",
                        "tol": tol,
                        "method": label,
                        "error": f"{type(e).__name__}: {e}",
                    }
                )
            print(rows[-1], flush=True)
    if not trace:
        return {"problem": name, "p": P.p, "n": P.n, "lambda_max_ref": lam, "rows": rows}
    # reference: the exact trace (sum of the dense diagonal) when p is small, else a long
    # Hutch++ run whose interval is reported
    if P.p <= 5000:
        ref_tr = lg.hessian_trace(P, estimator="exact")
    else:
        ref_tr = lg.hessian_trace(P, estimator="hutch++", samples=999, seed=123)
    trace_methods = {
        "lossgeometry Hutchinson (100)": lambda s: _ours_trace(P, "hutchinson", 100, s),
        "lossgeometry Hutch++ (99)": lambda s: _ours_trace(P, "hutch++", 99, s),
        "PyHessian trace (tol 1e-3)": lambda s: pyhessian_trace(model, X, Y, s),
        "curvlinops Hutchinson (100)": lambda s: curvlinops_trace(model, X, Y, "hutchinson", s),
        "curvlinops Hutch++ (99)": lambda s: curvlinops_trace(model, X, Y, "hutch++", s),
    }
    for label, fn in trace_methods.items():
        try:
            times, mvs, errs = [], [], []
            for seed in range(repeats):
                t0 = time.perf_counter()
                val, mv = fn(seed)
                times.append(time.perf_counter() - t0)
                mvs.append(mv)
                errs.append(abs(val - ref_tr.estimate) / abs(ref_tr.estimate))
            rows.append(
                {
                    "task": "trace",
                    "tol": None,
                    "method": label,
                    "time_s": statistics.median(times),
                    "matvecs": statistics.median(mvs),
                    "matvecs_all": mvs,
                    "rel_error": max(errs),
                    "rel_errors": errs,
                }
            )
        except Exception as e:
            err = f"{type(e).__name__}: {e}"
            rows.append({"task": "trace", "tol": None, "method": label, "error": err})
        print(rows[-1], flush=True)
    return {
        "problem": name,
        "p": P.p,
        "n": P.n,
        "lambda_max_ref": lam,
        "trace_ref": ref_tr.estimate,
        "trace_ref_ci": [ref_tr.ci_low, ref_tr.ci_high],
        "rows": rows,
    }


def _ours_trace(P, estimator, samples, seed):
    t = lg.hessian_trace(P, estimator=estimator, samples=samples, seed=seed)
    return t.estimate, t.matvecs


def markdown(results: list[dict]) -> str:
    out = []
    for r in results:
        head = f"\n**{r['problem']}** (p = {r['p']:,}, n = {r['n']}; reference λ_max = "
        head += f"{r['lambda_max_ref']:.7g}"
        if "trace_ref" in r:
            lo, hi = r["trace_ref_ci"]
            head += f", reference trace = {r['trace_ref']:.6g}"
            head += " (exact)" if lo == hi else f" [{lo:.5g}, {hi:.5g}] (Hutch++, 999 products)"
        out.append(head + ")\n")
        out.append(
            "| task | tol | method | wall (s) | HVPs (median, max) | max rel. error "
            "| PyHessian (batch) time / this |"
        )
        out.append("|---|---:|---|---:|---:|---:|---:|")
        base = {
            row["tol"]: row["time_s"]
            for row in r["rows"]
            if row["method"] == "PyHessian (batch)" and "error" not in row
        }
        for row in r["rows"]:
            tol = "" if row["tol"] is None else f"{row['tol']:.0e}"
            if "error" in row:
                out.append(
                    f"| {row['task']} | {tol} | {row['method']} | failed: {row['error']} |||"
                )
                continue
            mv = row.get("matvecs_all")
            mvtxt = f"{row['matvecs']:g}, {max(mv)}" if mv else f"{row['matvecs']}"
            ratio = ""
            if row["task"] == "λ_max" and row["tol"] in base:
                ratio = f"{base[row['tol']] / row['time_s']:.2f}×"
            out.append(
                f"| {row['task']} | {tol} | {row['method']} | {row['time_s']:.3f} | {mvtxt} "
                f"| {row['rel_error']:.1e} | {ratio} |"
            )
    return "\n".join(out)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=5, help="seeds of each trace estimator")
    ap.add_argument("--seeds", type=int, default=5, help="start vectors per λ_max method")
    ap.add_argument("--no-trace", action="store_true", help="only the top eigenvalue")
    ap.add_argument("--no-top", action="store_true", help="only the trace")
    ap.add_argument("--problems", default="mlp,cnn", help="comma-separated: mlp, cnn")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--out", type=Path, default=Path("benchmarks/results/curvature.json"))
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}, {args.threads} thread(s), {platform.processor() or 'cpu'}")
    makers = {"mlp": ("MLP 64-512-512-10", mlp), "cnn": ("small CNN", cnn)}
    results = [
        run(*makers[k], args.repeats, args.seeds, () if args.no_top else TOLS, not args.no_trace)
        for k in args.problems.split(",")
    ]
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2))
    print(markdown(results))


if __name__ == "__main__":
    main()
