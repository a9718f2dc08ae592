"""PL* experiments: slope fits, resume, and tiny end-to-end runs of the three sweeps."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from lossgeometry.app.experiments import run_experiment
from lossgeometry.app.experiments import width_sweep as ws
from lossgeometry.app.experiments.kernel_change import KernelChangeConfig
from lossgeometry.app.experiments.options import experiment_options
from lossgeometry.app.experiments.overparameterization import width_for_ratio
from lossgeometry.app.experiments.plstar_common import cached_point, loglog_slope
from lossgeometry.options import OptionsError


def test_slope_fit_on_exact_power_law():
    m = np.array([16, 32, 64, 128, 256, 512], dtype=float)
    slope, intercept, se = loglog_slope(m, 3.0 * m**-0.5)
    assert slope == pytest.approx(-0.5, abs=1e-12)
    assert intercept == pytest.approx(math.log(3.0), abs=1e-12)
    assert se == pytest.approx(0.0, abs=1e-12)


def test_slope_fit_on_noisy_power_law_is_within_its_error():
    rng = np.random.default_rng(0)
    m = np.geomspace(16, 4096, 9)
    hits, reps = 0, 2000
    for _ in range(reps):
        y = 2.0 * m**-0.5 * np.exp(0.1 * rng.standard_normal(m.size))
        slope, _, se = loglog_slope(m, y)
        hits += abs(slope + 0.5) <= 2.365 * se  # Student t, 7 degrees of freedom, 95%
    assert 0.93 <= hits / reps <= 0.97


def test_slope_fit_errors():
    with pytest.raises(ValueError, match="two points"):
        loglog_slope([1.0], [1.0])
    with pytest.raises(ValueError, match="positive"):
        loglog_slope([1.0, 2.0], [1.0, 0.0])
    with pytest.raises(ValueError, match="equal"):
        loglog_slope([2.0, 2.0], [1.0, 3.0])
    assert math.isinf(loglog_slope([1.0, 2.0], [1.0, 0.5])[2])


def test_cached_point_resumes_and_recomputes_on_new_settings(tmp_path):
    calls = []

    def compute():
        calls.append(1)
        return {"value": len(calls)}

    assert cached_point(tmp_path, "a", {"k": 1}, compute) == {"value": 1}
    assert cached_point(tmp_path, "a", {"k": 1}, compute) == {"value": 1}
    assert len(calls) == 1
    assert cached_point(tmp_path, "a", {"k": 2}, compute) == {"value": 2}
    assert json.loads((tmp_path / "points" / "a.json").read_text())["key"] == {"k": 2}


def test_full_table_overrides_and_tables_merge_over_defaults():
    cfg = {
        "experiment": "kernel_change",
        "widths": [1, 2],
        "data": {"n": 4, "d": 3},
        "full": {"widths": [5, 6], "data": {"n": 9}},
    }
    small = experiment_options(KernelChangeConfig, cfg, False)
    assert small.widths == (1, 2) and (small.data.n, small.data.d) == (4, 3)
    big = experiment_options(KernelChangeConfig, cfg, True)
    assert big.widths == (5, 6) and (big.data.n, big.data.d) == (9, 3)
    assert big.data.name == "synthetic-regression"  # the table's default is kept
    assert big.kernel.spectral_norm is True  # the experiment's [kernel] default
    with pytest.raises(
        OptionsError, match=r"\[kernel_change\] widht: unknown option; did you mean 'widths'"
    ):
        experiment_options(KernelChangeConfig, {"experiment": "kernel_change", "widht": [1]}, False)
    with pytest.raises(OptionsError, match="at least two widths"):
        experiment_options(KernelChangeConfig, {"widths": [8]}, False)


def test_width_for_ratio_hits_the_target():
    from lossgeometry.models import mlp_num_params

    for r in (0.25, 1.0, 8.0):
        w = width_for_ratio(r, 8, 1, 1, 64)
        p = mlp_num_params(8, w, 1, 1)
        assert abs(math.log(p / (r * 64))) <= abs(
            math.log(mlp_num_params(8, w + 1, 1, 1) / (r * 64))
        )


def _toml(path, text):
    path.write_text(text, encoding="utf-8")
    return path


def test_width_sweep_end_to_end_and_resume(tmp_path, monkeypatch):
    cfg = _toml(
        tmp_path / "ws.toml",
        """
