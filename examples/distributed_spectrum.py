"""Hessian and tangent-kernel spectra of an MLP on digits, on one process or N torchrun ranks.

    python examples/distributed_spectrum.py                          # one process
    torchrun --nproc-per-node 2 examples/distributed_spectrum.py     # two ranks: same numbers

Every rank builds the same Problem, keeps its part of the samples (`lg.distributed.shard`),
and runs the same measurements; the products are summed over the ranks, so every rank ends
with the same numbers, which rank 0 prints (and writes with `--json PATH`).
"""

from __future__ import annotations

import argparse
import json
import os

import torch

import lossgeometry as lg


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", help="write the numbers here (rank 0)")
    parser.add_argument("--samples", type=int, default=256, help="samples (all ranks together)")
    args = parser.parse_args()
    n = 48 if os.environ.get("LOSSGEOMETRY_SMALL") == "1" else args.samples

    lg.distributed.init()  # under torchrun: join the group (gloo on CPU); alone: no-op
    X, Y = lg.data.load("digits", n=n, one_hot=True, dtype=torch.float64)
    model = lg.models.mlp(64, 64, 1, 10, seed=0).double()
    problem = lg.distributed.shard(lg.Problem(model, X, Y))

    spec = lg.hessian_spectrum(problem, top=2, bottom=1, solver="lanczos", seed=0)
    trace = lg.hessian_trace(problem, estimator="hutch++", samples=30, seed=0)
    kernel = lg.kernel_spectrum(problem, num_eigenvalues=2)  # K = DF DFᵀ, (10 n × 10 n)
    numbers = {
        "world_size": problem.world_size,
        "n": problem.n,
        "loss": float(problem.loss()),
        "grad_norm": float(problem.grad().norm()),
        "hessian_top": [float(v) for v in spec.top],
        "hessian_bottom": [float(v) for v in spec.bottom],
        "hessian_trace": float(trace.estimate),
        "kernel_lambda_min": float(kernel.lambda_min),
        "kernel_lambda_max": float(kernel.lambda_max),
    }
    if lg.distributed.is_main():
        print(json.dumps(numbers, indent=1))
        if args.json:
            with open(args.json, "w", encoding="utf-8") as f:
                json.dump(numbers, f)
    lg.distributed.shutdown()


if __name__ == "__main__":
    main()
