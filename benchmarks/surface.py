"""A 51 × 51 loss surface on the report's default model: lossgeometry vs loss-landscapes 3.0.6.

Setup (loss-landscapes needs only numpy and torch, both in the project's venv; it is installed
into its own folder, never into the project's dependencies)::

    pip install --no-deps --target benchmarks/envs/ll loss-landscapes==3.0.6

Run::

    python benchmarks/surface.py [--steps 51] [--repeats 3] [--threads 1] [--no-train]

Problem: the report's default configuration (``load_config()`` + ``build_problem``: the
tanh MLP 64→256→256→10 on 128 digits, p = 85,002, MSE ``½ Σ‖f − y‖²``), at the point its
training run reaches (``--no-train``: at the initialization).

Same directions for both: ``d₁, d₂ = lg.filter_normalized_direction(problem, w, seed=0/1)``.
loss-landscapes gets them through ``planar_interpolation(start, end_one, end_two, metric,
steps)`` with ``start = w − d₁ − d₂`` and ``end = start + 2 d``: its grid point ``(i, j)`` is
``start + i·dir₁ + k·dir₂`` with ``dir = 2d/steps``, where (read from its source) ``k = j + 1``
in even columns ``i`` and ``k = j`` in odd ones (it walks the columns up and down by in-place
additions and the two walks are one step apart). lossgeometry's ``loss_surface`` runs on the
grid ``x = −1 + 2i/steps``, ``y = −1 + 2k/steps`` for ``k = 1..steps`` (the even columns'
points); the odd columns' points are compared on their ``k ≥ 1`` rows (the ``k = 0`` row is
evaluated separately with ``evaluate_points``). Numbers are compared in float32 (the default;
loss-landscapes accumulates its steps in place, so its points carry float32 rounding) and in
float64 (both on a float64 copy), as relative differences.
"""

from __future__ import annotations

import argparse
import copy
import json
import platform
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch

import lossgeometry as lg
from lossgeometry.app.config import load_config
from lossgeometry.app.config.build import build_problem, run_training
from lossgeometry.surfaces import evaluate_points

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE / "envs" / "ll"))


def _model_at(problem: lg.Problem, w: torch.Tensor) -> torch.nn.Module:
    model = copy.deepcopy(problem.model)
    with torch.no_grad():
        for s, t in zip(
            problem.param_specs, torch.split(w, [s.numel for s in problem.param_specs]), strict=True
        ):
            dict(model.named_parameters())[s.name].copy_(t.view(s.shape))
    return model


def run_ll(problem: lg.Problem, w, d1, d2, steps: int) -> tuple[np.ndarray, float]:
    import loss_landscapes
    from loss_landscapes.metrics import Loss

    X, Y = problem.batch()
    start = w - d1 - d2
    models = [_model_at(problem, v) for v in (start, start + 2 * d1, start + 2 * d2)]
    metric = Loss(lambda out, y: 0.5 * (out - y).pow(2).sum(), X, Y)
    t0 = time.perf_counter()
    grid = loss_landscapes.planar_interpolation(*models, metric, steps=steps)
    return np.asarray(grid, dtype=float), time.perf_counter() - t0


def run_lg(problem: lg.Problem, w, d1, d2, steps: int) -> tuple[lg.LossSurface, float]:
    opts = lg.SurfaceOptions(
        points=steps,
        xrange=(-1.0, -1.0 + 2.0 * (steps - 1) / steps),
        yrange=(-1.0 + 2.0 / steps, 1.0),
    )
    t0 = time.perf_counter()
    s = lg.loss_surface(problem, w, directions=(d1, d2), options=opts, progress=False)
    return s, time.perf_counter() - t0


def compare(problem, w, d1, d2, steps, ll_grid, surf) -> float:
    """Largest relative difference of loss-landscapes' values from lossgeometry's."""
    ours = np.asarray(surf.loss)  # ours[k-1, i]: y = −1 + 2k/steps, x = −1 + 2i/steps
    errs = []
    for i in range(steps):
        if i % 2 == 0:
            ref, got = ours[:, i], ll_grid[i, :]
        else:
            ref, got = ours[: steps - 1, i], ll_grid[i, 1:]
            x = -1.0 + 2.0 * i / steps
            L0 = evaluate_points(problem, w + x * d1 - d2)[0]
            errs.append(abs(ll_grid[i, 0] - float(L0[0])) / abs(float(L0[0])))
        errs.extend(np.abs(got - ref) / np.abs(ref))
    return float(np.max(errs))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, default=51)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--no-train", action="store_true")
    ap.add_argument(
        "--widths",
        default="",
        help="Also NTK MLPs 64-W-W-10 of these widths (comma-separated) on the same data, "
        "at initialization",
    )
    ap.add_argument("--out", type=Path, default=HERE / "results" / "surface.json")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    import loss_landscapes  # noqa: F401  (fail early when it is not installed)

    cfg = load_config()
    problem, _ = build_problem(cfg)
    if not a.no_train:
        problem.set_params(run_training(problem, cfg, progress=False).w_final)
    w = problem.params()
    d1 = lg.filter_normalized_direction(problem, w, seed=0)
    d2 = lg.filter_normalized_direction(problem, w, seed=1)
    t_ll, t_lg = [], []
    for _ in range(a.repeats):
        ll_grid, t = run_ll(problem, w, d1, d2, a.steps)
        t_ll.append(t)
        surf, t = run_lg(problem, w, d1, d2, a.steps)
        t_lg.append(t)
    err32 = compare(problem, w, d1, d2, a.steps, ll_grid, surf)
    p64 = problem.to(dtype=torch.float64)
    w64, e1, e2 = (v.double() for v in (w, d1, d2))
    err64 = compare(
        p64,
        w64,
        e1,
        e2,
        a.steps,
        run_ll(p64, w64, e1, e2, a.steps)[0],
        run_lg(p64, w64, e1, e2, a.steps)[0],
    )
    res = {
        "problem": problem.summary(),
        "trained": not a.no_train,
        "grid": f"{a.steps}x{a.steps}",
        "evaluation": surf.evaluation,
        "loss_landscapes_s": statistics.median(t_ll),
        "lossgeometry_s": statistics.median(t_lg),
        "speedup": statistics.median(t_ll) / statistics.median(t_lg),
        "max_rel_diff_float32": err32,
        "max_rel_diff_float64": err64,
        "threads": a.threads,
        "machine": f"{platform.machine()} {platform.processor() or ''}".strip(),
        "python": platform.python_version(),
        "torch": torch.__version__,
    }
    res["widths"] = {}
    X, Y = problem.batch()
    for width in [int(v) for v in a.widths.split(",") if v]:
        model = lg.models.mlp(X.shape[1], width, 2, Y.shape[1], parameterization="ntk", seed=0)
        pw = lg.Problem(model, X, Y)
        ww = pw.params()
        f1 = lg.filter_normalized_direction(pw, ww, seed=0)
        f2 = lg.filter_normalized_direction(pw, ww, seed=1)
        tl = statistics.median(run_ll(pw, ww, f1, f2, a.steps)[1] for _ in range(a.repeats))
        tg = statistics.median(run_lg(pw, ww, f1, f2, a.steps)[1] for _ in range(a.repeats))
        res["widths"][width] = {
            "p": pw.p,
            "loss_landscapes_s": tl,
            "lossgeometry_s": tg,
            "speedup": tl / tg,
        }
    a.out.parent.mkdir(parents=True, exist_ok=True)
    a.out.write_text(json.dumps(res, indent=2) + "\n")
    print(json.dumps(res, indent=2))


if __name__ == "__main__":
    main()