experiment = "width_sweep"
widths = [8, 16]
seeds = [0]
variants = ["linear", "bottleneck"]
bottleneck = 2
[data]
name = "synthetic-regression"
n = 4
d = 3
k = 1
[hessian]
restarts = 1
maxiter = 5
""",
    )
    out = tmp_path / "out"
    summary = run_experiment(cfg, out, progress=False)
    assert set(summary) >= {"linear", "bottleneck", "crossing_width"}
    res = json.loads((out / "results.json").read_text())
    assert len(res["points"]) == 4
    for f in ("hessian_vs_width.png", "kernel_vs_width.png", "radius_vs_width.png"):
        assert (out / f).stat().st_size > 1000
    row = res["summary"]["variants"]["linear"]["rows"][0]
    assert row["certified_radius"] == pytest.approx(
        math.sqrt(row["lambda_min"]) / (3 * row["hessian_norm"])
    )
    for q in res["points"]:  # the constants of docs/theory.md §4 from the measured ones
        lam0, lf, rn, beta = (
            q["lambda_min"],
            math.sqrt(q["lambda_max"]),
            q["residual_norm"],
            q["hessian_norm"],
        )
        assert lam0 > 0  # p ≫ nk = 4
        assert q["radius_needed"] == pytest.approx(2 * lf * rn / (4 * lam0 / 9), rel=1e-12)
        assert q["analytic_margin"] == pytest.approx(
            2 * lam0**1.5 / (27 * beta * lf * rn), rel=1e-12
        )
    for v in ("linear", "bottleneck"):
        s = res["summary"]["variants"][v]
        fit = loglog_slope([8, 16], [r["hessian_norm"] for r in s["rows"]])
        assert s["fits"]["hessian_norm"]["slope"] == pytest.approx(fit[0], rel=1e-12)
    # Oracle: λ_min and λ_max of K(w0) = J Jᵀ from a dense autograd Jacobian of the model the
    # docstring describes (NTK MLP of depth 3, tanh, width 8, seed 0; float64).
    import torch

    from lossgeometry import Problem, data, models
    from tests.oracles.dense import dense_jacobian

    ds = data.load("synthetic-regression", n=4, d=3, k=1, seed=0, dtype=torch.float64)
    model = models.mlp(3, 8, 3, 1, activation="tanh", parameterization="ntk", seed=0).double()
    problem = Problem(model, ds.X, ds.Y)
    J = dense_jacobian(problem, problem.params())
    ev = torch.linalg.eigvalsh(J @ J.T)
    p0 = next(q for q in res["points"] if (q["variant"], q["width"]) == ("linear", 8))
    assert p0["p"] == problem.p
    assert p0["lambda_min"] == pytest.approx(float(ev[0]), rel=1e-8)
    assert p0["lambda_max"] == pytest.approx(float(ev[-1]), rel=1e-10)
    assert p0["residual_norm"] == pytest.approx(float((problem.F(problem.params()) - ds.Y).norm()))
    # a second run reuses every point
    monkeypatch.setattr(ws, "measure_width_point", lambda *a, **k: pytest.fail("recomputed"))
    again = run_experiment(cfg, out, progress=False)
    assert again == summary


def test_overparameterization_end_to_end(tmp_path):
    cfg = _toml(
        tmp_path / "op.toml",
        """
