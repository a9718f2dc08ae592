"""Trajectory as a Result: summary() states the records, plot() draws them, save/load."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

import lossgeometry as lg
from tests.conftest import tiny_mlp
from tests.result_checks import check_roundtrip, check_summary, close_all, new_axes


@pytest.fixture(autouse=True)
def _close():
    yield
    close_all()


@pytest.fixture(scope="module")
def run() -> lg.Trajectory:
    g = torch.Generator().manual_seed(0)
    X = torch.randn(10, 3, generator=g, dtype=torch.float64)
    Y = torch.randn(10, 2, generator=g, dtype=torch.float64)
    return lg.train(lg.Problem(tiny_mlp(), X, Y), "gd", 12, lr=0.05, record_every=3)


def test_summary(run):
    L0, LT = float(run.loss[0]), float(run.loss[-1])
    check_summary(
        run,
        {
            "loss_initial": L0,
            "loss_final": LT,
            "loss_min": float(run.loss.min()),
            "grad_norm_final": float(run.grad_norm[-1]),
            "distance_final": float(run.distance[-1]),
            "pl_ratio_min": float(run.pl_ratio.min()),
            "rate": (LT / L0) ** (1 / 12),
            "records": 5,
            "num_steps": 12,
            "optimizer": "gd",
            "lr": 0.05,
            "batch_size": None,
            "seed": 0,
            "loss_name": "mse",
            "reduction": "sum",
            "wall_time": run.wall_time,
        },
    )
    assert LT < L0 and 0 < run.summary()["rate"] < 1


def test_summary_of_a_run_that_reached_zero(run):
    import dataclasses

    zero = dataclasses.replace(
        run,
        loss=np.r_[run.loss[:-1], 0.0],
        pl_ratio=np.full(len(run.steps), math.inf),
    )
    s = zero.summary()
    assert math.isnan(s["rate"]) and math.isnan(s["pl_ratio_min"]) and s["loss_min"] == 0.0


@pytest.mark.parametrize("quantity", ["loss", "grad_norm", "distance", "pl_ratio"])
def test_plot_draws_the_records(run, quantity):
    ax = run.plot(new_axes(), quantity=quantity)
    y = np.asarray(getattr(run, quantity), dtype=float)
    np.testing.assert_array_equal(ax.lines[0].get_xdata(), run.steps)
    np.testing.assert_array_equal(ax.lines[0].get_ydata(), np.where(y > 0, y, np.nan))
    assert ax.get_yscale() == "log"


def test_plot_arguments(run):
    with pytest.raises(TypeError):
        run.plot(None, "loss")  # quantity is keyword-only
    with pytest.raises(ValueError, match="quantity must be one of"):
        run.plot(quantity="steps")
    ax = run.plot()
    assert ax.get_ylabel() == "loss"


def test_roundtrip(run, tmp_path):
    check_roundtrip(run, tmp_path)
    back = lg.Trajectory.load(tmp_path / "r.json")  # the parameter tensors come back too
    assert torch.equal(back.w_final, run.w_final) and back.summary() == run.summary()
