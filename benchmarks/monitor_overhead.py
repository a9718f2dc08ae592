"""Overhead of ``lg.Monitor`` in a user's training loop, with and without a time budget.

A plain PyTorch loop (an MLP on the bundled ``digits`` data, 1 797 × 64, 10 classes,
cross-entropy, SGD with mini-batches of 32) runs ``--steps`` steps four ways, alternating
``--repeats`` times: without a monitor; with ``lg.Monitor(every=E)`` (loss, gradient norm,
distance, PL ratio on all 1 797 samples); with ``lg.Monitor(every=E, measure=("hessian_max",
"kernel_min"), probe=128)``; and the same with ``budget=0.05``. The table reports median wall
time per step, the ratio to the plain loop, the monitor's own ``overhead()["fraction"]``
(seconds measuring over all seconds) and how many records were taken and skipped.

Usage: ``OMP_NUM_THREADS=1 .venv/bin/python benchmarks/monitor_overhead.py [--steps 2000]``
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
from torch import nn

import lossgeometry as lg


def run(X, Y, steps: int, monitor_kwargs: dict | None) -> tuple[float, dict | None]:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(64, 64), nn.Tanh(), nn.Linear(64, 10))
    opt = torch.optim.SGD(model.parameters(), lr=0.05)
    mon = None
    if monitor_kwargs is not None:
        mon = lg.Monitor(lg.Problem(model, X, Y, loss="cross_entropy"), **monitor_kwargs)
    g = torch.Generator().manual_seed(0)
    t0 = time.perf_counter()
    for step in range(steps):
        if mon is not None:
            mon.step(step)
        idx = torch.randint(0, X.shape[0], (32,), generator=g)
        opt.zero_grad()
        nn.functional.cross_entropy(model(X[idx]), Y[idx]).backward()
        opt.step()
    wall = time.perf_counter() - t0
    return wall / steps, (mon.overhead() if mon is not None else None)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, default=2000)
    ap.add_argument("--every", type=int, default=20)
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    from sklearn.datasets import load_digits

    d = load_digits()
    X = torch.tensor(d.data, dtype=torch.float32) / 16.0
    Y = torch.tensor(d.target, dtype=torch.long)
    base = {"every": args.every, "measure": ("hessian_max", "kernel_min"), "probe": 128}
    cases = {
        "plain loop": None,
        "monitor, loss/‖∇L‖/PL only": {"every": args.every},
        "monitor, + λ_max(H), λ_min(K)": base,
        "same, budget=0.05": {**base, "budget": 0.05},
    }
    times: dict[str, list[float]] = {k: [] for k in cases}
    over: dict[str, dict | None] = {}
    for _ in range(args.repeats):
        for name, kw in cases.items():
            t, o = run(X, Y, args.steps, kw)
            times[name].append(t)
            over[name] = o
    plain = statistics.median(times["plain loop"])
    print(f"steps={args.steps}, every={args.every}, torch threads={torch.get_num_threads()}")
    print("| loop | ms/step | × plain | measuring fraction | records | skipped |")
    print("|---|---|---|---|---|---|")
    for name in cases:
        t = statistics.median(times[name])
        o = over[name]
        frac = f"{100 * o['fraction']:.1f} %" if o else "–"
        rec = str(o["records"]) if o else "–"
        skip = str(o["skipped"]) if o else "–"
        print(f"| {name} | {1e3 * t:.2f} | {t / plain:.2f} | {frac} | {rec} | {skip} |")


if __name__ == "__main__":
    main()
