"""Benchmark: the FIRST structured-kernel call on a fresh Problem vs the PyTorch tutorial.

Run by hand (results go into docs/benchmarks.md)::

    .venv/bin/python benchmarks/kernel_first_call.py                 # (n, m) = (512, 512)
    .venv/bin/python benchmarks/kernel_first_call.py --n 128 --width 128 --repeats 3

Each timing runs in its own fresh Python process (single thread, ``torch.set_num_threads(1)``)
on a new model object (the benchmark's MLP ``64-m-m-10``, NTK parameterization, digits data,
float32), and measures the wall time of the first call only: for ``lg first`` that is
``lg.tangent_kernel(problem, w)`` including the layer plan, its verification and every
one-time start-up cost of the process (the tutorial's ``vmap(jacrev)`` also imports
``torch._dynamo`` on its first use); ``lg second`` is a second call on the same
problem (the plan cached), ``lg plan`` the plan alone (``build_plan``) in that process, and
``lg plan warm`` a plan for a second, differently-seeded model in the same process after a
first one (the plan cache serves it). ``tutorial first`` is the tutorial's
``empirical_ntk_jacobian_contraction`` (see ``benchmarks/kernel.py``). Medians of
``--repeats`` processes (``--tutorial-repeats`` for the tutorial, which is slow).
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent

CHILD = r"""
import json, sys, time
import torch
torch.set_num_threads(1)
sys.path.insert(0, {root!r})
import lossgeometry as lg
from lossgeometry.kernel.structured import build_plan
from kernel import empirical_ntk_jacobian_contraction, make_fnet_single, mlp_case
n, m, what = {n}, {m}, {what!r}
model, X, Y = mlp_case(n, m, 2)
out = {{}}
if what == "lg":
    pb = lg.Problem(model, X, Y)
    w = pb.params()
    t = time.perf_counter()
    K = lg.tangent_kernel(pb, w, method="structured")
    out["lg first"] = time.perf_counter() - t
    t = time.perf_counter()
    lg.tangent_kernel(pb, w, method="structured")
    out["lg second"] = time.perf_counter() - t
    model2, X2, Y2 = mlp_case(n, m, 2, seed=1)
    t = time.perf_counter()
    build_plan(lg.Problem(model2, X2, Y2))
    out["lg plan warm"] = time.perf_counter() - t
elif what == "plan":
    pb = lg.Problem(model, X, Y)
    t = time.perf_counter()
    build_plan(pb)
    out["lg plan"] = time.perf_counter() - t
else:
    params = {{k: v.detach() for k, v in model.named_parameters()}}
    t = time.perf_counter()
    empirical_ntk_jacobian_contraction(make_fnet_single(model), params, X, X)
    out["tutorial first"] = time.perf_counter() - t
print(json.dumps(out))
"""


def child(n: int, m: int, what: str) -> dict[str, float]:
    """One fresh process; returns its timings."""
    code = CHILD.format(root=str(ROOT), n=n, m=m, what=what)
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return json.loads(res.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=512)
    ap.add_argument("--width", type=int, default=512)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--tutorial-repeats", type=int, default=3)
    args = ap.parse_args()
    runs: dict[str, list[float]] = {}
    for what, reps in (
        ("lg", args.repeats),
        ("plan", args.repeats),
        ("tutorial", args.tutorial_repeats),
    ):
        for _ in range(reps):
            for k, v in child(args.n, args.width, what).items():
                runs.setdefault(k, []).append(v)
                print(f"{k}: {v:.3f} s", flush=True)
    med = {k: statistics.median(v) for k, v in runs.items()}
    print(f"\n(n, m) = ({args.n}, {args.width}), single thread, medians:")
    for k, v in med.items():
        print(f"  {k:15s} {v:9.3f} s   {[round(t, 3) for t in runs[k]]}")
    ratio = med["tutorial first"] / med["lg first"]
    print(f"  tutorial first / lg first = {ratio:.1f}x")


if __name__ == "__main__":
    main()
