"""Cost of ``record_conditions`` relative to plain training of the same run (target ≤ 2.5×).

``record_conditions`` trains once to get ``x^K`` and replays the run, recording the α-β
quantities from the optimizer's own gradients; ``f_B(x^K)`` comes from one pass of
per-sample losses at the end. The baseline is ``lg.train`` on the same run with no
intermediate full-data records (``record_every = steps + 1``). Each case is timed
``--repeats`` times, alternating baseline and recording; the table reports medians of wall
and process-CPU time and their ratios.

Usage: ``OMP_NUM_THREADS=1 .venv/bin/python benchmarks/alphabeta.py [--repeats 5] [--quick]``
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

import lossgeometry as lg
from lossgeometry.app.experiments.alphabeta_common import cross_entropy_problem, load_data


def timed(fn):
    w, c = time.perf_counter(), time.process_time()
    fn()
    return time.perf_counter() - w, time.process_time() - c


def measure(pb, opt, lr, b, steps, repeats):
    """Alternate baseline, recording and recording without full records; return the times."""

    def train():
        lg.train(pb, opt, steps, lr=lr, batch_size=b, record_every=steps + 1)

    def record():
        lg.record_conditions(pb, opt, steps, b, lr=lr)

    def record_core():
        lg.record_conditions(pb, opt, steps, b, lr=lr, full_loss_every=0)

    lg.train(pb, opt, 3, lr=lr, batch_size=b, record_every=4)  # warm-up (torch.func)
    base, rec, core = [], [], []
    for _ in range(repeats):
        base.append(timed(train))
        rec.append(timed(record))
        core.append(timed(record_core))
    return base, rec, core


def cases(quick: bool):
    X, Y = load_data({"data": "digits", "n": 512})
    Xi, Yi = load_data({"data": "digits", "n": 512}, images=True)
    steps = 60 if quick else 200

    def mlp(width):
        m = lg.models.mlp(64, 128, 2, 10, activation="relu", bottleneck=width, seed=0)
        return cross_entropy_problem(m, X, Y)

    def cnn(ch):
        m = lg.models.cnn(1, (8, ch), 3, 10, input_size=8, seed=0)
        return cross_entropy_problem(m, Xi, Yi)

    def report_default():
        ds = lg.data.load("digits", n=128, one_hot=True)
        m = lg.models.mlp(64, 256, 2, 10, parameterization="ntk", seed=0)
        return lg.Problem(m, ds.X, ds.Y, loss="mse", reduction="sum")

    yield "MLP 64-128-128-10, SGD b=64", mlp(128), "sgd", 0.1, 64, steps
    yield "MLP 64-128-1024-10, SGD b=64", mlp(1024), "sgd", 0.1, 64, steps
    yield "MLP 64-128-128-10, Adam b=32", mlp(128), "adam", 1e-3, 32, steps
    yield "CNN 8-32 ch on 8x8 digits, SGD b=64", cnn(32), "sgd", 0.1, 64, steps
    yield "report default (NTK MLP 256, p=85k), GD", report_default(), "gd", 0.003, None, steps


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--quick", action="store_true")
    args = ap.parse_args()
    print(f"torch {torch.__version__}, threads {torch.get_num_threads()}")
    print(
        "| case | p | steps | train wall (s) | record wall (s) | ratio wall | "
        "ratio CPU | ratio CPU, no full records |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for name, pb, opt, lr, b, steps in cases(args.quick):
        base, rec, core = measure(pb, opt, lr, b, steps, args.repeats)
        bw = statistics.median(t[0] for t in base)
        bc = statistics.median(t[1] for t in base)
        rw = statistics.median(t[0] for t in rec)
        rc = statistics.median(t[1] for t in rec)
        cc = statistics.median(t[1] for t in core)
        print(
            f"| {name} | {pb.p:,} | {steps} | {bw:.2f} | {rw:.2f} | {rw / bw:.2f} | "
            f"{rc / bc:.2f} | {cc / bc:.2f} |",
            flush=True,
        )


if __name__ == "__main__":
    main()
