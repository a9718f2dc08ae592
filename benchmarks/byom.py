"""Bring your own model: time each measurement of docs/byom.md on its three models.

The models of the page, at the sizes given here (the page itself runs smaller ones):

* ``cnn``: two conv layers with ``nn.BatchNorm2d`` (16 and 32 channels, max pooling, global
  average pooling, linear head) on CIFAR-shaped inputs ``(n, 3, 32, 32)``, 10 classes;
* ``transformer``: a stock ``nn.TransformerEncoderLayer`` (``d_model=32``, 4 heads,
  feed-forward 64, dropout 0.1, batch first) over ``T = 16`` tokens of 8 features, mean
  pooled, 10 classes;
* ``resnet``: ``lg.models.resnet`` (width 16, one basic block per stage, three stages,
  BatchNorm) on ``(n, 3, 32, 32)``, 10 classes.

Data are seeded Gaussian inputs with random labels (the timings do not depend on the values),
cross-entropy with its default mean reduction. For each model, in eval mode (BatchNorm on its
running statistics, dropout off; the Monitor does the same inside a train-mode loop):

* ``kernel_spectrum``: ``lg.kernel_spectrum(problem)`` (dense: all ``n·k`` eigenvalues);
* ``hessian_spectrum``: ``lg.hessian_spectrum(problem, top=1, bottom=1, tol=1e-3)`` (Lanczos);
* ``hessian_trace``: ``lg.hessian_trace(problem, samples=30)`` (Hutch++);
* ``monitor loop``: ``--steps`` SGD steps (lr 0.01, batches of 32, train mode) with
  ``lg.Monitor(problem, every=5)``: the loop's wall time with the monitor, and without it.

Run (one torch thread; the numbers on docs/byom.md come from this command)::

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/byom.py --out benchmarks/results/byom.json

Prints a markdown table (seconds, the median of ``--repeats`` runs) and writes the JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time
from collections.abc import Callable
from pathlib import Path

import torch
from torch import nn

import lossgeometry as lg


class CNN(nn.Module):
    """conv(3→16) BN ReLU maxpool, conv(16→32) BN ReLU, global average pool, linear."""

    def __init__(self, classes: int = 10) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(3, 16, 3, padding=1),
            nn.BatchNorm2d(16),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Conv2d(16, 32, 3, padding=1),
            nn.BatchNorm2d(32),
            nn.ReLU(),
            nn.AdaptiveAvgPool2d(1),
            nn.Flatten(),
        )
        self.head = nn.Linear(32, classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))


class Encoder(nn.Module):
    """A linear embedding, one stock ``nn.TransformerEncoderLayer``, mean pooling, a head."""

    def __init__(self, features: int = 8, d_model: int = 32, classes: int = 10) -> None:
        super().__init__()
        self.embed = nn.Linear(features, d_model)
        self.layer = nn.TransformerEncoderLayer(
            d_model, nhead=4, dim_feedforward=64, dropout=0.1, batch_first=True
        )
        self.head = nn.Linear(d_model, classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.layer(self.embed(x)).mean(dim=1))


def models(n: int) -> dict[str, tuple[nn.Module, torch.Tensor, torch.Tensor]]:
    """The three models of the page with seeded data of ``n`` samples."""
    g = torch.Generator().manual_seed(0)
    images = torch.randn(n, 3, 32, 32, generator=g)
    tokens = torch.randn(n, 16, 8, generator=g)
    labels = torch.randint(0, 10, (n,), generator=g)
    torch.manual_seed(0)
    resnet = lg.models.resnet(3, 10, width=16, blocks=(1, 1, 1), input_size=32, norm="batchnorm")
    return {
        "cnn": (CNN(), images, labels),
        "transformer": (Encoder(), tokens, labels),
        "resnet": (resnet, images, labels),
    }


def monitored_loop(
    model: nn.Module, X: torch.Tensor, Y: torch.Tensor, steps: int, monitor: bool
) -> float:
    """Seconds of ``steps`` SGD steps in train mode, with or without ``lg.Monitor``."""
    problem = lg.Problem(model.eval(), X, Y, loss="cross_entropy")
    mon = lg.Monitor(problem, every=5) if monitor else None
    model.train()
    opt = torch.optim.SGD(model.parameters(), lr=0.01)
    gen = torch.Generator().manual_seed(0)
    t0 = time.perf_counter()
    for step in range(steps):
        if mon is not None:
            mon.step(step)
        idx = torch.randint(0, X.shape[0], (32,), generator=gen)
        opt.zero_grad()
        nn.functional.cross_entropy(model(X[idx]), Y[idx]).backward()
        opt.step()
    seconds = time.perf_counter() - t0
    model.eval()
    return seconds


def timed(fn: Callable[[], object], repeats: int) -> float:
    """Median wall time of ``repeats`` calls."""
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def measure(
    name: str, model: nn.Module, X: torch.Tensor, Y: torch.Tensor, steps: int, repeats: int
) -> dict[str, object]:
    """One row of the table: the values and the median seconds of each measurement."""
    state = {k: v.clone() for k, v in model.state_dict().items()}
    problem = lg.Problem(model.eval(), X, Y, loss="cross_entropy")
    row: dict[str, object] = {"model": name, "p": problem.p, "n": problem.n, "k": problem.k}
    ks = lg.kernel_spectrum(problem, progress=False)  # the first call also builds the plan
    row["lambda_min_K"], row["lambda_max_K"] = ks.lambda_min, ks.lambda_max
    row["kernel_spectrum"] = timed(lambda: lg.kernel_spectrum(problem, progress=False), 1)
    hs = lg.hessian_spectrum(problem, top=1, bottom=1, tol=1e-3, progress=False)
    row["lambda_max_H"], row["lambda_min_H"] = float(hs.top[0]), float(hs.bottom[0])
    row["hessian_spectrum_products"] = hs.matvecs
    row["hessian_spectrum"] = timed(
        lambda: lg.hessian_spectrum(problem, top=1, bottom=1, tol=1e-3, progress=False), repeats
    )
    tr = lg.hessian_trace(problem, samples=30, progress=False)
    row["trace"], row["trace_ci"] = tr.estimate, [tr.ci_low, tr.ci_high]
    row["hessian_trace"] = timed(
        lambda: lg.hessian_trace(problem, samples=30, progress=False), repeats
    )
    loops = {}
    for with_monitor in (False, True):
        model.load_state_dict(state)
        loops[with_monitor] = statistics.median(
            monitored_loop(model, X, Y, steps, with_monitor) for _ in range(repeats)
        )
    model.load_state_dict(state)
    row["loop"], row["loop_with_monitor"] = loops[False], loops[True]
    return row


HEADER = (
    "| model | p | n·k | kernel_spectrum | hessian_spectrum | hessian_trace | loop "
    "| loop + Monitor |\n|---|---|---|---|---|---|---|---|"
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=128, help="samples per model")
    parser.add_argument("--steps", type=int, default=50, help="steps of the monitored loop")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--only", nargs="*", default=None, help="models to run")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    rows = []
    for name, (model, X, Y) in models(args.n).items():
        if args.only and name not in args.only:
            continue
        rows.append(measure(name, model, X, Y, args.steps, args.repeats))
        print(json.dumps(rows[-1]), flush=True)
    meta = {
        "torch": torch.__version__,
        "python": platform.python_version(),
        "machine": platform.machine(),
        "cpus": os.cpu_count(),
        "threads": torch.get_num_threads(),
        "load_average": os.getloadavg(),
        "args": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
    }
    print()
    print(HEADER)
    for r in rows:
        print(
            f"| {r['model']} | {r['p']:,} | {r['n'] * r['k']:,} | {r['kernel_spectrum']:.2f} | "
            f"{r['hessian_spectrum']:.2f} ({r['hessian_spectrum_products']} products) | "
            f"{r['hessian_trace']:.2f} | {r['loop']:.2f} | {r['loop_with_monitor']:.2f} |"
        )
    if args.out is not None:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps({"meta": meta, "rows": rows}, indent=2))


if __name__ == "__main__":
    main()
