"""The curvature profile: both ends, trace, density and bound against dense float64 oracles."""

from __future__ import annotations

import matplotlib
import numpy as np
import pytest
import torch

import lossgeometry as lg
from lossgeometry.curvature.profile import CurvatureOptions, CurvatureProfile, curvature_profile
from lossgeometry.options import OptionsError
from tests.conftest import tiny_mlp
from tests.oracles.dense import dense_hessian

matplotlib.use("Agg")


@pytest.fixture
def problem():
    g = torch.Generator().manual_seed(1)
    X = torch.randn(6, 3, generator=g, dtype=torch.float64)
    Y = torch.randn(6, 2, generator=g, dtype=torch.float64)
    return lg.Problem(tiny_mlp(3, 5, 2), X, Y)


def test_profile_matches_the_dense_hessian(problem):
    w = problem.params()
    ev = torch.linalg.eigvalsh(dense_hessian(problem, w)).numpy()
    prof = curvature_profile(problem, w, options=CurvatureOptions(trace_samples=3 * problem.p))
    s = prof.spectrum
    assert s.method == "dense"  # p = 32: "auto" goes dense
    np.testing.assert_allclose(s.top, ev[::-1][:3], rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(s.bottom, ev[:3], rtol=1e-9, atol=1e-12)
    # Hutch++ with 3p products sketches the whole space (p vectors): the trace is exact
    assert prof.trace.estimate == pytest.approx(float(ev.sum()), rel=1e-8)
    # SLQ: Ritz values lie in the spectrum's range, each probe's weights sum to one
    nodes, scale = np.asarray(prof.density.nodes), float(np.abs(ev).max())
    assert nodes.min() >= ev[0] - 1e-9 * scale and nodes.max() <= ev[-1] + 1e-9 * scale
    np.testing.assert_allclose(np.asarray(prof.density.weights).sum(axis=1), 1.0, rtol=1e-10)
    assert prof.density.probes == 4 and prof.density.steps == 30
    b = prof.bound
    assert b.holds and b.lambda_max == pytest.approx(float(ev[-1]), rel=1e-3)
    assert prof.model_hessian is None and prof.notes == []
    summ = prof.summary()
    assert summ["lambda_max"] == s.lambda_max and summ["bound_holds"] is True
    assert (
        summ["matvecs"] == prof.matvecs == sum(x.matvecs for x in (s, prof.density, prof.trace, b))
    )


def test_lanczos_route_and_parts_switched_off(problem):
    w = problem.params()
    ev = torch.linalg.eigvalsh(dense_hessian(problem, w)).numpy()
    opts = CurvatureOptions(
        top=1, bottom=2, solver="lanczos", tol=1e-8, trace=False, density=False, bound=False
    )
    prof = curvature_profile(problem, w, options=opts)
    assert prof.spectrum.method == "lanczos"
    assert prof.spectrum.lambda_max == pytest.approx(float(ev[-1]), rel=1e-6)
    np.testing.assert_allclose(prof.spectrum.bottom, ev[:2], rtol=1e-5, atol=1e-7)
    assert prof.trace is None and prof.density is None and prof.bound is None
    assert "trace" not in prof.summary()


def test_bound_is_skipped_with_a_note_for_cross_entropy():
    g = torch.Generator().manual_seed(2)
    X = torch.randn(6, 3, generator=g, dtype=torch.float64)
    Y = torch.randint(0, 2, (6,), generator=g)
    pb = lg.Problem(tiny_mlp(3, 5, 2), X, Y, loss="cross_entropy")
    opts = CurvatureOptions(trace=False, density=False, model_hessian=True)
    prof = curvature_profile(pb, options=opts)
    assert prof.bound is None and "square loss" in prof.notes[0]
    assert prof.model_hessian is not None and prof.model_hessian.norm > 0


@pytest.mark.parametrize(
    ("data", "msg"),
    [
        ({"tpo": 2}, r"\[report.curvature\] tpo: unknown option; did you mean 'top'"),
        ({"trace_sample": 9}, "did you mean 'trace_samples'"),
        ({"top": 0, "bottom": 0}, "at least one eigenvalue"),
        ({"probes": 0}, "probes = 0: must be at least 1"),
        ({"tol": -1.0}, "must be positive"),
        ({"of": "fisher"}, "choose one of 'loss', 'ggn'"),
        ({"bound": "yes"}, "expected true or false"),
        ({"solver": "power"}, "choose one of 'auto', 'lanczos'"),
        # the former name of the eigen-solver is hinted by the new one
        ({"method": "dense"}, r"method: unknown option; did you mean 'solver'\?"),
    ],
)
def test_options_errors(data, msg):
    with pytest.raises(OptionsError, match=msg):
        CurvatureOptions.from_mapping(data, where="report.curvature")


def test_result_round_trip_summary_and_plot(problem, tmp_path):
    prof = curvature_profile(problem, options=CurvatureOptions(model_hessian=True))
    back = lg.load_result(prof.save(tmp_path / "prof.json"))
    assert isinstance(back, CurvatureProfile)
    assert isinstance(back.spectrum, lg.HessianSpectrum) and isinstance(back.bound, lg.HessianBound)
    assert back.to_dict() == prof.to_dict() and back.summary() == prof.summary()
    assert CurvatureOptions.from_mapping(back.options) == CurvatureOptions(model_hessian=True)
    ax = prof.plot()
    assert ax.get_lines()
    ax.figure.clf()
    ax = curvature_profile(problem, options=CurvatureOptions(density=False)).plot()
    assert ax.get_lines()
    ax.figure.clf()
