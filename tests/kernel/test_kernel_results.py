"""KernelSpectrum (dense and matrix-free) and KernelChange: summary, plot data, save/load."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

import lossgeometry as lg
from lossgeometry.kernel.change import kernel_change
from tests.conftest import tiny_mlp
from tests.result_checks import check_roundtrip, check_summary, close_all, new_axes


@pytest.fixture(scope="module")
def problem() -> lg.Problem:
    g = torch.Generator().manual_seed(0)
    X = torch.randn(8, 3, generator=g, dtype=torch.float64)
    Y = torch.randn(8, 2, generator=g, dtype=torch.float64)
    return lg.Problem(tiny_mlp(3, 6, 2, seed=0), X, Y)


@pytest.fixture(autouse=True)
def _close():
    yield
    close_all()


def _expected(s: lg.KernelSpectrum) -> dict:
    return {
        "lambda_min": s.lambda_min,
        "lambda_max": s.lambda_max,
        "condition_number": s.condition_number,
        "size": s.size,
        "trace": s.trace,
        "rank": s.rank,
        "error_estimate": s.error_estimate,
        "converged": s.converged,
        "method": s.method,
        "kernel_method": s.kernel_method,
        "outputs": "full",
        "iterations": s.iterations,
        "matvecs": s.matvecs,
        "tol": s.tol,
        "dtype": "float64",
        "seconds": s.seconds,
    }


def test_dense_spectrum(problem, tmp_path):
    s = lg.kernel_spectrum(problem, solver="dense")
    assert s.size == 16 and s.method == "dense" and s.rank == 16
    check_summary(s, _expected(s))
    ax = s.plot(new_axes(), label="w0")
    ev = np.sort(np.asarray(s.eigenvalues))[::-1]
    np.testing.assert_array_equal(ax.lines[0].get_ydata(), ev)  # all positive: nothing floored
    np.testing.assert_array_equal(ax.lines[0].get_xdata(), np.arange(1, 17))
    assert ax.get_legend().get_texts()[0].get_text() == f"w0, κ = {s.condition_number:.3g}"
    with pytest.raises(TypeError):
        s.plot(None, "w0")  # label is keyword-only
    check_roundtrip(s, tmp_path)


def test_matrix_free_spectrum(problem, tmp_path):
    s = lg.kernel_spectrum(problem, solver="lanczos", num_eigenvalues=2, tol=1e-10)
    assert math.isnan(s.trace) and s.rank == -1
    summary = check_summary(s, _expected(s))
    assert summary["matvecs"] > 0
    ax = s.plot()
    np.testing.assert_array_equal(ax.lines[0].get_ydata(), np.sort(s.eigenvalues)[::-1])
    check_roundtrip(s, tmp_path)


def test_change_plot_draws_both_spectra(problem):
    w0 = problem.params()
    w1 = w0 + 0.1 * torch.randn(problem.p, generator=torch.Generator().manual_seed(1))
    ch = kernel_change(problem, w0, w1.double())
    ax = ch.plot(new_axes())
    np.testing.assert_array_equal(ax.lines[0].get_ydata(), np.sort(ch.start.eigenvalues)[::-1])
    np.testing.assert_array_equal(ax.lines[1].get_ydata(), np.sort(ch.end.eigenvalues)[::-1])
    s = ch.summary()
    assert s["lambda_min_w0"] == ch.start.summary()["lambda_min"]
    assert s["lambda_max_w1"] == ch.end.summary()["lambda_max"]
