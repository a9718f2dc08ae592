"""The linalg Results (Rank, TraceEstimate): summary, plot data and save/load."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import lossgeometry as lg
from tests.result_checks import check_roundtrip, check_summary, close_all, new_axes


@pytest.fixture(autouse=True)
def _close():
    yield
    close_all()


def test_rank(tmp_path):
    rng = np.random.default_rng(0)
    A = rng.standard_normal((12, 3)) @ rng.standard_normal((3, 15))
    r = lg.numerical_rank(A + 1e-10 * rng.standard_normal((12, 15)))
    assert r.rank == 3
    check_summary(
        r,
        {
            "rank": 3,
            "size": 12,
            "nullity": 9,
            "gap": r.gap,
            "method": "gap",
            "tol": r.tol,
            "floor": r.floor,
            "s_max": r.s_max,
        },
    )
    ax = r.plot(new_axes())
    sv = np.asarray(r.singular_values)
    np.testing.assert_array_equal(ax.lines[0].get_ydata(), sv)
    np.testing.assert_array_equal(
        ax.lines[0].get_xdata(), np.arange(r.window_start, r.window_start + sv.size) + 1
    )
    np.testing.assert_array_equal(ax.lines[1].get_xdata(), [3.5, 3.5])  # the cut
    np.testing.assert_array_equal(ax.lines[2].get_ydata(), [r.floor, r.floor])
    check_roundtrip(r, tmp_path)


@pytest.mark.parametrize("estimator", ["hutchinson", "hutchpp"])
def test_trace_estimate(tmp_path, estimator):
    g = torch.Generator().manual_seed(0)
    B = torch.randn(30, 30, generator=g, dtype=torch.float64)
    A = B @ B.T
    est = getattr(lg.linalg, estimator)(A, 30, seed=1)
    per = est.deflated + np.asarray(est.values)
    np.testing.assert_allclose(per.mean(), est.estimate, rtol=1e-12)
    if estimator == "hutchinson":
        # each per-probe estimate is zᵀAz with z of ±1 entries
        assert est.deflated == 0.0
    check_summary(
        est,
        {
            "estimate": est.estimate,
            "ci_low": est.ci_low,
            "ci_high": est.ci_high,
            "half_width": est.half_width,
            "stderr": est.stderr,
            "confidence": 0.95,
            "method": "hutchinson" if estimator == "hutchinson" else "hutch++",
            "samples": est.samples,
            "matvecs": est.matvecs,
            "deflated": est.deflated,
        },
    )
    ax = est.plot()
    np.testing.assert_allclose(ax.lines[0].get_ydata(), per)
    np.testing.assert_allclose(ax.lines[1].get_ydata()[-1], est.estimate, rtol=1e-12)
    np.testing.assert_array_equal(ax.lines[2].get_ydata(), [est.estimate, est.estimate])
    check_roundtrip(est, tmp_path)
