"""SGDStep as a Result: flat summary(), plot(ax=None) of its own bound, save/load."""

from __future__ import annotations

import math

import matplotlib
import numpy as np
import pytest
import torch
from torch import nn

import lossgeometry as lg
from lossgeometry.conditions import SGDStep, certify_plstar, sgd_step_size

matplotlib.use("Agg")
import matplotlib.pyplot as plt


@pytest.fixture(scope="module")
def step() -> SGDStep:
    g = torch.Generator().manual_seed(0)
    X = torch.randn(8, 14, generator=g, dtype=torch.float64)
    Y = torch.randn(8, 2, generator=g, dtype=torch.float64)
    torch.manual_seed(0)
    problem = lg.Problem(nn.Linear(14, 2, bias=False).double(), X, Y, reduction="sum")
    return sgd_step_size(problem, certify_plstar(problem, samples=2), 3)


def test_summary_is_flat_and_holds_the_fields(step):
    s = step.summary()
    for k, v in s.items():
        assert isinstance(v, (bool, int, float)), (k, v)
    for k in ("batch_size", "step_size", "rate", "critical_batch_size", "radius_delta"):
        assert s[k] == getattr(step, k)
    assert s["certified"] is step.certified


def test_save_load_round_trip(step, tmp_path):
    back = lg.load_result(step.save(tmp_path / "step.json"))
    assert isinstance(back, SGDStep)
    assert back.to_dict() == step.to_dict() and back.summary() == step.summary()
    assert back.predicted(7) == step.predicted(7)


def test_plot_draws_the_expected_loss_bound(step):
    fig, ax = plt.subplots()
    assert step.plot(ax, steps=25) is ax
    (line,) = ax.get_lines()
    t = np.arange(26)
    np.testing.assert_array_equal(line.get_xdata(), t)
    np.testing.assert_allclose(line.get_ydata(), step.loss0 * step.rate**t, rtol=1e-12)
    plt.close(fig)
    ax = step.plot()  # default horizon: the bound falls by 10⁶
    y = ax.get_lines()[0].get_ydata()
    assert len(y) == step.horizon() + 1
    assert y[-1] <= 1e-6 * step.loss0 < y[-2]
    plt.close(ax.figure)


def test_horizon_edge_cases(step):
    import dataclasses

    assert dataclasses.replace(step, rate=0.0).horizon() == 1
    assert dataclasses.replace(step, rate=1.0).horizon() == 100
    assert dataclasses.replace(step, rate=0.5).horizon(1e-3) == math.ceil(math.log(1e-3, 0.5))
    with pytest.raises(ValueError, match="factor"):
        step.horizon(2.0)