experiment = "overparameterization"
ratios = [0.5, 6]
steps = 60
record_every = 5
[data]
name = "synthetic-regression"
n = 8
d = 3
k = 1
noise = 0.5
""",
    )
    out = tmp_path / "out"
    summary = run_experiment(cfg, out, progress=False)
    rows = summary["rows"]
    assert rows[0]["ratio"] < 1 < rows[1]["ratio"]
    assert rows[0]["lambda_min_w0"] == 0.0 and rows[0]["rank_w0"] == rows[0]["p"]
    assert rows[1]["lambda_min_w0"] > 0 and rows[1]["rank_w0"] == 8
    assert rows[1]["final_over_initial"] < rows[0]["final_over_initial"]
    res = json.loads((out / "results.json").read_text())
    for p in res["points"]:
        # ‖∇L‖²/L = c² rᵀKr / (c ½‖r‖²) ≥ 2cλ_min(K) at the end point (Rayleigh)
        assert p["final_pl_ratio"] >= p["two_c_lambda_min_wT"] * (1 - 1e-9)
        assert p["rank_w0"] == min(p["p"], 8) and p["ratio"] == p["p"] / 8
    assert res["points"][1]["two_c_lambda_min_wT"] > 0
    for f in ("kernel_vs_ratio.png", "loss_curves.png", "pl_ratio_vs_loss.png"):
        assert (out / f).is_file()


def test_kernel_change_end_to_end(tmp_path):
    cfg = _toml(
        tmp_path / "kc.toml",
        """
experiment = "kernel_change"
widths = [8, 32]
variants = ["linear"]
max_steps = 40
target = 0.5
[data]
name = "synthetic-regression"
n = 6
d = 3
k = 1
""",
    )
    out = tmp_path / "out"
    summary = run_experiment(cfg, out, progress=False)
    assert "linear" in summary and math.isfinite(summary["linear"]["slope"])
    res = json.loads((out / "results.json").read_text())
    p = res["points"][0]
    assert (p["variant"], p["width"], p["seed"]) == ("linear", 8, 0)
    assert p["rel_change_fro"] > 0 and p["distance"] > 0
    assert (out / "kernel_change_vs_width.png").is_file()
    for q in res["points"]:  # GD stops at L ≤ target·L(w0), or after max_steps
        assert q["final_loss"] <= 0.5 * q["initial_loss"] or q["steps"] == 40, q
    rows = res["summary"]["linear"]["rows"]
    fit = loglog_slope([8, 32], [r["rel_change_fro"] for r in rows])
    assert res["summary"]["linear"]["fit"]["slope"] == pytest.approx(fit[0], rel=1e-12)
    # Oracle: the same GD run again, and the kernel K = J Jᵀ from dense autograd Jacobians
    # (not the structured kernel code) at w0 and w_T.
    import torch

    from lossgeometry import Problem, models, train
    from lossgeometry.app.experiments.options import DataTable, square_loss_data
    from lossgeometry.curvature.stepsize import auto_lr
    from tests.oracles.dense import dense_jacobian

    X, Y = square_loss_data(DataTable.from_mapping(res["config"]["data"]), torch.float64)
    model = models.mlp(3, 8, 2, 1, activation="tanh", parameterization="ntk", seed=0).double()
    problem = Problem(model, X, Y)
    w0 = problem.params()
    lr = auto_lr(problem, w0, seed=0)
    assert p["lr"] == pytest.approx(lr, rel=1e-12)
    run = train(
        problem, "gd", steps=40, lr=lr, record_every=10, seed=0, stop_loss=0.5 * p["initial_loss"]
    )
    J0, JT = dense_jacobian(problem, w0), dense_jacobian(problem, run.w_final)
    K0, dK = J0 @ J0.T, JT @ JT.T - J0 @ J0.T
    assert p["rel_change_fro"] == pytest.approx(float(dK.norm() / K0.norm()), rel=1e-8)
    spec = float(torch.linalg.matrix_norm(dK, ord=2) / torch.linalg.matrix_norm(K0, ord=2))
    assert p["rel_change_spec"] == pytest.approx(spec, rel=1e-8)
    assert p["distance"] == pytest.approx(float((run.w_final - w0).norm()), rel=1e-10)
